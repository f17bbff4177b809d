/**
 * Strict reading of a lib0-encoded frame, shared by every codec of georelay. lib0's readers
 * trust their input (a length past the end is silently clamped, a view may reach into a pooled
 * socket buffer); these check every length against what is left, copy payloads into buffers of
 * their own, and throw a ProtocolError that says what was wrong and where.
 */
import * as decoding from 'lib0/decoding'
import { ProtocolError } from './protocol-error.js'

// ignoreBOM: a leading U+FEFF is part of the string (a name may start with one), not a mark to drop.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

export class FrameReader {
  private readonly decoder: decoding.Decoder
  private readonly prefix: string

  /** `context` names the protocol in error messages ("peer message"); empty for y-websocket. */
  constructor (frame: Uint8Array, context = '') {
    this.decoder = decoding.createDecoder(frame)
    this.prefix = context === '' ? '' : `malformed ${context}: `
  }

  /** Bytes not read yet. */
  get left (): number {
    return this.decoder.arr.length - this.decoder.pos
  }

  uint (what: string): number {
    try {
      return decoding.readVarUint(this.decoder)
    } catch {
      throw new ProtocolError('ERR_TRUNCATED', `${this.prefix}truncated ${what}: the frame ends inside a varint`)
    }
  }

  /** A length-prefixed byte array, copied out of the frame. */
  bytes (what: string): Uint8Array {
    const length = this.uint(`${what} length`)
    const left = this.left
    if (length > left) throw new ProtocolError('ERR_LENGTH_EXCEEDS_FRAME', `${this.prefix}${what} claims ${length} bytes but the frame has ${left} left`)
    const { arr, pos } = this.decoder
    this.decoder.pos += length
    return new Uint8Array(arr.subarray(pos, pos + length))
  }

  string (what: string): string {
    const raw = this.bytes(what)
    try {
      return utf8.decode(raw)
    } catch {
      throw new ProtocolError('ERR_INVALID_UTF8', `${this.prefix}${what} is not valid UTF-8`)
    }
  }

  /**
   * A count, then that many items. The count is checked against the bytes left (each item
   * takes at least `minBytesEach`) so that a lying count cannot make a reader loop or allocate.
   */
  list<T> (what: string, minBytesEach: number, read: () => T): T[] {
    const n = this.uint(`${what} count`)
    if (n * minBytesEach > this.left) throw new ProtocolError('ERR_LENGTH_EXCEEDS_FRAME', `${this.prefix}${what} count ${n} does not fit in the frame`)
    const items: T[] = []
    for (let i = 0; i < n; i++) items.push(read())
    return items
  }

  /** Throws unless the whole frame was read. */
  end (): void {
    if (this.left > 0) throw new ProtocolError('ERR_TRUNCATED', `${this.prefix}${this.left} bytes after the message`)
  }
}
