/**
 * tst-fly's CA repeater (src/backends/ca/repeater.ts) and libca starting it through libexec/caRepeater: no
 * "caRepeater couldn't be located" on the client's stderr, beacons reaching the client through it, and the repeater
 * leaving by itself once its clients are gone. Every repeater here is on a free port (EPICS_CA_REPEATER_PORT), never
 * on 5065.
 */
import t from 'tap'
import dgram from 'node:dgram'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { CaRepeater, runCaRepeater } from '../../src/backends/index.js'
import { caRepeaterCommand, IDLE_EXIT_ENV } from '../../src/cli/ca-repeater.js'
import { CaServer, createSimIoc, parseIocConfig } from '../../src/sim/ioc/index.js'
import { ErrorCode } from '../../src/errors.js'

const CHILD = fileURLToPath(new URL('../support/ca-repeater-child.js', import.meta.url))
const PV = 'TST:REPEATER'

/** A UDP port free on 127.0.0.1 (bound, then closed). */
async function freeUdpPort (): Promise<number> {
  const s = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve))
  const port = s.address().port
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

/** Whether something holds UDP `port` (binding 127.0.0.1:port fails, as it does against a 0.0.0.0 bind). */
async function portHeld (port: number): Promise<boolean> {
  const s = dgram.createSocket('udp4')
  return await new Promise<boolean>((resolve) => {
    s.once('error', () => { s.close(() => { resolve(true) }) })
    s.bind(port, '127.0.0.1', () => { s.close(() => { resolve(false) }) })
  })
}

async function until (predicate: () => boolean | Promise<boolean>, ms: number, what: string): Promise<number> {
  const start = Date.now()
  while (!await predicate()) {
    if (Date.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`)
    await sleep(20)
  }
  return Date.now() - start
}

async function boundSocket (t: { teardown (fn: () => unknown): void }): Promise<{ socket: dgram.Socket, got: Buffer[] }> {
  const socket = dgram.createSocket('udp4')
  const got: Buffer[] = []
  socket.on('message', (b) => got.push(b))
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  let closed = false
  socket.once('close', () => { closed = true })
  t.teardown(() => closed ? undefined : new Promise<void>((resolve) => socket.close(() => resolve())))
  return { socket, got }
}

t.test('CaRepeater: forgets a client whose port is free again, then closes itself when idle', async t => {
  const repeater = await CaRepeater.start({ port: 0, idleCloseMs: 300, startGraceMs: 0, checkIntervalMs: 50, log: () => {} })
  t.teardown(() => repeater.close())
  let ended: string | undefined
  repeater.ended.then((end) => { ended = end }, () => {})
  const client = await boundSocket(t)
  client.socket.send(new Uint8Array(0), repeater.port, '127.0.0.1')
  await until(() => client.got.length > 0, 3000, 'REPEATER_CONFIRM')
  await sleep(600)
  t.equal(repeater.clientCount, 1, 'a client holding its port stays registered')
  t.equal(ended, undefined, 'and keeps the repeater up past idleCloseMs')
  const port = repeater.port
  client.socket.close()
  const ms = await until(() => ended !== undefined, 3000, 'the repeater closing after its client left')
  t.equal(ended, 'idle')
  t.equal(repeater.clientCount, 0, 'the client was forgotten')
  t.notOk(await portHeld(port), `its port is free again (${ms} ms after the client closed)`)
})

t.test('CaRepeater: an idle repeater stays up for startGraceMs (libca registers only 10 s after starting one)', async t => {
  const started = Date.now()
  const repeater = await CaRepeater.start({ port: 0, idleCloseMs: 10, startGraceMs: 400, checkIntervalMs: 20, log: () => {} })
  t.teardown(() => repeater.close())
  t.equal(await repeater.ended, 'idle')
  t.ok(Date.now() - started >= 390, `closed after ${Date.now() - started} ms, not before the grace`)
})

t.test('runCaRepeater: exits at once when the port is taken, else repeats until stopped', async t => {
  const holder = await boundSocket(t)
  const lines: string[] = []
  const busy = await runCaRepeater({ host: '127.0.0.1', port: holder.socket.address().port, log: (l) => lines.push(l) })
  t.equal(busy, 'busy', 'another repeater (here: any socket) holds the port')
  t.match(lines.join('\n'), /is in use \(a CA repeater already runs there\)/)
  let stop!: () => void
  const stopped = new Promise<void>((resolve) => { stop = resolve })
  const port = await freeUdpPort()
  const run = runCaRepeater({ host: '127.0.0.1', port, stopped, log: () => {} })
  await until(() => portHeld(port), 3000, 'the repeater binding its port')
  stop()
  t.equal(await run, 'stopped')
  t.notOk(await portHeld(port), 'and its port is free')
})

t.test('tst-fly ca-repeater: bad arguments and environment are BAD_INPUT naming them', async t => {
  const io = { stderr: () => {}, stopped: Promise.resolve() }
  await t.rejects(caRepeaterCommand(['--port', 'x'], io, {}), { code: ErrorCode.BAD_INPUT, message: /--port must be a UDP port 0\.\.65535, got 'x'/ })
  await t.rejects(caRepeaterCommand([], io, { EPICS_CA_REPEATER_PORT: '70000' }), { code: ErrorCode.BAD_INPUT, message: /EPICS_CA_REPEATER_PORT/ })
  await t.rejects(caRepeaterCommand(['--idle-exit=-1'], io, {}), { code: ErrorCode.BAD_INPUT, message: /--idle-exit must be a number of seconds/ })
  await t.rejects(caRepeaterCommand([], io, { [IDLE_EXIT_ENV]: 'soon' }), { code: ErrorCode.BAD_INPUT, message: new RegExp(IDLE_EXIT_ENV) })
  await t.rejects(caRepeaterCommand(['extra'], io, {}), { code: ErrorCode.BAD_INPUT, message: /no positional arguments/ })
})

// ---------------------------------------------------------------------------------------------------------------
// libca starting the repeater, in child processes.

interface ChildEvent {
  readonly atMs: number
  readonly event: string
  readonly periodMs?: number | null
  readonly anomalies?: number
}

interface Client {
  readonly events: ChildEvent[]
  stderr: string
  last: (event: string) => ChildEvent | undefined
  count: (event: string) => number
  end: () => Promise<number | null>
}

function startClient (t: { teardown (fn: () => unknown): void }, udpPort: number, env: Record<string, string>): Client {
  const child = spawn(process.execPath, [CHILD, String(udpPort), PV], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  const client: Client = {
    events: [],
    stderr: '',
    last: (event) => client.events.findLast((e) => e.event === event),
    count: (event) => client.events.filter((e) => e.event === event).length,
    end: async () => {
      if (child.exitCode !== null) return child.exitCode
      const exited = once(child, 'exit')
      child.stdin.end()
      await exited
      return child.exitCode
    }
  }
  let partial = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    partial += d
    let nl = partial.indexOf('\n')
    while (nl >= 0) {
      client.events.push(JSON.parse(partial.slice(0, nl)) as ChildEvent)
      partial = partial.slice(nl + 1)
      nl = partial.indexOf('\n')
    }
  })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { client.stderr += d })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  return client
}

t.test('libca starts tst-fly\'s caRepeater: no noise on stderr, beacons reach the client, the repeater exits by itself', async t => {
  const repeaterPort = await freeUdpPort()
  // The control client's repeater port is held by a socket that never answers: libca sees a repeater installed,
  // starts none, and registers in vain, as a client with no repeater at all.
  const silent = await boundSocket(t)
  const ioc = createSimIoc(parseIocConfig({ records: [{ name: PV, type: 'ao', value: 1 }] }, 'ca-repeater.test'))
  t.teardown(() => { ioc.close() })
  // Beacons go to the repeater's port; their period is kept short so that two arrive soon after libca registers.
  const serve = async (udpPort: number): Promise<CaServer> =>
    await CaServer.start({ provider: ioc, host: '127.0.0.1', tcpPort: 0, udpPort, beaconPort: repeaterPort, beaconMaxPeriodMs: 200, log: () => {} })
  let server = await serve(0)
  const udpPort = server.udpPort
  t.teardown(() => server.close())

  t.notOk(await portHeld(repeaterPort), `nothing on the repeater port ${repeaterPort} yet`)
  const withRepeater = startClient(t, udpPort, { EPICS_CA_REPEATER_PORT: String(repeaterPort), [IDLE_EXIT_ENV]: '0.5' })
  const control = startClient(t, udpPort, { EPICS_CA_REPEATER_PORT: String(silent.socket.address().port) })
  await until(() => withRepeater.count('connected') > 0 && control.count('connected') > 0, 10_000, 'both clients connected')
  await until(() => portHeld(repeaterPort), 5000, 'the repeater libca started holding its port')
  t.pass('libca started tst-fly\'s caRepeater on EPICS_CA_REPEATER_PORT')

  // libca registers with the repeater 10 s after it started; beacons flow from then on.
  const waited = await until(() => typeof withRepeater.last('beacons')?.periodMs === 'number', 25_000, 'a beacon period known to the client')
  const period = withRepeater.last('beacons')?.periodMs ?? 0
  t.ok(period > 0 && period < 1000, `the client measured the server's beacon period: ${period.toFixed(0)} ms (known ${waited} ms after connecting)`)
  t.equal(control.last('beacons')?.periodMs, null, 'the control client never heard a beacon')

  // Restart the server: the new server's beacons are an anomaly the client sees (it then searches again at once
  // for channels in long search back-off; channels lost a moment ago wait for libca's 10 s disconnect governor).
  const anomaliesBefore = withRepeater.last('beacons')?.anomalies ?? 0
  const connectedBefore = [withRepeater.count('connected'), control.count('connected')]
  await server.close()
  await until(() => withRepeater.count('disconnected') > 0 && control.count('disconnected') > 0, 5000, 'both clients disconnected')
  await sleep(500)
  const restarted = Date.now()
  server = await serve(udpPort)
  await until(() => (withRepeater.last('beacons')?.anomalies ?? 0) > anomaliesBefore, 5000, 'a beacon anomaly for the restarted server')
  t.pass(`the client counted the restarted server's beacons as an anomaly (${anomaliesBefore} → ${withRepeater.last('beacons')?.anomalies ?? 0})`)
  await until(() => withRepeater.count('connected') > (connectedBefore[0] ?? 0), 20_000, 'the client with the repeater reconnected')
  const withMs = Date.now() - restarted
  await until(() => control.count('connected') > (connectedBefore[1] ?? 0), 20_000, 'the control client reconnected')
  const withoutMs = Date.now() - restarted
  t.comment(`reconnect after the restart: ${withMs} ms with the repeater, ${withoutMs} ms without (both bounded by the disconnect governor)`)
  t.equal(control.last('beacons')?.anomalies, 0, 'the control client saw no anomaly')

  t.equal(await withRepeater.end(), 0)
  t.equal(await control.end(), 0)
  t.notMatch(withRepeater.stderr, /caRepeater|CA repeater/, `nothing about the repeater on the client's stderr: ${JSON.stringify(withRepeater.stderr)}`)
  // Its only client gone, the repeater leaves by itself: at the earliest 15 s after it started (libca's
  // registration delay), then within a check interval (5 s) plus the idle time the test set (0.5 s).
  const left = await until(async () => !await portHeld(repeaterPort), 30_000, 'the repeater exiting once its client left')
  t.pass(`the repeater left ${left} ms after its last client`)
})
