/**
 * A connection authenticated by a token ends when the token does (unless a mux client
 * refreshed it first). Timers cannot wait longer than about 24.8 days; a token that lives
 * longer is waited for in steps, and `cancel` stops whichever step is pending.
 */
import type { Grants } from './authenticator.js'

const MAX_TIMER_MS = 2 ** 31 - 1

export interface Expiry { cancel(): void }

export const expiryTimer = (grants: Grants | null, expire: () => void): Expiry | null => {
  const expiresAt = grants?.expiresAt ?? null
  if (expiresAt === null) return null
  let timer: NodeJS.Timeout
  const wait = (): void => {
    const left = expiresAt - Date.now()
    timer = left > MAX_TIMER_MS ? setTimeout(wait, MAX_TIMER_MS) : setTimeout(expire, Math.max(0, left))
    timer.unref()
  }
  wait()
  return { cancel: () => clearTimeout(timer) }
}
