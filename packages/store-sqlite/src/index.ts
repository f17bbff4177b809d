export { SQLITE_FILE, SqliteStore, type SqliteStoreOptions } from './sqlite-store.js'
