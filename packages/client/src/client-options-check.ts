/**
 * GeoClient's options checked when it is made, so that a mistake is told by the field's name
 * at once rather than as a protocol error from the relay later (a path in a relay URL reached
 * the relay as a document name and came back as "malformed mux message").
 */
import type { RegionSpec } from './region-picker.js'

const problemOfUrl = (url: unknown): string | null => {
  if (typeof url !== 'string' || url === '') return 'must be the relay\'s ws:// or wss:// URL'
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return `"${url}" is not a URL: give the relay's base URL, like ws://127.0.0.1:4001`
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') return `"${url}" is not ws:// or wss:// (${parsed.protocol}): give the relay's WebSocket URL`
  if (parsed.pathname !== '/' && parsed.pathname !== '') return `"${url}" has a path (${parsed.pathname}): give the relay's base URL, like ${parsed.protocol}//${parsed.host}; the SDK adds /v1/mux`
  if (parsed.search !== '' || parsed.hash !== '') return `"${url}" has a query or fragment: give the relay's base URL; the token goes in the \`token\` option`
  return null
}

/** Throws a TypeError naming the first field that is wrong, with what to give instead. */
export const checkRegions = (regions: readonly RegionSpec[]): void => {
  regions.forEach((region, i) => {
    const at = `regions[${i}]`
    if (typeof region !== 'object' || region === null) throw new TypeError(`${at} must be { name, url } or { name, urls }`)
    if (typeof region.name !== 'string' || region.name === '') throw new TypeError(`${at}.name must be the region's name, like "eu-west"`)
    const urls = 'urls' in region ? region.urls : [region.url]
    if (!Array.isArray(urls) || urls.length === 0) throw new TypeError(`${at}.urls must list the region's node URLs`)
    urls.forEach((url, j) => {
      const problem = problemOfUrl(url)
      if (problem !== null) throw new TypeError(`${'urls' in region ? `${at}.urls[${j}]` : `${at}.url`} ${problem}`)
    })
  })
}
