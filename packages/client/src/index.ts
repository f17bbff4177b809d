export {
  GeoClient, type GeoClientEvents, type GeoClientOptions, type OfflineInfo, type RegionChange, type RegionChangeReason,
} from './geo-client.js'
export { GeoSession, type RefreshOptions, type RegionLag, type SessionEvents, type SessionOptions, type SessionStatus } from './geo-session.js'
export { DEFAULT_FAILBACK, RegionPicker, nodesOf, probeRtt, type FailbackRule, type Fetch, type RegionSpec } from './region-picker.js'
export { createOfflineStore, type OfflineStoreSpec } from './create-offline-store.js'
export { MemoryOfflineStore } from './memory-offline-store.js'
export type { OfflineStore, PendingWrite } from './offline-store.js'
export type { SocketConstructor, SocketLike } from './websocket-impl.js'
export type { AckLevel, RegionEndpoint } from '@georelay/core'
export { DEFAULT_INDEXEDDB_NAME, IndexedDbOfflineStore, type IndexedDbOfflineStoreOptions } from './indexeddb-offline-store.js'
export type { FileOfflineStore, FileOfflineStoreOptions } from './file-offline-store.js'
