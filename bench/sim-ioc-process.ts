/**
 * The simulated IOC in a child process for benchmarks (its CPU is then its own, as a real IOC's is), and the /proc
 * readings the benchmarks take of it: CPU seconds and resident memory. Shared by bench/ca.ts and bench/flyscan.ts.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Bound on `tst-fly sim-ioc` printing its JSON line (ports), and on it exiting after SIGTERM before SIGKILL. */
const IOC_START_TIMEOUT_MS = 30_000
const IOC_STOP_TIMEOUT_MS = 5_000

export interface IocProcess {
  readonly udpPort: number
  readonly pid: number
  /** How the process ended and the end of its stderr, or undefined while it runs. */
  status: () => string | undefined
  /** The end of its stderr (the CA server logs what deserves attention there). */
  stderr: () => string
  close: () => Promise<void>
}

/** IOC processes running, for a benchmark's signal handler (a killed benchmark must not leave its IOC behind). */
export const runningIocs = new Set<ChildProcess>()

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  child.kill('SIGTERM')
  const timer = setTimeout(() => { child.kill('SIGKILL') }, IOC_STOP_TIMEOUT_MS)
  await exited
  clearTimeout(timer)
}

/** `tst-fly sim-ioc --config <file> --port 0 --json` in a child process; resolves once it has printed its ports. */
export async function startIoc (configFile: string, label: string): Promise<IocProcess> {
  const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js')
  const child = spawn(process.execPath, [main, 'sim-ioc', '--config', configFile, '--port', '0', '--json', '--quiet'],
    { stdio: ['ignore', 'pipe', 'pipe'] })
  runningIocs.add(child)
  child.once('exit', () => runningIocs.delete(child))
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (text: string) => { stderr = (stderr + text).slice(-4000) })
  const close = async (): Promise<void> => { await stopChild(child) }
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => { reject(new Error(`${label}: sim-ioc printed no JSON line within ${IOC_START_TIMEOUT_MS} ms; stderr: ${stderr.trim()}`)) }, IOC_START_TIMEOUT_MS)
      child.stdout.setEncoding('utf8')
      child.stdout.on('data', (text: string) => {
        out += text
        const nl = out.indexOf('\n')
        if (nl >= 0) {
          clearTimeout(timer)
          resolve(out.slice(0, nl))
        }
      })
      child.on('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`${label}: sim-ioc exited (${String(code ?? signal)}) before it was ready; stderr: ${stderr.trim()}`))
      })
      child.on('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
    })
    const info = JSON.parse(line) as { udpPort: number }
    if (child.pid === undefined) throw new Error(`${label}: sim-ioc has no process id`)
    const status = (): string | undefined => child.exitCode === null && child.signalCode === null
      ? undefined
      : `sim-ioc exited (${String(child.exitCode ?? child.signalCode)}); stderr: ${stderr.trim()}`
    return { udpPort: info.udpPort, pid: child.pid, status, stderr: () => stderr.trim(), close }
  } catch (err) {
    await close()
    throw err
  }
}

let clockTicks: number | undefined
/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat; undefined where there is no /proc. */
export function processCpuS (pid: number): number | undefined {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / clockTicks
}

/** Resident memory of a process in MB (10^6 B), from /proc/<pid>/status; undefined where there is no /proc. */
export function processRssMB (pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? undefined : Number(m[1]) * 1024 / 1e6
  } catch {
    return undefined
  }
}
