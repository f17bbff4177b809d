// The georelay SDK in a Node script. Start the demo (`npm start`), open http://127.0.0.1:4000/,
// then run `node examples/node-quickstart/quickstart.js` (add --watch to stay and see edits).
import * as Y from 'yjs'
import { GeoClient } from '@georelay/client'

const client = new GeoClient({
  discoveryUrl: process.env.GEORELAY_URL ?? 'ws://127.0.0.1:4001', // any region: it lists the others
  offline: 'memory', // or 'file:./pending.bin': edits survive a restart until a relay has them
})
client.on('region', ({ region, reason }) => console.log(`connected to ${region} (${reason})`))

const doc = new Y.Doc()
const session = client.open(process.env.GEORELAY_DOC ?? 'demo/notes', doc, { ack: 'majority' })
await session.synced // the first sync with the nearest region is done
const text = doc.getText('t')
text.observe(event => {
  if (!event.transaction.local) console.log(`remote edit, now: ${JSON.stringify(text.toString())}`)
})
session.awareness.setLocalStateField('user', { name: 'node script', color: '#667085', colorLight: '#66708533', region: client.region })

text.insert(text.length, `${text.length > 0 ? '\n' : ''}Hello from Node, pid ${process.pid}.`)
await session.flush() // resolves once the edit is durable in a majority of the regions
console.log(`durable in a majority of ${client.regions.length} regions: ${JSON.stringify(text.toString())}`)

if (process.argv.includes('--watch')) {
  console.log('watching for edits; stop with Ctrl-C')
  process.once('SIGINT', () => client.close())
} else {
  await client.close()
}
