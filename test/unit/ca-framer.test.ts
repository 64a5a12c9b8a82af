import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CaFramer, DEFAULT_MAX_PAYLOAD_BYTES, parseDatagram, type CaMessage } from '../../src/parsers/index.js'
import { ErrorCode } from '../../src/errors.js'
import { allChunkings, oneByte, randomChunkings, type Chunking } from '../support/split.js'
import { REPO_ROOT } from '../support/h5py.js'
import { MESSAGES, bytesOf, EXTENDED_REPLY_HEAD } from '../fixtures/ca/messages.js'
import { hex } from '../fixtures/ca/dbr-layouts.js'

interface Seen {
  offset: number
  command: number
  headerSize: number
  payloadSize: number
  dataType: number
  dataCount: number
  parameter1: number
  parameter2: number
  payload: string
}

/** Push every chunk; copy each message out while its payload view is valid (until the next push). */
function frame (chunking: Chunking, framer = new CaFramer()): Seen[] {
  const out: Seen[] = []
  for (const chunk of chunking.chunks) {
    for (const m of framer.push(chunk)) out.push(seen(m))
  }
  return out
}

function seen (m: CaMessage): Seen {
  return { offset: m.offset, headerSize: m.headerSize, ...m.header, payload: hex(m.payload) }
}

function concat (parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

const specStream = concat(MESSAGES.map((m) => bytesOf(m.hex)))
const specExpected: Seen[] = (() => {
  let offset = 0
  return MESSAGES.map((m) => {
    const bytes = bytesOf(m.hex)
    const s = { offset, headerSize: m.headerSize, ...m.header, payload: hex(bytes.subarray(m.headerSize)) }
    offset += bytes.length
    return s
  })
})()

t.test('the spec messages, back to back, split at every offset, one byte at a time and at random', async t => {
  let n = 0
  for (const chunking of allChunkings(specStream, 50)) {
    const got = frame(chunking)
    if (JSON.stringify(got) !== JSON.stringify(specExpected)) t.same(got, specExpected, chunking.name)
    n++
  }
  t.ok(n > specStream.length, `${n} chunkings of ${specStream.length} bytes all gave the ${specExpected.length} messages`)
})

t.test('a payload spanning pushes is assembled; one inside a push is a view of it', async t => {
  const framer = new CaFramer()
  const msg = bytesOf(MESSAGES[9]!.hex)
  const first = framer.push(msg.subarray(0, 20))
  t.same(first, [])
  t.equal(framer.bufferedBytes, 20)
  const [whole] = framer.push(msg.subarray(20))
  t.equal(framer.bufferedBytes, 0)
  t.equal(whole?.payload.buffer === msg.buffer, false, 'assembled in a buffer of its own')
  const chunk = concat([msg, msg])
  const both = framer.push(chunk)
  t.equal(both.length, 2)
  t.equal(both[1]?.payload.buffer, chunk.buffer, 'a whole message inside the chunk is a view of it')
  t.equal(both[1]?.offset, 2 * msg.length, 'offsets count from the start of the stream')
  t.equal(framer.bytesPushed, 3 * msg.length)
})

t.test('an extended header split anywhere; an 8,000,000-byte payload in 64 KiB chunks', async t => {
  // 8750 doubles: 70,000 bytes, above 0xFFFF, so the extended header.
  const payload = new Uint8Array(70_000).map((_, i) => (i * 7) & 0xff)
  const head = bytesOf('000f ffff 0006 0000 00000001 00000009 00011170 0000222e')
  const small = bytesOf(MESSAGES[13]!.hex)
  const stream = concat([small, head, payload, small])
  const expected: Seen[] = [
    { offset: 0, command: 23, headerSize: 16, payloadSize: 0, dataType: 0, dataCount: 0, parameter1: 0, parameter2: 0, payload: '' },
    { offset: 16, command: 15, headerSize: 24, payloadSize: 70_000, dataType: 6, dataCount: 8750, parameter1: 1, parameter2: 9, payload: hex(payload) },
    { offset: 16 + 24 + 70_000, command: 23, headerSize: 16, payloadSize: 0, dataType: 0, dataCount: 0, parameter1: 0, parameter2: 0, payload: '' }
  ]
  for (let k = 1; k < 64; k++) {
    t.same(frame({ name: `split@${k}`, chunks: [stream.slice(0, k), stream.slice(k)] }), expected, `split@${k} (inside and around the headers)`)
  }
  for (const k of [70_000, 70_030, 70_039, 70_040, 70_041, 70_050]) {
    t.same(frame({ name: `split@${k}`, chunks: [stream.slice(0, k), stream.slice(k)] }), expected, `split@${k} (end of the payload)`)
  }
  t.same(frame(oneByte(stream)), expected, 'one byte at a time')
  for (const c of randomChunkings(stream, 10, 7, 20_000)) t.same(frame(c), expected, c.name)

  const eight = new Uint8Array(8_000_000)
  eight[0] = 1
  eight[7_999_999] = 2
  const big = concat([bytesOf(EXTENDED_REPLY_HEAD), eight])
  const framer = new CaFramer()
  const got: CaMessage[] = []
  for (let at = 0; at < big.length; at += 65_536) got.push(...framer.push(big.subarray(at, at + 65_536)))
  t.equal(got.length, 1)
  t.equal(got[0]?.header.dataCount, 1_000_000)
  t.equal(got[0]?.payload.length, 8_000_000)
  t.same([got[0]?.payload[0], got[0]?.payload[7_999_999]], [1, 2])
  t.ok(DEFAULT_MAX_PAYLOAD_BYTES >= 8_000_000 * 2, 'the default limit passes 8 MB frames and 1M-double arrays')
})

t.test('limits: a payload above the maximum fails the stream, naming the offset and the command', async t => {
  const good = bytesOf(MESSAGES[0]!.hex)
  const bad = bytesOf('000f ffff 0006 0000 00000011 00000009 00100000 00020000') // 1 MiB payload announced
  const stream = concat([good, good, bad])
  for (const chunking of allChunkings(stream, 10)) {
    const framer = new CaFramer({ maxPayloadBytes: 4096, source: 'client 127.0.0.1:1234' })
    const seenCommands: number[] = []
    let caught: unknown
    try {
      for (const chunk of chunking.chunks) for (const m of framer.push(chunk)) seenCommands.push(m.header.command)
    } catch (err) {
      caught = err
    }
    t.match(caught, {
      code: ErrorCode.CA_PROTOCOL,
      message: 'client 127.0.0.1:1234, stream offset 32: READ_NOTIFY (15) declares a payload of 1048576 bytes, above the limit of 4096',
      details: { offset: 32, command: 15, payloadSize: 1_048_576, maxPayloadBytes: 4096 }
    }, chunking.name)
    t.ok(seenCommands.length <= 2, 'nothing after the bad header came out')
    t.equal(framer.error, caught)
    t.throws(() => framer.push(good), caught as Error, 'every later push throws the same error')
  }
})

t.test('requirePadding: a payload size that is not a multiple of 8 fails the stream', async t => {
  const framer = new CaFramer({ requirePadding: true })
  t.throws(() => framer.push(bytesOf('0014 0005 0000 0000 00000000 00000000 6a646f6500')), {
    code: ErrorCode.CA_PROTOCOL, message: /stream offset 0: CLIENT_NAME \(20\) declares a payload of 5 bytes, not padded to a multiple of 8/
  })
  t.same(new CaFramer().push(bytesOf('0014 0005 0000 0000 00000000 00000000 6a646f6500')).map((m) => m.payload.length), [5], 'accepted when not asked')
})

t.test('datagrams: several messages in one; a datagram ending inside a message is an error', async t => {
  const version = bytesOf('0000 0000 0001 000d 00000009 00000000')
  const search = bytesOf(MESSAGES[3]!.hex)
  const dg = concat([version, search, search])
  const messages = parseDatagram(dg)
  t.same(messages.map((m) => [m.offset, m.header.command, m.payload.length]), [[0, 0, 0], [16, 6, 32], [64, 6, 32]])
  t.equal(messages[1]?.payload.buffer, dg.buffer, 'payloads are views of the datagram')
  t.throws(() => parseDatagram(dg.subarray(0, dg.length - 3), { source: 'datagram from 127.0.0.1:5555' }), {
    code: ErrorCode.CA_PROTOCOL,
    message: 'datagram from 127.0.0.1:5555 of 109 bytes ends inside SEARCH (6) at offset 64 (its payload needs 32 bytes, 29 present)'
  })
  t.throws(() => parseDatagram(dg.subarray(0, 20)), { message: /ends inside a message header at offset 16/ })
  t.throws(() => parseDatagram(dg, { maxPayloadBytes: 16 }), { message: /stream offset 16: SEARCH \(6\) declares a payload of 32 bytes, above the limit of 16/ })
  t.same(parseDatagram(new Uint8Array(0)), [])
})

// A real libca session (pyepics with our server, recorded by test/fixtures/ca/record-libca-session.ts): what libca
// sent, datagram and circuit, and what the server sent back, framed under many chunkings. The expected message
// lists come from a plain walk over the bytes at recording time, not from CaFramer.
const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'ca')
const expectedSession = JSON.parse(readFileSync(join(FIXTURES, 'libca-session.expected.json'), 'utf8')) as Record<string, Array<Omit<Seen, 'payload'>>>

/**
 * Frame a recorded stream: the header fields of each message, after checking that its payload holds exactly the
 * stream's bytes at its offset (a native compare: hex strings of 64 KiB payloads would make the test crawl).
 */
function frameRecorded (chunks: readonly Uint8Array[], stream: Uint8Array): Array<Omit<Seen, 'payload'>> {
  const framer = new CaFramer()
  const out: Array<Omit<Seen, 'payload'>> = []
  for (const chunk of chunks) {
    for (const m of framer.push(chunk)) {
      const start = m.offset + m.headerSize
      if (Buffer.compare(m.payload, stream.subarray(start, start + m.header.payloadSize)) !== 0) {
        throw new Error(`payload of the message at offset ${m.offset} differs from the stream`)
      }
      out.push({ offset: m.offset, headerSize: m.headerSize, ...m.header })
    }
  }
  return out
}

/** Split offsets: every one within 48 bytes of a message boundary, every 61st inside long payloads. */
function splitOffsets (expected: Array<Omit<Seen, 'payload'>>, length: number): number[] {
  const boundaries = expected.map((m) => m.offset).concat([length])
  const near = (k: number): boolean => boundaries.some((b) => Math.abs(b - k) <= 48 || Math.abs(b + 16 - k) <= 16)
  const out: number[] = []
  for (let k = 1; k < length; k++) if (near(k) || k % 61 === 0) out.push(k)
  return out
}

for (const name of ['libca-client.bin', 'libca-server.bin']) {
  t.test(`recorded ${name}`, async t => {
    const bytes = new Uint8Array(readFileSync(join(FIXTURES, name)))
    const expected = expectedSession[name]
    if (expected === undefined) throw new Error(`libca-session.expected.json has no ${name}`)
    const whole = frameRecorded([bytes.slice()], bytes)
    t.same(whole, expected, 'whole stream')
    t.ok(whole.some((m) => m.headerSize === 24), 'the session has extended-header messages')
    const wholeJson = JSON.stringify(whole)
    let failures = 0
    const offsets = splitOffsets(expected, bytes.length)
    for (const k of offsets) {
      const got = frameRecorded([bytes.slice(0, k), bytes.slice(k)], bytes)
      if (JSON.stringify(got) !== wholeJson && failures++ < 3) t.same(got, whole, `split@${k}`)
    }
    t.equal(failures, 0, `${offsets.length} two-chunk splits agree with the whole-stream parse`)
    t.equal(JSON.stringify(frameRecorded(oneByte(bytes).chunks, bytes)), wholeJson, 'one byte at a time')
    for (const c of randomChunkings(bytes, 20, 11, 70_000)) t.equal(JSON.stringify(frameRecorded(c.chunks, bytes)), wholeJson, c.name)
  })
}

t.test('recorded libca search datagram: VERSION then SEARCH', async t => {
  const bytes = new Uint8Array(readFileSync(join(FIXTURES, 'libca-search.bin')))
  const messages = parseDatagram(bytes)
  t.same(messages.map((m) => ({ offset: m.offset, headerSize: m.headerSize, ...m.header })), expectedSession['libca-search.bin'])
  t.equal(messages[0]?.header.command, 0)
  t.equal(messages[0]?.header.dataCount, 13, 'libca 4.13')
  t.equal(messages[1]?.header.command, 6)
  t.equal(messages[1]?.header.dataType, 5, 'DONT_REPLY over UDP')
  t.equal(Buffer.from(messages[1]!.payload).toString('latin1').replace(/\0+$/, ''), 'T:DBL')
})
