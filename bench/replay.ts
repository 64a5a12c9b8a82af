/**
 * bench replay: end-to-end MB/s of a synthetic PandA stream (≥ 200 MB, FRAMED SCALED, TST XAS-like rows) from a
 * loopback data-port server through the real pipeline: socket → panda-capture worker → PandA ring → hdf5-writer
 * worker → HDF5 file. The limit, in the same run: a raw file write of the same bytes into the same directory.
 * Target: ≥ 300 MB/s end to end (five times a PandABox's ~60 MB/s link).
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync, fsyncSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { LatencySummary } from '../src/metrics/index.js'
import { PandaPipeline } from '../src/pipeline/index.js'
import { PandaReplayServer, rowBytesOf, syntheticStreamBytes, XAS_FIELDS } from '../src/sim/index.js'
import { measure, mbps, target, type Benchmark, type BenchResult, type Measurement } from './harness.js'

const FULL_MB = 256
const QUICK_MB = 4

/** The latency summaries of the last pipeline run (each run merges its own workers' histograms). */
let lastLatency: Readonly<Record<string, LatencySummary>> = {}

async function runPipeline (dir: string, stream: Uint8Array, rows: number): Promise<{ bytes: number, ns: number }> {
  // The stream is generated before the clock starts: the server only writes it to the socket, as a PandA would.
  const server = await PandaReplayServer.start({ source: stream })
  try {
    const pipeline = await PandaPipeline.start({
      host: server.host, port: server.port, options: { format: 'FRAMED', process: 'SCALED', xml: true }, outDir: dir, fileStem: 'bench'
    })
    const result = await pipeline.result()
    const doneNs = Number(process.hrtime.bigint())
    const conn = server.connections[0]
    if (conn === undefined) throw new Error('the replay server saw no connection')
    const failure = result.errors[0]
    if (failure !== undefined) throw failure
    const acq = result.acquisitions[0]
    if (acq?.rows !== rows) throw new Error(`replay wrote ${acq?.rows ?? 0} rows, expected ${rows}`)
    lastLatency = result.latency
    rmSync(acq.file, { force: true })
    return { bytes: conn.bytesSent, ns: doneNs - conn.startedNs }
  } finally {
    await server.close()
  }
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
    const total = stream.length
    const runs = quick ? 1 : 3
    const dir = mkdtempSync(join(tmpdir(), 'tst-fly-bench-replay-'))
    try {
      const measurements: Measurement[] = []
      measurements.push(await measure('tst-fly replay pipeline', 'ours', 'MB/s', 'MB/s', runs, async () => {
        const r = await runPipeline(dir, stream, rows)
        return mbps(r.bytes, r.ns)
      }, quick ? 0 : 1))
      measurements.push(await measure('tst-fly replay pipeline', 'ours', 'rows/s', 'Mrows/s', runs, async () => {
        const r = await runPipeline(dir, stream, rows)
        return rows / r.ns * 1000
      }, 0))
      measurements.push(await measure('raw file write (write + fsync)', 'limit', 'MB/s', 'MB/s', runs, () => {
        const r = rawWrite(dir, stream)
        return mbps(r.bytes, r.ns)
      }, quick ? 0 : 1))
      const ours = measurements[0] as Measurement
      const raw = measurements[2] as Measurement
      measurements.push({ subject: 'tst-fly / raw write', role: 'ours', metric: 'ratio', unit: 'x', median: ours.median / raw.median, min: ours.min / raw.max, max: ours.max / raw.min, runs })
      return {
        name: 'replay',
        description: this.description,
        workload: { streamMB: +(total / 1e6).toFixed(1), rows, rowBytes, fields: XAS_FIELDS.length, format: 'XML FRAMED SCALED', frameBytes: 65536, blockRows: 10000 },
        measurements,
        latency: lastLatency,
        targets: [target(measurements, 'tst-fly replay pipeline', 'MB/s', '>=', 300, 'MB/s')]
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
