/** PandaDataParser API details: optionsLine, states, zero-copy views, XML entities, options checks. */
import t from 'tap'
import { ErrorCode } from '../../src/errors.js'
import { optionsLine, PandaDataParser, State } from '../../src/parsers/panda-data/index.js'
import type { DataRecord } from '../../src/parsers/panda-data/index.js'

const enc = new TextEncoder()
const HEADER = '<header>\n<data missed="0" process="Raw" format="Framed" sample_bytes="8" />\n<fields>\n' +
  '<field name="INENC1.VAL" type="int32" capture="Min" scale="1" offset="0" units="&lt;&amp;&gt;&quot;&apos;&#181;&#x6d;" />\n' +
  '<field units="" offset="0" scale="1" capture="Max" type="int32" name="INENC1.VAL" />\n</fields>\n</header>\n\n'

function frame (payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + payload.length)
  out.set(enc.encode('BIN '))
  new DataView(out.buffer).setUint32(4, out.length, true)
  out.set(payload, 8)
  return out
}

t.test('optionsLine', async (t) => {
  t.equal(optionsLine({ format: 'FRAMED', process: 'SCALED', xml: true }), 'XML FRAMED SCALED\n')
  t.equal(optionsLine({ format: 'UNFRAMED', process: 'RAW', xml: true, noStatus: true, oneShot: true }), 'XML UNFRAMED RAW NO_STATUS ONE_SHOT\n')
})

t.test('states, entities, attribute order, zero-copy views and the one-row join', async (t) => {
  const p = new PandaDataParser({ format: 'FRAMED', process: 'RAW', xml: true })
  t.equal(p.state, State.EXPECT_OK)
  t.same(p.push(enc.encode('OK\n')), [{ kind: 'ready' }])
  t.equal(p.state, State.BETWEEN)
  const recs = p.push(enc.encode(HEADER.slice(0, 50)))
  t.same(recs, [])
  t.equal(p.state, State.HEADER)
  const [start] = p.push(enc.encode(HEADER.slice(50)))
  t.equal(p.state, State.DATA)
  t.ok(start !== undefined && start.kind === 'start')
  if (start?.kind !== 'start') return
  t.equal(start.start.fields[0]?.units, '<&>"\'µm', 'entities and character references decoded')
  t.same(start.start.fields.map((f) => [f.capture, f.byteOffset, f.byteLength]), [['Min', 0, 4], ['Max', 4, 4]], 'attributes in any order')

  // A chunk holding one whole block of 3 rows: the rows come back as a view of the chunk, no copy.
  const rows = new Uint8Array(24).map((_, k) => k)
  const chunk = frame(rows)
  const out = p.push(chunk)
  t.equal(out.length, 1)
  const f = out[0]
  t.ok(f?.kind === 'frame' && f.frame.rows === 3 && f.frame.bytes.buffer === chunk.buffer && f.frame.bytes.byteOffset === 8,
    'zero-copy view of the pushed chunk')

  // A row split across two blocks is joined and delivered once, as a one-row copy.
  const two = frame(new Uint8Array([1, 2, 3, 4, 5]))
  const three = frame(new Uint8Array([6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]))
  const a = p.push(two)
  t.same(a, [], 'no whole row yet')
  const b: DataRecord[] = p.push(three)
  t.same(b.map((r) => r.kind === 'frame' ? [r.frame.rows, [...r.frame.bytes]] : r.kind),
    [[1, [1, 2, 3, 4, 5, 6, 7, 8]], [1, [9, 10, 11, 12, 13, 14, 15, 16]]])
  t.equal(p.stats.rows, 5)
  t.equal(p.stats.frames, 3)

  const end = p.push(enc.encode('END 5 Ok\n'))
  t.same(end, [{ kind: 'end', end: { samples: 5, reason: 'Ok', rowsReceived: 5, droppedBytes: 0 } }])
  t.equal(p.state, State.BETWEEN)
  t.same(p.close(), [], 'closing between acquisitions ends nothing')
  t.equal(p.state, State.DONE)
})

t.test('ERR reply is PANDA_REJECTED quoting the message', async (t) => {
  const p = new PandaDataParser()
  t.throws(() => p.push(enc.encode('ERR Unknown option\r\n')), {
    code: ErrorCode.PANDA_REJECTED, message: /ERR Unknown option$/
  })
})

t.test('unsupported options are refused up front', async (t) => {
  t.throws(() => new PandaDataParser({ noHeader: true }), { code: ErrorCode.BAD_INPUT })
  t.throws(() => new PandaDataParser({ xml: false }), { code: ErrorCode.BAD_INPUT })
})

t.test('RAW ASCII also accepts one decimal value per field (int64 and int96 too)', async (t) => {
  const head = '<header>\n<data missed="0" process="Raw" format="ASCII" />\n<fields>\n' +
    '<field name="A" type="int64" capture="Sum" scale="1" offset="0" units="" />\n' +
    '<field name="B" type="int96" capture="StdDev" scale="1" offset="0" units="" />\n</fields>\n</header>\n\n'
  const p = new PandaDataParser()
  const recs = p.push(enc.encode('OK\n' + head + ' -9007199254740993 -1\nEND 1 Ok\n'))
  const f = recs.find((r) => r.kind === 'frame')
  t.ok(f?.kind === 'frame')
  if (f?.kind !== 'frame') return
  const v = new DataView(f.frame.bytes.buffer, f.frame.bytes.byteOffset)
  t.equal(f.frame.bytes.length, 20, 'sample bytes computed from the types: 8 + 12')
  t.equal(v.getBigInt64(0, true), -9007199254740993n)
  t.equal(v.getBigUint64(8, true), 0xffffffffffffffffn)
  t.equal(v.getUint32(16, true), 0xffffffff)
})
