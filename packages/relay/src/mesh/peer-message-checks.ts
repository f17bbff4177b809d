/**
 * What a peer sends is checked as strictly as what a client sends: the codec checks the
 * framing, this checks the contents, before anything is stored or acknowledged. A peer holds
 * the mesh secret, but a bug or a version skew in it must not break a document here (an update
 * that decodes but cannot be applied would break it for every client that syncs it).
 */
import {
  type Marks, type PeerMessage, ProtocolError, docNameProblem, isReservedName, readAwarenessUpdate, validateStateVector,
  validateUpdate,
} from '@georelay/core'

const checkRegion = (region: string, what: string): void => {
  // '' is how the store names this region's own writes: a peer must never claim it.
  if (region === '') throw new ProtocolError('ERR_UNEXPECTED_MESSAGE', `${what} is an empty region name`)
}

/** A peer's document names get the client's rule (doc-name.ts): one that escapes it could escape residency. */
const checkDocName = (name: string): void => {
  const problem = docNameProblem(name) ?? (isReservedName(name) ? 'a reserved name' : null)
  if (problem !== null) throw new ProtocolError('ERR_UNEXPECTED_MESSAGE', `a document name from the peer is refused: ${problem}`)
}

const checkMarks = (marks: Marks, what: string): void => {
  for (const origin of Object.keys(marks)) checkRegion(origin, `a region of ${what}`)
}

/** Throws a ProtocolError (4400) when a decoded peer message holds what must not be stored. */
export const checkPeerMessage = (message: PeerMessage): void => {
  switch (message.type) {
    case 'batch':
      for (const entry of message.entries) {
        checkRegion(entry.origin, 'an entry\'s origin')
        checkDocName(entry.docName)
        validateUpdate(entry.update)
      }
      return checkMarks(message.upTo, 'upTo')
    case 'catch-up':
      checkDocName(message.docName)
      return validateUpdate(message.update)
    case 'awareness':
      checkRegion(message.origin, 'the awareness origin')
      checkDocName(message.docName)
      readAwarenessUpdate(message.update)
      return
    case 'link-state':
      checkRegion(message.region, 'the link-state region')
      return checkMarks(message.have, 'have')
    case 'welcome':
    case 'ack':
      return checkMarks(message.have, 'have')
    case 'sv-reply':
      for (const doc of message.docs) {
        checkDocName(doc.docName)
        validateStateVector(doc.stateVector)
      }
      return
    case 'sv-request':
    case 'erased':
      for (const docName of message.docNames) checkDocName(docName)
      return
    case 'erase':
      for (const t of message.tombstones) {
        checkDocName(t.docName)
        checkRegion(t.origin, 'a tombstone\'s origin')
      }
      return
    case 'pull':
      checkDocName(message.docName)
      return validateStateVector(message.stateVector)
    case 'pulled':
    case 'forward':
      checkDocName(message.docName)
      return validateUpdate(message.update)
    case 'forwarded':
      return
    case 'policy':
      return
  }
}
