/**
 * Whether the relay reads a socket: several parts of the relay may stop reading one (its rate
 * limit, the relay-wide receive budget, a token being checked), and reading resumes only when
 * none of them holds it. Not reading is how the relay pushes back: the client's TCP window
 * fills and its sends wait, so nothing is dropped and nothing queues up in the relay.
 */
import type { WebSocket } from 'ws'

export type HoldReason = 'rate' | 'memory' | 'auth'

export class ReadGate {
  private readonly holds = new Set<HoldReason>()

  constructor (private readonly ws: WebSocket) {}

  get held (): boolean {
    return this.holds.size > 0
  }

  has (reason: HoldReason): boolean {
    return this.holds.has(reason)
  }

  hold (reason: HoldReason): void {
    if (this.holds.has(reason)) return
    this.holds.add(reason)
    if (this.holds.size === 1) this.ws.pause()
  }

  release (reason: HoldReason): void {
    if (!this.holds.delete(reason)) return
    if (this.holds.size === 0) this.ws.resume()
  }
}

const gates = new WeakMap<WebSocket, ReadGate>()

/** The gate of a socket (one per socket, whoever asks). */
export const gateOf = (ws: WebSocket): ReadGate => {
  let gate = gates.get(ws)
  if (gate === undefined) {
    gate = new ReadGate(ws)
    gates.set(ws, gate)
  }
  return gate
}
