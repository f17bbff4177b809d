/** What the results were measured on, for the report's header. */
import fs from 'node:fs'
import os from 'node:os'

export interface MachineInfo {
  nproc: number
  cpuModel: string
  node: string
  platform: string
  totalMemoryGb: number
  /** 1-minute load average when the run started: above nproc, others were using the machine. */
  loadAverage: number
}

export const machineInfo = (): MachineInfo => {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown'
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))
    if (match !== null) cpuModel = (match[1] as string).trim()
  } catch { /* not Linux: os.cpus() said what it could */ }
  return {
    nproc: os.availableParallelism(),
    cpuModel,
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    totalMemoryGb: Math.round(os.totalmem() / 2 ** 30),
    loadAverage: Number((os.loadavg()[0] ?? 0).toFixed(2)),
  }
}
