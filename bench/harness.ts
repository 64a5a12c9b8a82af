/**
 * The fixed shape every benchmark reports in. A benchmark returns a BenchResult: measurements (each one subject,
 * one metric, the median of several runs), latency summaries (HDR percentiles), and targets checked against the
 * measurements. `printReport` renders them the same way for every benchmark; `run.ts` writes the JSON.
 */
import os from 'node:os'
import type { LatencySummary } from '../src/metrics/index.js'
import { formatSummaries } from '../src/metrics/index.js'

/** ours: tst-fly code; peer: the comparison the issue names; limit: what the machine can do at best (memcpy, raw write). */
export type Role = 'ours' | 'peer' | 'limit'

export interface Measurement {
  readonly subject: string
  readonly role: Role
  readonly metric: string
  readonly unit: string
  readonly median: number
  readonly min: number
  readonly max: number
  readonly runs: number
}

export interface Target {
  readonly subject: string
  readonly metric: string
  readonly op: '>=' | '<='
  readonly value: number
  readonly unit: string
  readonly actual: number | undefined
  readonly met: boolean
}

export interface BenchResult {
  readonly name: string
  readonly description: string
  readonly workload: Readonly<Record<string, string | number>>
  readonly measurements: readonly Measurement[]
  readonly latency: Readonly<Record<string, LatencySummary>>
  readonly targets: readonly Target[]
}

export interface BenchOptions {
  /** Smaller workloads and fewer runs: used by the smoke test, which checks shape, never speed. */
  readonly quick: boolean
}

export interface Benchmark {
  readonly name: string
  readonly description: string
  run (options: BenchOptions): Promise<BenchResult>
}

export function median (values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid] as number : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

/** Runs `fn` `runs` times (after `warmup` unrecorded runs); each call returns the metric's value for that run. */
export async function measure (
  subject: string, role: Role, metric: string, unit: string, runs: number,
  fn: () => number | Promise<number>, warmup = 1
): Promise<Measurement> {
  for (let i = 0; i < warmup; i++) await fn()
  const values: number[] = []
  for (let i = 0; i < runs; i++) values.push(await fn())
  return { subject, role, metric, unit, median: median(values), min: Math.min(...values), max: Math.max(...values), runs }
}

/** Builds a target from the measurement with that subject and metric. */
export function target (
  measurements: readonly Measurement[], subject: string, metric: string, op: '>=' | '<=', value: number, unit: string
): Target {
  const m = measurements.find((x) => x.subject === subject && x.metric === metric)
  const actual = m?.median
  const met = actual !== undefined && (op === '>=' ? actual >= value : actual <= value)
  return { subject, metric, op, value, unit, actual, met }
}

/** Bytes per second as GB/s (10^9). */
export function gbps (bytes: number, ns: number): number {
  return bytes / ns
}

/** Bytes per second as MB/s (10^6). */
export function mbps (bytes: number, ns: number): number {
  return (bytes / ns) * 1000
}

function num (v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-'
  const a = Math.abs(v)
  if (a >= 1000) return v.toFixed(0)
  if (a >= 100) return v.toFixed(1)
  if (a >= 1) return v.toFixed(2)
  return v.toPrecision(3)
}

export function formatReport (result: BenchResult): string {
  const lines: string[] = []
  lines.push(`== bench ${result.name}: ${result.description}`)
  lines.push(`   workload: ${Object.entries(result.workload).map(([k, v]) => `${k}=${v}`).join(' ')}`)
  const sw = Math.max(28, ...result.measurements.map((m) => m.subject.length))
  const mw = Math.max(14, ...result.measurements.map((m) => m.metric.length))
  lines.push(`   ${'subject'.padEnd(sw)} ${'role'.padEnd(5)} ${'metric'.padEnd(mw)} ${'median'.padStart(10)} ${'min'.padStart(10)} ${'max'.padStart(10)} unit   runs`)
  for (const m of result.measurements) {
    lines.push(`   ${m.subject.padEnd(sw)} ${m.role.padEnd(5)} ${m.metric.padEnd(mw)} ${num(m.median).padStart(10)} ${num(m.min).padStart(10)} ${num(m.max).padStart(10)} ${m.unit.padEnd(6)} ${m.runs}`)
  }
  if (Object.keys(result.latency).length > 0) {
    lines.push('   latency:')
    for (const l of formatSummaries(result.latency).split('\n')) lines.push(`   ${l}`)
  }
  for (const t of result.targets) {
    lines.push(`   target ${t.met ? 'MET   ' : 'MISSED'} ${t.subject} ${t.metric} ${t.op} ${t.value} ${t.unit} (actual ${num(t.actual)})`)
  }
  return lines.join('\n')
}

export function machineInfo (): Record<string, string | number> {
  const cpus = os.cpus()
  return {
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30)
  }
}
