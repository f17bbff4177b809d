/**
 * Region names, one rule for the relay's configuration, the cluster tools and the SDK: what
 * appears in configs, peer messages, metrics labels and redirect reasons.
 */
export const REGION_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/

export const REGION_NAME_RULE = 'a region name is lowercase letters, digits and dashes, like "eu-west"'

export const isRegionName = (name: string): boolean => REGION_NAME.test(name)
