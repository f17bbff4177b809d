import { describe, expect, it } from '@jest/globals'
import { MAX_DOC_NAME_BYTES, RESERVED_NAMES } from '@georelay/core'
import { checkedName, parseRequestPath } from '../src/server/doc-path.js'

describe('parseRequestPath', () => {
  it('takes the document name from the path after the first slash', () => {
    expect(parseRequestPath('/notes')).toEqual({ kind: 'doc', name: 'notes' })
    expect(parseRequestPath('/eu/notes/42')).toEqual({ kind: 'doc', name: 'eu/notes/42' })
  })

  it('strips the query string, where a token travels', () => {
    expect(parseRequestPath('/notes/42?token=abc&x=1')).toEqual({ kind: 'doc', name: 'notes/42' })
    expect(parseRequestPath('/notes?')).toEqual({ kind: 'doc', name: 'notes' })
  })

  it('percent-decodes, so encoded and plain slashes name the same document', () => {
    expect(parseRequestPath('/eu%2Fnotes%2F42')).toEqual({ kind: 'doc', name: 'eu/notes/42' })
    expect(parseRequestPath('/caf%C3%A9%20menu')).toEqual({ kind: 'doc', name: 'café menu' })
  })

  it('decodes only after cutting the query, and then refuses the "?" a name may not hold', () => {
    expect(parseRequestPath('/what%3Fnow?token=t')).toEqual({ kind: 'invalid', reason: expect.stringMatching(/holds "\?"/) })
  })

  it('reads a "%" that is not followed by two hex digits as itself, as a stock provider sends it', () => {
    expect(parseRequestPath('/100%/x')).toEqual({ kind: 'doc', name: '100%/x' })
    expect(parseRequestPath('/50%off?token=t')).toEqual({ kind: 'doc', name: '50%off' })
    expect(parseRequestPath('/%')).toEqual({ kind: 'doc', name: '%' })
    expect(parseRequestPath('/a%zzb')).toEqual({ kind: 'doc', name: 'a%zzb' })
    expect(parseRequestPath('/caf%C3%A9 100%')).toEqual({ kind: 'doc', name: 'café 100%' })
  })

  it('refuses escapes that do not decode to UTF-8, and names whose decoding holds an escape', () => {
    for (const url of ['/%E0%A4%A', '/%C3', '/%FF']) {
      expect(parseRequestPath(url)).toEqual({ kind: 'invalid', reason: expect.stringMatching(/not valid percent-encoding/) })
    }
    // %252F decodes to "%2F": a name holding an escape would be another document to a provider.
    expect(parseRequestPath('/a%252Fb')).toEqual({ kind: 'invalid', reason: expect.stringMatching(/holds "%2F"/) })
  })

  it('refuses a query that is not name=value pairs: the sign of a "?" in a stock provider\'s room name', () => {
    for (const url of ['/notes/?q?token=t', '/notes/?q', '/notes?a=1?b=2']) {
      expect(parseRequestPath(url)).toEqual({ kind: 'invalid', reason: expect.stringMatching(/not name=value pairs: did the document name hold "\?"\?/) })
    }
    expect(parseRequestPath('/notes?token=t&x=&y=2')).toEqual({ kind: 'doc', name: 'notes' })
  })

  it('refuses an empty name, with the URL shape in the reason', () => {
    for (const url of ['/', '', '/?token=x']) {
      expect(parseRequestPath(url)).toEqual({ kind: 'invalid', reason: expect.stringMatching(/no document name.*ws:\/\/HOST:PORT\/<document name>/) })
    }
  })

  it('reserves the HTTP endpoints and everything under v1/', () => {
    expect([...RESERVED_NAMES].sort()).toEqual(['healthz', 'metrics', 'readyz'])
    for (const name of RESERVED_NAMES) expect(parseRequestPath(`/${name}`)).toEqual({ kind: 'reserved', path: name })
    expect(parseRequestPath('/v1/mux')).toEqual({ kind: 'reserved', path: 'v1/mux' })
    expect(parseRequestPath('/v1/peer?secret=x')).toEqual({ kind: 'reserved', path: 'v1/peer' })
    expect(parseRequestPath('/v1/anything/at/all')).toEqual({ kind: 'reserved', path: 'v1/anything/at/all' })
    // Reservation applies to the decoded name: encoding the slash does not sneak past it.
    expect(parseRequestPath('/v1%2Fmux')).toEqual({ kind: 'reserved', path: 'v1/mux' })
    expect(parseRequestPath('/%68ealthz')).toEqual({ kind: 'reserved', path: 'healthz' })
  })

  it('reserves only exact names and the v1/ prefix, not look-alikes', () => {
    expect(parseRequestPath('/v1')).toEqual({ kind: 'doc', name: 'v1' })
    expect(parseRequestPath('/v10/x')).toEqual({ kind: 'doc', name: 'v10/x' })
    expect(parseRequestPath('/healthz/notes')).toEqual({ kind: 'doc', name: 'healthz/notes' })
    expect(parseRequestPath('/metrics2')).toEqual({ kind: 'doc', name: 'metrics2' })
  })

  it(`accepts names up to ${MAX_DOC_NAME_BYTES} bytes of UTF-8 and refuses longer ones`, () => {
    expect(MAX_DOC_NAME_BYTES).toBe(512)
    expect(parseRequestPath('/' + 'a'.repeat(512))).toEqual({ kind: 'doc', name: 'a'.repeat(512) })
    expect(parseRequestPath('/' + 'a'.repeat(513))).toEqual({ kind: 'invalid', reason: expect.stringMatching(/longer than 512 bytes/) })
    // The limit is in bytes, not characters: 257 two-byte characters are 514 bytes.
    const e256 = encodeURIComponent('é'.repeat(256))
    const e257 = encodeURIComponent('é'.repeat(257))
    expect(parseRequestPath('/' + e256)).toEqual({ kind: 'doc', name: 'é'.repeat(256) })
    expect(parseRequestPath('/' + e257)).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/longer than 512 bytes/) })
  })

  it('refuses control characters, which would corrupt log lines and file names', () => {
    for (const url of ['/a%00b', '/a%0Ab', '/a%0Db', '/%1F', '/tab%09', '/del%7F']) {
      expect(parseRequestPath(url)).toEqual({ kind: 'invalid', reason: expect.stringMatching(/control characters/) })
    }
  })

  it('refuses C1 controls, Unicode line and paragraph separators and direction marks: they escape line-based matching and logs', () => {
    // U+2028 once escaped every glob rule (`**` compiled to `.*` without the `s` flag).
    const cases: [string, string][] = [
      ['/eu/patients/%E2%80%A842', 'U+2028'], ['/eu/%E2%80%A9', 'U+2029'], ['/a%C2%85b', 'U+0085'], ['/a%C2%9Fb', 'U+009F'],
      ['/a%E2%80%AEb', 'U+202E'], ['/a%E2%81%A6b', 'U+2066'], ['/a%E2%80%8Fb', 'U+200F'],
    ]
    for (const [url, code] of cases) {
      expect(parseRequestPath(url)).toEqual({ kind: 'invalid', reason: expect.stringContaining(`holds ${code}`) })
    }
    expect(checkedName('eu/patients/\u2028' + '42')).toMatchObject({ kind: 'invalid' })
    expect(checkedName('notes/42')).toEqual({ kind: 'doc', name: 'notes/42' })
    expect(checkedName('v1/mux')).toEqual({ kind: 'reserved', path: 'v1/mux' })
    // Everything else of Unicode stays a valid name.
    expect(parseRequestPath('/%E2%80%8B%F0%9F%98%80%E4%B8%AD')).toEqual({ kind: 'doc', name: '\u200b\u{1F600}中' })
  })
})
