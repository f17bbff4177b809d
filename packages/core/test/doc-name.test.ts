import { describe, expect, it } from '@jest/globals'
import { docNameProblem } from '../src/index.js'

describe('docNameProblem: what a URL would read otherwise', () => {
  it.each([
    ['notes/?q', /holds "\?", which a URL reads as the start of its query/],
    ['notes/#frag', /holds "#", which a URL reads as the start of its fragment/],
    ['a\\b', /holds "\\", which a URL reads as "\/"/],
    ['notes/a%2Fb', /holds "%2F", which a URL reads as an escaped character/],
    ['a%20b', /holds "%20"/],
    ['x%e9', /holds "%e9"/],
    ['.', /"\." or "\.\." segment/],
    ['..', /segment/],
    ['notes/../x', /segment/],
    ['notes/./x', /segment/],
    ['notes/..', /segment/],
    ['./notes', /segment/],
  ])('refuses %j', (name, reason) => {
    expect(docNameProblem(name)).toMatch(reason)
  })

  it.each(['100%/x', '50%off', '%', '100%2', 'a%zz', 'notes/a.b', 'notes/...', '.hidden', 'a..b', 'café menu', 'a b', '/leading', 'a//b', 'x|y^z', 'q"<>`{}'])(
    'accepts %j', name => {
      expect(docNameProblem(name)).toBeNull()
    },
  )
})
