/**
 * panda-parse: PandaDataParser throughput on FRAMED RAW and FRAMED SCALED data-port streams generated in memory
 * (≥ 200 MB each, ~64 KB `BIN ` blocks like the box sends, pushed in 64 KB chunks like socket reads), against a
 * memcpy of the same stream in the same chunks (the limit). Target: FRAMED RAW ≥ 2 GB/s.
 *
 *   npx tsc -p . && node build/bench/panda-parse.js [--quick]
 *
 * The reference Python client's ~0.6 GB/s is an external figure (docs/panda-data-port.md), not measured here.
 */
import { fileURLToPath } from 'node:url'
import type { Benchmark, BenchResult, Measurement } from './harness.js'
import { formatReport, machineInfo, mbps, measure, target } from './harness.js'
import { PandaDataParser } from '../src/parsers/panda-data/index.js'

const BLOCK = 65536
const CHUNK = 65536
const enc = new TextEncoder()

interface F { name: string, type: 'uint32' | 'int32' | 'int64' | 'double', capture: string }
const SIZE = { uint32: 4, int32: 4, int64: 8, double: 8 }

// The XAS capture at TST (DESIGN.md §6): bits, trigger time, gate duration, the angle and two ADC means.
const RAW_FIELDS: F[] = [
  { name: 'PCAP.BITS1', type: 'uint32', capture: 'Value' },
  { name: 'PCAP.TS_TRIG', type: 'int64', capture: 'Value' },
  { name: 'PCAP.GATE_DURATION', type: 'int64', capture: 'Value' },
  { name: 'CALC1.OUT', type: 'int64', capture: 'Mean' },
  { name: 'FMC_IN.VAL1', type: 'int64', capture: 'Mean' },
  { name: 'FMC_IN.VAL2', type: 'int64', capture: 'Mean' }
]
const SCALED_FIELDS: F[] = RAW_FIELDS.map((f) => f.type === 'uint32' ? f : { ...f, type: 'double' })

/** OK, an XML header, `BIN ` blocks of BLOCK payload bytes holding `rows` rows (split across blocks), END. */
function makeStream (fields: readonly F[], process: string, targetBytes: number): { bytes: Uint8Array, rows: number, sampleBytes: number } {
  const sb = fields.reduce((n, f) => n + SIZE[f.type], 0)
  const rows = Math.ceil(targetBytes / sb)
  const lines = ['OK', '<header>', `<data arm_time="2025-06-02T14:03:07.123456789Z" missed="0" process="${process}" format="Framed" sample_bytes="${sb}" />`, '<fields>']
  for (const f of fields) {
    lines.push(f.type === 'uint32'
      ? `<field name="${f.name}" type="uint32" capture="${f.capture}" />`
      : `<field name="${f.name}" type="${f.type}" capture="${f.capture}" scale="1" offset="0" units="" />`)
  }
  lines.push('</fields>', '</header>', '', '')
  const head = enc.encode(lines.join('\n'))
  const payloadBytes = rows * sb
  const blocks = Math.ceil(payloadBytes / BLOCK)
  const tail = enc.encode(`END ${rows} Ok\n`)
  const out = new Uint8Array(head.length + payloadBytes + blocks * 8 + tail.length)
  out.set(head)
  // Row bytes: a pseudo-random pattern (the parser never looks at row contents).
  const pattern = new Uint8Array(1 << 20)
  let x = 12345
  for (let k = 0; k < pattern.length; k++) { x = (x * 1103515245 + 12345) >>> 0; pattern[k] = x >>> 24 }
  const view = new DataView(out.buffer)
  let o = head.length
  let left = payloadBytes
  let pat = 0
  while (left > 0) {
    const n = Math.min(BLOCK, left)
    out.set(enc.encode('BIN '), o)
    view.setUint32(o + 4, n + 8, true)
    o += 8
    for (let done = 0; done < n;) {
      const m = Math.min(n - done, pattern.length - pat)
      out.set(pattern.subarray(pat, pat + m), o + done)
      done += m
      pat = (pat + m) % pattern.length
    }
    o += n
    left -= n
  }
  out.set(tail, o)
  return { bytes: out, rows, sampleBytes: sb }
}

function chunksOf (bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = []
  for (let o = 0; o < bytes.length; o += CHUNK) out.push(bytes.subarray(o, o + CHUNK))
  return out
}

/** Parses the stream; returns ns. With `copyOut`, every frame's bytes are copied into a 4 MiB ring (the worker's job). */
function parseOnce (chunks: readonly Uint8Array[], expectRows: number, copyOut: boolean): number {
  const ring = copyOut ? new Uint8Array(4 << 20) : undefined
  let w = 0
  let rows = 0
  const t0 = process.hrtime.bigint()
  const p = new PandaDataParser({ format: 'FRAMED', process: 'RAW', xml: true })
  for (const c of chunks) {
    const recs = p.push(c)
    for (let k = 0; k < recs.length; k++) {
      const r = recs[k]
      if (r?.kind !== 'frame') continue
      rows += r.frame.rows
      if (ring !== undefined) {
        const b = r.frame.bytes
        if (w + b.length > ring.length) w = 0
        ring.set(b, w)
        w += b.length
      }
    }
  }
  p.close()
  const ns = Number(process.hrtime.bigint() - t0)
  if (rows !== expectRows) throw new Error(`parsed ${rows} rows, expected ${expectRows}`)
  return ns
}

function memcpyOnce (chunks: readonly Uint8Array[], dest: Uint8Array): number {
  const t0 = process.hrtime.bigint()
  let o = 0
  for (const c of chunks) { dest.set(c, o); o += c.length }
  return Number(process.hrtime.bigint() - t0)
}

export const bench: Benchmark = {
  name: 'panda-parse',
  description: 'PandA data-port parser throughput, FRAMED RAW and SCALED, 64 KB blocks in 64 KB reads, vs memcpy',
  async run (options): Promise<BenchResult> {
    const targetBytes = options.quick ? 2e6 : 210e6
    const runs = options.quick ? 2 : 7
    const measurements: Measurement[] = []
    const workload: Record<string, string | number> = { ...machineInfo(), blockBytes: BLOCK, chunkBytes: CHUNK, runs }

    for (const [label, fields, process] of [['FRAMED RAW', RAW_FIELDS, 'Raw'], ['FRAMED SCALED', SCALED_FIELDS, 'Scaled']] as const) {
      const s = makeStream(fields, process, targetBytes)
      const chunks = chunksOf(s.bytes)
      workload[`${label} stream MB`] = Math.round(s.bytes.length / 1e5) / 10
      workload[`${label} rows`] = s.rows
      workload[`${label} sample_bytes`] = s.sampleBytes
      const times: number[] = []
      measurements.push(await measure(`parse ${label}`, 'ours', 'throughput', 'MB/s', runs, () => {
        const ns = parseOnce(chunks, s.rows, false)
        times.push(ns)
        return mbps(s.bytes.length, ns)
      }))
      // Same runs, as rows/s (the warm-up run is times[0]).
      const rowRates = times.slice(1).map((ns) => s.rows / ns * 1e9)
      measurements.push({
        subject: `parse ${label}`,
        role: 'ours',
        metric: 'rows',
        unit: 'rows/s',
        median: [...rowRates].sort((a, b) => a - b)[rowRates.length >> 1] as number,
        min: Math.min(...rowRates),
        max: Math.max(...rowRates),
        runs: rowRates.length
      })
      measurements.push(await measure(`parse ${label} + copy out`, 'ours', 'throughput', 'MB/s', runs,
        () => mbps(s.bytes.length, parseOnce(chunks, s.rows, true))))
      if (label === 'FRAMED RAW') {
        const dest = new Uint8Array(s.bytes.length)
        measurements.push(await measure('memcpy same stream, same reads', 'limit', 'throughput', 'MB/s', runs,
          () => mbps(s.bytes.length, memcpyOnce(chunks, dest))))
      }
    }
    return {
      name: bench.name,
      description: bench.description,
      workload,
      measurements,
      latency: {},
      targets: [target(measurements, 'parse FRAMED RAW', 'throughput', '>=', 2000, 'MB/s')]
    }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await bench.run({ quick: process.argv.includes('--quick') })
  console.log(formatReport(result))
}
