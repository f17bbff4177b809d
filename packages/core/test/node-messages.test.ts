import { describe, expect, it } from '@jest/globals'
import fc from 'fast-check'
import {
  ProtocolError, decodeNodeMessage, decodeRegionMessage, encodeNodeMessage, nodeChannel, regionChannel,
  type NodeMessage, type RegionMessage,
} from '@georelay/core'

const message: fc.Arbitrary<NodeMessage> = fc.oneof(
  fc.record({
    type: fc.constant('hint' as const),
    node: fc.string(),
    seq: fc.nat(),
    update: fc.option(fc.uint8Array(), { nil: null }),
  }),
  fc.record({ type: fc.constant('awareness' as const), node: fc.string(), update: fc.uint8Array() }),
)

const regionMessage: fc.Arbitrary<RegionMessage> = fc.oneof(
  fc.record({ type: fc.constant('appended' as const), node: fc.string(), seq: fc.nat() }),
  fc.record({ type: fc.constant('held' as const), node: fc.string(), region: fc.string(), seq: fc.nat() }),
  fc.record({ type: fc.constant('presence' as const), node: fc.string(), docName: fc.string(), update: fc.uint8Array() }),
)

describe('node messages', () => {
  it('decode what they encode (property)', () => {
    fc.assert(fc.property(message, m => {
      expect(decodeNodeMessage(encodeNodeMessage(m))).toEqual(m)
    }))
  })

  it('tell a hint without its update from one with an empty update', () => {
    const without = decodeNodeMessage(encodeNodeMessage({ type: 'hint', node: 'a1', seq: 7, update: null }))
    const empty = decodeNodeMessage(encodeNodeMessage({ type: 'hint', node: 'a1', seq: 7, update: new Uint8Array() }))
    expect(without).toMatchObject({ update: null })
    expect(empty).toMatchObject({ update: new Uint8Array() })
  })

  it('refuse anything else with a ProtocolError, never another exception (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), frame => {
      try {
        decodeNodeMessage(frame)
      } catch (err) {
        expect(err).toBeInstanceOf(ProtocolError)
      }
    }))
    expect(() => decodeNodeMessage(new Uint8Array([9, 0]))).toThrow(/unknown type 9/)
    expect(() => decodeNodeMessage(new Uint8Array([0, 0, 1, 2]))).toThrow(/update flag 2/)
    const hint = encodeNodeMessage({ type: 'hint', node: 'a1', seq: 1, update: null })
    expect(() => decodeNodeMessage(new Uint8Array([...hint, 0]))).toThrow(/1 bytes after the message/)
  })

  it('puts a region\'s document in a hash tag of its own', () => {
    expect(nodeChannel('eu-west', 'notes/a')).toBe('georelay:{eu-west/notes/a}')
    expect(nodeChannel('eu-west', 'a')).not.toBe(nodeChannel('us-east', 'a'))
  })

  it('of the region\'s channel decode what they encode, and only those (property)', () => {
    fc.assert(fc.property(regionMessage, m => {
      expect(decodeRegionMessage(encodeNodeMessage(m))).toEqual(m)
    }))
    expect(() => decodeRegionMessage(encodeNodeMessage({ type: 'hint', node: 'a1', seq: 1, update: null }))).toThrow(/region message: unknown type 0/)
    expect(() => decodeNodeMessage(encodeNodeMessage({ type: 'appended', node: 'a1', seq: 1 }))).toThrow(/unknown type 2/)
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), frame => {
      try {
        decodeRegionMessage(frame)
      } catch (err) {
        expect(err).toBeInstanceOf(ProtocolError)
      }
    }))
  })

  it('puts the region\'s channel in a hash tag of its own, apart from its documents\'', () => {
    expect(regionChannel('eu-west')).toBe('georelay:{eu-west}')
    expect(regionChannel('eu-west')).not.toBe(nodeChannel('eu-west', ''))
  })
})
