/**
 * One-way delays between cloud regions, for `georelay cluster`'s simulated WAN: about half of
 * the round-trip times commonly measured between the big providers' regions of these names
 * (they vary by provider and by day; the point is realistic orders of magnitude).
 */
const ONE_WAY_MS: Record<string, number> = {
  'eu-central:eu-west': 12,
  'us-east:us-west': 32,
  'eu-west:us-east': 38,
  'eu-central:us-east': 45,
  'ap-northeast:us-west': 52,
  'ap-south:eu-central': 55,
  'sa-east:us-east': 60,
  'ap-south:eu-west': 60,
  'ap-northeast:ap-south': 65,
  'eu-west:us-west': 68,
  'ap-northeast:us-east': 75,
  'eu-central:us-west': 75,
  'ap-south:us-east': 95,
  'ap-northeast:eu-west': 105,
  'ap-northeast:eu-central': 110,
  'ap-south:us-west': 110,
  'eu-west:sa-east': 95,
  'ap-south:sa-east': 150,
  'ap-northeast:sa-east': 130,
}

/** Delay for region pairs the table does not know. */
export const DEFAULT_ONE_WAY_MS = 50

const key = (a: string, b: string): string => [a, b].sort().join(':')

export const knownOneWayMs = (a: string, b: string): number | undefined => ONE_WAY_MS[key(a, b)]

/** The one-way delay between two regions: an override, the table, or the default. */
export const oneWayDelayMs = (a: string, b: string, overrides: Record<string, number> = {}): number =>
  overrides[key(a, b)] ?? ONE_WAY_MS[key(a, b)] ?? DEFAULT_ONE_WAY_MS

/** Parses `a:b=MS` into an override entry, or throws saying what is wrong. */
export const parseLatency = (text: string): [string, number] => {
  const match = /^([a-z0-9-]+):([a-z0-9-]+)=(\d+(?:\.\d+)?)$/.exec(text)
  if (match === null) throw new Error(`--latency "${text}" is not REGION:REGION=MS, like eu-west:us-east=40`)
  return [key(match[1] as string, match[2] as string), Number(match[3])]
}

/** Parses repeated `--latency a:b=MS` flags into `oneWayDelayMs` overrides; throws on the first bad one. */
export const parseLatencies = (texts: readonly string[]): Record<string, number> =>
  Object.fromEntries(texts.map(parseLatency))
