/**
 * PandA control-port commands: the exact bytes each encoder sends (a table write's included), the inputs refused
 * before anything is sent, the reply decoders, and the connection's FIFO: pipelined commands answered in order,
 * ERR as a coded error naming the command and the box's text, a reply of the wrong kind, a reply with no command
 * pending, and the connection closing with commands pending.
 */
import t from 'tap'
import { ErrorCode, FlyScanError } from '../../src/errors.js'
import {
  armCommand, attributeListCommand, blocksCommand, changesCommand, ConnectionState, descCommand, disarmCommand,
  echoCommand, enumsCommand, fieldListCommand, fieldTarget, getCommand, getMultilineCommand, idnCommand,
  MAX_COMMAND_LINE_BYTES, PandaControlConnection, parseChanges, parseIdentification, parsePcapStatus,
  pcapCapturedCommand, pcapCompletionCommand, pcapStatusCommand, putCommand, queryCommand, readTableBase64Command,
  readTableCommand, resetChangesCommand, tableWriteCommand
} from '../../src/parsers/panda-control/index.js'
import type { ControlCommand, ControlCompletion } from '../../src/parsers/panda-control/index.js'

const enc = new TextEncoder()
const dec = new TextDecoder()

/** What the connection writes for a command. */
function sent (cmd: ControlCommand<unknown>): string {
  return dec.decode(new PandaControlConnection().send(cmd).bytes)
}

/** Sends one command, pushes the reply text, returns its completion. */
function roundTrip<T> (cmd: ControlCommand<T>, reply: string): ControlCompletion {
  const c = new PandaControlConnection({ peer: 'panda:8888' })
  c.send(cmd)
  const [done, ...rest] = c.push(enc.encode(reply))
  if (done === undefined || rest.length > 0) throw new Error(`expected one completion for ${JSON.stringify(reply)}`)
  return done
}

function value<T> (cmd: ControlCommand<T>, reply: string): T {
  const done = roundTrip(cmd, reply)
  if (!done.ok) throw done.error
  return done.value as T
}

t.test('every command line, byte for byte', async (t) => {
  t.equal(sent(getCommand(fieldTarget('PCAP', 'ACTIVE'))), 'PCAP.ACTIVE?\n')
  t.equal(sent(getCommand(fieldTarget('PULSE1', 'DELAY', 'UNITS'))), 'PULSE1.DELAY.UNITS?\n')
  t.equal(sent(putCommand(fieldTarget('CLOCK1', 'PERIOD'), 0.01)), 'CLOCK1.PERIOD=0.01\n')
  t.equal(sent(putCommand(fieldTarget('PCAP', 'TRIG'), 'CLOCK1.OUT')), 'PCAP.TRIG=CLOCK1.OUT\n')
  t.equal(sent(putCommand(fieldTarget('INENC1', 'VAL', 'CAPTURE'), 'Min Max Mean')), 'INENC1.VAL.CAPTURE=Min Max Mean\n')
  t.equal(sent(putCommand('PULSE1.FORCE_RESET')), 'PULSE1.FORCE_RESET=\n', 'an empty value')
  t.equal(sent(putCommand(fieldTarget('SEQ1', 'PRESCALE'), -2.5e-7)), 'SEQ1.PRESCALE=-2.5e-7\n')
  t.equal(sent(armCommand()), '*PCAP.ARM=\n')
  t.equal(sent(disarmCommand()), '*PCAP.DISARM=\n')
  t.equal(sent(pcapStatusCommand()), '*PCAP.STATUS?\n')
  t.equal(sent(pcapCapturedCommand()), '*PCAP.CAPTURED?\n')
  t.equal(sent(pcapCompletionCommand()), '*PCAP.COMPLETION?\n')
  t.equal(sent(changesCommand()), '*CHANGES?\n')
  t.equal(sent(changesCommand('ATTR')), '*CHANGES.ATTR?\n')
  t.equal(sent(changesCommand('METADATA')), '*CHANGES.METADATA?\n')
  t.equal(sent(resetChangesCommand()), '*CHANGES=\n')
  t.equal(sent(resetChangesCommand('CONFIG', 'start')), '*CHANGES.CONFIG=S\n')
  t.equal(sent(blocksCommand()), '*BLOCKS?\n')
  t.equal(sent(fieldListCommand('TTLIN')), 'TTLIN.*?\n')
  t.equal(sent(attributeListCommand('INENC1', 'VAL')), 'INENC1.VAL.*?\n')
  t.equal(sent(descCommand('TTLIN')), '*DESC.TTLIN?\n')
  t.equal(sent(descCommand('TTLIN', 'TERM')), '*DESC.TTLIN.TERM?\n')
  t.equal(sent(descCommand('TTLIN', 'TERM', 'INFO')), '*DESC.TTLIN.TERM.INFO?\n')
  t.equal(sent(descCommand('SEQ', 'TABLE[]', 'REPEATS')), '*DESC.SEQ.TABLE[].REPEATS?\n')
  t.equal(sent(enumsCommand('TTLIN', 'TERM')), '*ENUMS.TTLIN.TERM?\n')
  t.equal(sent(enumsCommand('SEQ', 'TABLE[]', 'TRIGGER')), '*ENUMS.SEQ.TABLE[].TRIGGER?\n')
  t.equal(sent(idnCommand()), '*IDN?\n')
  t.equal(sent(echoCommand('ping 1')), '*ECHO ping 1?\n')
  t.equal(sent(readTableCommand('SEQ1.TABLE')), 'SEQ1.TABLE?\n')
  t.equal(sent(readTableBase64Command('SEQ1.TABLE')), 'SEQ1.TABLE.B?\n')
  t.equal(sent(getMultilineCommand('*CAPTURE')), '*CAPTURE?\n')
  t.equal(sent(queryCommand('*CLOCK_FREQ')), '*CLOCK_FREQ?\n')
})

t.test('table writes, byte for byte', async (t) => {
  // Two SEQ rows: REPEATS=1, TRIGGER=Immediate, OUTA1 (bit 20); POSITION -1 (int32); TIME1 1250; TIME2 1250.
  const words = [0x00100001, -1, 1250, 1250, 0x00200001, 0, 625, 625]
  const decimal = tableWriteCommand('SEQ1.TABLE', words)
  t.equal(sent(decimal), 'SEQ1.TABLE<\n1048577 4294967295 1250 1250\n2097153 0 625 625\n\n')
  t.equal(decimal.label, 'SEQ1.TABLE< (8 words)')
  t.equal(decimal.expect, 'ok')
  t.equal(sent(tableWriteCommand('SEQ1.TABLE', words, { wordsPerLine: 1 })),
    'SEQ1.TABLE<\n1048577\n4294967295\n1250\n1250\n2097153\n0\n625\n625\n\n', 'one word per line, as PandABlocks-client sends')
  t.equal(sent(tableWriteCommand('SEQ1.TABLE', [])), 'SEQ1.TABLE<\n\n', 'an empty fixed write clears the table')
  t.equal(sent(tableWriteCommand('SEQ1.TABLE', new Uint32Array([1, 2, 3, 4]), { mode: 'append' })), 'SEQ1.TABLE<<\n1 2 3 4\n\n')
  t.equal(sent(tableWriteCommand('SEQ1.TABLE', [1, 2, 3, 4], { mode: 'append-last' })), 'SEQ1.TABLE<<|\n1 2 3 4\n\n')

  // Base64 of the little-endian words, 12 words (48 bytes, 64 characters) per line, as the box writes `.B`.
  const b64 = sent(tableWriteCommand('SEQ1.TABLE', words, { encoding: 'base64' }))
  const le = Buffer.alloc(32)
  words.forEach((w, k) => le.writeUInt32LE(w >>> 0, k * 4))
  t.equal(b64, `SEQ1.TABLE<B\n${le.toString('base64')}\n\n`)
  t.equal(b64, 'SEQ1.TABLE<B\nAQAQAP/////iBAAA4gQAAAEAIAAAAAAAcQIAAHECAAA=\n\n')
  const many = Array.from({ length: 30 }, (_, k) => k * 1000)
  const lines = sent(tableWriteCommand('PGEN1.TABLE', many, { mode: 'append-last', encoding: 'base64' })).split('\n')
  t.same(lines.map((l) => l.length), [15, 64, 64, 32, 0, 0], 'header <<|B, lines of 12, 12 and 6 words, the empty line')
  const back = Buffer.concat(lines.slice(1, 4).map((l) => Buffer.from(l, 'base64')))
  t.same(Array.from({ length: 30 }, (_, k) => back.readUInt32LE(k * 4)), many)
})

t.test('inputs that would break the command stream are refused before sending', async (t) => {
  const bad = (fn: () => unknown, pattern: RegExp, what: string): void => {
    t.throws(fn, { code: ErrorCode.BAD_INPUT, message: pattern }, what)
  }
  bad(() => putCommand('PCAP.TRIG', 'CLOCK1.OUT\n*PCAP.ARM='), /line end at character 10/, 'a newline in a value')
  bad(() => putCommand('PCAP.TRIG', 'A\rB'), /line end/, 'a carriage return in a value')
  bad(() => putCommand('PCAP.TRIG', 'A\0B'), /NUL/, 'a NUL in a value')
  bad(() => putCommand('CLOCK1.PERIOD', Number.NaN), /not a finite number/, 'NaN')
  bad(() => getCommand('PCAP.ACTIVE?'), /no spaces, '\?'/, 'a ? in a target')
  bad(() => getCommand('PCAP ACTIVE'), /target/, 'a space in a target')
  bad(() => getCommand(''), /target/, 'an empty target')
  bad(() => fieldTarget('PCAP', 'ACT.IVE'), /field name "ACT.IVE"/, 'a dot in a field name')
  bad(() => fieldTarget('1SEQ', 'TABLE'), /block name/, 'a block name starting with a digit')
  bad(() => fieldTarget('SEQ1', 'TABLE', ''), /attribute name/, 'an empty attribute')
  bad(() => putCommand('*METADATA.DESIGN', 'x'.repeat(MAX_COMMAND_LINE_BYTES)), /1039 bytes long: the box accepts at most 1022/, 'a line too long')
  t.equal(sent(putCommand('*METADATA.D', 'x'.repeat(MAX_COMMAND_LINE_BYTES - 12))).length, 1023, 'a line of exactly 1022 bytes goes')
  bad(() => tableWriteCommand('SEQ1.TABLE', [1.5]), /word 0 is 1.5/, 'a fractional word')
  bad(() => tableWriteCommand('SEQ1.TABLE', [0, 2 ** 32]), /word 1 is 4294967296/, 'a word above uint32')
  bad(() => tableWriteCommand('SEQ1.TABLE', [-(2 ** 31) - 1]), /word 0/, 'a word below int32')
  bad(() => tableWriteCommand('SEQ1.TABLE', [], { mode: 'append' }), /needs at least one word/, 'an empty append')
  bad(() => tableWriteCommand('SEQ1.TABLE', [1], { wordsPerLine: 0 }), /wordsPerLine is 0/, 'wordsPerLine 0')
  bad(() => changesCommand('NOPE' as 'CONFIG'), /group "NOPE"/, 'an unknown *CHANGES group')
  bad(() => echoCommand('a=b'), /\*ECHO text/, 'an = in *ECHO text')
})

t.test('reply decoders', async (t) => {
  t.same(parsePcapStatus('Busy 1 1'), { state: 'Busy', readers: 1, takingData: 1 })
  t.same(parsePcapStatus('Idle 2 0'), { state: 'Idle', readers: 2, takingData: 0 })
  t.throws(() => parsePcapStatus('Armed 1 1'), { code: ErrorCode.PANDA_PROTOCOL, message: /expected 'Busy\|Idle/ })

  const idn41 = 'PandA SW: 4.1 FPGA: 4.1.0 816147d6 00000000 rootfs: PandA 4.1'
  t.same(parseIdentification(idn41), { name: 'PandA', software: '4.1', fpga: '4.1.0 816147d6 00000000', rootfs: 'PandA 4.1', text: idn41 })
  const idnOld = 'PandA SW: 330bd94-dirty FPGA: 0.1.9 d1275f61 00000000'
  t.same(parseIdentification(idnOld), { name: 'PandA', software: '330bd94-dirty', fpga: '0.1.9 d1275f61 00000000', rootfs: undefined, text: idnOld },
    'a server before 1.1 has no rootfs (commands.rst)')
  t.throws(() => parseIdentification('PandA NOT_SW: 4.1'), { code: ErrorCode.PANDA_PROTOCOL })

  const changes = parseChanges(['PCAP.TRIG=CLOCK1.OUT', 'INENC1.VAL.CAPTURE=Mean', 'SEQ1.TABLE<', 'BAD1.ENUM (error)',
    '*METADATA.A=x = y', '*METADATA.B=ends in (error)', '*METADATA.C=ends in <', '*METADATA.D=', '*METADATA.DESIGN<'])
  t.same([...changes.changed], [['PCAP.TRIG', 'CLOCK1.OUT'], ['INENC1.VAL.CAPTURE', 'Mean'], ['*METADATA.A', 'x = y'],
    ['*METADATA.B', 'ends in (error)'], ['*METADATA.C', 'ends in <'], ['*METADATA.D', '']])
  t.same(changes.multiline, ['SEQ1.TABLE', '*METADATA.DESIGN'])
  t.same(changes.errors, ['BAD1.ENUM'])
  t.throws(() => parseChanges(['PCAP.TRIG']), { code: ErrorCode.PANDA_PROTOCOL, message: /on line 0, got "PCAP.TRIG"/ })
  t.throws(() => parseChanges(['<']), { code: ErrorCode.PANDA_PROTOCOL })
})

t.test('typed replies through the connection', async (t) => {
  t.same(value(blocksCommand(), '!TTLIN 6\n!SEQ 4\n!PCAP 1\n.\n'), new Map([['TTLIN', 6], ['SEQ', 4], ['PCAP', 1]]))
  t.same(value(fieldListCommand('TTLIN'), '!VAL 1 bit_out\n!TERM 0 param enum\n.\n'), [
    { name: 'VAL', index: 1, type: 'bit_out', subtype: undefined },
    { name: 'TERM', index: 0, type: 'param', subtype: 'enum' }
  ])
  t.same(value(readTableCommand('SEQ1.TABLE'), '!1048577\n!4294967295\n!1250\n!1250\n.\n'), new Uint32Array([1048577, 4294967295, 1250, 1250]))
  t.same(value(readTableBase64Command('SEQ1.TABLE'), '!AQAQAP/////iBAAA4gQAAAEAIAAAAAAAcQIAAHECAAA=\n.\n'),
    new Uint32Array([0x00100001, 0xffffffff, 1250, 1250, 0x00200001, 0, 625, 625]))
  t.same(value(readTableCommand('SEQ1.TABLE'), '.\n'), new Uint32Array(0), 'an empty table')
  t.same(value(pcapStatusCommand(), 'OK =Busy 1 1\n'), { state: 'Busy', readers: 1, takingData: 1 })
  t.equal(value(pcapCapturedCommand(), 'OK =1234\n'), 1234)
  t.equal(value(pcapCompletionCommand(), 'OK =Framing error\n'), 'Framing error')
  t.equal(value(armCommand(), 'OK\n'), undefined)
  t.same(value(queryCommand('SEQ1.TABLE'), '!1\n!2\n.\n'), ['1', '2'])
  t.equal(value(queryCommand('PCAP.ACTIVE'), 'OK =1\n'), '1')
  t.same(value(enumsCommand('TTLIN', 'TERM'), '!High-Z\n!50-Ohm\n.\n'), ['High-Z', '50-Ohm'])
  t.equal(value(echoCommand('ping'), 'OK =ping\n'), 'ping')
  const changes = value(changesCommand(), '!PCAP.TRIG=CLOCK1.OUT\n!SEQ1.TABLE<\n!X1.Y (error)\n.\n')
  t.same([...changes.changed], [['PCAP.TRIG', 'CLOCK1.OUT']])
  t.same(changes.multiline, ['SEQ1.TABLE'])
  t.same(changes.errors, ['X1.Y'])
})

t.test('ERR becomes PANDA_CONTROL_ERR naming the command and the box\'s message', async (t) => {
  const done = roundTrip(putCommand('PCAP.NOPE', 1), 'ERR No such field\n')
  t.notOk(done.ok)
  if (done.ok) return
  t.equal(done.error.code, ErrorCode.PANDA_CONTROL_ERR)
  t.equal(done.error.code, 'FLY_ERR_PANDA_CONTROL')
  t.equal(done.error.message, "PandA control port panda:8888: 'PCAP.NOPE=1' failed: ERR No such field")
  t.same(done.error.details, { command: 'PCAP.NOPE=1', offset: 0, peer: 'panda:8888', reply: 'No such field' })
  const table = roundTrip(tableWriteCommand('SEQ1.TABLE', [1, 2, 3]), 'ERR Table write is not a whole number of rows\n')
  t.match(!table.ok && table.error.message, /'SEQ1\.TABLE< \(3 words\)' failed: ERR Table write is not a whole number of rows$/)
})

t.test('a reply of the wrong kind, or text a decoder cannot read, fails that command only', async (t) => {
  const c = new PandaControlConnection({ peer: 'panda:8888' })
  c.send(getCommand('PCAP.ACTIVE'))
  c.send(armCommand())
  c.send(pcapStatusCommand())
  c.send(getCommand('PCAP.ENABLE'))
  const out = c.push(enc.encode('!ACTIVE 5 bit_out\n.\nOK =1\nOK =Armed\nOK =ZERO\n'))
  t.equal(out.length, 4)
  const [a, b, s, d] = out
  t.match(a?.ok === false && a.error, {
    code: ErrorCode.PANDA_PROTOCOL,
    message: "PandA control port panda:8888, offset 0: 'PCAP.ACTIVE?' expects a single value ('OK =value'), got a multi-value reply of 1 line"
  })
  t.match(b?.ok === false && b.error, { message: /'\*PCAP\.ARM=' expects 'OK', got a single value "1"/ })
  t.match(s?.ok === false && s.error, { message: /offset 26: reply to '\*PCAP\.STATUS\?': expected 'Busy\|Idle <readers> <taking data>', got "Armed"/ })
  t.same(d?.ok === true && d.value, 'ZERO', 'later commands still get their replies')
  t.equal(c.state, ConnectionState.OPEN)
})

t.test('pipelined commands are answered in the order they were sent, across any chunking', async (t) => {
  const c = new PandaControlConnection()
  const ids = [
    c.send(getCommand('PCAP.ACTIVE')).id,
    c.send(tableWriteCommand('SEQ1.TABLE', [1, 2, 3, 4])).id,
    c.send(readTableCommand('SEQ1.TABLE')).id,
    c.send(putCommand('PCAP.NOPE', 'x')).id,
    c.send(blocksCommand()).id,
    c.send(idnCommand()).id
  ]
  t.same(c.pending, ['PCAP.ACTIVE?', 'SEQ1.TABLE< (4 words)', 'SEQ1.TABLE?', 'PCAP.NOPE=x', '*BLOCKS?', '*IDN?'])
  const replies = enc.encode('OK =1\nOK\n!1\n!2\n!3\n!4\n.\nERR No such field\n!PCAP 1\n.\nOK =PandA SW: 4.1 FPGA: 4.1.0 816147d6 00000000 rootfs: PandA 4.1\n')
  const got: ControlCompletion[] = []
  for (let k = 0; k < replies.length; k++) {
    got.push(...c.push(replies.subarray(k, k + 1)))
    if (k === 5) t.same(got.map((g) => g.id), [ids[0]], 'the first reply completes on its newline, before the rest arrive')
  }
  t.same(got.map((g) => g.id), ids, 'completions in send order')
  t.same(got.map((g) => g.label), ['PCAP.ACTIVE?', 'SEQ1.TABLE< (4 words)', 'SEQ1.TABLE?', 'PCAP.NOPE=x', '*BLOCKS?', '*IDN?'])
  t.same(got.map((g) => g.ok), [true, true, true, false, true, true])
  t.same(got[2]?.ok === true && got[2].value, new Uint32Array([1, 2, 3, 4]))
  t.equal(c.pendingCount, 0)
  t.same(c.stats, { bytes: replies.length, replies: 6 })

  // Many commands in flight: the FIFO compacts without losing its place.
  const d = new PandaControlConnection()
  const n = 5000
  for (let k = 0; k < n; k++) d.send(getCommand(`CLOCK${k}.PERIOD`))
  let text = ''
  for (let k = 0; k < n; k++) text += `OK =${k}\n`
  const all = [...d.push(enc.encode(text.slice(0, text.length / 2))), ...d.push(enc.encode(text.slice(text.length / 2)))]
  t.equal(all.length, n)
  t.ok(all.every((g, k) => g.ok && g.value === String(k) && g.label === `CLOCK${k}.PERIOD?`), '5000 pipelined replies, each to its own command')
})

t.test('a reply with no command pending breaks the connection', async (t) => {
  const c = new PandaControlConnection({ peer: 'panda:8888' })
  c.send(getCommand('PCAP.ACTIVE'))
  const out = c.push(enc.encode('OK =1\nOK\n'))
  t.equal(out.length, 1)
  t.ok(out[0]?.ok)
  t.equal(c.state, ConnectionState.FAILED)
  t.match(c.error, { code: ErrorCode.PANDA_PROTOCOL, message: "PandA control port panda:8888, offset 6: a reply ('OK') with no command pending" })
  t.throws(() => c.send(armCommand()), {
    code: ErrorCode.CONNECTION, message: /cannot send '\*PCAP\.ARM=': the connection has failed \(.*no command pending\)/
  })
  t.same(c.push(enc.encode('OK\n')), [], 'nothing more is read')
  t.same(new PandaControlConnection().push(enc.encode('.\n')).length, 0)
})

t.test('malformed bytes fail every pending command, naming them all', async (t) => {
  const c = new PandaControlConnection({ peer: 'panda:8888' })
  c.send(getCommand('PCAP.ACTIVE'))
  c.send(getCommand('PCAP.ENABLE'))
  c.send(armCommand())
  const out = c.push(enc.encode('OK =1\nGARBAGE\nOK\n'))
  t.same(out.map((o) => o.ok), [true, false, false])
  const second = out[1]
  t.ok(second?.ok === false && second.error instanceof FlyScanError)
  t.match(second?.ok === false && second.error, {
    code: ErrorCode.PANDA_PROTOCOL,
    message: /^'PCAP\.ENABLE\?' got no reply: PandA control port panda:8888, offset 6: expected a reply.*; 2 commands were pending: 'PCAP\.ENABLE\?', '\*PCAP\.ARM='$/
  })
  t.equal(c.state, ConnectionState.FAILED)
  t.equal(c.pendingCount, 0)
})

t.test('closing with commands pending fails each with CONNECTION, naming the peer and every pending command', async (t) => {
  const c = new PandaControlConnection({ peer: '127.0.0.1:8888' })
  c.send(readTableCommand('SEQ1.TABLE'))
  c.send(getCommand('PCAP.ACTIVE'))
  c.send(armCommand())
  t.same(c.push(enc.encode('!1\n!2\n!3')), [])
  const out = c.close('closed the connection')
  t.equal(out.length, 3)
  const [first, second] = out
  t.match(first?.ok === false && first.error, {
    code: ErrorCode.CONNECTION,
    message: "'SEQ1.TABLE?' got no reply (its reply was cut off: 2 lines, 8 bytes from offset 0): PandA control port 127.0.0.1:8888 closed the connection; " +
      "3 commands were pending: 'SEQ1.TABLE?', 'PCAP.ACTIVE?', '*PCAP.ARM='"
  })
  t.match(second?.ok === false && second.error, { code: ErrorCode.CONNECTION, message: /^'PCAP\.ACTIVE\?' got no reply: PandA control port 127\.0\.0\.1:8888 closed/ })
  t.same(c.close('again'), [], 'idempotent')
  t.equal(c.state, ConnectionState.CLOSED)
  t.throws(() => c.send(armCommand()), { code: ErrorCode.CONNECTION, message: /the connection has closed/ })

  const many = new PandaControlConnection({ peer: 'p:1' })
  for (let k = 0; k < 12; k++) many.send(getCommand(`A${k}.B`))
  const [one] = many.close('timed out', ErrorCode.TIMEOUT)
  t.match(one?.ok === false && one.error, { code: ErrorCode.TIMEOUT, message: /12 commands were pending: 'A0\.B\?', .*'A7\.B\?' and 4 more$/ })
})
