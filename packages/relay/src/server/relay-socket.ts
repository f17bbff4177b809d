/**
 * ws closes an over-long message with 1009 and a text frame that is not UTF-8 with 1007 on its
 * own; georelay's contract is 4413 and 4400 with a reason (docs/protocol.md, close codes). ws
 * lets a server choose its socket class, so the mapping lives here.
 */
import { WebSocket } from 'ws'
import { CloseCode } from '@georelay/core'

class RelaySocket extends WebSocket {
  static maxMessageBytes = 0
  override close (code?: number, data?: string | Buffer): void {
    if (code === 1009) return super.close(CloseCode.MessageTooLarge, `message too large: the limit is ${(this.constructor as typeof RelaySocket).maxMessageBytes} bytes`)
    // ws's own answer to a text frame that is not UTF-8; no text frame is part of the protocol.
    if (code === 1007) return super.close(CloseCode.MalformedMessage, 'text frames are not part of the protocol: send binary frames')
    super.close(code, data)
  }
}

/** The socket class of a server whose messages are at most `maxMessageBytes`. */
export const socketClassFor = (maxMessageBytes: number): typeof WebSocket =>
  class extends RelaySocket { static override maxMessageBytes = maxMessageBytes }
