/**
 * CPU time and memory of another process from /proc (Linux), so that every contender is
 * measured the same way whatever it is made of, without its cooperation.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'

export interface ProcSample {
  /** User + system CPU time so far, in seconds. */
  cpuSeconds: number
  /** Resident set size now, bytes. */
  rssBytes: number
  /** Peak resident set size so far (VmHWM), bytes. */
  peakRssBytes: number
}

let ticksPerSecond: number | undefined
const clockTicks = (): number => {
  if (ticksPerSecond === undefined) {
    try { ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { ticksPerSecond = 100 }
  }
  return ticksPerSecond
}

const statusKb = (status: string, field: string): number => {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)
  return match === null ? 0 : Number(match[1]) * 1024
}

export const sampleProcess = (pid: number): ProcSample => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  return { cpuSeconds: (utime + stime) / clockTicks(), rssBytes: statusKb(status, 'VmRSS'), peakRssBytes: statusKb(status, 'VmHWM') }
}

/** CPU seconds this process (the load generator) used so far. */
export const ownCpuSeconds = (): number => {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1e6
}
