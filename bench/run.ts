/**
 * `npm run bench -- [names...] [--quick] [--json <file>]`: runs the named benchmarks (all by default), prints each
 * in the fixed report shape, and writes every result plus the machine's description as JSON (bench/README.md
 * lists every key). The default JSON path is bench/results/latest.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { formatReport, machineInfo, type Benchmark, type BenchResult } from './harness.js'
import { bench as ring } from './ring.js'
import { bench as pandaParse } from './panda-parse.js'
import { bench as replay } from './replay.js'
import { bench as engine } from './engine.js'
import { bench as ca } from './ca.js'
import { bench as pandaLive } from './panda-live.js'
import { bench as analysis } from './analysis.js'
import { bench as flyscan } from './flyscan.js'

export const BENCHMARKS: readonly Benchmark[] = [ring, pandaParse, replay, engine, ca, pandaLive, analysis, flyscan]

export interface BenchReport {
  readonly schema: 'tst-fly-bench/1'
  readonly date: string
  readonly machine: Record<string, string | number>
  readonly quick: boolean
  readonly results: readonly BenchResult[]
}

export async function runBenchmarks (names: readonly string[], quick: boolean, log: (s: string) => void): Promise<BenchReport> {
  const unknown = names.filter((n) => !BENCHMARKS.some((b) => b.name === n))
  if (unknown.length > 0) {
    throw new Error(`unknown benchmark(s): ${unknown.join(', ')} (known: ${BENCHMARKS.map((b) => b.name).join(', ')})`)
  }
  const selected = names.length === 0 ? BENCHMARKS : BENCHMARKS.filter((b) => names.includes(b.name))
  const results: BenchResult[] = []
  for (const b of selected) {
    const result = await b.run({ quick })
    results.push(result)
    log(formatReport(result) + '\n')
  }
  return { schema: 'tst-fly-bench/1', date: new Date().toISOString(), machine: machineInfo(), quick, results }
}

async function main (): Promise<void> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    options: { json: { type: 'string' }, quick: { type: 'boolean' } }
  })
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
  const jsonPath = values.json ?? join(root, 'bench', 'results', 'latest.json')
  const report = await runBenchmarks(positionals, values.quick === true, (s) => process.stdout.write(s + '\n'))
  mkdirSync(dirname(jsonPath), { recursive: true })
  writeFileSync(jsonPath, JSON.stringify(report, null, 2) + '\n')
  const missed = report.results.flatMap((r) => r.targets.filter((t) => !t.met).map((t) => `${r.name}: ${t.subject} ${t.metric}`))
  process.stdout.write(`wrote ${jsonPath}\n`)
  if (missed.length > 0) process.stdout.write(`targets missed: ${missed.join('; ')}\n`)
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  })
}
