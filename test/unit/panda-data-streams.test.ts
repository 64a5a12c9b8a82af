/**
 * The PandA data parser on whole recorded or generated streams: for every fixture with an expected.json, the
 * fields, rows and end must equal it for the whole stream, every two-chunk split, one byte at a time and seeded
 * random chunkings. Rows are decoded here with a DataView, independently of the project's columns.ts.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PandaDataParser, State } from '../../src/parsers/panda-data/index.js'
import type { DataRecord, FieldInfo, StartData } from '../../src/parsers/panda-data/index.js'
import { allChunkings, whole } from '../support/split.js'
import type { Chunking } from '../support/split.js'

const FIXTURES = join(process.cwd(), 'test', 'fixtures', 'panda')

interface ExpectedField {
  name: string
  type: string
  capture: string
  scale: number | null
  offset: number | null
  units: string | null
}
interface ExpectedAcq {
  fields: ExpectedField[]
  missed: number
  process: string
  format: string
  sample_bytes: number
  rows: number[][]
  end: { samples: number, reason: string, reason_text: string, rows_received?: number, dropped_bytes?: number }
}
interface Expected {
  acquisitions: ExpectedAcq[]
  closed?: boolean
  attributes?: Record<string, string>
  hw_time_offset_ns?: number
}

/** What a whole parse yields, in a shape comparable with expected.json. */
interface Acq {
  fields: ExpectedField[]
  missed: number
  process: string
  format: string
  sample_bytes: number
  rows: number[][]
  end: { samples: number, reason_text: string, rows_received: number | undefined, dropped_bytes: number | undefined } | undefined
  start: StartData
}

/** Test-local row decoder: one number per field, read with a DataView at the field's byteOffset. */
function decodeRows (fields: readonly FieldInfo[], sampleBytes: number, bytes: Uint8Array): number[][] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const rows: number[][] = []
  for (let o = 0; o < bytes.length; o += sampleBytes) {
    rows.push(fields.map((f) => {
      const at = o + f.byteOffset
      switch (f.type) {
        case 'uint32': return v.getUint32(at, true)
        case 'int32': return v.getInt32(at, true)
        case 'double': return v.getFloat64(at, true)
        case 'int64': return Number(v.getBigInt64(at, true))
        case 'int96': return Number(BigInt.asIntN(96, (BigInt(v.getInt32(at + 8, true)) << 64n) | v.getBigUint64(at, true)))
      }
      return Number.NaN
    }))
  }
  return rows
}

interface RunResult {
  acqs: Acq[]
  ready: number
  problems: string[]
  state: State
}

/**
 * Pushes each chunk, decodes every record at once, then scribbles over the chunk: a parser that kept a view of
 * a pushed chunk past push() would corrupt later rows. Then close().
 */
function run (chunking: Chunking, options = {}): RunResult {
  const parser = new PandaDataParser(options)
  const acqs: Acq[] = []
  const problems: string[] = []
  let ready = 0
  const take = (records: DataRecord[]): void => {
    for (const r of records) {
      const cur = acqs[acqs.length - 1]
      switch (r.kind) {
        case 'ready': ready++; break
        case 'start':
          acqs.push({
            fields: r.start.fields.map((f) => ({
              name: f.name, type: f.type, capture: f.capture, scale: f.scale ?? null, offset: f.offset ?? null, units: f.units ?? null
            })),
            missed: r.start.missed,
            process: r.start.process,
            format: r.start.format,
            sample_bytes: r.start.sampleBytes,
            rows: [],
            end: undefined,
            start: r.start
          })
          break
        case 'frame':
          if (cur === undefined || cur.end !== undefined) { problems.push('frame outside an acquisition'); break }
          if (r.frame.rows <= 0 || r.frame.bytes.length !== r.frame.rows * cur.sample_bytes) {
            problems.push(`frame of ${r.frame.rows} rows has ${r.frame.bytes.length} bytes`)
          }
          cur.rows.push(...decodeRows(cur.start.fields, cur.sample_bytes, r.frame.bytes))
          break
        case 'end':
          if (cur === undefined || cur.end !== undefined) { problems.push('end outside an acquisition'); break }
          cur.end = { samples: r.end.samples, reason_text: r.end.reason, rows_received: r.end.rowsReceived, dropped_bytes: r.end.droppedBytes }
          break
      }
    }
  }
  for (const c of chunking.chunks) {
    take(parser.push(c))
    ;(c as Uint8Array).fill(0xaa)
  }
  const state = parser.state
  take(parser.close())
  take(parser.close())
  return { acqs, ready, problems, state }
}

function expectedShape (e: Expected): unknown {
  return e.acquisitions.map((a) => ({
    // The reference client reports numpy dtype names: float64 is the header's "double".
    fields: a.fields.map((f) => ({ ...f, type: f.type === 'float64' ? 'double' : f.type })),
    missed: a.missed,
    process: a.process,
    format: a.format,
    sample_bytes: a.sample_bytes,
    rows: a.rows,
    end: {
      samples: a.end.samples,
      reason_text: a.end.reason_text,
      // The recordings' expected.json (from the reference client) has no received/dropped counts: a clean
      // Disarmed capture delivers every row and drops nothing.
      rows_received: a.end.rows_received ?? a.rows.length,
      dropped_bytes: a.end.dropped_bytes ?? 0
    }
  }))
}

function comparable (r: RunResult): string {
  return JSON.stringify(r.acqs.map(({ start: _start, ...rest }) => rest))
}

const STREAMS = [
  'slow_dump', 'fast_dump',
  'ascii_scaled', 'ascii_raw', 'base64_scaled', 'unframed_raw', 'framed_raw_samples', 'framed_raw_gate',
  'data_overrun', 'multi_acquisition', 'closed_mid_row'
]

for (const name of STREAMS) {
  t.test(name, async (t) => {
    const bytes = new Uint8Array(readFileSync(join(FIXTURES, `${name}.bin`)))
    const expected = JSON.parse(readFileSync(join(FIXTURES, `${name}.expected.json`), 'utf8')) as Expected

    const first = run(whole(bytes))
    t.same(first.problems, [], 'records are well formed')
    t.equal(first.ready, 1, 'one ready record (the OK reply)')
    t.same(first.acqs.map(({ start: _s, ...rest }) => rest), expectedShape(expected), 'whole stream equals expected.json')
    t.equal(first.state, expected.closed === true ? State.DATA : State.BETWEEN,
      expected.closed === true ? 'still in an acquisition when the socket closes' : 'between acquisitions after END')
    if (expected.attributes !== undefined) t.same(first.acqs[0]?.start.attributes, expected.attributes, '<data> attributes kept verbatim')
    if (expected.hw_time_offset_ns !== undefined) t.equal(first.acqs[0]?.start.hwTimeOffsetNs, expected.hw_time_offset_ns)
    for (const a of first.acqs) {
      let o = 0
      for (const f of a.start.fields) {
        t.equal(f.byteOffset, o, `${f.name}.${f.capture} byteOffset`)
        t.equal(f.byteLength, { uint32: 4, int32: 4, int64: 8, double: 8, int96: 12 }[f.type])
        o += f.byteLength
      }
      t.equal(o, a.sample_bytes, 'fields fill sample_bytes exactly')
    }

    const reference = comparable(first)
    const failures: string[] = []
    let count = 0
    for (const chunking of allChunkings(bytes, 30, 7)) {
      count++
      const r = run(chunking)
      if (r.problems.length > 0 || comparable(r) !== reference) failures.push(chunking.name)
    }
    t.same(failures.slice(0, 10), [], `all ${count} chunkings (every split, bytes, random) parse the same`)
  })
}

t.test('a recording parsed with noStatus after stripping OK, and with CRLF line ends, gives the same rows', async (t) => {
  const bytes = new Uint8Array(readFileSync(join(FIXTURES, 'slow_dump.bin')))
  const expected = JSON.parse(readFileSync(join(FIXTURES, 'slow_dump.expected.json'), 'utf8')) as Expected
  const noOk = run(whole(bytes.subarray(3)), { noStatus: true })
  t.equal(noOk.ready, 0)
  t.same(noOk.acqs[0]?.rows, expected.acquisitions[0]?.rows)

  // CRLF everywhere in the text parts (OK, header, blank line, END) of the ASCII fixture.
  const ascii = readFileSync(join(FIXTURES, 'ascii_scaled.bin'), 'latin1').replace(/\n/g, '\r\n')
  const crlf = new Uint8Array(Buffer.from(ascii, 'latin1'))
  const want = JSON.parse(readFileSync(join(FIXTURES, 'ascii_scaled.expected.json'), 'utf8')) as Expected
  const r = run(whole(crlf))
  t.same(r.acqs.map((a) => a.rows), want.acquisitions.map((a) => a.rows))
  t.same(r.acqs.map((a) => a.end?.reason_text), ['Ok'])
  const reference = comparable(r)
  const bad: string[] = []
  for (const c of allChunkings(crlf, 10, 3)) if (comparable(run(c)) !== reference) bad.push(c.name)
  t.same(bad.slice(0, 10), [])
})
