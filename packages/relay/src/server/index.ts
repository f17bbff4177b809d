// What the rest of the relay uses of server/: other folders import it from here only.
export { Relay, type RelayEvents, type RelayOptions } from './relay.js'
export type { RegionInfo } from './http-endpoints.js'
