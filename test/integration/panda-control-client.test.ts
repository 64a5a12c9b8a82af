/**
 * PandaControlClient against a tiny scripted TCP server on 127.0.0.1 (a stand-in for the box's control port, not a
 * simulated PandA): typed helpers, pipelining, ERR replies, a table write's exact bytes, the box closing the
 * connection in the middle of a reply, a reply nobody asked for, a reply that never comes, and close().
 */
import t from 'tap'
import net from 'node:net'
import { ErrorCode, FlyScanError } from '../../src/errors.js'
import { PandaControlClient } from '../../src/panda/index.js'
import { trackLeaks } from '../support/leaks.js'

/** A command as the server saw it: its line, plus the data lines of a table write (up to the empty line). */
interface Received {
  readonly line: string
  readonly data: readonly string[]
}

interface ScriptedServer {
  readonly port: number
  /** Every byte each connection sent, as text. */
  readonly raw: string[]
  readonly received: Received[]
}

type Handler = (cmd: Received, socket: net.Socket) => string | undefined

/**
 * Answers each command with `handler`'s text (written as is; undefined writes nothing). A line whose first of
 * `?`, `=`, `<` is `<` starts a table write, which ends at an empty line, as the box reads it.
 */
async function scriptedServer (t: { teardown (fn: () => unknown): void }, handler: Handler, onConnect?: (socket: net.Socket) => void): Promise<ScriptedServer> {
  const raw: string[] = []
  const received: Received[] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    const k = raw.push('') - 1
    let buf = ''
    let table: { line: string, data: string[] } | undefined
    socket.on('data', (chunk) => {
      raw[k] += chunk.toString('latin1')
      buf += chunk.toString('latin1')
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        let cmd: Received | undefined
        if (table !== undefined) {
          if (line === '') { cmd = table; table = undefined } else table.data.push(line)
        } else if (/^[^?=]*</.test(line)) {
          table = { line, data: [] }
        } else {
          cmd = { line, data: [] }
        }
        if (cmd === undefined) continue
        received.push(cmd)
        const reply = handler(cmd, socket)
        if (reply !== undefined && !socket.destroyed) socket.write(reply)
      }
    })
    onConnect?.(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { port: (server.address() as net.AddressInfo).port, raw, received }
}

/** A small box: fields and attributes in a map, ERR for anything else, a few `*` commands. */
function fakeBox (): Handler {
  const values = new Map<string, string>([
    ['PCAP.ACTIVE', '0'], ['PCAP.TRIG', 'ZERO'], ['PULSE1.DELAY.UNITS', 's'], ['CLOCK1.PERIOD', '1']
  ])
  let armed = false
  return ({ line, data }) => {
    if (line === '*IDN?') return 'OK =PandA SW: 4.1 FPGA: 4.1.0 816147d6 00000000 rootfs: PandA 4.1\n'
    if (line === '*BLOCKS?') return '!TTLIN 6\n!SEQ 4\n!PCAP 1\n!CLOCK 2\n.\n'
    if (line === '*DESC.TTLIN.TERM?') return 'OK =Select TTL input termination\n'
    if (line === '*CHANGES?') return '!PCAP.TRIG=CLOCK1.OUT\n!SEQ1.TABLE<\n!BAD1.X (error)\n.\n'
    if (line === '*PCAP.STATUS?') return `OK =${armed ? 'Busy 1 1' : 'Idle 1 0'}\n`
    if (line === '*PCAP.ARM=') {
      if (armed) return 'ERR Data capture already in progress\n'
      armed = true
      return 'OK\n'
    }
    if (line === '*PCAP.DISARM=') { armed = false; return 'OK\n' }
    if (line === 'SEQ1.TABLE<') return data.length > 0 ? 'OK\n' : 'ERR Table write is empty\n'
    if (line === 'SEQ1.TABLE?') return '!1\n!2\n!3\n!4\n.\n'
    const m = /^([A-Z0-9_.]+)([?=])(.*)$/.exec(line)
    if (m === null) return 'ERR Unknown command\n'
    const [, target = '', op, value = ''] = m
    if (!values.has(target)) return 'ERR No such field\n'
    if (op === '?') return `OK =${values.get(target) ?? ''}\n`
    values.set(target, value)
    return 'OK\n'
  }
}

t.test('typed helpers against a scripted box', async (t) => {
  trackLeaks(t)
  const server = await scriptedServer(t, fakeBox())
  const client = await PandaControlClient.connect('127.0.0.1', server.port, 2000)
  t.teardown(() => client.close())
  const idn = await client.idn()
  t.same([idn.name, idn.software, idn.fpga, idn.rootfs], ['PandA', '4.1', '4.1.0 816147d6 00000000', 'PandA 4.1'])
  t.equal(await client.getField('PCAP', 'ACTIVE'), '0')
  await client.putField('PCAP', 'TRIG', 'CLOCK1.OUT')
  t.equal(await client.getField('PCAP', 'TRIG'), 'CLOCK1.OUT')
  t.equal(await client.getAttr('PULSE1', 'DELAY', 'UNITS'), 's')
  await client.putAttr('PULSE1', 'DELAY', 'UNITS', 'ms')
  t.equal(await client.get('PULSE1.DELAY.UNITS'), 'ms')
  await client.putField('CLOCK1', 'PERIOD', 0.01)
  t.equal(await client.getField('CLOCK1', 'PERIOD'), '0.01')
  t.same(await client.blocks(), new Map([['TTLIN', 6], ['SEQ', 4], ['PCAP', 1], ['CLOCK', 2]]))
  t.equal(await client.desc('TTLIN', 'TERM'), 'Select TTL input termination')
  const changes = await client.changes()
  t.same([...changes.changed], [['PCAP.TRIG', 'CLOCK1.OUT']])
  t.same(changes.multiline, ['SEQ1.TABLE'])
  t.same(changes.errors, ['BAD1.X'])
  t.same(await client.pcapStatus(), { state: 'Idle', readers: 1, takingData: 0 })
  await client.arm()
  t.same(await client.pcapStatus(), { state: 'Busy', readers: 1, takingData: 1 })
  await client.disarm()
  t.same(await client.readTable('SEQ1', 'TABLE'), new Uint32Array([1, 2, 3, 4]))
  t.same(await client.getMultiline('SEQ1.TABLE'), ['1', '2', '3', '4'])
  t.same(await client.query('PCAP.ACTIVE'), '0')
  t.same(server.received.map((r) => r.line).slice(0, 4), ['*IDN?', 'PCAP.ACTIVE?', 'PCAP.TRIG=CLOCK1.OUT', 'PCAP.TRIG?'])
  t.same(client.pending, [])
})

t.test('ERR rejects with PANDA_CONTROL_ERR naming the command and the box\'s message; the connection carries on', async (t) => {
  trackLeaks(t)
  const server = await scriptedServer(t, fakeBox())
  const client = await PandaControlClient.connect('127.0.0.1', server.port, 2000)
  t.teardown(() => client.close())
  await t.rejects(client.putField('PCAP', 'NOPE', 1), {
    code: ErrorCode.PANDA_CONTROL_ERR,
    message: `PandA control port 127.0.0.1:${server.port}: 'PCAP.NOPE=1' failed: ERR No such field`
  })
  await client.arm()
  await t.rejects(client.arm(), { code: ErrorCode.PANDA_CONTROL_ERR, message: /'\*PCAP\.ARM=' failed: ERR Data capture already in progress$/ })
  t.equal(await client.getField('PCAP', 'ACTIVE'), '0', 'later commands still work')
  await t.rejects(client.putField('PCAP', 'TRIG', 'A\nB'), { code: ErrorCode.BAD_INPUT }, 'bad input rejects before sending')
  t.notOk(server.raw[0]?.includes('A\nB'), 'nothing of it was sent')
})

t.test('pipelined commands resolve in order when the replies come back together', async (t) => {
  trackLeaks(t)
  let held: string[] = []
  const box = fakeBox()
  // Hold replies until six commands are in, then send them in one write.
  const server = await scriptedServer(t, (cmd, socket) => {
    held.push(box(cmd, socket) ?? '')
    if (held.length < 6) return undefined
    const all = held.join('')
    held = []
    return all
  })
  const client = await PandaControlClient.connect('127.0.0.1', server.port, 2000)
  t.teardown(() => client.close())
  const results = await Promise.allSettled([
    client.getField('PCAP', 'ACTIVE'),
    client.putTable('SEQ1', 'TABLE', [1, 2, 3, 4]),
    client.readTable('SEQ1', 'TABLE'),
    client.getField('PCAP', 'NOPE'),
    client.blocks(),
    client.getAttr('PULSE1', 'DELAY', 'UNITS')
  ])
  t.same(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled'])
  const [active, , table, nope, blocks, units] = results
  t.equal(active?.status === 'fulfilled' && active.value, '0')
  t.same(table?.status === 'fulfilled' && table.value, new Uint32Array([1, 2, 3, 4]))
  t.match(nope?.status === 'rejected' && nope.reason, { code: ErrorCode.PANDA_CONTROL_ERR, message: /'PCAP\.NOPE\?' failed/ })
  t.equal(blocks?.status === 'fulfilled' && blocks.value.get('SEQ'), 4)
  t.equal(units?.status === 'fulfilled' && units.value, 's')
  t.equal(server.received.length, 6, 'all six were sent before any reply came')
})

t.test('a table write\'s exact bytes on the wire', async (t) => {
  trackLeaks(t)
  const server = await scriptedServer(t, () => 'OK\n')
  const client = await PandaControlClient.connect('127.0.0.1', server.port, 2000)
  t.teardown(() => client.close())
  await client.putTable('SEQ1', 'TABLE', [0x00100001, -5, 1250, 1250])
  await client.putTable('SEQ1', 'TABLE', new Uint32Array([7, 8, 9, 10]), { encoding: 'base64', mode: 'append' })
  await client.putTable('SEQ1', 'TABLE', [])
  t.equal(server.raw[0], 'SEQ1.TABLE<\n1048577 4294967291 1250 1250\n\n' + 'SEQ1.TABLE<<B\nBwAAAAgAAAAJAAAACgAAAA==\n\n' + 'SEQ1.TABLE<\n\n')
  t.same(server.received.map((r) => [r.line, r.data.length]), [['SEQ1.TABLE<', 1], ['SEQ1.TABLE<<B', 1], ['SEQ1.TABLE<', 0]])
})

t.test('the box closing mid-reply fails every pending command with CONNECTION naming host:port and the commands', async (t) => {
  trackLeaks(t)
  const server = await scriptedServer(t, ({ line }, socket) => {
    if (line === 'SEQ1.TABLE?') {
      socket.write('!1\n!2\n')
      setTimeout(() => socket.destroy(), 50)
    }
    return undefined
  })
  const client = await PandaControlClient.connect('127.0.0.1', server.port, 2000)
  t.teardown(() => client.close())
  const where = `127.0.0.1:${server.port}`
  const table = client.readTable('SEQ1', 'TABLE')
  const active = client.getField('PCAP', 'ACTIVE')
  const arm = client.arm()
  const pending = "3 commands were pending: 'SEQ1.TABLE?', 'PCAP.ACTIVE?', '*PCAP.ARM='"
  await t.rejects(table, {
    code: ErrorCode.CONNECTION,
    message: `'SEQ1.TABLE?' got no reply (its reply was cut off: 2 lines, 6 bytes from offset 0): PandA control port ${where} closed the connection; ${pending}`
  })
  await t.rejects(active, { code: ErrorCode.CONNECTION, message: `'PCAP.ACTIVE?' got no reply: PandA control port ${where} closed the connection; ${pending}` })
  await t.rejects(arm, { code: ErrorCode.CONNECTION, message: /^'\*PCAP\.ARM=' got no reply/ })
  await client.closed
  t.match(client.error, { code: ErrorCode.CONNECTION })
  await t.rejects(client.idn(), { code: ErrorCode.CONNECTION, message: `PandA control port ${where}: cannot send '*IDN?': the connection has closed (PandA control port ${where} closed the connection; ${pending})` })
})

t.test('a reply with no command pending is a protocol error that ends the connection', async (t) => {
  trackLeaks(t)
  const server = await scriptedServer(t, () => 'OK\n', (socket) => socket.write('OK =surprise\n'))
  const client = await PandaControlClient.connect('127.0.0.1', server.port, 2000)
  t.teardown(() => client.close())
  await client.closed
  t.match(client.error, {
    code: ErrorCode.PANDA_PROTOCOL,
    message: `PandA control port 127.0.0.1:${server.port}, offset 0: a reply (a single value "surprise") with no command pending`
  })
  await t.rejects(client.getField('PCAP', 'ACTIVE'), { code: ErrorCode.CONNECTION, message: /cannot send 'PCAP\.ACTIVE\?': the connection has failed/ })
})

t.test('malformed bytes fail the pending commands with PANDA_PROTOCOL and close the socket', async (t) => {
  trackLeaks(t)
  const server = await scriptedServer(t, ({ line }) => line === 'PCAP.ACTIVE?' ? 'HELLO\n' : undefined)
  const client = await PandaControlClient.connect('127.0.0.1', server.port, 2000)
  t.teardown(() => client.close())
  const a = client.getField('PCAP', 'ACTIVE')
  const b = client.arm()
  await t.rejects(a, { code: ErrorCode.PANDA_PROTOCOL, message: /^'PCAP\.ACTIVE\?' got no reply: PandA control port 127\.0\.0\.1:\d+, offset 0: expected a reply/ })
  await t.rejects(b, { code: ErrorCode.PANDA_PROTOCOL })
  await client.closed
})

t.test('a reply that never comes: TIMEOUT for every pending command, and the connection closes', async (t) => {
  trackLeaks(t)
  // The box hangs at PCAP.ACTIVE? and answers nothing after it.
  let hung = false
  const server = await scriptedServer(t, ({ line }) => {
    if (line === 'PCAP.ACTIVE?') hung = true
    return hung ? undefined : 'OK\n'
  })
  const client = await PandaControlClient.connect('127.0.0.1', server.port, 2000, { replyTimeoutMs: 150 })
  t.teardown(() => client.close())
  await client.arm()
  const started = Date.now()
  const a = client.getField('PCAP', 'ACTIVE')
  const b = client.disarm()
  await t.rejects(a, {
    code: ErrorCode.TIMEOUT,
    message: /^'PCAP\.ACTIVE\?' got no reply: PandA control port 127\.0\.0\.1:\d+ gave no reply to 'PCAP\.ACTIVE\?' within 150 ms .*2 commands were pending/
  })
  await t.rejects(b, { code: ErrorCode.TIMEOUT })
  const waited = Date.now() - started
  t.ok(waited >= 140 && waited < 2000, `failed after ${waited} ms`)
  await client.closed
})

t.test('slow but steady replies do not time out: the bound is on progress', async (t) => {
  trackLeaks(t)
  const server = await scriptedServer(t, ({ line }, socket) => {
    if (line !== 'SEQ1.TABLE?') return 'OK\n'
    const lines = ['!1\n', '!2\n', '!3\n', '!4\n', '.\n']
    const timer = setInterval(() => {
      const next = lines.shift()
      if (next === undefined) clearInterval(timer)
      else if (!socket.destroyed) socket.write(next)
    }, 100)
    return undefined
  })
  const client = await PandaControlClient.connect('127.0.0.1', server.port, 2000, { replyTimeoutMs: 400 })
  t.teardown(() => client.close())
  const started = Date.now()
  t.same(await client.readTable('SEQ1', 'TABLE'), new Uint32Array([1, 2, 3, 4]), 'a line every 100 ms, bound 400 ms')
  t.ok(Date.now() - started > 400, `the whole reply took ${Date.now() - started} ms, longer than the bound`)
})

t.test('close() cancels pending commands, and is idempotent', async (t) => {
  trackLeaks(t)
  const server = await scriptedServer(t, () => undefined)
  const client = await PandaControlClient.connect('127.0.0.1', server.port, 2000)
  const a = client.getField('PCAP', 'ACTIVE')
  const closing = client.close()
  await t.rejects(a, { code: ErrorCode.CANCELLED, message: /^'PCAP\.ACTIVE\?' got no reply: PandA control port 127\.0\.0\.1:\d+ was closed by the client; 1 command was pending/ })
  await closing
  await client.close()
  await t.rejects(client.arm(), { code: ErrorCode.CONNECTION })
})

t.test('connecting to a port nobody listens on is a CONNECTION error naming host:port', async (t) => {
  trackLeaks(t)
  const probe = net.createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  const err = await PandaControlClient.connect('127.0.0.1', port, 2000).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof FlyScanError)
  t.match(err, { code: ErrorCode.CONNECTION, message: new RegExp(`^PandA control port 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`) })
})
