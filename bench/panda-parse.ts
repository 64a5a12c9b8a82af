/**
 * panda-parse: PandaDataParser throughput on FRAMED RAW and FRAMED SCALED data-port streams generated in memory
 * (≥ 200 MB each, `BIN ` blocks of whole rows up to 64 KB like the box sends, pushed in 64 KB chunks like socket
 * reads, so rows and block headers still straddle reads), against a memcpy of the same stream in the same chunks
 * (the limit). Target: FRAMED RAW ≥ 2 GB/s.
 *
 *   npx tsc -p . && [PANDABLOCKS_CLIENT_SRC=<PandABlocks-client checkout>/src] node build/bench/panda-parse.js [--quick]
 *
 * Peer: with PANDABLOCKS_CLIENT_SRC set, the reference Python client (PandABlocks-client's sans-IO
 * `DataConnection`) parses the same streams, written to a temp file, in the same 64 KB reads, under
 * /usr/bin/python3 (needs numpy). Its code is not part of tst-fly: only the driver script below is ours. Unset, the
 * peer is skipped and the report says so.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Benchmark, BenchResult, Measurement } from './harness.js'
import { formatReport, machineInfo, mbps, measure, median, target } from './harness.js'
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

/**
 * OK, an XML header, `BIN ` blocks of whole rows (as many as fit in BLOCK payload bytes) holding `rows` rows, END.
 * Whole rows per block is what the server sends (PandABlocks-server data_server.c `passthrough_capture_block` /
 * `process_capture_block` keep the partial sample for the next block), and the reference client relies on it: its
 * `DataConnection` turns each block into a numpy array and fails ("buffer size must be a multiple of element size")
 * on a block that ends mid-row.
 */
function makeStream (fields: readonly F[], process: string, targetBytes: number): { bytes: Uint8Array, rows: number, sampleBytes: number, blockPayload: number } {
  const sb = fields.reduce((n, f) => n + SIZE[f.type], 0)
  const rows = Math.ceil(targetBytes / sb)
  const blockPayload = Math.floor(BLOCK / sb) * sb
  const lines = ['OK', '<header>', `<data arm_time="2025-06-02T14:03:07.123456789Z" missed="0" process="${process}" format="Framed" sample_bytes="${sb}" />`, '<fields>']
  for (const f of fields) {
    lines.push(f.type === 'uint32'
      ? `<field name="${f.name}" type="uint32" capture="${f.capture}" />`
      : `<field name="${f.name}" type="${f.type}" capture="${f.capture}" scale="1" offset="0" units="" />`)
  }
  lines.push('</fields>', '</header>', '', '')
  const head = enc.encode(lines.join('\n'))
  const payloadBytes = rows * sb
  const blocks = Math.ceil(payloadBytes / blockPayload)
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
    const n = Math.min(blockPayload, left)
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
  return { bytes: out, rows, sampleBytes: sb, blockPayload }
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

const PEER_ENV = 'PANDABLOCKS_CLIENT_SRC'
const PYTHON = '/usr/bin/python3'
const PEER_SUBJECT = 'PandABlocks-client DataConnection (Python)'

/**
 * Our driver for the reference client (argv: src dir, stream file, raw|scaled, runs, chunk bytes). Reads the file,
 * slices it into CHUNK-byte memoryviews (views, as our bench pushes subarrays), then per run: a fresh
 * DataConnection, connect(scaled) (the stream starts with the server's OK line, which the client expects after
 * connect), every chunk through receive_bytes() with the client's default flush_every_frame=True, counting the rows
 * of every FrameData (a numpy structured array over bytes the client has already copied out of its buffer). Only
 * that loop is timed. One unrecorded warm-up run, like measure().
 *
 * A source checkout has no pandablocks/_version.py (setuptools_scm writes it at install time) and
 * pandablocks/__init__.py imports it; only then, a stub module with __version__ is put in sys.modules. Nothing on
 * the data path reads it. Their code is never modified.
 */
const PEER_SCRIPT = `
import json, sys, time, types
src, path, mode, runs, chunk = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
sys.path.insert(0, src)
stub = False
try:
    import pandablocks
except ModuleNotFoundError as e:
    if e.name != 'pandablocks._version':
        raise
    for k in [k for k in sys.modules if k == 'pandablocks' or k.startswith('pandablocks.')]:
        del sys.modules[k]
    m = types.ModuleType('pandablocks._version')
    m.__version__ = '0+source-checkout'
    sys.modules['pandablocks._version'] = m
    stub = True
import numpy
import pandablocks.connections
from pandablocks.connections import DataConnection
from pandablocks.responses import EndData, FrameData

with open(path, 'rb') as f:
    data = f.read()
view = memoryview(data)
chunks = [view[o:o + chunk] for o in range(0, len(data), chunk)]
scaled = mode == 'scaled'

def once():
    conn = DataConnection()
    conn.connect(scaled)
    rows = 0
    ends = 0
    t0 = time.perf_counter()
    for c in chunks:
        for d in conn.receive_bytes(c):
            if isinstance(d, FrameData):
                rows += len(d.data)
            elif isinstance(d, EndData):
                ends += 1
    t = time.perf_counter() - t0
    if ends != 1:
        raise SystemExit('expected one EndData, got %d' % ends)
    return t, rows

once()
mbps_runs = []
rows = -1
for _ in range(runs):
    t, n = once()
    if rows >= 0 and n != rows:
        raise SystemExit('row count changed between runs')
    rows = n
    mbps_runs.append(len(data) / t / 1e6)
print(json.dumps({'mbps_runs': mbps_runs, 'rows': rows, 'stub_version': stub,
                  'module': pandablocks.connections.__file__,
                  'python': sys.version.split()[0], 'numpy': numpy.__version__}))
`

interface PeerResult {
  readonly mbpsRuns: number[]
  readonly rows: number
  readonly stubVersion: boolean
  readonly module: string
  readonly python: string
  readonly numpy: string
}

function parsePeerOutput (text: string): PeerResult {
  const v: unknown = JSON.parse(text.trim().split('\n').at(-1) ?? '')
  if (typeof v !== 'object' || v === null) throw new Error(`peer: unexpected output ${text}`)
  const o = v as Record<string, unknown>
  const runs = o['mbps_runs']
  if (!Array.isArray(runs) || runs.length === 0 || !runs.every((x): x is number => typeof x === 'number') ||
    typeof o['rows'] !== 'number' || typeof o['stub_version'] !== 'boolean' || typeof o['module'] !== 'string' ||
    typeof o['python'] !== 'string' || typeof o['numpy'] !== 'string') {
    throw new Error(`peer: unexpected output ${text}`)
  }
  return { mbpsRuns: runs, rows: o['rows'], stubVersion: o['stub_version'], module: o['module'], python: o['python'], numpy: o['numpy'] }
}

/** Writes the stream to a temp file and runs PEER_SCRIPT on it; the file is removed afterwards. */
function runPeer (src: string, bytes: Uint8Array, scaled: boolean, runs: number): PeerResult {
  const dir = mkdtempSync(join(tmpdir(), 'panda-parse-peer-'))
  try {
    const file = join(dir, scaled ? 'scaled.bin' : 'raw.bin')
    writeFileSync(file, bytes)
    // -I: isolated (no PYTHONPATH, no user site), so the checkout given is the client that runs.
    const out = execFileSync(PYTHON, ['-I', '-c', PEER_SCRIPT, src, file, scaled ? 'scaled' : 'raw', String(runs), String(CHUNK)],
      { encoding: 'utf8', maxBuffer: 1 << 20, stdio: ['ignore', 'pipe', 'inherit'] })
    return parsePeerOutput(out)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export const bench: Benchmark = {
  name: 'panda-parse',
  description: 'PandA data-port parser throughput, FRAMED RAW and SCALED, ≤ 64 KB whole-row blocks in 64 KB reads, vs memcpy' +
    ' and (if PANDABLOCKS_CLIENT_SRC is set) the reference Python client on the same bytes',
  async run (options): Promise<BenchResult> {
    const targetBytes = options.quick ? 2e6 : 210e6
    const runs = options.quick ? 2 : 7
    const measurements: Measurement[] = []
    const workload: Record<string, string | number> = { ...machineInfo(), blockBytes: BLOCK, chunkBytes: CHUNK, runs }
    const peerSrc = process.env[PEER_ENV]
    const peerOn = peerSrc !== undefined && peerSrc !== ''
    if (peerOn) {
      workload['peer'] = `${PEER_SUBJECT} from ${PEER_ENV}=${peerSrc}, ${PYTHON}; same stream bytes, same 64 KB reads, ` +
        'default flush_every_frame; its FrameData are numpy arrays over rows it has already copied out of its buffer, ' +
        "so compare it with our 'parse … + copy out' line"
    } else {
      workload['peer'] = `PandABlocks-client not available: set ${PEER_ENV}=<checkout>/src`
    }

    for (const [label, fields, process] of [['FRAMED RAW', RAW_FIELDS, 'Raw'], ['FRAMED SCALED', SCALED_FIELDS, 'Scaled']] as const) {
      const s = makeStream(fields, process, targetBytes)
      const chunks = chunksOf(s.bytes)
      workload[`${label} stream MB`] = Math.round(s.bytes.length / 1e5) / 10
      workload[`${label} rows`] = s.rows
      workload[`${label} sample_bytes`] = s.sampleBytes
      workload[`${label} block payload bytes`] = s.blockPayload
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
      if (peerOn) {
        const peer = runPeer(peerSrc, s.bytes, process === 'Scaled', runs)
        if (peer.rows !== s.rows) throw new Error(`peer parsed ${peer.rows} rows of ${label}, expected ${s.rows}`)
        workload['peer python'] = `${peer.python} numpy ${peer.numpy}`
        workload['peer module'] = peer.module
        if (peer.stubVersion) {
          workload['peer stub'] = 'pandablocks._version (absent from a source checkout) stubbed in sys.modules; data path unaffected'
        }
        measurements.push({
          subject: `${PEER_SUBJECT} ${label}`,
          role: 'peer',
          metric: 'throughput',
          unit: 'MB/s',
          median: median(peer.mbpsRuns),
          min: Math.min(...peer.mbpsRuns),
          max: Math.max(...peer.mbpsRuns),
          runs: peer.mbpsRuns.length
        })
      }
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
