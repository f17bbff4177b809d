import { describe, expect, it } from '@jest/globals'
import * as encoding from 'lib0/encoding'
import { MUX_PROTOCOL_VERSION, MuxMessageType, decodeMuxMessage, encodeMuxMessage } from '@georelay/core'

describe('mux welcome', () => {
  it('carries the largest message the relay takes', () => {
    const welcome = { type: 'welcome' as const, version: MUX_PROTOCOL_VERSION, region: 'eu-west', regions: [{ name: 'eu-west', url: 'ws://a' }], maxMessageBytes: 67_174_400 }
    expect(decodeMuxMessage(encodeMuxMessage(welcome))).toEqual(welcome)
  })

  it('reads a protocol 1 welcome, which does not say, as 0 (unknown)', () => {
    const e = encoding.createEncoder()
    encoding.writeVarUint(e, MuxMessageType.Welcome)
    encoding.writeVarUint(e, 1)
    encoding.writeVarString(e, 'us-east')
    encoding.writeVarUint(e, 0)
    expect(decodeMuxMessage(encoding.toUint8Array(e))).toEqual({ type: 'welcome', version: 1, region: 'us-east', regions: [], maxMessageBytes: 0 })
  })
})
