import t from 'tap'
import dgram from 'node:dgram'
import { setTimeout as sleep } from 'node:timers/promises'
// Devices first, backends after: the other import order of the CA signal factories' cycle (the unit test has the first).
import { SignalRW } from '../../src/devices/index.js'
import {
  CaChannel, CaContext, type CaConnectionState, type CaRawUpdate, CaSignalBackend, caSignalRW, Dbe, destroyCaContext
} from '../../src/backends/index.js'
import { CaServer, type PvListener, type PvProvider, type PvState, type ServedPv } from '../../src/sim/ioc/index.js'
import {
  DbeMask, DbrBase, DbrClass, type DbrMetadata, type DbrPayload, type DbrValue, dbrType, EPICS_EPOCH_OFFSET_S, epicsTimeFromMs,
  epicsTimeToPosixSeconds
} from '../../src/parsers/index.js'
import { ErrorCode, type FlyScanError, isFlyScanError } from '../../src/errors.js'
import { privateCaRepeater } from '../support/ca-repeater.js'

// Before any context: this process's libca uses a repeater of its own, on a free port.
await privateCaRepeater(t)

// ---------------------------------------------------------------------------------------------------------------
// A tiny PV provider: just enough ServedPvs for the client, independent of the simulated IOC's records.

interface TestPvOptions {
  readonly meta?: DbrMetadata
  readonly writable?: boolean
  /** A put resolves this long after it is received (a WRITE_NOTIFY waits for it). */
  readonly putDelayMs?: number
  /** A put rejects with this message. */
  readonly putError?: string
}

class TestPv implements ServedPv {
  readonly writable: boolean
  readonly #listeners = new Set<PvListener>()
  readonly #options: TestPvOptions
  #state!: PvState
  puts = 0

  constructor (readonly name: string, readonly base: DbrBase, readonly maxCount: number, value: DbrValue, options: TestPvOptions = {}) {
    this.writable = options.writable ?? true
    this.#options = options
    this.set(value)
  }

  get (): PvState { return this.#state }
  metadata (): DbrMetadata { return this.#options.meta ?? {} }

  async put (value: DbrValue): Promise<void> {
    this.puts++
    if (this.#options.putError !== undefined) throw new Error(this.#options.putError)
    if (this.#options.putDelayMs !== undefined) await sleep(this.#options.putDelayMs)
    this.set(value)
  }

  set (value: DbrValue, severity = 0): void {
    this.#state = { value, status: severity === 0 ? 0 : 3, severity, stamp: epicsTimeFromMs(Date.now()) }
    for (const l of [...this.#listeners]) l(this.#state, DbeMask.VALUE | DbeMask.LOG | (severity === 0 ? 0 : DbeMask.ALARM))
  }

  subscribe (listener: PvListener): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }
}

const FRAME = 728 * 544
const WAVE = 1_000_000

function makePvs (): Map<string, TestPv> {
  const wave = new Float64Array(WAVE)
  for (let i = 0; i < WAVE; i++) wave[i] = i * 0.5
  const frame = new Uint8Array(FRAME)
  for (let i = 0; i < FRAME; i++) frame[i] = i % 251
  const pvs = [
    new TestPv('TST:DOUBLE', DbrBase.DOUBLE, 1, new Float64Array([1.5]), {
      meta: {
        units: 'mm',
        precision: 3,
        upperDispLimit: 100,
        lowerDispLimit: -100,
        upperAlarmLimit: 90,
        upperWarningLimit: 80,
        lowerWarningLimit: -80,
        lowerAlarmLimit: -90,
        upperCtrlLimit: 50,
        lowerCtrlLimit: -50
      }
    }),
    new TestPv('TST:LONG', DbrBase.LONG, 1, new Int32Array([7]), { meta: { units: 'cts', upperDispLimit: 1000, lowerDispLimit: 0 } }),
    new TestPv('TST:ENUM', DbrBase.ENUM, 1, new Uint16Array([0]), { meta: { enumStrings: ['Off', 'On', 'Fault'] } }),
    new TestPv('TST:STRING', DbrBase.STRING, 1, ['hello']),
    new TestPv('TST:WAVE', DbrBase.DOUBLE, WAVE, wave, { meta: { units: 'V', precision: 2 } }),
    new TestPv('TST:FRAME', DbrBase.CHAR, FRAME, frame),
    new TestPv('TST:PATH', DbrBase.CHAR, 256, new TextEncoder().encode('/data/tst\0')),
    new TestPv('TST:SLOW', DbrBase.DOUBLE, 1, new Float64Array([0]), { putDelayMs: 300 }),
    new TestPv('TST:FAIL', DbrBase.DOUBLE, 1, new Float64Array([0]), { putError: 'interlock open' }),
    new TestPv('TST:RO', DbrBase.DOUBLE, 1, new Float64Array([3]), { writable: false })
  ]
  return new Map(pvs.map((pv) => [pv.name, pv]))
}

function providerOf (pvs: Map<string, TestPv>): PvProvider {
  return { find: (name) => pvs.get(name), names: () => [...pvs.keys()] }
}

function pv (pvs: Map<string, TestPv>, name: string): TestPv {
  const found = pvs.get(name)
  if (found === undefined) throw new Error(`no test PV ${name}`)
  return found
}

/** Resolve when `predicate` holds, polling every 5 ms; reject after `ms` naming `what`. */
async function until (predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`)
    await sleep(5)
  }
}

/** A UDP port nobody answers on: bound, then closed. */
async function unusedUdpPort (): Promise<number> {
  const s = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve))
  const port = s.address().port
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

// ---------------------------------------------------------------------------------------------------------------
// Without a server: the context and the connect timeout.

t.test('without a server', async t => {
  const port = await unusedUdpPort()
  const config = { addrList: `127.0.0.1:${port}`, autoAddrList: false }
  t.teardown(destroyCaContext)

  t.test('one preemptive context per thread, destroyed twice safely, then created anew', async t => {
    const ctx = CaContext.get(config)
    t.equal(CaContext.get(), ctx, 'the same context for the thread')
    t.equal(CaContext.get(config), ctx, 'asking with the same config is fine')
    t.ok(ctx.lib.preemptiveCallbackIsEnabled(), 'preemptive callbacks')
    t.same(ctx.settings.find((s) => s.name === 'EPICS_CA_ADDR_LIST'), { name: 'EPICS_CA_ADDR_LIST', value: `127.0.0.1:${port}`, from: 'config' })
    t.throws(() => CaContext.get({ addrList: '10.1.2.3' }), { code: ErrorCode.BAD_INPUT, message: /cannot be reused/ })
    await ctx.destroy()
    await ctx.destroy()
    t.ok(ctx.destroyed)
    t.equal(CaContext.current(), undefined)
    t.throws(() => new CaChannel('TST:X', { context: ctx }), { code: ErrorCode.CANCELLED })
    const again = CaContext.get(config)
    t.not(again, ctx, 'a new context after destroy')
    await again.destroy()
  })

  t.test('a context\'s EPICS_CA_* settings do not leak into the next one as if the user had set them', async t => {
    const userAddrList = process.env.EPICS_CA_ADDR_LIST
    t.teardown(() => {
      if (userAddrList === undefined) delete process.env.EPICS_CA_ADDR_LIST
      else process.env.EPICS_CA_ADDR_LIST = userAddrList
    })
    delete process.env.EPICS_CA_ADDR_LIST
    const first = CaContext.get(config)
    t.equal(process.env.EPICS_CA_ADDR_LIST, `127.0.0.1:${port}`, 'set in the (main thread\'s) environment for libca')
    await first.destroy()
    const second = CaContext.get({ autoAddrList: false })
    t.equal(second.settings.find((s) => s.name === 'EPICS_CA_ADDR_LIST'), undefined, 'the first config\'s address list is gone')
    t.equal(process.env.EPICS_CA_ADDR_LIST, undefined, 'and unset again')
    t.match(second.describeSearch(), /EPICS_CA_ADDR_LIST unset/)
    await second.destroy()
    process.env.EPICS_CA_ADDR_LIST = '127.0.0.9'
    const third = CaContext.get({ autoAddrList: false })
    t.same(third.settings.find((s) => s.name === 'EPICS_CA_ADDR_LIST'), { name: 'EPICS_CA_ADDR_LIST', value: '127.0.0.9', from: 'environment' })
    await third.destroy()
  })

  t.test('connecting to a PV nobody serves is NOT_CONNECTED naming the PV and the address list', async t => {
    const ch = new CaChannel('TST:NOBODY', { context: CaContext.get(config) })
    const started = Date.now()
    await t.rejects(ch.waitConnected(400), {
      code: ErrorCode.NOT_CONNECTED,
      message: new RegExp(`TST:NOBODY did not connect within 400 ms: no server answered the search \\(EPICS_CA_ADDR_LIST="127\\.0\\.0\\.1:${port}" EPICS_CA_AUTO_ADDR_LIST="NO"`)
    })
    t.ok(Date.now() - started >= 390, 'waited the whole timeout')
    t.equal(ch.state, 'connecting')
    t.throws(() => ch.nativeType, { code: ErrorCode.NOT_CONNECTED, message: /TST:NOBODY has not connected yet/ })
    const backend = new CaSignalBackend<number>('TST:NOBODY2')
    await t.rejects(backend.connect(200), { code: ErrorCode.NOT_CONNECTED, message: /TST:NOBODY2/ })
    await ch.clear()
    await ch.clear()
    t.equal(ch.state, 'closed')
    await t.rejects(ch.get({ type: 6 }), { code: ErrorCode.CANCELLED })
  })
})

// ---------------------------------------------------------------------------------------------------------------
// Against the simulated IOC's CA server.

t.test('against a CA server', async t => {
  const log: string[] = []
  const pvs = makePvs()
  let server = await CaServer.start({ provider: providerOf(pvs), tcpPort: 0, udpPort: 0, beaconPort: 0, log: (line) => log.push(line) })
  const udpPort = server.udpPort
  const context = CaContext.get({ addrList: `127.0.0.1:${udpPort}`, autoAddrList: false, maxArrayBytes: 20_000_000 })
  t.teardown(async () => {
    await destroyCaContext()
    await server.close()
  })

  async function channel (name: string): Promise<CaChannel> {
    const ch = new CaChannel(name, { context })
    await ch.waitConnected(5000)
    return ch
  }

  t.test('native type, element count, get and put of each scalar type', async t => {
    const d = await channel('TST:DOUBLE')
    t.equal(d.nativeType, DbrBase.DOUBLE)
    t.equal(d.elementCount, 1)
    t.match(d.host, /:\d+$/)
    const before = Date.now() / 1000
    let got = await d.get()
    t.same(got.value, new Float64Array([1.5]))
    t.ok(got.stamp !== undefined && Math.abs(epicsTimeToPosixSeconds(got.stamp) - before) < 5, 'a DBR_TIME stamp near now')
    await d.put(dbrType(DbrBase.DOUBLE, DbrClass.PLAIN), new Float64Array([-2.25]), true)
    t.same(pv(pvs, 'TST:DOUBLE').get().value, new Float64Array([-2.25]), 'the server has the value once the put completed')
    got = await d.get({ type: dbrType(DbrBase.STRING, DbrClass.PLAIN) })
    t.same(got.value, ['-2.25'], 'any DBR type may be asked for')

    const l = await channel('TST:LONG')
    t.equal(l.nativeType, DbrBase.LONG)
    await l.put(dbrType(DbrBase.LONG, DbrClass.PLAIN), new Int32Array([-123456]), false)
    await until(() => (pv(pvs, 'TST:LONG').get().value[0] as number) === -123456, 2000, 'put without completion arrives')
    t.same((await l.get()).value, new Int32Array([-123456]))

    const e = await channel('TST:ENUM')
    t.equal(e.nativeType, DbrBase.ENUM)
    await e.put(dbrType(DbrBase.ENUM, DbrClass.PLAIN), new Uint16Array([2]), true)
    t.same((await e.get()).value, new Uint16Array([2]))
    const ctrl = await e.get({ type: dbrType(DbrBase.ENUM, DbrClass.CTRL), count: 1 })
    t.same(ctrl.metadata?.enumStrings, ['Off', 'On', 'Fault'])

    const s = await channel('TST:STRING')
    t.equal(s.nativeType, DbrBase.STRING)
    await s.put(dbrType(DbrBase.STRING, DbrClass.PLAIN), ['a string of 39 characters, the longest!'], true)
    t.same((await s.get()).value, ['a string of 39 characters, the longest!'])
  })

  t.test('put with completion waits for the server; failures name the PV and libca\'s message', async t => {
    const slow = await channel('TST:SLOW')
    let started = Date.now()
    await slow.put(dbrType(DbrBase.DOUBLE, DbrClass.PLAIN), new Float64Array([5]), true)
    t.ok(Date.now() - started >= 290, `completion waited for the 300 ms put (${Date.now() - started} ms)`)
    started = Date.now()
    await slow.put(dbrType(DbrBase.DOUBLE, DbrClass.PLAIN), new Float64Array([6]), false)
    t.ok(Date.now() - started < 200, 'without completion it returns at once')

    const fail = await channel('TST:FAIL')
    await t.rejects(fail.put(dbrType(DbrBase.DOUBLE, DbrClass.PLAIN), new Float64Array([1]), true), {
      code: ErrorCode.CA,
      message: /put of DBR_DOUBLE to TST:FAIL failed: .+/,
      details: { pv: 'TST:FAIL' }
    })
    const ro = await channel('TST:RO')
    await t.rejects(ro.put(dbrType(DbrBase.DOUBLE, DbrClass.PLAIN), new Float64Array([1]), true), {
      code: ErrorCode.CA,
      message: /TST:RO failed: Write access denied/
    })
    // Without completion, the server's refusal comes back as an exception; libca's default would abort() the process.
    const exceptions: FlyScanError[] = []
    const stop = context.onException((err) => exceptions.push(err))
    await fail.put(dbrType(DbrBase.DOUBLE, DbrClass.PLAIN), new Float64Array([1]), false)
    await until(() => exceptions.length >= 1, 2000, 'the exception of a refused put without completion')
    stop()
    t.match(exceptions[0], { code: ErrorCode.CA, message: /Channel Access exception on TST:FAIL: .+/, details: { pv: 'TST:FAIL' } })
    t.equal(pv(pvs, 'TST:FAIL').puts, 2, 'both puts reached the server')
    await t.rejects(slow.put(dbrType(DbrBase.DOUBLE, DbrClass.PLAIN), new Float64Array([1, 2]), true), {
      code: ErrorCode.BAD_INPUT, message: /cannot write 2 elements to TST:SLOW: it holds at most 1/
    })
  })

  t.test('monitors deliver decoded DBR_TIME values, then stop when closed', async t => {
    const d = await channel('TST:DOUBLE')
    const seen: DbrPayload[] = []
    const m = d.monitor((p) => seen.push(p))
    await until(() => seen.length >= 1, 2000, 'the first update (the current value)')
    pv(pvs, 'TST:DOUBLE').set(new Float64Array([10]))
    pv(pvs, 'TST:DOUBLE').set(new Float64Array([11]), 2)
    await until(() => seen.length >= 3, 2000, 'two more updates')
    t.same(seen.slice(-2).map((p) => [p.value[0], p.severity]), [[10, 0], [11, 2]], 'values and alarm severity')
    t.ok(seen.every((p) => p.stamp !== undefined), 'DBR_TIME structures')
    await m.close()
    await m.close()
    const n = seen.length
    pv(pvs, 'TST:DOUBLE').set(new Float64Array([12]))
    await sleep(100)
    t.equal(seen.length, n, 'nothing after close')
    t.equal(Dbe.VALUE | Dbe.ALARM, 5)
  })

  t.test('the signal backend: metadata from DBR_CTRL, readings, puts and one monitor', async t => {
    const d = new CaSignalBackend<number>('TST:DOUBLE', { context })
    await d.connect(5000)
    t.equal(d.dtype, 'number')
    t.equal(d.source('x'), 'ca://TST:DOUBLE')
    t.same(await d.getDatakey('ca://TST:DOUBLE'), {
      dtype: 'number',
      shape: [],
      source: 'ca://TST:DOUBLE',
      dtype_numpy: '<f8',
      units: 'mm',
      precision: 3,
      limits: {
        control: { low: -50, high: 50 },
        display: { low: -100, high: 100 },
        warning: { low: -80, high: 80 },
        alarm: { low: -90, high: 90 }
      }
    })
    await d.put(4.5, true)
    const r = await d.getReading()
    t.equal(r.value, 4.5)
    t.equal(r.alarmSeverity, 0)
    t.ok(Math.abs(r.timestamp - Date.now() / 1000) < 5, 'timestamp in POSIX seconds')
    t.equal(await d.getSetpoint(), 4.5)
    const readings: number[] = []
    d.setCallback((reading) => readings.push(reading.value))
    await until(() => readings.length >= 1, 2000, 'the current reading')
    d.setCallback((reading) => readings.push(reading.value * 10))
    pv(pvs, 'TST:DOUBLE').set(new Float64Array([7]))
    await until(() => readings.includes(70), 2000, 'the replaced callback gets updates of the same monitor')
    d.setCallback(undefined)

    const e = new CaSignalBackend<string>('TST:ENUM', { context })
    await e.connect(5000)
    t.equal(e.dtype, 'string')
    t.same(e.metadata.choices, ['Off', 'On', 'Fault'])
    await e.put('On', true)
    t.equal(await e.getValue(), 'On')
    t.same(pv(pvs, 'TST:ENUM').get().value, new Uint16Array([1]))
    await t.rejects(e.put('Sideways', true), { code: ErrorCode.BAD_INPUT, message: /"Sideways" is not a choice of TST:ENUM/ })
    const b = new CaSignalBackend<boolean>('TST:ENUM', { context, datatype: 'boolean' })
    await b.connect(5000)
    t.equal(await b.getValue(), true)
    await b.put(false, true)
    t.equal(await e.getValue(), 'Off')

    const l = new CaSignalBackend<number>('TST:LONG', { context })
    await l.connect(5000)
    t.equal(l.dtype, 'integer')
    t.equal((await l.getDatakey('s')).dtype_numpy, '<i4')
    await l.put(42, true)
    t.equal(await l.getValue(), 42)

    const s = new CaSignalBackend<string>('TST:STRING', { context })
    await s.connect(5000)
    t.equal(s.dtype, 'string')
    await s.put('written', false)
    await until(() => (pv(pvs, 'TST:STRING').get().value as string[])[0] === 'written', 2000, 'string put')
    t.equal(await s.getValue(), 'written')

    const path = new CaSignalBackend<string>('TST:PATH', { context, datatype: 'string' })
    await path.connect(5000)
    t.equal(await path.getValue(), '/data/tst', 'a CHAR waveform read as a long string')
    await path.put('/nsls2/data/tst/legacy/mock-proposals/2025-2/pass-56789/assets/manta1/2025/06/01', true)
    t.equal(await path.getValue(), '/nsls2/data/tst/legacy/mock-proposals/2025-2/pass-56789/assets/manta1/2025/06/01')

    const fail = new CaSignalBackend<string>('TST:STRING', { context, datatype: 'boolean' })
    await t.rejects(fail.connect(5000), { code: ErrorCode.BAD_INPUT, message: /TST:STRING is DBR_STRING .* cannot be read as 'boolean'/ })

    // Through a Signal, as devices use it.
    const sig = caSignalRW<number>('TST:DOUBLE', { context, name: 'dbl' })
    t.ok(sig instanceof SignalRW)
    await sig.connect({ timeout: 5000 })
    await sig.set(3.25)
    t.same(await sig.read(), { dbl: { value: 3.25, timestamp: (await sig.read()).dbl?.timestamp, alarmSeverity: 0 } })
    t.equal((await sig.describe()).dbl?.source, 'ca://TST:DOUBLE')
  })

  t.test('1,000,000-element double waveform: get, put with completion, monitor', async t => {
    const w = await channel('TST:WAVE')
    t.equal(w.elementCount, WAVE)
    const started = performance.now()
    const got = await w.get()
    const ms = performance.now() - started
    t.equal(got.value.length, WAVE)
    t.equal(got.value[WAVE - 1], (WAVE - 1) * 0.5)
    t.ok(got.value instanceof Float64Array)
    t.comment(`1M-double get (server in the same thread): ${ms.toFixed(1)} ms`)

    const next = new Float64Array(WAVE)
    next.fill(2.5)
    await w.put(dbrType(DbrBase.DOUBLE, DbrClass.PLAIN), next, true)
    t.equal(pv(pvs, 'TST:WAVE').get().value[WAVE - 1], 2.5)

    const backend = new CaSignalBackend<Float64Array>('TST:WAVE', { context })
    await backend.connect(5000)
    t.equal(backend.dtype, 'array')
    t.same((await backend.getDatakey('w')).shape, [WAVE])
    const updates: Float64Array[] = []
    backend.setCallback((r) => updates.push(r.value))
    await until(() => updates.length >= 1, 5000, 'first waveform update')
    const third = new Float64Array(WAVE)
    third[0] = 9
    third[WAVE - 1] = 99
    pv(pvs, 'TST:WAVE').set(third)
    await until(() => updates.length >= 2, 5000, 'second waveform update')
    t.equal(updates[1]?.[WAVE - 1], 99)
    t.equal(updates[1]?.length, WAVE)
    backend.setCallback(undefined)
    await backend.close()
  })

  t.test('camera-sized CHAR frames: decoded monitor and raw monitor', async t => {
    const f = await channel('TST:FRAME')
    t.equal(f.nativeType, DbrBase.CHAR)
    t.equal(f.elementCount, FRAME)
    const frames: Uint8Array[] = []
    const m = f.monitor((p) => frames.push(p.value as Uint8Array))
    const sums: number[] = []
    const raw = f.monitorRaw(dbrType(DbrBase.CHAR, DbrClass.TIME), 0, (bytes, type, count) => {
      t.equal(type, dbrType(DbrBase.CHAR, DbrClass.TIME))
      t.equal(count, FRAME)
      t.equal(bytes.length, 15 + FRAME, 'dbr_time_char: status, severity, stamp, 3 pad bytes (db_access.h), then the frame')
      sums.push(bytes[15 + FRAME - 1] as number)
    })
    await until(() => frames.length >= 1 && sums.length >= 1, 5000, 'first frame on both monitors')
    for (let k = 1; k <= 5; k++) {
      const frame = new Uint8Array(FRAME).fill(k)
      pv(pvs, 'TST:FRAME').set(frame)
      await until(() => frames.length >= k + 1 && sums.length >= k + 1, 5000, `frame ${k}`)
    }
    t.same(frames.slice(1).map((x) => [x.length, x[0], x[FRAME - 1]]), [1, 2, 3, 4, 5].map((k) => [FRAME, k, k]))
    t.same(sums.slice(1), [1, 2, 3, 4, 5])
    t.equal(frames[1]?.[0], 1, 'copies: earlier frames keep their values')
    await Promise.all([m.close(), raw.close()])
  })

  t.test('monitorCopy: each frame copied straight into a SharedArrayBuffer slot; no view of libca\'s buffer per update', async t => {
    const f = await channel('TST:FRAME')
    pv(pvs, 'TST:FRAME').set(Uint8Array.from({ length: FRAME }, (_, i) => i % 251))
    // Count koffi views of libca's buffers (each one a new ArrayBuffer): monitorCopy, the decoded monitor and get
    // must make none.
    const lib = context.lib as { view: (pointer: bigint, bytes: number) => Uint8Array }
    const view = lib.view
    let views = 0
    lib.view = (pointer, bytes) => { views++; return view(pointer, bytes) }
    t.teardown(() => { lib.view = view })

    const ring = new SharedArrayBuffer(64 + 2 * FRAME)
    const slots = [new Uint8Array(ring, 64, FRAME), new Uint8Array(ring, 64 + FRAME, FRAME)]
    const header = new Uint8Array(16)
    const shapes: Array<[number, number, number, number, number]> = []
    const decodedFirst: number[] = []
    const errors: string[] = []
    let kept: CaRawUpdate | undefined
    let n = 0
    const type = dbrType(DbrBase.CHAR, DbrClass.TIME)
    const m = f.monitorCopy(type, 0, (update) => {
      shapes.push([update.type, update.count, update.byteLength, update.valueOffset, update.valueBytes])
      update.copyTo(slots[n % 2] as Uint8Array)
      update.copyTo(header, 0, update.valueOffset)
      if (n === 0) {
        decodedFirst.push(...(update.decode().value as Uint8Array).subarray(0, 3))
        for (const bad of [() => { update.copyTo(new Uint8Array(10)) }, () => { update.copyTo(header, update.byteLength - 1, 2) }]) {
          try { bad() } catch (err) { errors.push((err as FlyScanError).code + ' ' + (err as Error).message) }
        }
      }
      kept = update
      n++
    })
    await until(() => n >= 1, 5000, 'the first frame')
    t.same(shapes[0], [type, FRAME, 15 + FRAME, 15, FRAME], 'dbr_time_char: 15 header bytes (db_access.h), then the frame')
    t.same(decodedFirst, [0, 1, 2], 'update.decode() gives what monitor() gives')
    t.same([...(slots[0] as Uint8Array).subarray(0, 3)], [0, 1, 2], 'the current frame, copied into slot 0')
    t.equal(errors[0], `FLY_ERR_BAD_INPUT copy of ${FRAME} bytes of TST:FRAME into a 10-byte destination`)
    t.match(errors[1], /FLY_ERR_BAD_INPUT copy of bytes \d+\.\.\d+ from a \d+-byte DBR_TIME_CHAR update of TST:FRAME: outside the structure/)
    t.throws(() => { kept?.copyTo(header, 0, 4) }, { code: ErrorCode.BAD_INPUT, message: /TST:FRAME update after its callback returned/ },
      'the update is unusable once its callback returned')
    for (let k = 1; k <= 4; k++) {
      pv(pvs, 'TST:FRAME').set(new Uint8Array(FRAME).fill(k))
      await until(() => n >= k + 1, 5000, `frame ${k}`)
      const slot = slots[k % 2] as Uint8Array
      t.same([slot[0], slot[FRAME - 1], (slots[(k + 1) % 2] as Uint8Array)[0]], [k, k, k === 1 ? 0 : k - 1],
        `frame ${k} in slot ${k % 2}, the previous frame untouched in the other`)
    }
    const stamp = new DataView(header.buffer).getUint32(4, true) + EPICS_EPOCH_OFFSET_S
    t.ok(Math.abs(stamp - Date.now() / 1000) < 60, 'the header copy holds the DBR_TIME stamp (host order)')
    await m.close()

    const decoded: Uint8Array[] = []
    const dm = f.monitor((p) => decoded.push(p.value as Uint8Array))
    await until(() => decoded.length >= 1, 5000, 'a decoded frame')
    await dm.close()
    const value = decoded[0] as Uint8Array
    t.equal(Object.getPrototypeOf(value), Uint8Array.prototype, 'a plain Uint8Array')
    t.ok(value.byteOffset === 0 && value.buffer.byteLength === FRAME, 'owning its whole ArrayBuffer (transferable)')
    const wave = await (await channel('TST:WAVE')).get({ type: dbrType(DbrBase.DOUBLE, DbrClass.CTRL) })
    t.equal(wave.value.length, WAVE)
    t.ok(wave.value instanceof Float64Array)
    t.match(wave.metadata, { units: 'V', precision: 2 }, 'a DBR_CTRL array: header decoded, value copied once')
    t.equal(views, 0, 'monitorCopy, monitor and get made no view of libca\'s buffer')

    const raw = f.monitorRaw(type, 0, () => {})
    pv(pvs, 'TST:FRAME').set(new Uint8Array(FRAME).fill(9))
    await until(() => views > 0, 5000, 'monitorRaw\'s view')
    await raw.close()
    t.pass('monitorRaw still wraps libca\'s buffer in a view (the spy sees it)')
  })

  t.test('clearing monitors and channels while updates stream does not deadlock', async t => {
    // libca holds its callback lock while koffi waits for this thread to run the callback; the clears wait for that
    // lock on the libuv pool, never on this thread.
    const f = await channel('TST:FRAME')
    let received = 0
    f.monitor(() => { received++ })
    const frame = new Uint8Array(FRAME)
    let k = 0
    const pump = setInterval(() => { frame[0] = ++k; pv(pvs, 'TST:FRAME').set(frame) }, 1)
    await until(() => received >= 20, 10_000, '20 frames streaming')
    const started = Date.now()
    await f.clear()
    clearInterval(pump)
    t.ok(Date.now() - started < 5000, `cleared in ${Date.now() - started} ms while frames streamed`)
    t.equal(f.state, 'closed')
  })

  t.test('reconnect after a server restart: the monitor resumes, the state goes disconnected → connected', async t => {
    const backend = new CaSignalBackend<number>('TST:DOUBLE', { context })
    await backend.connect(5000)
    const states: CaConnectionState[] = []
    backend.onConnectionChange((s) => states.push(s))
    const values: number[] = []
    backend.setCallback((r) => values.push(r.value))
    pv(pvs, 'TST:DOUBLE').set(new Float64Array([100]))
    await until(() => values.includes(100), 2000, 'a value before the restart')

    const exceptions: FlyScanError[] = []
    const stop = context.onException((err) => exceptions.push(err))
    await server.close()
    await until(() => states.includes('disconnected'), 5000, 'disconnected after the server closed')
    await until(() => exceptions.length > 0, 2000, 'libca\'s exception for the lost circuit')
    t.match(exceptions[0]?.message, /Virtual circuit disconnect/)
    stop()
    const next = makePvs()
    const restarted = Date.now()
    server = await CaServer.start({ provider: providerOf(next), tcpPort: 0, udpPort, beaconPort: 0, log: (line) => log.push(line) })
    await until(() => states.at(-1) === 'connected', 30_000, 'reconnected to the new server')
    const reconnectMs = Date.now() - restarted
    t.comment(`reconnect took ${reconnectMs} ms after the new server started (libca's disconnect governor searches every 10 s; beacons would not change that)`)
    t.same(states, ['disconnected', 'connected'])
    await until(() => values.includes(1.5), 5000, 'the new server\'s current value, re-subscribed by libca')
    pv(next, 'TST:DOUBLE').set(new Float64Array([200]))
    await until(() => values.includes(200), 5000, 'updates from the new server')
    t.same(values.slice(-3), [100, 1.5, 200])
    t.equal(await backend.getValue(), 200, 'gets work again')
    backend.setCallback(undefined)
  })

  t.test('destroying the context rejects what is in flight and clears every channel', async t => {
    const slow = await channel('TST:SLOW')
    const inFlight = t.rejects(slow.put(dbrType(DbrBase.DOUBLE, DbrClass.PLAIN), new Float64Array([1]), true),
      { code: ErrorCode.CANCELLED, message: /TST:SLOW was closed/ })
    await context.destroy()
    await inFlight
    t.equal(slow.state, 'closed')
    t.ok(isFlyScanError(await slow.get().catch((err: unknown) => err), ErrorCode.CANCELLED))
  })
})
