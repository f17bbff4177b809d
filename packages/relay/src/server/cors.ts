/**
 * Which browser origins may read the relay's HTTP answers (http.allowOrigins): browsers running
 * the SDK probe every region's /healthz and read /v1/regions cross-origin, and web apps may call
 * the document API.
 */
import type { IncomingMessage } from 'node:http'

export const corsHeaders = (req: IncomingMessage, allow: string[]): Record<string, string> => {
  if (allow.includes('*')) return { 'access-control-allow-origin': '*' }
  const origin = req.headers.origin
  return origin !== undefined && allow.includes(origin) ? { 'access-control-allow-origin': origin, vary: 'Origin' } : { vary: 'Origin' }
}
