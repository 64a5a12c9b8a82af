/**
 * The PandA control-port reply parser on byte fixtures of every reply kind: the replies (kinds, values, offsets)
 * must equal the fixture's expected.json for the whole stream, every two-chunk split, one byte at a time and seeded
 * random chunkings; malformed streams fail with PANDA_PROTOCOL at the same offset whatever the chunking. Then the
 * limits, close() in the middle of a reply, and the connection matching a fixture's replies to its commands.
 */
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ErrorCode, FlyScanError } from '../../src/errors.js'
import { ControlState, PandaControlConnection, PandaControlParser } from '../../src/parsers/panda-control/index.js'
import type { ControlCommand, ControlReply } from '../../src/parsers/panda-control/index.js'
import { allChunkings, oneByte, randomChunkings, whole } from '../support/split.js'
import type { Chunking } from '../support/split.js'

const FIXTURES = join(process.cwd(), 'test', 'fixtures', 'panda-control')
const enc = new TextEncoder()

interface Expected {
  commands: string[]
  replies: ControlReply[]
  error?: { code: string, offset: number, why: string }
}

function load (name: string): { bytes: Uint8Array, expected: Expected } {
  return {
    bytes: new Uint8Array(readFileSync(join(FIXTURES, `${name}.bin`))),
    expected: JSON.parse(readFileSync(join(FIXTURES, `${name}.expected.json`), 'utf8')) as Expected
  }
}

/** Every reply a chunking yields, plus the error if the parser failed (with the replies salvaged before it). */
function parse (chunks: readonly Uint8Array[]): { replies: ControlReply[], error: FlyScanError | undefined } {
  const p = new PandaControlParser()
  const replies: ControlReply[] = []
  for (const c of chunks) {
    try {
      replies.push(...p.push(c))
    } catch (err) {
      replies.push(...p.salvage)
      return { replies, error: err as FlyScanError }
    }
  }
  return { replies, error: undefined }
}

function check (t: Test, name: string, chunkings: Iterable<Chunking>): void {
  const { expected } = load(name)
  let runs = 0
  let failures = 0
  for (const { name: how, chunks } of chunkings) {
    runs++
    const { replies, error } = parse(chunks)
    const same = JSON.stringify(replies) === JSON.stringify(expected.replies)
    const errorOk = expected.error === undefined
      ? error === undefined
      : error?.code === expected.error.code && error.details.offset === expected.error.offset
    if (!same || !errorOk) {
      failures++
      if (failures <= 3) {
        t.same(replies, expected.replies, `${name} ${how}: replies`)
        t.equal(error?.details.offset, expected.error?.offset, `${name} ${how}: error offset (${error?.message ?? 'no error'})`)
      }
    }
  }
  t.equal(failures, 0, `${name}: ${runs} chunkings, all give the expected replies${expected.error === undefined ? '' : ' and error offset'}`)
}

for (const name of ['session', 'session_crlf', 'changes', 'malformed_unknown_line', 'malformed_in_multi', 'malformed_ok_suffix']) {
  t.test(`${name}: whole, every split, one byte at a time, 20 random chunkings`, async (t) => {
    check(t, name, allChunkings(load(name).bytes))
  })
}

t.test('seq_table_4096_rows (113 kB): whole, one byte at a time, 20 random chunkings', async (t) => {
  const { bytes, expected } = load('seq_table_4096_rows')
  t.equal(expected.replies[0]?.kind === 'multi' && expected.replies[0].lines.length, 16384)
  check(t, 'seq_table_4096_rows', [whole(bytes), oneByte(bytes), ...randomChunkings(bytes, 20, 7, 65536)])
})

t.test('malformed fixtures name what was wrong', async (t) => {
  t.throws(() => new PandaControlParser().push(load('malformed_unknown_line').bytes), {
    code: ErrorCode.PANDA_PROTOCOL,
    message: "PandA control port, offset 24: expected a reply: 'OK', 'OK =value', 'ERR message', '!item' or '.', got 0x48 0x45 0x4c 0x4c 0x4f ('HELLO')"
  })
  t.throws(() => new PandaControlParser({ peer: '10.0.0.1:8888' }).push(load('malformed_in_multi').bytes), {
    message: /^PandA control port 10\.0\.0\.1:8888, offset 22: expected '!item' or '\.' \(inside the multi-value reply that began at offset 6\), got .*'OK'/
  })
})

t.test('a failed parser stays failed with the same error', async (t) => {
  const p = new PandaControlParser()
  let first: unknown
  try { p.push(enc.encode('OK\nNOPE\n')) } catch (err) { first = err }
  t.equal(p.state, ControlState.FAILED)
  t.same(p.salvage.map((r) => r.kind), ['ok'], 'the OK before the bad line is salvaged')
  t.throws(() => p.push(enc.encode('OK\n')))
  try { p.push(enc.encode('OK\n')) } catch (err) { t.equal(err, first, 'the same error object') }
  t.equal(p.error, first)
})

t.test('reply line limit: the error names the byte offset, whatever the chunking', async (t) => {
  const limits = { maxLineBytes: 32 }
  const exact = enc.encode('OK\nOK =' + 'x'.repeat(28) + '\n') // a 32-byte line: allowed
  const { replies } = parseWith(exact, limits)
  t.same(replies.map((r) => r.kind === 'value' ? r.value.length : r.kind), ['ok', 28])
  const long = enc.encode('OK\nOK =' + 'x'.repeat(29) + '\n') // 33 bytes: too long
  let n = 0
  for (const { name, chunks } of allChunkings(long)) {
    const p = new PandaControlParser({ limits })
    try {
      for (const c of chunks) p.push(c)
      t.fail(`${name}: no error`)
    } catch (err) {
      if ((err as FlyScanError).details.offset !== 3 + 32) t.fail(`${name}: offset ${String((err as FlyScanError).details.offset)}`)
      n++
    }
  }
  t.ok(n > 30, `${n} chunkings all fail at offset 35 (line start 3 + limit 32)`)
  t.throws(() => new PandaControlParser({ limits }).push(long), { message: /offset 35: expected a newline ending the reply line within 32 bytes/ })
})

function parseWith (bytes: Uint8Array, limits: Record<string, number>): { replies: ControlReply[] } {
  return { replies: new PandaControlParser({ limits }).push(bytes) }
}

t.test('multi-value reply limits: lines and bytes', async (t) => {
  const five = enc.encode('!a\n!b\n!c\n!d\n!e\n.\n')
  t.same(parseWith(five, { maxReplyLines: 5 }).replies, [{ kind: 'multi', lines: ['a', 'b', 'c', 'd', 'e'], offset: 0, bytes: 17 }])
  t.throws(() => parseWith(five, { maxReplyLines: 4 }), { code: ErrorCode.PANDA_PROTOCOL, details: { offset: 12 }, message: /at most 4 lines/ })
  t.throws(() => parseWith(five, { maxReplyBytes: 8 }), { code: ErrorCode.PANDA_PROTOCOL, details: { offset: 6 }, message: /at most 8 bytes/ })
})

t.test('values: UTF-8, bare ERR, text after OK', async (t) => {
  for (const { name, chunks } of allChunkings(enc.encode('OK =5 µm\nERR\n!é\n.\n'))) {
    const { replies } = parse(chunks)
    if (JSON.stringify(replies) !== JSON.stringify([
      { kind: 'value', value: '5 µm', offset: 0, bytes: 10 },
      { kind: 'error', message: '', offset: 10, bytes: 4 },
      { kind: 'multi', lines: ['é'], offset: 14, bytes: 6 }
    ])) t.fail(`${name}: ${JSON.stringify(replies)}`)
  }
  t.pass('a UTF-8 character split across chunks decodes once whole')
  t.throws(() => new PandaControlParser().push(enc.encode('OKAY\n')), { code: ErrorCode.PANDA_PROTOCOL, details: { offset: 0 } })
  t.throws(() => new PandaControlParser().push(enc.encode('ERROR x\n')), { code: ErrorCode.PANDA_PROTOCOL, details: { offset: 0 } })
  t.throws(() => new PandaControlParser().push(enc.encode('\n')), { message: /got an empty line/ })
})

t.test('close() reports the reply it cut off, and nothing may follow', async (t) => {
  const p = new PandaControlParser()
  t.same(p.push(enc.encode('OK\n!a\n!bb')), [{ kind: 'ok', offset: 0, bytes: 3 }])
  t.equal(p.state, ControlState.MULTI)
  t.same(p.partial, { offset: 3, lines: 1, bytes: 6 })
  t.same(p.close(), { offset: 3, lines: 1, bytes: 6 })
  t.equal(p.state, ControlState.CLOSED)
  t.equal(p.close(), undefined, 'idempotent')
  t.throws(() => p.push(enc.encode('.\n')), { code: ErrorCode.PANDA_PROTOCOL, message: /offset 9: expected nothing after close\(\)/ })

  const m = new PandaControlParser()
  m.push(enc.encode('!a\n!b\n'))
  t.same(m.close(), { offset: 0, lines: 2, bytes: 6 }, 'cut between two lines of a multi-value reply')

  const q = new PandaControlParser()
  q.push(enc.encode('OK =par'))
  t.same(q.close(), { offset: 0, lines: 0, bytes: 7 }, 'cut inside a first line')
  const r = new PandaControlParser()
  r.push(enc.encode('OK\n'))
  t.equal(r.close(), undefined, 'nothing cut off between replies')
  t.same(r.stats, { bytes: 3, replies: 1 })
})

t.test('the connection matches the session fixture\'s replies to its commands, whatever the chunking', async (t) => {
  const { bytes, expected } = load('session')
  // Queries may answer either way; assignments and table writes answer OK.
  const commands = expected.commands.map((line): ControlCommand<unknown> => line.endsWith('?')
    ? { lines: [line], label: line, expect: 'value-or-multi', decode: (r) => r.kind === 'multi' ? r.lines : r.kind === 'value' ? r.value : undefined }
    : { lines: [line], label: line, expect: 'ok', decode: () => undefined })
  let bad = 0
  for (const { name, chunks } of [whole(bytes), oneByte(bytes), ...randomChunkings(bytes, 10)]) {
    const c = new PandaControlConnection({ peer: 'panda:8888' })
    for (const cmd of commands) c.send(cmd)
    const got = chunks.flatMap((ch) => c.push(ch))
    const summary = got.map((g) => g.ok ? g.value : g.error.code)
    const want = expected.replies.map((r) => r.kind === 'error' ? ErrorCode.PANDA_CONTROL_ERR : r.kind === 'value' ? r.value : r.kind === 'multi' ? r.lines : undefined)
    if (JSON.stringify(summary) !== JSON.stringify(want) || c.pendingCount !== 0) {
      bad++
      t.same(summary, want, name)
    }
  }
  t.equal(bad, 0, 'every command got its own reply, in order')
})
