/**
 * A refusal by the relay that is not the client's protocol error nor a store failure: it
 * carries the close code and a stable code for metrics, like ProtocolError does.
 */
export class RelayRefusal extends Error {
  constructor (readonly code: string, readonly closeCode: number, message: string) {
    super(message)
    this.name = 'RelayRefusal'
  }
}
