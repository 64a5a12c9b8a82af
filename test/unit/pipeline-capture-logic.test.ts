import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { HistogramSet } from '../../src/metrics/index.js'
import { PandaDataParser, type EndData, type StartData } from '../../src/parsers/index.js'
import { PandaCaptureLogic } from '../../src/pipeline/index.js'
import { PandaRecordTag, ROWS_PREFIX_BYTES, type EndRecord } from '../../src/protocol/index.js'
import { attachRecordReader, attachRecordWriter, createRecordRing, type RecordReader } from '../../src/shm/index.js'
import { pandaFixturesDir } from '../support/h5py.js'
import { everySplit, oneByte, whole } from '../support/split.js'

// The capture worker's logic without the thread or the socket: bytes in, START / ROWS / END records out in the
// PandA ring, in stream order, whatever the chunking.
const options = { format: 'FRAMED', process: 'SCALED', xml: true } as const
const fast = new Uint8Array(readFileSync(join(pandaFixturesDir(), 'fast_dump.bin')))
const decoder = new TextDecoder()

interface Drained { starts: StartData[], rows: Uint8Array, rowRecords: number, maxRowBytes: number, ends: EndRecord[], order: string }

function drainAll (r: RecordReader): Drained {
  const starts: StartData[] = []
  const ends: EndRecord[] = []
  const parts: Uint8Array[] = []
  let order = ''
  let rowRecords = 0
  let maxRowBytes = 0
  for (let rec = r.tryRead(); rec !== null; rec = r.tryRead()) {
    if (rec.tag === PandaRecordTag.START) { starts.push(JSON.parse(decoder.decode(rec.payload)) as StartData); order += 'S' }
    if (rec.tag === PandaRecordTag.ROWS) { parts.push(rec.payload.slice(ROWS_PREFIX_BYTES)); rowRecords++; maxRowBytes = Math.max(maxRowBytes, rec.payload.length - ROWS_PREFIX_BYTES); if (!order.endsWith('R')) order += 'R' }
    if (rec.tag === PandaRecordTag.END) { ends.push(JSON.parse(decoder.decode(rec.payload)) as EndRecord); order += 'E' }
    r.release()
  }
  const rows = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) { rows.set(p, o); o += p.length }
  return { starts, rows, rowRecords, maxRowBytes, ends, order }
}

function setup (capacityBytes = 1 << 20, maxRecordBytes = 1 << 16) {
  const sab = createRecordRing({ name: 'panda→writer', policy: 'fail-when-full', capacityBytes })
  const hist = new HistogramSet()
  const events: string[] = []
  const logic = new PandaCaptureLogic({
    ring: attachRecordWriter(sab),
    parser: new PandaDataParser(options),
    histograms: hist,
    maxRecordBytes,
    events: {
      start: (n, s) => events.push(`start ${n} ${s.fields.length}`),
      end: (n, e: EndData, rows) => events.push(`end ${n} ${e.reason} ${rows}`)
    }
  })
  return { sab, hist, events, logic, reader: attachRecordReader(sab) }
}

/** The rows of fast_dump as the parser gives them in one piece: the reference for every chunking. */
function referenceRows (): Uint8Array {
  const p = new PandaDataParser(options)
  const parts = p.push(fast).flatMap((r) => (r.kind === 'frame' ? [r.frame.bytes.slice()] : []))
  const out = new Uint8Array(parts.reduce((n, x) => n + x.length, 0))
  let o = 0
  for (const x of parts) { out.set(x, o); o += x.length }
  return out
}

t.test('START, ROWS and END reach the ring in order with every row byte, whatever the chunking', async t => {
  const ref = referenceRows()
  t.equal(ref.length, 58 * 52)
  const chunkings = [whole(fast), oneByte(fast), ...everySplit(fast)]
  let bad = 0
  for (const c of chunkings) {
    const { logic, reader, events, hist } = setup()
    for (const chunk of c.chunks) logic.onChunk(chunk, 1)
    logic.onClose()
    const d = drainAll(reader)
    const ok = d.order === 'SRE' && d.starts.length === 1 && d.starts[0]?.fields.length === 7 &&
      Buffer.compare(Buffer.from(d.rows), Buffer.from(ref)) === 0 && d.ends[0]?.end.reason === 'Disarmed' &&
      d.ends[0]?.error === undefined && events.join('|') === 'start 1 7|end 1 Disarmed 58' &&
      hist.summary('panda.socket_to_ring_us')?.count === 58 && reader.stateName() === 'DRAINING'
    if (!ok) { bad++; if (bad < 3) t.fail(`${c.name}: ${d.order} ${events.join('|')} ${d.rows.length}`) }
    hist.destroy()
  }
  t.equal(bad, 0, `${chunkings.length} chunkings give the same records`)
})

t.test('runs of rows longer than maxRecordBytes are split at row boundaries', async t => {
  // 8-byte commit prefix + 2 rows of 52 bytes per record at most.
  const { logic, reader, hist } = setup(1 << 20, 8 + 2 * 52 + 51)
  logic.onChunk(fast, 1)
  logic.onClose()
  const d = drainAll(reader)
  t.ok(d.rowRecords >= 29, `58 rows in ${d.rowRecords} records`)
  t.equal(d.maxRowBytes, 2 * 52, 'no record holds more than 2 rows')
  t.same(Buffer.from(d.rows), Buffer.from(referenceRows()))
  hist.destroy()
})

t.test('a full ring throws FLY_ERR_PANDA_RING_FULL naming the sizes; fail() marks the ring FAILED', async t => {
  // 4 KiB holds the START record (~1 KB of JSON) but not all 3 KB of rows with their framing.
  const { logic, reader, hist } = setup(4096)
  let err: unknown
  try { logic.onChunk(fast, 1) } catch (e) { err = e }
  t.match(err, { code: 'FLY_ERR_PANDA_RING_FULL', message: /ring panda→writer full: needed \d+ bytes, \d+\/4096 bytes used/, details: { capacityBytes: 4096 } })
  logic.fail(err)
  t.equal(reader.stateName(), 'FAILED')
  t.equal(reader.failedBy(), 'producer')
  hist.destroy()
})

t.test('a socket that closes mid-acquisition ends it as Early disconnect, in band', async t => {
  const { logic, reader, events, hist } = setup()
  logic.onChunk(fast.subarray(0, 2000), 1)
  logic.onClose()
  const d = drainAll(reader)
  t.equal(d.order, 'SRE')
  t.equal(d.ends[0]?.end.reason, 'Early disconnect')
  t.equal(d.rows.length % 52, 0, 'whole rows only')
  t.match(events.at(-1), /^end 1 Early disconnect \d+$/)
  t.equal(reader.stateName(), 'DRAINING')
  hist.destroy()
})

t.test('malformed bytes mid-acquisition: rows before them are kept and the END record carries the error', async t => {
  const { logic, reader, hist } = setup()
  const bad = fast.slice()
  const at = Buffer.from(bad).indexOf('BIN ', 1500)
  bad.set([0x58], at)
  let err: unknown
  try { logic.onChunk(bad, 1) } catch (e) { err = e }
  t.match(err, { code: 'FLY_ERR_PANDA_PROTOCOL', message: new RegExp(`offset ${at}`) })
  logic.fail(err)
  const d = drainAll(reader)
  t.equal(d.order, 'SRE')
  t.ok(d.rows.length > 0, 'rows before the damage are in the ring')
  t.equal(d.ends[0]?.end.reason, 'Early disconnect')
  t.equal(d.ends[0]?.error?.code, 'FLY_ERR_PANDA_PROTOCOL')
  t.equal(reader.stateName(), 'DRAINING', 'the ring is closed, not failed: the writer finishes the file')
  hist.destroy()
})
