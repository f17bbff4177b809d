export { PostgresStore, type PostgresStoreOptions } from './postgres-store.js'
export { SCHEMA_VERSION } from './schema.js'
export { describeUrl, redactUrl } from './redact.js'
export { AdvisoryLease } from './advisory-lease.js'
