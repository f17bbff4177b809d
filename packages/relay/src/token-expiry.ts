/**
 * A connection authenticated by a token ends when the token does (unless a mux client
 * refreshed it first). Timers cannot wait longer than about 24.8 days; a token that lives
 * longer is checked again then.
 */
import type { Grants } from './auth.js'

const MAX_TIMER_MS = 2 ** 31 - 1

export const expiryTimer = (grants: Grants | null, expire: () => void, now = Date.now()): NodeJS.Timeout | null => {
  if (grants === null || grants.expiresAt === null) return null
  const wait = grants.expiresAt - now
  const timer = wait > MAX_TIMER_MS
    ? setTimeout(() => { expiryTimer(grants, expire) }, MAX_TIMER_MS)
    : setTimeout(expire, Math.max(0, wait))
  timer.unref()
  return timer
}
