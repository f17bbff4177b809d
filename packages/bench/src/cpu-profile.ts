/**
 * The hot spots of a V8 `.cpuprofile` (what `node --cpu-prof` writes): self time per function,
 * and the same summed per package or file, so a profile can be read without a browser.
 */
import fs from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  hitCount?: number
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples?: number[]
  timeDeltas?: number[]
}

export interface HotSpot {
  name: string
  where: string
  selfMs: number
  share: number
}

export interface ProfileSummary {
  totalMs: number
  functions: HotSpot[]
  /** Self time per package (node_modules/<name>), per georelay package, or node internals. */
  modules: HotSpot[]
}

const moduleOf = (url: string): string => {
  if (url === '') return '(native / gc / idle)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return pkg[1] as string
  const ours = /packages\/([^/]+)\/dist\/(.+)$/.exec(url)
  if (ours !== null) return `@georelay/${ours[1] as string} ${ours[2] as string}`
  if (url.startsWith('node:')) return url
  return url.replace(/^file:\/\//, '')
}

export const summarizeProfile = (file: string, top = 20): ProfileSummary => {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map(n => [n.id, n]))
  const selfUs = new Map<number, number>()
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  // Each sample's time is the gap to the next one.
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i] as number
    selfUs.set(id, (selfUs.get(id) ?? 0) + (deltas[i + 1] ?? 0))
  }
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0)
  const functions = new Map<string, HotSpot>()
  const modules = new Map<string, HotSpot>()
  for (const [id, us] of selfUs) {
    const node = byId.get(id)
    if (node === undefined) continue
    const { functionName, url, lineNumber } = node.callFrame
    if (functionName === '(idle)' || (functionName === '(program)' && url === '')) {
      const key = functionName
      const spot = functions.get(key) ?? { name: key, where: '', selfMs: 0, share: 0 }
      spot.selfMs += us / 1000
      functions.set(key, spot)
      continue
    }
    const where = `${moduleOf(url)}:${lineNumber + 1}`
    const key = `${functionName || '(anonymous)'} ${where}`
    const spot = functions.get(key) ?? { name: functionName || '(anonymous)', where, selfMs: 0, share: 0 }
    spot.selfMs += us / 1000
    functions.set(key, spot)
    const mod = moduleOf(url)
    const modSpot = modules.get(mod) ?? { name: mod, where: '', selfMs: 0, share: 0 }
    modSpot.selfMs += us / 1000
    modules.set(mod, modSpot)
  }
  const busyMs = (totalUs / 1000) - (functions.get('(idle)')?.selfMs ?? 0)
  const ranked = (spots: Iterable<HotSpot>): HotSpot[] => [...spots]
    .filter(s => s.name !== '(idle)')
    .map(s => ({ ...s, share: s.selfMs / busyMs }))
    .sort((a, b) => b.selfMs - a.selfMs)
    .slice(0, top)
  return { totalMs: busyMs, functions: ranked(functions.values()), modules: ranked(modules.values()) }
}

export const formatProfileSummary = (summary: ProfileSummary): string => {
  const line = (s: HotSpot): string => `  ${(s.share * 100).toFixed(1).padStart(5)}%  ${s.selfMs.toFixed(0).padStart(6)} ms  ${s.name}${s.where === '' ? '' : `  ${s.where}`}`
  return [`busy ${summary.totalMs.toFixed(0)} ms; self time by module:`, ...summary.modules.map(line), 'by function:', ...summary.functions.map(line)].join('\n')
}
