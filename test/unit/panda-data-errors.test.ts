/**
 * Malformed PandA data streams: each must fail with a coded FlyScanError naming the absolute byte offset, however
 * the stream is chunked, keep the rows received before the fault (push() result or `salvage`), and stay failed.
 */
import t from 'tap'
import type { Test } from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ErrorCode, FlyScanError, isFlyScanError } from '../../src/errors.js'
import { PandaDataParser, State } from '../../src/parsers/panda-data/index.js'
import type { DataRecord, ParserLimits } from '../../src/parsers/panda-data/index.js'
import { everySplit, oneByte, randomChunkings, whole } from '../support/split.js'
import type { Chunking } from '../support/split.js'

const FIXTURES = join(process.cwd(), 'test', 'fixtures', 'panda')
const enc = new TextEncoder()

interface Outcome {
  error: FlyScanError | undefined
  rows: number
  parser: PandaDataParser
}

function countRows (records: readonly DataRecord[]): number {
  let n = 0
  for (const r of records) if (r.kind === 'frame') n += r.frame.rows
  return n
}

function feed (chunks: readonly Uint8Array[], limits: Partial<ParserLimits> = {}): Outcome {
  const parser = new PandaDataParser({}, limits)
  let rows = 0
  for (const c of chunks) {
    try {
      rows += countRows(parser.push(c))
    } catch (err) {
      rows += countRows(parser.salvage)
      if (!(err instanceof FlyScanError)) throw err
      return { error: err, rows, parser }
    }
  }
  return { error: undefined, rows, parser }
}

const MALFORMED = [
  'malformed_bad_marker', 'malformed_bad_length', 'malformed_truncated_header', 'malformed_bad_xml',
  'malformed_unknown_end', 'malformed_garbage_after_ok', 'rejected_err'
]

for (const name of MALFORMED) {
  t.test(name, async (t) => {
    const bytes = new Uint8Array(readFileSync(join(FIXTURES, `${name}.bin`)))
    const { error: want } = JSON.parse(readFileSync(join(FIXTURES, `${name}.expected.json`), 'utf8')) as {
      error: { code: string, offset: number, rows_before_error: number, why: string }
    }
    const first = feed(whole(bytes).chunks)
    t.ok(first.error, `fails: ${want.why}`)
    t.equal(first.error?.code, want.code)
    t.equal(first.error?.details.offset, want.offset, 'details.offset')
    t.match(first.error?.message, `offset ${want.offset}:`, 'the message names the offset')
    t.match(first.error?.message, /expected|rejected/, 'the message says what was expected')
    t.equal(first.rows, want.rows_before_error, 'rows before the fault are delivered')
    t.equal(first.parser.state, State.FAILED)
    let again: unknown
    try { first.parser.push(new Uint8Array([0x42])) } catch (err) { again = err }
    t.equal(again, first.error, 'push after failure throws the same error')
    t.equal(first.parser.error, first.error)
    t.same(first.parser.close(), [], 'close() after failure yields nothing')

    const chunkings: Chunking[] = [...everySplit(bytes), oneByte(bytes), ...randomChunkings(bytes, 20, 11)]
    const bad: string[] = []
    for (const c of chunkings) {
      const r = feed(c.chunks)
      if (r.error?.code !== want.code || r.error.details.offset !== want.offset || r.rows !== want.rows_before_error) {
        bad.push(`${c.name}: ${r.error?.message ?? 'no error'} rows=${r.rows}`)
      }
    }
    t.same(bad.slice(0, 5), [], `same code, offset and rows for all ${chunkings.length} chunkings`)
  })
}

// ---------------------------------------------------------------------------------------------------------------
// Built in the test: limits and smaller faults.

const HEADER = (data: string, fields: string): string =>
  `<header>\n<data ${data} />\n<fields>\n${fields}</fields>\n</header>\n\n`
const F_U32 = '<field name="PCAP.BITS0" type="uint32" capture="Value" />\n'
const F_DBL = '<field name="COUNTER1.OUT" type="double" capture="Value" scale="1" offset="0" units="" />\n'
const DATA = 'missed="0" process="Scaled" format="Framed" sample_bytes="12"'

function errorOf (text: string | Uint8Array, limits: Partial<ParserLimits> = {}): FlyScanError | undefined {
  const bytes = typeof text === 'string' ? enc.encode(text) : text
  const whole = feed([bytes], limits)
  const bytewise = feed(oneByte(bytes).chunks, limits)
  // Chunking never changes the verdict.
  if (whole.error?.code !== bytewise.error?.code || whole.error?.details.offset !== bytewise.error?.details.offset) {
    throw new Error(`chunking changed the error: ${whole.error?.message} vs ${bytewise.error?.message}`)
  }
  return whole.error
}

function expectError (t: Test, text: string | Uint8Array, offset: number, pattern: RegExp, limits: Partial<ParserLimits> = {}): void {
  const err = errorOf(text, limits)
  t.ok(isFlyScanError(err, ErrorCode.PANDA_PROTOCOL), 'PANDA_PROTOCOL')
  t.equal(err?.details.offset, offset, `offset ${offset}`)
  t.match(err?.message, pattern)
}

t.test('header limits and XML faults name the offset', async (t) => {
  const ok = 'OK\n'
  const good = ok + HEADER(DATA, F_U32 + F_DBL)
  t.equal(errorOf(good), undefined, 'the well-formed header passes')

  const big = ok + HEADER(DATA, F_U32.repeat(40) + F_DBL)
  expectError(t, big, 3 + 600, /'<\/header>' within 600 header bytes/, { maxHeaderBytes: 600 })

  expectError(t, 'x'.repeat(5000), 4096, /newline ending the 'OK' reply within 4096 bytes/)
  expectError(t, ok + 'x'.repeat(300), 3 + 256, /newline ending the '<header>' line within 256 bytes/)

  const ent = ok + HEADER(DATA, F_U32 + '<field name="A&bogus;" type="double" capture="Value" scale="1" offset="0" units="" />\n')
  expectError(t, ent, ent.indexOf('&bogus;'), /&amp;/)

  const dup = ok + HEADER(DATA, '<field name="A" name="B" type="uint32" capture="Value" />\n')
  expectError(t, dup, dup.indexOf('name="B"'), /repeated/)

  const noType = ok + HEADER(DATA, '<field name="A" capture="Value" />\n')
  expectError(t, noType, noType.indexOf('<field name'), /attribute type on <field>/)

  const badType = ok + HEADER(DATA, '<field name="A" type="float32" capture="Value" />\n')
  expectError(t, badType, badType.indexOf('float32'), /field type/)

  const sb = ok + HEADER('missed="0" process="Scaled" format="Framed" sample_bytes="20"', F_U32 + F_DBL)
  expectError(t, sb, sb.indexOf('20"'), /sample_bytes = 12/)

  const fmt = ok + HEADER('missed="0" process="Scaled" format="Morse" sample_bytes="12"', F_U32 + F_DBL)
  expectError(t, fmt, fmt.indexOf('Morse'), /format Framed, Unframed, Base64 or ASCII/)

  const text = ok + HEADER(DATA, F_U32 + 'hello\n' + F_DBL)
  expectError(t, text, text.indexOf('hello'), /no text content/)

  const missed = ok + HEADER('missed="-1" process="Scaled" format="Framed" sample_bytes="12"', F_U32 + F_DBL)
  expectError(t, missed, missed.indexOf('-1"'), /non-negative integer for missed/)

  const noBlank = ok + HEADER(DATA, F_U32 + F_DBL).slice(0, -1) + 'BIN x\n'
  expectError(t, noBlank, noBlank.length - 6, /empty line after <\/header>/)
})

t.test('frame, END and row faults name the offset', async (t) => {
  const head = 'OK\n' + HEADER(DATA, F_U32 + F_DBL)
  const bin = (len: number): Uint8Array => {
    const b = new Uint8Array(8)
    b.set(enc.encode('BIN '))
    new DataView(b.buffer).setUint32(4, len >>> 0, true)
    return b
  }
  const cat = (...parts: Array<string | Uint8Array>): Uint8Array => {
    const bs = parts.map((p) => typeof p === 'string' ? enc.encode(p) : p)
    const out = new Uint8Array(bs.reduce((n, b) => n + b.length, 0))
    let o = 0
    for (const b of bs) { out.set(b, o); o += b.length }
    return out
  }
  const h = enc.encode(head).length

  expectError(t, cat(head, bin(0xfffffff0)), h + 4, /BIN block length from 8 to 1048576/, { maxFrameBytes: 1 << 20 })
  expectError(t, cat(head, bin(7)), h + 4, /got 7/)
  expectError(t, cat(head, 'XIN '), h, /'BIN ' or 'END '/)
  expectError(t, cat(head, bin(8), 'END x Ok\n'), h + 8, /'END <rows> <reason>'/)
  expectError(t, cat(head, 'END 0 ' + 'x'.repeat(300)), h + 256, /END line within 256 bytes/)

  // Every END reason of the protocol is accepted.
  for (const reason of ['Ok', 'Disarmed', 'Early disconnect', 'Data overrun', 'Framing error', 'Driver data overrun', 'DMA data error']) {
    const p = new PandaDataParser()
    const recs = p.push(cat(head, bin(8 + 12), new Uint8Array(12), `END 1 ${reason}\n`))
    t.same(recs.at(-1), { kind: 'end', end: { samples: 1, reason, rowsReceived: 1, droppedBytes: 0 } }, reason)
  }

  const ascii = 'OK\n' + HEADER('missed="0" process="Scaled" format="ASCII"', F_U32 + F_DBL)
  expectError(t, ascii + ' 1 2 3\n', ascii.length, /2 values \(one per field\)/)
  expectError(t, ascii + ' 1 2\n -1 2\n', ascii.length + 5 + 1, /uint32/)
  expectError(t, ascii + ' 1 abc\n', ascii.length + 3, /decimal number/)
  expectError(t, ascii + 'BIN 12\n', ascii.length, /'END <rows> <reason>'/)

  const b64 = 'OK\n' + HEADER('missed="0" process="Scaled" format="Base64" sample_bytes="12"', F_U32 + F_DBL)
  expectError(t, b64 + ' AAAA*AAA\n', b64.length + 5, /base64 character/)
  expectError(t, b64 + ' AA=AAAAA\n', b64.length + 3, /base64 character/)
  expectError(t, b64 + ' AAAAA\n', b64.length + 1, /multiple of 4/)
})

t.test('one-shot: bytes after the acquisition are an error; close() then push() is an error', async (t) => {
  const bytes = new Uint8Array(readFileSync(join(FIXTURES, 'slow_dump.bin')))
  const p = new PandaDataParser({ oneShot: true })
  p.push(bytes)
  t.equal(p.state, State.DONE)
  t.throws(() => p.push(enc.encode('<header>\n')), { code: ErrorCode.PANDA_PROTOCOL, details: { offset: bytes.length } })

  const q = new PandaDataParser()
  q.push(bytes.subarray(0, 100))
  t.same(q.close(), [], 'closed inside the header: no acquisition started, nothing to end')
  t.equal(q.state, State.DONE)
  t.throws(() => q.push(new Uint8Array([1])), { code: ErrorCode.PANDA_PROTOCOL })
})
