// What the rest of the relay uses of clients/: other folders import it from here only.
export { CLOSE_HANDSHAKE_MS } from './client-socket.js'
export { writeFramesDirectly } from './ws-frame.js'
export { MuxConnection } from './mux-connection.js'
export { ClientConnection } from './y-websocket-connection.js'
export { HOCUSPOCUS_PATH, HocuspocusConnection } from './hocuspocus-connection.js'
