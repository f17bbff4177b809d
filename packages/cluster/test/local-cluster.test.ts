/**
 * LocalCluster's controls for demos and tests: a region stopped and started again comes back on
 * the same URL with its data and catches up on what it missed; a cut link holds what crosses it
 * until it heals.
 */
import { afterEach, describe, expect, it } from '@jest/globals'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { WebsocketProvider } from 'y-websocket'
import { LocalCluster } from '@georelay/cluster'
import { connectProvider, destroyProvider, waitForText, waitSynced } from '@georelay/testkit'

describe('LocalCluster', () => {
  let cluster: LocalCluster | undefined
  let dataDir: string | undefined
  const providers: WebsocketProvider[] = []

  afterEach(async () => {
    for (const provider of providers.splice(0)) destroyProvider(provider)
    await cluster?.close()
    cluster = undefined
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true })
  })

  const start = async (): Promise<LocalCluster> => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'georelay-local-cluster-'))
    cluster = await LocalCluster.start({ regions: ['us-east', 'eu-west', 'ap-south'], basePort: 0, dataDir, store: 'sqlite', latency: { 'eu-west:us-east': 5, 'ap-south:us-east': 5, 'ap-south:eu-west': 5 } })
    return cluster
  }

  const url = (region: string): string => cluster?.regions.find(r => r.region === region)?.url as string

  const open = async (region: string, doc: string): Promise<WebsocketProvider> => {
    const provider = connectProvider(url(region), doc)
    providers.push(provider)
    await waitSynced(provider)
    return provider
  }

  it('restarts a stopped region on the same URL with its data, and it catches up on what it missed', async () => {
    const c = await start()
    const before = url('eu-west')
    const writer = await open('us-east', 'lc/doc')
    writer.doc.getText('t').insert(0, 'before ')
    const eu = await open('eu-west', 'lc/doc')
    await waitForText(eu.doc, t => t === 'before ', 'eu-west to get the first edit')
    destroyProvider(providers.splice(providers.indexOf(eu), 1)[0] as WebsocketProvider)

    await c.stopRegion('eu-west')
    expect(c.isRunning('eu-west')).toBe(false)
    await expect(fetch(`${before.replace('ws:', 'http:')}/healthz`)).rejects.toThrow()
    writer.doc.getText('t').insert(7, 'during')

    const relay = await c.startRegion('eu-west')
    expect(c.isRunning('eu-west')).toBe(true)
    expect(relay.url).toBe(before)
    expect(c.regions.find(r => r.region === 'eu-west')?.relay).toBe(relay)
    const back = await open('eu-west', 'lc/doc')
    await waitForText(back.doc, t => t === 'before during', 'the restarted eu-west to hold its data and catch up')
    expect(() => c.isRunning('nowhere')).toThrow(/no region "nowhere"/)
  })

  it('reports cut links and delivers what a cut held once it heals', async () => {
    const c = await start()
    expect(c.links()).toEqual([
      { a: 'us-east', b: 'eu-west', delayMs: 5, cut: false },
      { a: 'us-east', b: 'ap-south', delayMs: 5, cut: false },
      { a: 'eu-west', b: 'ap-south', delayMs: 5, cut: false },
    ])
    // ap-south cut off from both: nothing can route around.
    c.cut('ap-south', 'us-east')
    c.cut('ap-south', 'eu-west')
    expect(c.links().filter(l => l.cut).map(l => `${l.a}-${l.b}`)).toEqual(['us-east-ap-south', 'eu-west-ap-south'])
    const ap = await open('ap-south', 'lc/cut')
    const us = await open('us-east', 'lc/cut')
    ap.doc.getText('t').insert(0, 'from behind the cut')
    c.heal('ap-south', 'us-east')
    c.heal('ap-south', 'eu-west')
    expect(c.links().some(l => l.cut)).toBe(false)
    await waitForText(us.doc, t => t === 'from behind the cut', 'the edit held by the cut to arrive after the heal')
  })
})
