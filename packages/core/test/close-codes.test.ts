import { describe, expect, it } from '@jest/globals'
import fc from 'fast-check'
import { closeReason } from '@georelay/core'

describe('closeReason', () => {
  it('keeps a reason that fits in a close frame', () => {
    expect(closeReason('document name is reserved')).toBe('document name is reserved')
    expect(closeReason('x'.repeat(123))).toBe('x'.repeat(123))
  })

  it('shortens a longer reason to 123 bytes, marked with an ellipsis', () => {
    const reason = closeReason('x'.repeat(500))
    expect(Buffer.byteLength(reason)).toBe(123)
    expect(reason).toBe(`${'x'.repeat(120)}…`)
  })

  it('never splits a character, whatever the text (property)', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), text => {
      const reason = closeReason(text)
      expect(Buffer.byteLength(reason)).toBeLessThanOrEqual(123)
      // A split surrogate pair would not survive UTF-8 encoding.
      expect(Buffer.from(reason).toString()).toBe(reason)
      if (reason !== text) expect(text.startsWith(reason.slice(0, -1))).toBe(true)
    }))
  })

  it('does not split an emoji after an odd number of ASCII bytes', () => {
    const reason = closeReason(`x${'🙂'.repeat(100)}`)
    expect(Buffer.from(reason).toString()).toBe(reason)
  })
})
