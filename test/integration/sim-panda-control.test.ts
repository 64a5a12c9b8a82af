/**
 * The simulated PandA's control port through our PandaControlClient and through raw sockets: every command form,
 * tables, ERR replies that leave the connection working, malformed lines, a line too long, several clients at
 * once, *CHANGES kept per connection, *PCAP status and arm refusals, *WHO.
 */
import t, { type Test } from 'tap'
import net from 'node:net'
import { ErrorCode, FlyScanError } from '../../src/errors.js'
import { PandaControlClient } from '../../src/panda/index.js'
import { SimPanda } from '../../src/sim/index.js'
import { trackLeaks } from '../support/leaks.js'
import { DataReader, waitFor } from './sim-panda-support.js'

async function start (t: Test): Promise<{ panda: SimPanda, client: PandaControlClient }> {
  trackLeaks(t)
  const panda = await SimPanda.start({ controlPort: 0, dataPort: 0 })
  t.teardown(async () => { await panda.close() })
  const client = await PandaControlClient.connect('127.0.0.1', panda.controlPort, 2000)
  t.teardown(async () => { await client.close() })
  return { panda, client }
}

/** The box's message of a failed command. */
async function errOf (p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    if (err instanceof FlyScanError && err.code === ErrorCode.PANDA_CONTROL_ERR) return `ERR ${String(err.details?.reply ?? err.message)}`
    throw err
  }
  return '(no error)'
}

/** A raw connection: write text, read until `lines` complete reply lines have come. */
async function raw (port: number, text: string, replyLines: number): Promise<{ reply: string, closed: boolean }> {
  const s = net.connect(port, '127.0.0.1')
  let reply = ''
  let closed = false
  s.on('data', (b) => { reply += b.toString() })
  s.on('close', () => { closed = true })
  s.on('error', () => {})
  await new Promise((resolve) => s.once('connect', resolve))
  s.write(text)
  await waitFor(() => closed || reply.split('\n').length > replyLines, 2000, () => `${replyLines} reply lines (have ${JSON.stringify(reply)})`)
  s.destroy()
  await new Promise((resolve) => setImmediate(resolve))
  return { reply, closed }
}

t.test('queries, assignments, attributes and introspection through PandaControlClient', async t => {
  const { client } = await start(t)
  const idn = await client.idn()
  t.equal(idn.name, 'PandA')
  t.match(idn.rootfs, /simulated/)
  const blocks = await client.blocks()
  t.equal(blocks.get('SEQ'), 4)
  t.equal(blocks.get('PCAP'), 1)
  t.equal(blocks.get('TTLOUT'), 10)
  const fields = await client.fields('PCOMP')
  t.same(fields.find((f) => f.name === 'INP'), { name: 'INP', index: 1, type: 'pos_mux', subtype: undefined })
  t.same(fields.find((f) => f.name === 'RELATIVE'), { name: 'RELATIVE', index: 7, type: 'param', subtype: 'enum' })
  t.same(await client.attributes('CLOCK1', 'PERIOD'), ['RAW', 'UNITS'])
  await client.putField('CLOCK1', 'PERIOD', 0.01)
  t.equal(await client.getField('CLOCK1', 'PERIOD'), '0.01')
  t.equal(await client.getAttr('CLOCK1', 'PERIOD', 'RAW'), '1250000')
  await client.putAttr('INENC1', 'VAL', 'CAPTURE', 'Mean')
  t.equal(await client.getAttr('INENC1', 'VAL', 'CAPTURE'), 'Mean')
  t.same(await client.enums('PCAP', 'TRIG_EDGE'), ['Rising', 'Falling', 'Either'])
  t.equal(await client.desc('PCOMP'), 'Position compare')
  t.equal(await client.get('*CLOCK_FREQ'), '125000000')
  t.equal(await client.send({ lines: ['*ECHO hello there?'], label: 'echo', expect: 'value', decode: (r) => r.kind === 'value' ? r.value : '' }), 'hello there')
  t.same(await client.getMultiline('*CAPTURE'), ['INENC1.VAL Mean'])
  t.same(await client.getMultiline('*CAPTURE.OPTIONS'), ['Value', 'Diff', 'Sum', 'Min', 'Max', 'Mean'])
  await client.put('*CAPTURE')
  t.same(await client.getMultiline('*CAPTURE'), [])
  t.ok((await client.getMultiline('*POSITIONS')).includes('FMC_IN.VAL2'))
  t.equal(await client.pcapCompletion(), 'Ok')
  await client.put('*METADATA.DESIGN', 'tst-fly test')
  t.equal(await client.get('*METADATA.DESIGN'), 'tst-fly test')
})

t.test('tables: decimal and base64 writes, streaming chunks, MODE, read back', async t => {
  const { client } = await start(t)
  const rows = [0x00100001, 0xffffffff, 1250, 1250, 0x00200001, 0, 625, 625]
  await client.putTable('SEQ1', 'TABLE', rows)
  t.same([...await client.readTable('SEQ1', 'TABLE')], rows)
  await client.putTable('SEQ2', 'TABLE', rows, { encoding: 'base64' })
  t.same([...await client.readTable('SEQ2', 'TABLE')], rows)
  t.equal(await client.getAttr('SEQ2', 'TABLE', 'MODE'), 'FIXED')
  await client.putTable('SEQ3', 'TABLE', rows.slice(0, 4), { mode: 'append' })
  t.equal(await client.getAttr('SEQ3', 'TABLE', 'MODE'), 'STREAMING')
  t.equal(await errOf(client.putTable('SEQ3', 'TABLE', rows.slice(0, 4))), 'ERR Table is in streaming mode')
  await client.putTable('SEQ3', 'TABLE', rows.slice(4), { mode: 'append-last', encoding: 'base64' })
  t.equal(await client.getAttr('SEQ3', 'TABLE', 'MODE'), 'STREAMING_LAST')
  t.equal(await client.getAttr('SEQ3', 'TABLE', 'QUEUED_LINES'), '2')
  t.equal(await errOf(client.putTable('SEQ3', 'TABLE', rows, { mode: 'append' })), 'ERR Last streaming table was sent')
  await client.putTable('SEQ3', 'TABLE', [])
  t.equal(await client.getAttr('SEQ3', 'TABLE', 'MODE'), 'INIT')
  t.equal(await errOf(client.putTable('SEQ4', 'TABLE', [1, 2, 3])), 'ERR Table write is not a whole number of rows')
  t.same([...await client.readTable('SEQ4', 'TABLE')], [], 'the failed write changed nothing')
})

t.test('ERR replies name the problem and the connection carries on; pipelined replies stay in order', async t => {
  const { client } = await start(t)
  const cases: Array<[Promise<unknown>, string]> = [
    [client.get('NOPE1.VAL'), 'ERR No such block'],
    [client.get('PCAP.NOPE'), 'ERR No such field'],
    [client.get('PCAP.TRIG.NOPE'), 'ERR No such attribute'],
    [client.get('SEQ.TABLE'), 'ERR Missing block number'],
    [client.get('SEQ9.PRESCALE'), 'ERR Invalid block number'],
    [client.put('PCAP.TRIG_EDGE', 'Sideways'), 'ERR Invalid enumeration value'],
    [client.put('PCAP.TRIG', 'CLOCK3.OUT'), 'ERR Invalid bit bus selection'],
    [client.putAttr('INENC1', 'VAL', 'CAPTURE', 'Median'), 'ERR Unknown capture option "Median"'],
    [client.put('PCAP.ACTIVE', 1), 'ERR Field not writeable'],
    [client.get('PCAP.TS_TRIG'), 'ERR Field not readable'],
    [client.get('*NOPE'), 'ERR Unknown command'],
    [client.get('*CHANGES.NOPE'), 'ERR Unknown changes selection'],
    [client.put('*CHANGES', 'X'), 'ERR Invalid reset option'],
    [client.get('*PCAP.NOPE'), 'ERR Invalid *PCAP field'],
    [client.arm(), 'ERR Nothing configured for capture'],
    [client.putTable('PCAP', 'NOPE', [1, 2, 3, 4]), 'ERR No such field']
  ]
  // All sent back to back before any reply is read.
  const got = await Promise.all(cases.map(([p]) => errOf(p)))
  t.same(got, cases.map(([, m]) => m))
  t.equal(await client.getField('PCAP', 'TRIG_EDGE'), 'Rising', 'nothing changed, and the connection still answers')
  t.equal(client.error, undefined)
})

t.test('malformed lines get ERR; a line of 1023 bytes or more drops the connection', async t => {
  const { panda } = await start(t)
  const r = await raw(panda.controlPort, 'garbage\nPCAP.TRIG?x\n*IDN?\r\n*ECHO?\nPCAP.TRIG?\n', 5)
  t.same(r.reply.split('\n').slice(0, 5), [
    'ERR Unknown command', 'ERR Unexpected text after command', 'ERR Unexpected text after command',
    "ERR Character ' ' expected", 'OK =ZERO'
  ])
  const table = await raw(panda.controlPort, 'SEQ1.NOPE<\n1 2 3 4\n5 6 7 8\n\nSEQ1.TABLE<X\n\n*ECHO ok?\n', 3)
  t.same(table.reply.split('\n').slice(0, 3), ['ERR No such field', 'ERR Unexpected character after input', 'OK =ok'],
    'a refused table write still reads its data lines, then answers once')
  const long = await raw(panda.controlPort, `*ECHO ${'x'.repeat(1100)}?\n*IDN?\n`, 1)
  t.ok(long.closed, 'the connection was dropped')
  t.equal(long.reply, '', 'with no reply')
  const under = await raw(panda.controlPort, `*ECHO ${'x'.repeat(300)}?\n*ECHO ${'y'.repeat(10)}?\n`, 2)
  t.same(under.reply.split('\n').slice(0, 2), ['ERR Result too long', `OK =${'y'.repeat(10)}`])
})

t.test('several clients at once, each with its own pipelined replies', async t => {
  const { panda } = await start(t)
  const clients = await Promise.all(Array.from({ length: 5 }, async () => await PandaControlClient.connect('127.0.0.1', panda.controlPort, 2000)))
  t.teardown(async () => { await Promise.all(clients.map(async (c) => await c.close())) })
  const results = await Promise.all(clients.map(async (c, i) => await Promise.all(Array.from({ length: 50 }, async (_, k) =>
    await c.send({ lines: [`*ECHO ${i}-${k}?`], label: 'echo', expect: 'value', decode: (r) => r.kind === 'value' ? r.value : '' })))))
  results.forEach((answers, i) => t.same(answers, Array.from({ length: 50 }, (_, k) => `${i}-${k}`), `client ${i}`))
  await clients[0]?.put('BITS.A', 1)
  t.equal(await clients[4]?.getField('BITS', 'OUTA'), '1', 'one box: a write on one connection is seen on another')
  const who = await clients[1]?.getMultiline('*WHO') ?? []
  t.equal(who.filter((l) => / config 127\.0\.0\.1:\d+ $/.test(l)).length, 6, '*WHO lists every control connection')
})

t.test('*CHANGES is kept per connection', async t => {
  const { panda, client: a } = await start(t)
  const b = await PandaControlClient.connect('127.0.0.1', panda.controlPort, 2000)
  t.teardown(async () => { await b.close() })
  const first = await a.changes()
  t.equal(first.changed.get('PCAP.TRIG'), 'ZERO')
  t.ok(first.multiline.includes('SEQ1.TABLE'), 'tables as NAME<')
  const again = await a.changes()
  t.same([...again.changed.keys()].filter((k) => !k.startsWith('FMC_IN.VAL')), [],
    'nothing new for this connection but the noisy ADC positions')
  t.equal(again.multiline.length, 0)
  await a.put('PCAP.TRIG', 'CLOCK1.OUT')
  await b.putAttr('PCAP', 'TS_TRIG', 'CAPTURE', 'Value')
  t.same([...(await a.changes('CONFIG')).changed], [['PCAP.TRIG', 'CLOCK1.OUT']])
  t.same([...(await a.changes('ATTR')).changed], [['PCAP.TS_TRIG.CAPTURE', 'Value']])
  const forB = await b.changes('CONFIG')
  t.equal(forB.changed.get('PCAP.TRIG'), 'CLOCK1.OUT', 'b has not asked before: it sees everything')
  t.ok(forB.changed.size > 100)
  t.equal((await b.changes('CONFIG')).changed.size, 0)
  await a.put('CLOCK1.WIDTH', 0.001)
  await b.resetChanges()
  t.equal((await b.changes('CONFIG')).changed.size, 0, '*CHANGES= dropped the pending change for b')
  t.same([...(await a.changes('CONFIG')).changed], [['CLOCK1.WIDTH', '0.001']], 'but not for a')
  await a.resetChanges('ATTR', 'start')
  t.equal((await a.changes('ATTR')).changed.get('PCAP.TS_TRIG.CAPTURE'), 'Value', '*CHANGES.ATTR=S reports ATTR again')
  await a.put('BITS.A', 1)
  t.same([...(await a.changes('BITS')).changed], [['BITS.OUTA', '1']], 'bits as they change')
})

t.test('*PCAP: status, arm and disarm, the refusals, captured rows', async t => {
  const { panda, client } = await start(t)
  await client.putAttr('PCAP', 'TS_TRIG', 'CAPTURE', 'Value')
  await client.put('PCAP.ENABLE', 'ONE')
  t.same(await client.pcapStatus(), { state: 'Idle', readers: 0, takingData: 0 })
  const reader = await DataReader.connect(panda.dataPort, 'XML FRAMED SCALED')
  t.teardown(() => reader.close())
  await waitFor(() => reader.text.startsWith('OK\n'), 2000, () => 'OK')
  t.same(await client.pcapStatus(), { state: 'Idle', readers: 1, takingData: 0 })
  await client.arm()
  t.same(await client.pcapStatus(), { state: 'Busy', readers: 1, takingData: 1 })
  t.equal(await client.getField('PCAP', 'ACTIVE'), '1')
  t.equal(await client.pcapCompletion(), 'Busy')
  t.equal(await errOf(client.arm()), 'ERR Data capture already in progress')
  await client.disarm()
  await reader.ended(1)
  t.equal(reader.acquisitions[0]?.end?.reason, 'Disarmed')
  t.equal(await client.pcapCompletion(), 'Disarmed')
  t.equal(await client.pcapCaptured(), 0)
  t.same(await client.pcapStatus(), { state: 'Idle', readers: 1, takingData: 0 })
  const who = await client.getMultiline('*WHO')
  t.ok(who.some((l) => / data 127\.0\.0\.1:\d+ $/.test(l)), '*WHO lists the data connection')
})
