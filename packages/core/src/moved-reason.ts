/**
 * The reason of a 4307 close ("moved"): `REGION URL : words`. The SDK reads the region and URL
 * to follow the redirect; a stock provider's user sees the words. Written and read here only,
 * so the two cannot drift.
 */
import { REGION_NAME } from './region-name.js'

export interface MovedTo {
  region: string
  url: string
}

export const movedReason = ({ region, url }: MovedTo, words = `this document lives in ${region}`): string => `${region} ${url} : ${words}`

/** The region and URL of a 4307 reason, or null when it holds none (a relay of another kind). */
export const parseMovedReason = (reason: string): MovedTo | null => {
  const [region, url] = reason.split(' ', 2)
  if (region === undefined || url === undefined || !REGION_NAME.test(region) || !/^wss?:\/\/\S+$/.test(url)) return null
  return { region, url }
}
