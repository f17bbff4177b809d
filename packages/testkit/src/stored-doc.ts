/**
 * What a store durably holds of a document, as a Y.Doc: snapshot, then log. How tests read what
 * a relay stored, rather than what a client shows.
 */
import * as Y from 'yjs'
import type { DocStore, StoredDoc } from '@georelay/core'

export const docOfStored = (stored: StoredDoc): Y.Doc => {
  const doc = new Y.Doc()
  if (stored.snapshot !== null) Y.applyUpdate(doc, stored.snapshot)
  for (const entry of stored.log) Y.applyUpdate(doc, entry.update)
  return doc
}

export const readStoredDoc = async (store: DocStore, name: string): Promise<Y.Doc> =>
  docOfStored(await store.read(name))
