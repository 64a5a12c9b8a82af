/**
 * bench replay: end-to-end MB/s of a synthetic PandA stream (≥ 200 MB, FRAMED SCALED, TST XAS-like rows) from a
 * loopback data-port server through the real pipeline: socket → panda-capture worker → PandA ring → hdf5-writer
 * worker → HDF5 file. The limit, in the same run: a raw file write of the same bytes into the same directory.
 * Target: ≥ 300 MB/s end to end (five times a PandABox's ~60 MB/s link), sustained: the PandA ring never pauses the
 * socket, so a rate the writer cannot follow ends in FLY_ERR_PANDA_RING_FULL. The benchmark first replays at full
 * speed; if that overruns, it searches for the highest paced rate that does not, and reports that rate's figures.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync, fsyncSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaults } from '../config/index.js'
import { ErrorCode } from '../src/errors.js'
import type { LatencySummary } from '../src/metrics/index.js'
import { PandaPipeline } from '../src/pipeline/index.js'
import { PandaReplayServer, rowBytesOf, syntheticStreamBytes, XAS_FIELDS } from '../src/sim/index.js'
import { measure, mbps, median, target, type Benchmark, type BenchResult, type Measurement } from './harness.js'

const FULL_MB = 256
const QUICK_MB = 4

/** The latency summaries of the last pipeline run that completed (each run merges its own workers' histograms). */
let lastLatency: Readonly<Record<string, LatencySummary>> = {}

interface RunOutcome {
  /** False when the PandA ring overran (the pipeline could not keep up with the offered rate). */
  readonly ok: boolean
  /** Bytes sent / time from the first byte sent to the last row on disk (or to the overrun). */
  readonly mbps: number
}

/**
 * One replay of the whole stream, at full speed (rateMBps undefined) or paced. The stream is generated before the
 * clock starts: the server only writes it to the socket, as a PandA would.
 */
async function runPipeline (dir: string, stream: Uint8Array, rows: number, rateMBps: number | undefined): Promise<RunOutcome> {
  const server = await PandaReplayServer.start({ source: stream, rateBytesPerSec: rateMBps === undefined ? undefined : rateMBps * 1e6 })
  try {
    const pipeline = await PandaPipeline.start({
      host: server.host, port: server.port, options: { format: 'FRAMED', process: 'SCALED', xml: true }, outDir: dir, fileStem: 'bench'
    })
    const result = await pipeline.result()
    const doneNs = Number(process.hrtime.bigint())
    const conn = server.connections[0]
    if (conn === undefined) throw new Error('the replay server saw no connection')
    for (const f of result.files) rmSync(f, { force: true })
    const mbs = mbps(conn.bytesSent, doneNs - conn.startedNs)
    if (result.errors.some((e) => e.code === ErrorCode.PANDA_RING_FULL)) return { ok: false, mbps: mbs }
    const failure = result.errors[0]
    if (failure !== undefined) throw failure
    const acq = result.acquisitions[0]
    if (acq?.rows !== rows) throw new Error(`replay wrote ${acq?.rows ?? 0} rows, expected ${rows}`)
    lastLatency = result.latency
    return { ok: true, mbps: mbs }
  } finally {
    await server.close()
  }
}

/**
 * The highest offered rate the pipeline sustains without overrun, `runs` times in a row: full speed first, then
 * paced rates from 600 MB/s down by 1.25x. Every attempt is listed in `tried`. Bounded: at most 8 rates.
 */
async function sustainedRate (dir: string, stream: Uint8Array, rows: number, runs: number, tried: string[]): Promise<{ values: number[], rate: number | undefined }> {
  const rates: Array<number | undefined> = [undefined]
  for (let r = 600; rates.length < 8; r /= 1.25) rates.push(Math.round(r))
  for (const rate of rates) {
    const values: number[] = []
    let overran = false
    for (let i = 0; i < runs && !overran; i++) {
      const out = await runPipeline(dir, stream, rows, rate)
      tried.push(`${rate ?? 'full'}:${out.ok ? 'ok' : 'overrun'}@${out.mbps.toFixed(0)}`)
      if (out.ok) values.push(out.mbps)
      else overran = true
    }
    if (!overran) return { values, rate }
  }
  return { values: [], rate: undefined }
}

function rawWrite (dir: string, stream: Uint8Array): { bytes: number, ns: number } {
  const file = join(dir, 'raw.bin')
  const fd = openSync(file, 'w')
  const t0 = process.hrtime.bigint()
  let bytes = 0
  try {
    const piece = 1 << 20
    for (let off = 0; off < stream.length; off += piece) bytes += writeSync(fd, stream.subarray(off, off + piece))
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  const ns = Number(process.hrtime.bigint() - t0)
  rmSync(file, { force: true })
  return { bytes, ns }
}

export const bench: Benchmark = {
  name: 'replay',
  description: 'end to end: loopback data port → capture worker → PandA ring → writer worker → HDF5, against a raw file write',
  async run ({ quick }): Promise<BenchResult> {
    const rowBytes = rowBytesOf(XAS_FIELDS)
    const rows = Math.floor(((quick ? QUICK_MB : FULL_MB) * 1e6) / rowBytes)
    const stream = syntheticStreamBytes({ rows })
    const runs = quick ? 1 : 3
    const dir = mkdtempSync(join(tmpdir(), 'tst-fly-bench-replay-'))
    try {
      const tried: string[] = []
      const found = await sustainedRate(dir, stream, rows, runs, tried)
      const measurements: Measurement[] = []
      if (found.values.length > 0) {
        const v = found.values
        measurements.push({ subject: 'replay sustained, no overrun', role: 'ours', metric: 'MB/s', unit: 'MB/s', median: median(v), min: Math.min(...v), max: Math.max(...v), runs: v.length })
      }
      measurements.push(await measure('raw file write (write + fsync)', 'limit', 'MB/s', 'MB/s', runs, () => {
        const r = rawWrite(dir, stream)
        return mbps(r.bytes, r.ns)
      }, quick ? 0 : 1))
      const ours = measurements.find((m) => m.subject === 'replay sustained, no overrun')
      const raw = measurements.find((m) => m.role === 'limit') as Measurement
      if (ours !== undefined) {
        measurements.push({ subject: 'sustained / raw write', role: 'ours', metric: 'ratio', unit: 'x', median: ours.median / raw.median, min: ours.min / raw.max, max: ours.max / raw.min, runs })
      }
      return {
        name: 'replay',
        description: this.description,
        workload: {
          streamMB: +(stream.length / 1e6).toFixed(1),
          rows,
          rowBytes,
          fields: XAS_FIELDS.length,
          format: 'XML FRAMED SCALED',
          frameBytes: 65536,
          blockBytes: defaults.hdf5.blockBytes,
          ringMB: defaults.ring.pandaBytes / 2 ** 20,
          offeredRateMBps: found.rate ?? (found.values.length > 0 ? 'full' : 'none sustained'),
          search: tried.join(' ')
        },
        measurements,
        latency: lastLatency,
        targets: [target(measurements, 'replay sustained, no overrun', 'MB/s', '>=', 300, 'MB/s')]
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
