/**
 * The WebSocket class to use: the one given, the platform's (browsers, Node 22+), or the `ws`
 * package in Node 20, loaded only there so browser bundles never include it.
 */
export interface SocketLike {
  binaryType: string
  readonly readyState: number
  onopen: ((event: unknown) => void) | null
  onclose: ((event: { code: number, reason: string }) => void) | null
  onerror: ((event: unknown) => void) | null
  onmessage: ((event: { data: unknown }) => void) | null
  send(data: Uint8Array): void
  close(code?: number, reason?: string): void
}

export type SocketConstructor = new (url: string) => SocketLike

export const OPEN = 1

export const resolveWebSocket = async (given?: SocketConstructor): Promise<SocketConstructor> => {
  if (given !== undefined) return given
  const platform = (globalThis as { WebSocket?: SocketConstructor }).WebSocket
  if (platform !== undefined) return platform
  try {
    const ws = await import('ws') as unknown as { default: SocketConstructor }
    return ws.default
  } catch {
    throw new Error('no WebSocket here: pass one as the `WebSocket` option (in Node 20, `npm install ws`)')
  }
}
