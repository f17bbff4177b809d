export { CloseCode, closeReason } from './close-codes.js'
export { ProtocolError, type ProtocolErrorCode } from './protocol-error.js'
export { MessageType, SyncType, decodeFrame, encodeFrame, type YMessage } from './y-messages.js'
export {
  EMPTY_UPDATE, MERGE_BATCH, diffUpdate, isEmptyUpdate, mergeUpdates, mergeUpdatesInBatches, stateVectorOf,
  validateStateVector, validateUpdate, yieldToEventLoop, type Yield,
} from './updates.js'
export {
  DEFAULT_COMPACTION, LOCAL_ORIGIN, StoreError, docErased, storeClosed, type Tombstone, type CompactionThresholds,
  type Origin, type OriginEntry,
  type OriginRead, type DocEntry, type SinceRead,
  type DocStore, type LogEntry, type PendingAppend, type StoreErrorCode, type StoredDoc,
  type StoreOptions,
} from './doc-store.js'
export { canLease, type LeaseEvent, type LeaseOptions, type LeaseStore, type StoreLease } from './store-lease.js'
export { CompactionScheduler } from './compaction-scheduler.js'
export { MemoryStore } from './memory-store.js'
export { coalesceAwarenessUpdates, encodeAwarenessEntries, readAwarenessUpdate, type AwarenessEntry } from './awareness-update.js'
export {
  PEER_PROTOCOL_VERSION, PeerMessageType, decodePeerMessage, encodePeerMessage, type BatchEntry, type Marks,
  type PeerMessage,
} from './peer-messages.js'
export {
  ACK_LEVELS, MUX_PROTOCOL_VERSION, MuxMessageType, decodeMuxMessage, encodeMuxMessage, type AckLevel, type MuxMessage,
  type OpenAck, type RegionStaleness,
  type RegionEndpoint,
} from './mux-messages.js'
export { FrameReader } from './frame-reader.js'
export {
  HocuspocusType, PING_FRAME, PONG_FRAME, addressFrame, decodeHocuspocusMessage, encodeHocuspocusKey,
  encodeHocuspocusMessage, hocuspocusDocName, type HocuspocusMessage, type HocuspocusScope,
} from './hocuspocus-messages.js'
export {
  MAX_HINT_UPDATE_BYTES, NodeMessageType, decodeNodeMessage, decodeRegionMessage, encodeNodeMessage, nodeChannel,
  regionChannel, type NodeMessage, type RegionMessage,
} from './node-messages.js'
export { GlobError, MAX_GLOB_LENGTH, compileGlob, type Glob } from './glob.js'
export { globPrefix, prefixEnd } from './name-prefix.js'
export { COMPACT_BATCH_TYPE, CompactBatchReader, CompactBatchWriter, MAX_LINK_NAMES, type Batch } from './link-batch-codec.js'
export { MAX_DOC_NAME_BYTES, RESERVED_NAMES, docNameProblem, isReservedName } from './doc-name.js'
export {
  DEFAULT_PROMOTE_AFTER_MS, MAX_RULES, PolicyError, canonicalRules, compilePolicies, parseCanonicalRules,
  type CompiledPolicies, type NamespaceMode, type NamespaceRule, type PolicyProblem, type ResolvedPolicy,
} from './namespace-policy.js'
export { REGION_NAME, REGION_NAME_RULE, isRegionName } from './region-name.js'
export { movedReason, parseMovedReason, type MovedTo } from './moved-reason.js'
export { fullJitter, type Backoff } from './backoff.js'
