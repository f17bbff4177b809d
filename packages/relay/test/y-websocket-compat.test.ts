import { afterEach, describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import type { WebsocketProvider } from 'y-websocket'
import type { Relay } from '@georelay/relay'
import { connectProvider, destroyProvider, on, startTestRelay, waitForText, waitSynced, waitUntil } from '@georelay/testkit'

describe('stock y-websocket providers', () => {
  let relay: Relay
  const providers: WebsocketProvider[] = []
  const connect = (name: string, doc?: Y.Doc): WebsocketProvider => {
    const provider = connectProvider(relay.url, name, doc)
    providers.push(provider)
    return provider
  }

  afterEach(async () => {
    for (const provider of providers.splice(0)) destroyProvider(provider)
    await relay.close()
  })

  it('converge on text edited on both sides', async () => {
    relay = await startTestRelay()
    const a = connect('notes/42')
    const b = connect('notes/42')
    await Promise.all([waitSynced(a), waitSynced(b)])
    a.doc.getText('t').insert(0, 'hello ')
    b.doc.getText('t').insert(0, 'world ')
    const both = (text: string): boolean => text.includes('hello') && text.includes('world')
    await Promise.all([waitForText(a.doc, both, 'a to see both edits'), waitForText(b.doc, both, 'b to see both edits')])
    expect(a.doc.getText('t').toString()).toBe(b.doc.getText('t').toString())
    expect(Y.encodeStateVector(a.doc)).toEqual(Y.encodeStateVector(b.doc))
  })

  it('serve a late joiner the whole document and keep documents apart', async () => {
    relay = await startTestRelay()
    const writer = connect('eu/notes/1')
    const other = connect('eu/notes/2')
    await Promise.all([waitSynced(writer), waitSynced(other)])
    writer.doc.getText('t').insert(0, 'first')
    other.doc.getText('t').insert(0, 'second')
    const late = connect('eu/notes/1')
    await waitForText(late.doc, text => text === 'first', 'the late joiner to get the document')
    expect(other.doc.getText('t').toString()).toBe('second')
  })

  it('share awareness and drop a client\'s state when it leaves', async () => {
    relay = await startTestRelay()
    const a = connect('room')
    const b = connect('room')
    await Promise.all([waitSynced(a), waitSynced(b)])
    a.awareness.setLocalStateField('user', { name: 'Ada' })
    await waitUntil([on(b.awareness, 'change')], () => b.awareness.getStates().get(a.awareness.clientID)?.user?.name === 'Ada', { what: 'b to see Ada' })
    // A newcomer learns existing states from the relay.
    const c = connect('room')
    await waitUntil([on(c.awareness, 'change')], () => c.awareness.getStates().has(a.awareness.clientID), { what: 'c to see Ada' })
    a.disconnect()
    await waitUntil([on(b.awareness, 'change')], () => !b.awareness.getStates().has(a.awareness.clientID), { what: 'b to see Ada leave' })
    await waitUntil([on(c.awareness, 'change')], () => !c.awareness.getStates().has(a.awareness.clientID), { what: 'c to see Ada leave' })
  })

  it('send a reconnecting client\'s offline edits to the others', async () => {
    relay = await startTestRelay()
    const a = connect('offline')
    const b = connect('offline')
    await Promise.all([waitSynced(a), waitSynced(b)])
    a.disconnect()
    a.doc.getText('t').insert(0, 'written offline')
    a.connect()
    await waitForText(b.doc, text => text === 'written offline', 'b to get the offline edit')
  })
})
