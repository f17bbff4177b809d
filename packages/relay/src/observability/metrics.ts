/**
 * Prometheus metrics of one relay, in a registry of its own so that several relays can run in
 * one process (tests, `georelay cluster`).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** `storeAvailable` is read at each scrape: the store knows best whether its database answers. */
export const createRelayMetrics = (region: string, storeAvailable: () => boolean = () => true) => {
  const registry = new Registry()
  registry.setDefaultLabels({ region })
  collectDefaultMetrics({ register: registry, prefix: 'georelay_' })
  const registers = [registry]
  const metrics = {
    registry,
    connections: new Gauge({ name: 'georelay_connections', help: 'Open client sockets', labelNames: ['endpoint'] as const, registers }),
    documents: new Gauge({ name: 'georelay_documents_loaded', help: 'Documents held in memory', registers }),
    updatesIn: new Counter({ name: 'georelay_updates_received_total', help: 'Updates accepted and stored', labelNames: ['source'] as const, registers }),
    updateBytesIn: new Counter({ name: 'georelay_update_bytes_received_total', help: 'Bytes of accepted updates', labelNames: ['source'] as const, registers }),
    updatesOut: new Counter({ name: 'georelay_updates_sent_total', help: 'Update messages sent to clients', labelNames: ['target'] as const, registers }),
    bytesOut: new Counter({ name: 'georelay_bytes_sent_total', help: 'Bytes of frames sent to clients', labelNames: ['target'] as const, registers }),
    rejected: new Counter({ name: 'georelay_messages_rejected_total', help: 'Messages refused, by error code', labelNames: ['code'] as const, registers }),
    storeAppendSeconds: new Histogram({
      name: 'georelay_store_append_seconds',
      help: 'Time from receiving an update to its durable append',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    peerBytesOut: new Counter({ name: 'georelay_peer_bytes_sent_total', help: 'Bytes sent to a peer region', labelNames: ['peer'] as const, registers }),
    peerBytesIn: new Counter({ name: 'georelay_peer_bytes_received_total', help: 'Bytes received from a peer region', labelNames: ['peer'] as const, registers }),
    peerUpdatesOut: new Counter({ name: 'georelay_peer_updates_sent_total', help: 'Log entries sent to a peer region (before merging)', labelNames: ['peer'] as const, registers }),
    peerUpdatesIn: new Counter({ name: 'georelay_peer_updates_received_total', help: 'Entries from a peer region that were new here', labelNames: ['peer'] as const, registers }),
    peerAwarenessOut: new Counter({ name: 'georelay_peer_awareness_sent_total', help: 'Coalesced awareness messages sent to peers', registers }),
    replicationLagMs: new Gauge({ name: 'georelay_replication_lag_ms', help: 'Age of the oldest local update a peer has not acknowledged', labelNames: ['peer'] as const, registers }),
    replicationPending: new Gauge({ name: 'georelay_replication_pending_updates', help: 'Local updates a peer has not acknowledged', labelNames: ['peer'] as const, registers }),
    peerLinkUp: new Gauge({ name: 'georelay_peer_link_up', help: '1 while this relay\'s link to the peer is up', labelNames: ['peer'] as const, registers }),
    peerRefused: new Counter({ name: 'georelay_peer_links_refused_total', help: 'Peer links refused', labelNames: ['reason'] as const, registers }),
    catchUps: new Counter({ name: 'georelay_peer_catch_ups_total', help: 'State-vector catch-ups run because compaction passed a peer\'s mark', labelNames: ['peer'] as const, registers }),
    residencyRefused: new Counter({ name: 'georelay_residency_refused_total', help: 'Messages of a document a peer sent although this region\'s namespace rules exclude it (dropped)', labelNames: ['peer', 'kind'] as const, registers }),
    policyMismatch: new Gauge({ name: 'georelay_policy_mismatch', help: '1 while a peer\'s namespace rules differ from this relay\'s', labelNames: ['peer'] as const, registers }),
    throttled: new Counter({ name: 'georelay_client_throttled_total', help: 'Times a client socket went over its rate and was not read until its debt was paid', labelNames: ['endpoint'] as const, registers }),
    droppedAfterClose: new Counter({ name: 'georelay_messages_dropped_after_close_total', help: 'Frames not handled because the relay had decided to close their socket (they arrived after, or were waiting when it closed)', registers }),
    presenceRefused: new Counter({ name: 'georelay_presence_refused_total', help: 'Awareness entries dropped: another client\'s id, or past a presence bound', registers }),
    receivingBytes: new Gauge({ name: 'georelay_receiving_bytes', help: 'Bytes of large messages still arriving, drawn from limits.maxReceivingBytes', registers }),
    receiveWaits: new Gauge({ name: 'georelay_receive_waiting_sockets', help: 'Sockets not read while limits.maxReceivingBytes is spent', registers }),
    docApiRequests: new Counter({ name: 'georelay_doc_api_requests_total', help: 'Requests of the HTTP document API (/v1/docs), by method and status', labelNames: ['method', 'status'] as const, registers }),
    erasures: new Counter({ name: 'georelay_erasures_total', help: 'Documents erased in this region, by where the erasure was asked (here, or a peer)', labelNames: ['origin'] as const, registers }),
    erasedDropped: new Counter({ name: 'georelay_erased_dropped_total', help: 'Updates and presence of erased documents dropped (from peers or clients)', registers }),
    webhookDeliveries: new Counter({ name: 'georelay_webhook_deliveries_total', help: 'Webhook POSTs, by receiver (its position in the config) and result (ok: 2xx; failed: retried)', labelNames: ['webhook', 'result'] as const, registers }),
    webhookPending: new Gauge({ name: 'georelay_webhook_pending', help: 'Documents whose event waits to be delivered to a webhook receiver', labelNames: ['webhook'] as const, registers }),
    webhookCoalesced: new Counter({ name: 'georelay_webhook_coalesced_total', help: 'Webhook events that replaced an undelivered older event of the same document', labelNames: ['webhook'] as const, registers }),
    webhookDropped: new Counter({ name: 'georelay_webhook_dropped_total', help: 'Webhook events dropped because more documents waited than are kept for a receiver', labelNames: ['webhook'] as const, registers }),
    storeErrors: new Counter({ name: 'georelay_store_errors_total', help: 'Store operations that failed', labelNames: ['op'] as const, registers }),
    // A region of several nodes (region/): what came from sibling nodes, and how.
    siblingUpdates: new Counter({ name: 'georelay_node_updates_received_total', help: 'Updates another node of this region stored, taken in: carried by its Redis hint (hint) or read from the shared log (log: a hint was too large, lost or late)', labelNames: ['path'] as const, registers }),
    siblingReads: new Counter({ name: 'georelay_node_log_reads_total', help: 'Reads of the shared log for sibling nodes\' writes, by what started them: a hint without its update, the periodic poll, Redis coming back', labelNames: ['reason'] as const, registers }),
    redisUp: new Gauge({ name: 'georelay_redis_up', help: '1 while this node is subscribed on Redis; 0 while hints are lost (the log poll still catches up)', registers }),
    redisErrors: new Counter({ name: 'georelay_redis_errors_total', help: 'Redis commands that failed (hints not published: siblings catch up from the log)', registers }),
    storeAvailable: new Gauge({
      name: 'georelay_store_available',
      help: '1 while the store answers; 0 while its database is unreachable and writes are refused',
      registers,
      collect () { this.set(storeAvailable() ? 1 : 0) },
    }),
  }
  // Present from the start, so that an alert on "no clients" has a sample to look at.
  metrics.connections.set({ endpoint: 'y-websocket' }, 0)
  metrics.connections.set({ endpoint: 'mux' }, 0)
  metrics.connections.set({ endpoint: 'hocuspocus' }, 0)
  metrics.documents.set(0)
  return metrics
}

export type RelayMetrics = ReturnType<typeof createRelayMetrics>
