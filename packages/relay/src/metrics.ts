/**
 * Prometheus metrics of one relay, in a registry of its own so that several relays can run in
 * one process (tests, `georelay cluster`).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export const createRelayMetrics = (region: string) => {
  const registry = new Registry()
  registry.setDefaultLabels({ region })
  collectDefaultMetrics({ register: registry, prefix: 'georelay_process_' })
  const registers = [registry]
  return {
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
    storeErrors: new Counter({ name: 'georelay_store_errors_total', help: 'Store operations that failed', labelNames: ['op'] as const, registers }),
  }
}

export type RelayMetrics = ReturnType<typeof createRelayMetrics>
