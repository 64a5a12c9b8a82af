import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { HistogramSet } from '../../src/metrics/index.js'
import { ColumnDecoder, PandaDataParser, type EndData, type StartData } from '../../src/parsers/index.js'
import { PandaCaptureLogic, columnViews, readRowsHeader } from '../../src/pipeline/index.js'
import { PandaRecordTag, type EndRecord } from '../../src/protocol/index.js'
import { attachRecordReader, attachRecordWriter, createRecordRing, type RecordReader } from '../../src/shm/index.js'
import { pandaFixturesDir } from '../support/h5py.js'
import { everySplit, oneByte, whole } from '../support/split.js'

// The capture worker's logic without the thread or the socket: bytes in, START / ROWS / END records out in the
// PandA ring, in stream order, whatever the chunking.
const options = { format: 'FRAMED', process: 'SCALED', xml: true } as const
const fast = new Uint8Array(readFileSync(join(pandaFixturesDir(), 'fast_dump.bin')))
const decoder0 = new TextDecoder()

interface Drained { starts: StartData[], columns: number[][], rowRecords: number, maxRecordRows: number, ends: EndRecord[], order: string }

/** Reads every record; ROWS records are turned back into one plain array per dataset. */
function drainAll (r: RecordReader): Drained {
  const starts: StartData[] = []
  const ends: EndRecord[] = []
  let columns: number[][] = []
  let decoder: ColumnDecoder | undefined
  let order = ''
  let rowRecords = 0
  let maxRecordRows = 0
  for (let rec = r.tryRead(); rec !== null; rec = r.tryRead()) {
    if (rec.tag === PandaRecordTag.START) {
      const start = JSON.parse(decoder0.decode(rec.payload)) as StartData
      starts.push(start)
      decoder = new ColumnDecoder(start)
      columns = decoder.columns.map(() => [])
      order += 'S'
    }
    if (rec.tag === PandaRecordTag.ROWS && decoder !== undefined) {
      const { rows } = readRowsHeader(rec.payload)
      columnViews(decoder.columns, rec.payload, rows).forEach((v, i) => columns[i]?.push(...v))
      rowRecords++
      maxRecordRows = Math.max(maxRecordRows, rows)
      if (!order.endsWith('R')) order += 'R'
    }
    if (rec.tag === PandaRecordTag.END) { ends.push(JSON.parse(decoder0.decode(rec.payload)) as EndRecord); order += 'E' }
    r.release()
  }
  return { starts, columns, rowRecords, maxRecordRows, ends, order }
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

/** The datasets of fast_dump decoded in one piece: the reference for every chunking. */
function referenceColumns (): number[][] {
  const p = new PandaDataParser(options)
  const records = p.push(fast)
  const start = records.find((r) => r.kind === 'start')
  if (start?.kind !== 'start') throw new Error('no header')
  const d = new ColumnDecoder(start.start)
  const cols: number[][] = d.columns.map(() => [])
  for (const r of records) {
    if (r.kind !== 'frame') continue
    const out = d.allocate(r.frame.rows)
    d.decode(r.frame, out)
    out.forEach((v, i) => cols[i]?.push(...v))
  }
  return cols
}

t.test('START, ROWS and END reach the ring in order with every row byte, whatever the chunking', async t => {
  const ref = JSON.stringify(referenceColumns())
  t.equal(referenceColumns()[0]?.length, 58)
  const chunkings = [whole(fast), oneByte(fast), ...everySplit(fast)]
  let bad = 0
  for (const c of chunkings) {
    const { logic, reader, events, hist } = setup()
    for (const chunk of c.chunks) logic.onChunk(chunk, 1)
    logic.onClose()
    const d = drainAll(reader)
    const ok = d.order === 'SRE' && d.starts.length === 1 && d.starts[0]?.fields.length === 7 &&
      JSON.stringify(d.columns) === ref && d.ends[0]?.end.reason === 'Disarmed' &&
      d.ends[0]?.error === undefined && events.join('|') === 'start 1 7|end 1 Disarmed 58' &&
      hist.summary('panda.socket_to_ring_us')?.count === 58 && reader.stateName() === 'DRAINING'
    if (!ok) { bad++; if (bad < 3) t.fail(`${c.name}: ${d.order} ${events.join('|')} ${d.columns[0]?.length ?? 0}`) }
    hist.destroy()
  }
  t.equal(bad, 0, `${chunkings.length} chunkings give the same records`)
})

t.test('runs of rows longer than maxRecordBytes are split at row boundaries', async t => {
  // Room for the 16-byte header and 2 rows of 7 columns (52 bytes + padding), not 3.
  const { logic, reader, hist } = setup(1 << 20, 16 + 7 * 7 + 2 * 52 + 51)
  logic.onChunk(fast, 1)
  logic.onClose()
  const d = drainAll(reader)
  t.ok(d.rowRecords >= 29, `58 rows in ${d.rowRecords} records`)
  t.equal(d.maxRecordRows, 2, 'no record holds more than 2 rows')
  t.same(d.columns, referenceColumns())
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
  t.ok(d.columns.every((c) => c.length === d.columns[0]?.length), 'whole rows only')
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
  t.ok((d.columns[0]?.length ?? 0) > 0, 'rows before the damage are in the ring')
  t.equal(d.ends[0]?.end.reason, 'Early disconnect')
  t.equal(d.ends[0]?.error?.code, 'FLY_ERR_PANDA_PROTOCOL')
  t.equal(reader.stateName(), 'DRAINING', 'the ring is closed, not failed: the writer finishes the file')
  hist.destroy()
})
