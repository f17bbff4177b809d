/**
 * Readable standbys (an active-passive rule with `standbyReads`): a region that does not write
 * the document serves its sessions and passes their writes on to the writer (`forward`), which
 * stores each as its own and answers `forwarded` once per level it is durable at, up to the one
 * asked. The write comes back to the standby by the writer's log, as every write does; only the
 * writer ever stores a client's write, so the namespace keeps its one writer.
 *
 * A write the writer does not take (it is no longer the writer, its store failed) or that gets
 * no answer in time fails the client's session of the document, which then opens it again and
 * sends what was not acknowledged: nothing is lost, nothing is acknowledged that was not stored.
 */
import { ACK_LEVELS, type AckLevel, type PeerMessage } from '@georelay/core'
import type { ForwardedResult } from '../docs/index.js'
import { RelayRefusal } from '../docs/index.js'

/** How long a forwarded write may go unanswered, at each level, before the session fails. */
const ANSWER_TIMEOUT_MS = 10_000

/** The writer's side: store the update and tell each level it reaches (or the error's words). */
export type ForwardReply = (r: { level: AckLevel } | { error: string }) => void
export type AcceptForward = (docName: string, update: Uint8Array, level: AckLevel, reply: ForwardReply) => void

interface Waiting {
  level: AckLevel
  result: (r: ForwardedResult) => void
  timer: NodeJS.Timeout
}

const failure = (message: string): ForwardedResult => ({ error: new RelayRefusal('ERR_FORWARD', 1013, message) })

export class WriteForwarding {
  private nextNonce = 1
  private readonly waiting = new Map<number, Waiting>()

  constructor (
    private readonly send: (region: string, message: PeerMessage) => boolean,
    private readonly accept: AcceptForward | undefined,
  ) {}

  forward (
    writer: string, docName: string, update: Uint8Array, level: AckLevel, result: (r: ForwardedResult) => void,
  ): void {
    const nonce = this.nextNonce++
    if (!this.send(writer, { type: 'forward', nonce, docName, update, level: ACK_LEVELS.indexOf(level) })) {
      return result(failure(`the writer of "${docName}", ${writer}, is out of reach; retry`))
    }
    const timer = this.timeout(nonce, writer, docName)
    this.waiting.set(nonce, { level, result, timer })
  }

  receive (message: PeerMessage, from: string): void {
    if (message.type === 'forward') {
      const level = ACK_LEVELS[message.level]
      const reply = (r: { level: AckLevel } | { error: string }): void => {
        this.send(from, 'error' in r
          ? { type: 'forwarded', nonce: message.nonce, level: 0, error: r.error }
          : { type: 'forwarded', nonce: message.nonce, level: ACK_LEVELS.indexOf(r.level), error: '' })
      }
      if (level === undefined) return reply({ error: `unknown ack level ${message.level}` })
      if (this.accept === undefined) return reply({ error: 'this relay takes no forwarded writes' })
      return this.accept(message.docName, message.update, level, reply)
    }
    if (message.type !== 'forwarded') return
    const waiting = this.waiting.get(message.nonce)
    if (waiting === undefined) return
    clearTimeout(waiting.timer)
    const level = ACK_LEVELS[message.level]
    if (message.error !== '' || level === undefined) {
      this.waiting.delete(message.nonce)
      return waiting.result(failure(message.error === '' ? 'the writer answered with an unknown level' : `the writer refused the write: ${message.error}`))
    }
    waiting.result({ level })
    if (ACK_LEVELS.indexOf(level) >= ACK_LEVELS.indexOf(waiting.level)) this.waiting.delete(message.nonce)
    else waiting.timer = this.timeout(message.nonce, from, '')
  }

  close (): void {
    for (const waiting of this.waiting.values()) clearTimeout(waiting.timer)
    this.waiting.clear()
  }

  private timeout (nonce: number, writer: string, docName: string): NodeJS.Timeout {
    const timer = setTimeout(() => {
      const waiting = this.waiting.get(nonce)
      this.waiting.delete(nonce)
      waiting?.result(failure(`no answer from ${writer}, the writer${docName === '' ? '' : ` of "${docName}"`}, in ${ANSWER_TIMEOUT_MS / 1000} s; retry`))
    }, ANSWER_TIMEOUT_MS)
    timer.unref()
    return timer
  }
}
