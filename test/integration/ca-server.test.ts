import t, { type Test } from 'tap'
import dgram from 'node:dgram'
import { CaRepeater, CaServer, SimCamera, realClock, type PvProvider, type PvState, type ServedPv } from '../../src/sim/ioc/index.js'
import {
  DbrBase, decodeDbr, encodePaddedString, epicsTimeFromMs, epicsTimeToPosixSeconds, type DbrMetadata, type DbrValue
} from '../../src/parsers/index.js'
import { caEnv, runPythonJson } from '../support/pyepics.js'
import { RawCaClient, eventAddPayload, msg, udpExchange } from '../support/ca-raw-client.js'
import { hex, pack } from '../fixtures/ca/dbr-layouts.js'

/** An in-test PV: values set from the test, puts recorded, optionally slow or failing. */
class TestPv implements ServedPv {
  readonly name: string
  readonly base: DbrBase
  readonly maxCount: number
  readonly writable: boolean
  readonly puts: DbrValue[] = []
  readonly #metadata: DbrMetadata
  readonly #putDelayMs: number
  readonly #putError: string | undefined
  readonly #listeners = new Set<(s: PvState, mask: number) => void>()
  #state: PvState

  constructor (name: string, base: DbrBase, value: DbrValue, opts: { maxCount?: number, writable?: boolean, metadata?: DbrMetadata, putDelayMs?: number, putError?: string } = {}) {
    this.name = name
    this.base = base
    this.maxCount = opts.maxCount ?? value.length
    this.writable = opts.writable ?? true
    this.#metadata = opts.metadata ?? {}
    this.#putDelayMs = opts.putDelayMs ?? 0
    this.#putError = opts.putError
    this.#state = { value, status: 0, severity: 0, stamp: epicsTimeFromMs(Date.UTC(2025, 0, 2, 3, 4, 5, 678)) }
  }

  get listenerCount (): number {
    return this.#listeners.size
  }

  get (): PvState {
    return this.#state
  }

  metadata (): DbrMetadata {
    return this.#metadata
  }

  async put (value: DbrValue): Promise<void> {
    this.puts.push(value)
    if (this.#putDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.#putDelayMs))
    if (this.#putError !== undefined) throw new Error(this.#putError)
    this.set(value)
  }

  subscribe (listener: (s: PvState, mask: number) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  set (value: DbrValue, status = 0, severity = 0): void {
    const alarm = status !== this.#state.status || severity !== this.#state.severity ? 4 : 0
    this.#state = { value, status, severity, stamp: epicsTimeFromMs(Date.now()) }
    for (const l of this.#listeners) l(this.#state, 1 | 2 | alarm)
  }
}

const MILLION = 1_000_000
const FRAME = 728 * 544

function makePvs (): Map<string, TestPv> {
  const pvs = [
    new TestPv('T:DBL', DbrBase.DOUBLE, new Float64Array([3.25]), {
      metadata: {
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
    new TestPv('T:LONG', DbrBase.LONG, new Int32Array([42]), { metadata: { units: 'cts' } }),
    new TestPv('T:SLOW', DbrBase.LONG, new Int32Array([0]), { putDelayMs: 400 }),
    new TestPv('T:FAIL', DbrBase.DOUBLE, new Float64Array([0]), { putError: 'motor is disabled' }),
    new TestPv('T:RO', DbrBase.DOUBLE, new Float64Array([1]), { writable: false }),
    new TestPv('T:ENUM', DbrBase.ENUM, new Uint16Array([1]), { metadata: { enumStrings: ['Off', 'On', 'Fault'] } }),
    new TestPv('T:STR', DbrBase.STRING, ['hello']),
    new TestPv('T:MON', DbrBase.DOUBLE, new Float64Array([0])),
    new TestPv('T:WAVE', DbrBase.DOUBLE, new Float64Array(MILLION).map((_, i) => i * 0.5)),
    new TestPv('T:CHAR', DbrBase.CHAR, new Uint8Array(FRAME).map((_, i) => (i * 13) & 0xff)),
    new TestPv('T:SHORTWAVE', DbrBase.SHORT, new Int16Array([1, 2, 3]), { maxCount: 10 })
  ]
  return new Map(pvs.map((p) => [p.name, p]))
}

function providerOf (pvs: Map<string, TestPv>): PvProvider {
  return { find: (name) => pvs.get(name), names: () => [...pvs.keys()] }
}

async function startServer (t: Test, extra: { maxQueuedBytesPerClient?: number, maxRequestBytes?: number, beaconPort?: number } = {}): Promise<{ server: CaServer, pvs: Map<string, TestPv>, logs: string[] }> {
  const pvs = makePvs()
  const logs: string[] = []
  const server = await CaServer.start({ provider: providerOf(pvs), beaconPort: 0, log: (line) => logs.push(line), ...extra })
  t.teardown(() => server.close())
  return { server, pvs, logs }
}

function pvOf (pvs: Map<string, TestPv>, name: string): TestPv {
  const pv = pvs.get(name)
  if (pv === undefined) throw new Error(`no test PV ${name}`)
  return pv
}

/** Python helpers shared by the scripts: JSON-friendly values. */
const PY = `
import epics, json, time, numpy
from epics import ca
def conv(v):
    if isinstance(v, numpy.ndarray):
        return v.tolist()
    if isinstance(v, numpy.generic):
        return v.item()
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, (tuple, list)):
        return [conv(x) for x in v]
    return v
`

t.test('pyepics gets every PV and every DBR type', async t => {
  const { server, pvs } = await startServer(t)
  const stamp = epicsTimeToPosixSeconds(pvOf(pvs, 'T:DBL').get().stamp)
  const r = await runPythonJson<Record<string, unknown>>(PY + `
out = {}
out['native'] = {n: conv(epics.caget(n, timeout=5)) for n in ['T:DBL', 'T:LONG', 'T:ENUM', 'T:STR', 'T:SHORTWAVE']}
out['enum_as_string'] = epics.caget('T:ENUM', as_string=True, timeout=5)
p = epics.PV('T:DBL', form='ctrl')
p.wait_for_connection(5)
p.get()
out['ctrl'] = {k: conv(getattr(p, k)) for k in ('units', 'precision', 'upper_disp_limit', 'lower_disp_limit', 'upper_alarm_limit',
    'upper_warning_limit', 'lower_warning_limit', 'lower_alarm_limit', 'upper_ctrl_limit', 'lower_ctrl_limit', 'severity', 'status')}
e = epics.PV('T:ENUM', form='ctrl')
e.wait_for_connection(5)
e.get()
out['enum_strs'] = list(e.enum_strs)
tm = epics.PV('T:DBL', form='time')
tm.wait_for_connection(5)
tm.get()
out['time'] = {'timestamp': tm.timestamp, 'status': tm.status, 'severity': tm.severity}
sw = epics.PV('T:SHORTWAVE')
sw.wait_for_connection(5)
sw.get()
out['count'] = {'nelm': sw.nelm, 'count': sw.count}
chid = ca.create_channel('T:DBL', connect=True)
types = {}
# pyepics 3.4 unpacks the plain, TIME and CTRL classes only (its dbr.py has no STS or GR structures).
for ft in list(range(7)) + list(range(14, 21)) + list(range(28, 35)):
    md = ca.get_with_metadata(chid, ftype=ft, wait=True, timeout=5)
    types[ft] = {k: conv(v) for k, v in md.items() if k in ('value', 'status', 'severity', 'units', 'precision', 'upper_ctrl_limit', 'timestamp', 'enum_strs')}
out['types'] = types
print(json.dumps(out))
`, caEnv(server.udpPort))
  t.same(r.native, { 'T:DBL': 3.25, 'T:LONG': 42, 'T:ENUM': 1, 'T:STR': 'hello', 'T:SHORTWAVE': [1, 2, 3] })
  t.equal(r.enum_as_string, 'On')
  t.same(r.ctrl, {
    units: 'mm',
    precision: 3,
    upper_disp_limit: 100,
    lower_disp_limit: -100,
    upper_alarm_limit: 90,
    upper_warning_limit: 80,
    lower_warning_limit: -80,
    lower_alarm_limit: -90,
    upper_ctrl_limit: 50,
    lower_ctrl_limit: -50,
    severity: 0,
    status: 0
  })
  t.same(r.enum_strs, ['Off', 'On', 'Fault'])
  const time = r.time as { timestamp: number, status: number, severity: number }
  t.ok(Math.abs(time.timestamp - stamp) < 1e-6, `timestamp ${time.timestamp} is the PV's stamp ${stamp}`)
  t.same(r.count, { nelm: 10, count: 3 }, 'CREATE_CHAN gives the capacity (NELM); a count-0 get, the current length')
  const types = r.types as Record<string, Record<string, unknown>>
  for (let ft = 0; ft < 35; ft++) {
    const base = ft % 7
    const cls = Math.floor(ft / 7)
    if (cls === 1 || cls === 3) continue
    const got = types[String(ft)] ?? {}
    const expected = base === DbrBase.STRING ? '3.25' : base === DbrBase.FLOAT || base === DbrBase.DOUBLE ? 3.25 : 3
    t.same(got.value, expected, `ftype ${ft}: value`)
    if (cls === 2) t.ok(Math.abs((got.timestamp as number) - stamp) < 1e-6, `ftype ${ft}: timestamp`)
    if (cls >= 3 && (base === DbrBase.DOUBLE || base === DbrBase.FLOAT)) t.equal(got.precision, 3, `ftype ${ft}: precision`)
    if (cls >= 3 && base !== DbrBase.STRING && base !== DbrBase.ENUM) t.equal(got.units, 'mm', `ftype ${ft}: units`)
    if (cls === 4 && base !== DbrBase.STRING && base !== DbrBase.ENUM) t.equal(got.upper_ctrl_limit, 50, `ftype ${ft}: upper_ctrl_limit`)
  }
})

t.test('pyepics puts: wait=True completes when put() resolves; values convert to the native type', async t => {
  const { server, pvs } = await startServer(t)
  const r = await runPythonJson<Record<string, unknown>>(PY + `
out = {}
t0 = time.time()
out['slow'] = epics.caput('T:SLOW', 7, wait=True, timeout=10)
out['slow_seconds'] = time.time() - t0
out['slow_after'] = epics.caget('T:SLOW', timeout=5)
out['long'] = epics.caput('T:LONG', 5.9, wait=True, timeout=5)
out['enum'] = epics.caput('T:ENUM', 'Fault', wait=True, timeout=5)
out['str'] = epics.caput('T:STR', 'written', wait=True, timeout=5)
out['dbl'] = epics.caput('T:DBL', -1.5, wait=True, timeout=5)
out['wave'] = epics.caput('T:SHORTWAVE', numpy.array([9, 8, 7, 6], dtype='int16'), wait=True, timeout=5)
out['after'] = {n: conv(epics.caget(n, timeout=5, use_monitor=False)) for n in ['T:LONG', 'T:ENUM', 'T:STR', 'T:DBL', 'T:SHORTWAVE']}
print(json.dumps(out))
`, caEnv(server.udpPort))
  t.equal(r.slow, 1, 'caput wait=True returned success')
  t.ok((r.slow_seconds as number) >= 0.35, `caput waited for the slow put (${String(r.slow_seconds)} s)`)
  t.equal(r.slow_after, 7)
  t.same(pvOf(pvs, 'T:SLOW').puts, [new Int32Array([7])])
  t.same(r.after, { 'T:LONG': 5, 'T:ENUM': 2, 'T:STR': 'written', 'T:DBL': -1.5, 'T:SHORTWAVE': [9, 8, 7, 6] })
  t.same(pvOf(pvs, 'T:ENUM').puts, [new Uint16Array([2])], 'enum put by state string')
  t.same(pvOf(pvs, 'T:SHORTWAVE').puts, [new Int16Array([9, 8, 7, 6])])
})

t.test('pyepics monitors receive every change', async t => {
  const { server, pvs } = await startServer(t)
  const mon = pvOf(pvs, 'T:MON')
  const values = await runPythonJson<number[]>(PY + `
vals = []
def cb(value=None, **kw):
    vals.append(float(value))
p = epics.PV('T:MON', callback=cb, auto_monitor=True)
p.wait_for_connection(5)
t0 = time.time()
while not vals and time.time() - t0 < 5:
    time.sleep(0.01)
print('ready', flush=True)
while len(vals) < 6 and time.time() - t0 < 10:
    time.sleep(0.01)
print(json.dumps(vals))
`, caEnv(server.udpPort), {
    onLine: (line) => {
      if (line !== 'ready') return
      let k = 1
      const tick = setInterval(() => {
        mon.set(new Float64Array([k]))
        if (++k > 5) clearInterval(tick)
      }, 20)
    }
  })
  t.same(values, [0, 1, 2, 3, 4, 5], 'the initial value, then each of the five changes')
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(mon.listenerCount, 0, 'the subscription ended with the client')
})

t.test('pyepics: a 1,000,000-element double waveform and a Mono8 frame round-trip', async t => {
  const { server, pvs } = await startServer(t)
  const r = await runPythonJson<Record<string, number>>(PY + `
out = {}
w = epics.caget('T:WAVE', timeout=30)
out['len'] = len(w)
out['first'] = float(w[1])
out['last'] = float(w[-1])
out['sum'] = float(w.sum())
out['put'] = epics.caput('T:WAVE', numpy.arange(1000000, dtype='float64') * 2.0, wait=True, timeout=30)
w2 = epics.caget('T:WAVE', timeout=30, use_monitor=False)
out['len2'] = len(w2)
out['sum2'] = float(w2.sum())
c = epics.caget('T:CHAR', timeout=30)
out['char_len'] = len(c)
out['char_sum'] = int(c.astype('int64').sum())
out['char_dtype'] = str(c.dtype)
out['char_put'] = epics.caput('T:CHAR', numpy.full(${FRAME}, 7, dtype='uint8'), wait=True, timeout=30)
print(json.dumps(out))
`, caEnv(server.udpPort), { timeoutMs: 120_000 })
  let charSum = 0
  for (let i = 0; i < FRAME; i++) charSum += (i * 13) & 0xff
  t.same(r, {
    len: MILLION,
    first: 0.5,
    last: (MILLION - 1) * 0.5,
    sum: 0.5 * MILLION * (MILLION - 1) / 2,
    put: 1,
    len2: MILLION,
    sum2: MILLION * (MILLION - 1),
    char_len: FRAME,
    char_sum: charSum,
    char_dtype: 'uint8',
    char_put: 1
  })
  const put = pvOf(pvs, 'T:WAVE').puts[0] as Float64Array
  t.ok(put instanceof Float64Array && put.length === MILLION && put[123_456] === 246_912 && put[MILLION - 1] === 2 * (MILLION - 1), 'the server received the 1M-element put intact')
  const frame = pvOf(pvs, 'T:CHAR').puts[0] as Uint8Array
  t.ok(frame instanceof Uint8Array && frame.length === FRAME && frame.every((b) => b === 7), 'the server received the frame put intact')
})

t.test('a client sending garbage is dropped with a log line naming it; a pyepics client keeps being served', async t => {
  const { server, pvs, logs } = await startServer(t, { maxRequestBytes: 1 << 20 })
  const mon = pvOf(pvs, 'T:MON')
  const garbage: Array<[string, Uint8Array, RegExp]> = [
    ['unknown command', msg(77, 0, 0, 0, 0), /unknown command 77 at stream offset 16 is not a request a client may send/],
    ['server-only command', msg(13, 0, 0, 0, 0), /RSRV_IS_UP \(13\) at stream offset 16 is not a request/],
    ['unpadded payload', Uint8Array.from([0, 20, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5]), /CLIENT_NAME \(20\) declares a payload of 5 bytes, not padded/],
    // An extended READ_NOTIFY header announcing a 2 MiB payload.
    ['payload beyond the limit', Uint8Array.from([0, 15, 0xff, 0xff, 0, 6, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0x20, 0, 0, 0, 0, 0, 1]), /declares a payload of 2097152 bytes, above the limit of 1048576/],
    // Command 0x0b30, payload size 0x557a.
    ['random bytes', Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff), /stream offset 16: unknown command 2864 declares a payload of 21882 bytes, not padded/],
    ['a DBR type that does not exist', msg(15, 99, 1, 1, 1), /READ_NOTIFY \(15\) at stream offset 16 names DBR type 99, which does not exist/]
  ]
  const dropped: string[] = []
  /** Once pyepics is subscribed: connect each garbage client in turn, wait for the drop, post an update. */
  const dropAll = async (): Promise<void> => {
    let k = 1
    for (const [what, bytes] of garbage) {
      const raw = await RawCaClient.connect(server.tcpPort)
      const local = raw.localName
      raw.send(msg(0, 0, 13, 0, 0), bytes)
      await raw.closed
      dropped.push(`${what}|${local}`)
      mon.set(new Float64Array([k++]))
    }
    mon.set(new Float64Array([99]))
  }
  let driving: Promise<void> | undefined
  const r = await runPythonJson<number[]>(PY + `
vals = []
def cb(value=None, **kw):
    vals.append(float(value))
p = epics.PV('T:MON', callback=cb, auto_monitor=True)
p.wait_for_connection(5)
t0 = time.time()
while not vals and time.time() - t0 < 5:
    time.sleep(0.01)
print('ready', flush=True)
while (not vals or vals[-1] != 99.0) and time.time() - t0 < 20:
    time.sleep(0.01)
got = epics.caget('T:LONG', timeout=5, use_monitor=False)
print(json.dumps(vals + [float(got)]))
`, caEnv(server.udpPort), {
    timeoutMs: 60_000,
    onLine: (line) => {
      if (line !== 'ready') return
      driving = dropAll()
      driving.catch(() => {}) // awaited below
    }
  })
  await driving
  t.same(r.slice(-2), [99, 42], 'the pyepics client saw the last update and still gets values')
  t.same(r.slice(0, -1), [0, 1, 2, 3, 4, 5, 6, 99], 'and every update while the others were dropped')
  t.equal(dropped.length, garbage.length, 'every garbage client was disconnected')
  for (const entry of dropped) {
    const [what, local] = entry.split('|') as [string, string]
    const pattern = garbage.find(([w]) => w === what)?.[2] as RegExp
    const line = logs.find((l) => l.includes(`dropped client ${local}`))
    t.ok(line !== undefined && pattern.test(line), `${what}: ${line ?? '(no log line naming ' + local + ')'}`)
  }
  t.match(logs.join('\n'), /dropped client 127\.0\.0\.1:\d+: client 127\.0\.0\.1:\d+, stream offset 16: READ_NOTIFY \(15\) declares a payload of 2097152 bytes, above the limit of 1048576/)
  t.equal(logs.filter((l) => l.includes('dropped client')).length, garbage.length, 'one log line per dropped client')
  t.equal(server.stats.clientsDropped, garbage.length)
})

t.test('raw protocol: VERSION greeting, channels, reads byte-exact, extended header, errors', async t => {
  const { server, pvs } = await startServer(t)
  const c = await RawCaClient.connect(server.tcpPort)
  t.teardown(() => c.close())
  const greeting = await c.next(() => true)
  t.same(greeting.header, { command: 0, payloadSize: 0, dataType: 0, dataCount: 13, parameter1: 0, parameter2: 0 }, 'the server speaks first: VERSION 4.13')

  c.send(msg(20, 0, 0, 0, 0, encodePaddedString('tester')), msg(21, 0, 0, 0, 0, encodePaddedString('testhost')))
  const dbl = await c.createChannel('T:DBL', 1)
  t.same(dbl, { sid: dbl.sid, dataType: DbrBase.DOUBLE, dataCount: 1 })
  const rights = c.received.find((m) => m.header.command === 22)
  t.same(rights?.header, { command: 22, payloadSize: 0, dataType: 0, dataCount: 0, parameter1: 1, parameter2: 3 }, 'ACCESS_RIGHTS read+write before CREATE_CHAN')
  t.ok(c.received.indexOf(rights!) < c.received.findIndex((m) => m.header.command === 18))
  const ro = await c.createChannel('T:RO', 2)
  t.equal(c.received.filter((m) => m.header.command === 22).at(-1)?.header.parameter2, 1, 'read-only PV: read access only')
  await t.rejects(c.createChannel('T:NOPE', 3), /CREATE_CH_FAIL/)
  t.same(c.received.at(-1)?.header, { command: 26, payloadSize: 0, dataType: 0, dataCount: 0, parameter1: 3, parameter2: 0 })

  // READ_NOTIFY of DBR_TIME_DOUBLE: the payload is exactly struct dbr_time_double.
  pvOf(pvs, 'T:DBL').set(new Float64Array([Math.PI]), 3, 2)
  const stamp = pvOf(pvs, 'T:DBL').get().stamp
  c.send(msg(15, 20, 1, dbl.sid, 77))
  const read = await c.next((m) => m.header.command === 15 && m.header.parameter2 === 77)
  t.same(read.header, { command: 15, payloadSize: 24, dataType: 20, dataCount: 1, parameter1: 1, parameter2: 77 })
  t.equal(hex(read.payload), hex(pack([['i16', 3], ['i16', 2], ['u32', stamp.secPastEpoch], ['u32', stamp.nsec], ['pad', 4], ['f64', Math.PI]], false)))

  // DBR_CTRL_ENUM of an enum: 424 bytes padded to 432.
  const en = await c.createChannel('T:ENUM', 4)
  c.send(msg(15, 31, 1, en.sid, 78))
  const ctrl = await c.next((m) => m.header.parameter2 === 78)
  t.equal(ctrl.header.payloadSize, 424, 'sizeof(struct dbr_ctrl_enum), already a multiple of 8')
  t.same(decodeDbr(31, 1, ctrl.payload, false), { value: new Uint16Array([1]), status: 0, severity: 0, metadata: { enumStrings: ['Off', 'On', 'Fault'] } })
  c.send(msg(15, 0, 1, en.sid, 79))
  t.same(decodeDbr(0, 1, (await c.next((m) => m.header.parameter2 === 79)).payload, false).value, ['On'], 'enum as DBR_STRING')

  // Count 0: the current length; a count above the capacity: ECA_BADCOUNT.
  const sw = await c.createChannel('T:SHORTWAVE', 5)
  t.equal(sw.dataCount, 10)
  c.send(msg(15, 1, 0, sw.sid, 80), msg(15, 1, 5, sw.sid, 81), msg(15, 1, 11, sw.sid, 82))
  const dyn = await c.next((m) => m.header.parameter2 === 80)
  t.same([dyn.header.dataCount, dyn.header.payloadSize, [...dyn.payload]], [3, 8, [0, 1, 0, 2, 0, 3, 0, 0]])
  const five = await c.next((m) => m.header.parameter2 === 81)
  t.same([five.header.dataCount, [...five.payload]], [5, [0, 1, 0, 2, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]], 'zero-filled beyond the current length')
  const tooMany = await c.next((m) => m.header.parameter2 === 82)
  t.same(tooMany.header, { command: 15, payloadSize: 0, dataType: 1, dataCount: 11, parameter1: 176, parameter2: 82 }, 'ECA_BADCOUNT')
  // A string PV read as a double: ECA_GETFAIL.
  const str = await c.createChannel('T:STR', 6)
  c.send(msg(15, 6, 1, str.sid, 83))
  t.equal((await c.next((m) => m.header.parameter2 === 83)).header.parameter1, 152, '"hello" as DBR_DOUBLE: ECA_GETFAIL')

  // Large arrays use the extended header.
  const wave = await c.createChannel('T:WAVE', 7)
  t.equal(wave.dataCount, MILLION, 'CREATE_CHAN reply with a count above 0xFFFF (extended header)')
  c.send(msg(15, 6, 0, wave.sid, 84))
  const big = await c.next((m) => m.header.parameter2 === 84, 20_000)
  t.equal(big.headerSize, 24)
  t.same(big.header, { command: 15, payloadSize: 8 * MILLION, dataType: 6, dataCount: MILLION, parameter1: 1, parameter2: 84 })
  const v = decodeDbr(6, MILLION, big.payload, false).value as Float64Array
  t.same([v[0], v[1], v[MILLION - 1]], [0, 0.5, (MILLION - 1) * 0.5])

  // ECHO and READ_SYNC come back as sent; an unknown sid is an ERROR with ECA_BADCHID, and the client stays.
  c.send(msg(23, 0, 0, 0, 0), msg(10, 0, 0, 5, 6), msg(15, 6, 1, 9999, 85))
  t.same((await c.next((m) => m.header.command === 23)).header, { command: 23, payloadSize: 0, dataType: 0, dataCount: 0, parameter1: 0, parameter2: 0 })
  t.same((await c.next((m) => m.header.command === 10)).header, { command: 10, payloadSize: 0, dataType: 0, dataCount: 0, parameter1: 5, parameter2: 6 })
  const err = await c.next((m) => m.header.command === 11)
  t.same([err.header.parameter1, err.header.parameter2], [0xffffffff, 410])
  t.same(err.payload.subarray(0, 16), msg(15, 6, 1, 9999, 85), 'ERROR carries the request header')
  t.match(Buffer.from(err.payload.subarray(16)).toString('latin1'), /^no channel with sid 9999\0/)

  // CLEAR_CHANNEL is confirmed with the same sid and cid.
  c.send(msg(12, 0, 0, ro.sid, 2))
  t.same((await c.next((m) => m.header.command === 12)).header, { command: 12, payloadSize: 0, dataType: 0, dataCount: 0, parameter1: ro.sid, parameter2: 2 })
  t.notOk(c.isClosed)
})

t.test('a 2048 x 2048 camera: Acquire does not stall the server, and an 8 MiB Mono16 frame arrives intact, big-endian', async t => {
  const camera = new SimCamera({ prefix: 'C:', width: 2048, height: 2048, dataType: 'UInt16' }, realClock)
  const served = new Map(camera.pvs().map((p) => [p.name, p]))
  const server = await CaServer.start({ provider: { find: (n) => served.get(n), names: () => [...served.keys()] }, beaconPort: 0, log: () => {} })
  t.teardown(async () => {
    await server.close()
    camera.close()
  })
  const c = await RawCaClient.connect(server.tcpPort)
  t.teardown(() => c.close())
  const enumPayload = (v: number): Uint8Array => new Uint8Array([v >> 8, v & 0xff, 0, 0, 0, 0, 0, 0])
  const mode = await c.createChannel('C:cam1:ImageMode', 1)
  const acquire = await c.createChannel('C:cam1:Acquire', 2)
  const data = await c.createChannel('C:image1:ArrayData', 3)
  const n = 2048 * 2048
  t.same([data.dataType, data.dataCount], [DbrBase.SHORT, n])
  c.send(msg(19, DbrBase.ENUM, 1, mode.sid, 10, enumPayload(0)))
  t.equal((await c.next((m) => m.header.command === 19 && m.header.parameter2 === 10)).header.parameter1, 1, 'ImageMode Single')
  c.send(msg(1, 15, 0, data.sid, 20, eventAddPayload(1)))
  await c.next((m) => m.header.command === 1 && m.header.parameter2 === 20)
  const from = c.received.length
  // A put without completion, then an ECHO (one write, so that Nagle's algorithm does not hold the ECHO back): the
  // server must answer the ECHO while the camera starts. When the first Acquire computed the camera's 8 frames of
  // 8 MiB, the ECHO waited about a second, and so did every other client (a libca client that had just cleared its
  // last channel then lost its next one for 10 s).
  const t0 = performance.now()
  c.send(Buffer.concat([msg(4, DbrBase.ENUM, 1, acquire.sid, 0, enumPayload(1)), msg(23, 0, 0, 0, 0)]))
  await c.next((m) => m.header.command === 23, 5000, from)
  const echoMs = performance.now() - t0
  t.ok(echoMs < 150, `ECHO answered ${echoMs.toFixed(1)} ms after Acquire=1`)
  const update = await c.next((m) => m.header.command === 1 && m.header.parameter2 === 20 && m.header.dataCount === n, 20_000, from)
  const frame = decodeDbr(15, n, update.payload, false).value as Int16Array
  const expected = camera.frames('UInt16')[1] as Int16Array
  t.equal(frame.length, n)
  t.equal(Buffer.compare(Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength), Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength)), 0,
    'the 4,194,304 elements of the frame, swapped to big-endian and back')
  t.equal(new DataView(update.payload.buffer, update.payload.byteOffset + 14).getInt16(4, false), expected[2], 'the wire is big-endian')
})

t.test('raw protocol: puts, access, put failures', async t => {
  const { server, pvs, logs } = await startServer(t)
  const c = await RawCaClient.connect(server.tcpPort)
  t.teardown(() => c.close())
  const long = await c.createChannel('T:LONG', 1)
  const ro = await c.createChannel('T:RO', 2)
  const fail = await c.createChannel('T:FAIL', 3)
  const en = await c.createChannel('T:ENUM', 4)
  const be = (n: number): Uint8Array => pack([['i32', n], ['pad', 4]], false)
  c.send(msg(19, 5, 1, long.sid, 10, be(1234)))
  t.same((await c.next((m) => m.header.command === 19 && m.header.parameter2 === 10)).header, { command: 19, payloadSize: 0, dataType: 5, dataCount: 1, parameter1: 1, parameter2: 10 })
  t.same(pvOf(pvs, 'T:LONG').puts, [new Int32Array([1234])])
  const string40 = (s: string): Uint8Array => pack([['str', s, 40]], false)
  c.send(msg(19, 0, 1, long.sid, 11, string40(' 77 ')))
  t.equal((await c.next((m) => m.header.parameter2 === 11 && m.header.command === 19)).header.parameter1, 1, 'DBR_STRING " 77 " to a long')
  t.same(pvOf(pvs, 'T:LONG').puts[1], new Int32Array([77]))
  c.send(msg(19, 0, 1, long.sid, 12, string40('seventy')))
  t.equal((await c.next((m) => m.header.parameter2 === 12 && m.header.command === 19)).header.parameter1, 160, '"seventy" to a long: ECA_PUTFAIL')
  // libca sends a single DBR_STRING short: its characters and NUL, padded to 8.
  c.send(msg(19, 0, 1, en.sid, 13, encodePaddedString('Off')))
  t.equal((await c.next((m) => m.header.parameter2 === 13 && m.header.command === 19)).header.parameter1, 1)
  t.same(pvOf(pvs, 'T:ENUM').puts, [new Uint16Array([0])], 'enum put by state name')
  c.send(msg(19, 6, 1, ro.sid, 14, pack([['f64', 2]], false)))
  t.equal((await c.next((m) => m.header.parameter2 === 14 && m.header.command === 19)).header.parameter1, 376, 'read-only: ECA_NOWTACCESS')
  c.send(msg(4, 6, 1, ro.sid, 15, pack([['f64', 2]], false)))
  const roErr = await c.next((m) => m.header.command === 11)
  t.same([roErr.header.parameter1, roErr.header.parameter2], [2, 376], 'WRITE to read-only: ERROR with the cid and ECA_NOWTACCESS')
  t.same(pvOf(pvs, 'T:RO').puts, [])
  c.send(msg(19, 6, 1, fail.sid, 16, pack([['f64', 2]], false)))
  t.equal((await c.next((m) => m.header.parameter2 === 16 && m.header.command === 19)).header.parameter1, 160, 'put() rejected: ECA_PUTFAIL')
  t.match(logs.join('\n'), /put to T:FAIL failed: motor is disabled/)
  c.send(msg(4, 6, 1, fail.sid, 17, pack([['f64', 3]], false)))
  const failErr = await c.next((m) => m.header.command === 11 && m.header.parameter2 === 160)
  t.equal(failErr.header.parameter1, 3, 'WRITE whose put() rejects: ERROR with ECA_PUTFAIL')
  c.send(msg(4, 5, 1, long.sid, 18, be(-5)), msg(23, 0, 0, 0, 0))
  await c.next((m) => m.header.command === 23)
  t.same(pvOf(pvs, 'T:LONG').get().value, new Int32Array([-5]), 'plain WRITE')
  t.notOk(c.isClosed)
})

t.test('raw protocol: subscriptions, EVENT_CANCEL, EVENTS_OFF/ON', async t => {
  const { server, pvs } = await startServer(t)
  const c = await RawCaClient.connect(server.tcpPort)
  t.teardown(() => c.close())
  const mon = pvOf(pvs, 'T:MON')
  const ch = await c.createChannel('T:MON', 1)
  c.send(msg(1, 6, 1, ch.sid, 5, eventAddPayload(1)))
  const first = await c.next((m) => m.header.command === 1)
  t.same(first.header, { command: 1, payloadSize: 8, dataType: 6, dataCount: 1, parameter1: 1, parameter2: 5 }, 'the initial update at once')
  const updates = (): number[] => c.received.filter((m) => m.header.command === 1 && m.header.parameter2 === 5 && m.header.payloadSize > 0)
    .map((m) => (decodeDbr(6, 1, m.payload, false).value as Float64Array)[0] as number)
  mon.set(new Float64Array([1]))
  await c.next((m) => m.header.command === 1, 2000, c.received.indexOf(first) + 1)
  t.same(updates(), [0, 1])
  // An ALARM subscription: its initial update, then only changes that carry the ALARM bit.
  c.send(msg(1, 6, 1, ch.sid, 6, eventAddPayload(4)))
  await c.next((m) => m.header.parameter2 === 6)
  const alarmUpdates = (): number[] => c.received.filter((m) => m.header.command === 1 && m.header.parameter2 === 6 && m.header.payloadSize > 0)
    .map((m) => (decodeDbr(6, 1, m.payload, false).value as Float64Array)[0] as number)
  let seen = c.received.length
  mon.set(new Float64Array([2]))
  await c.next((m) => m.header.parameter2 === 5, 2000, seen)
  seen = c.received.length
  mon.set(new Float64Array([3]), 7, 1)
  await c.next((m) => m.header.parameter2 === 6, 2000, seen)
  await c.next((m) => m.header.parameter2 === 5, 2000, seen)
  t.same(alarmUpdates(), [1, 3], 'the ALARM subscription skipped the value-only change')
  c.send(msg(2, 6, 1, ch.sid, 6))
  await c.next((m) => m.header.command === 1 && m.header.parameter2 === 6 && m.header.payloadSize === 0)
  const cancel = c.received.find((m) => m.header.parameter2 === 6 && m.header.payloadSize === 0)
  t.same(cancel?.header, { command: 1, payloadSize: 0, dataType: 6, dataCount: 0, parameter1: ch.sid, parameter2: 6 }, 'EVENT_CANCEL confirmed by EVENT_ADD with count 0')
  t.equal(mon.listenerCount, 1, 'the cancelled subscription stopped listening')

  // EVENTS_OFF: changes are held, only the newest per subscription; EVENTS_ON sends it.
  c.send(msg(8, 0, 0, 0, 0), msg(23, 0, 0, 0, 0))
  await c.next((m) => m.header.command === 23)
  const before = c.received.length
  for (const v of [10, 11, 12]) mon.set(new Float64Array([v]))
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.equal(c.received.length, before, 'nothing sent while events are off')
  c.send(msg(9, 0, 0, 0, 0))
  await c.next((m) => m.header.command === 1, 2000, before)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.same(updates(), [0, 1, 2, 3, 12], 'one update, the newest, after EVENTS_ON')
  t.equal(server.stats.updatesCoalesced, 2)

  // A subscription whose value does not convert: the failure status, with a few bytes so that libca reads it.
  const str = await c.createChannel('T:STR', 2)
  c.send(msg(1, 6, 1, str.sid, 7, eventAddPayload(1)), msg(1, 6, 2, str.sid, 8, eventAddPayload(1)), msg(1, 35, 1, str.sid, 9, eventAddPayload(1)))
  t.same((await c.next((m) => m.header.parameter2 === 7)).header, { command: 1, payloadSize: 8, dataType: 6, dataCount: 1, parameter1: 152, parameter2: 7 }, '"hello" as DBR_DOUBLE: ECA_GETFAIL')
  t.same((await c.next((m) => m.header.parameter2 === 8)).header.parameter1, 176, 'more elements than the PV holds: ECA_BADCOUNT')
  t.same((await c.next((m) => m.header.parameter2 === 9)).header.parameter1, 114, 'DBR_PUT_ACKT: ECA_BADTYPE')
  // EVENT_CANCEL of an unknown subscription: ERROR with ECA_BADMONID.
  c.send(msg(2, 6, 1, ch.sid, 999))
  t.equal((await c.next((m) => m.header.command === 11)).header.parameter2, 242)
  // CLEAR_CHANNEL ends its subscriptions.
  c.send(msg(12, 0, 0, ch.sid, 1))
  await c.next((m) => m.header.command === 12)
  t.equal(mon.listenerCount, 0)
})

t.test('flow control: a client that does not read gets the newest updates, the server buffers a bounded amount', async t => {
  const pvs = new Map([['T:FRAME', new TestPv('T:FRAME', DbrBase.CHAR, new Uint8Array(100_000))]])
  const limit = 256 * 1024
  const server = await CaServer.start({ provider: providerOf(pvs), beaconPort: 0, maxQueuedBytesPerClient: limit, log: () => {} })
  t.teardown(() => server.close())
  const frame = pvOf(pvs, 'T:FRAME')
  const c = await RawCaClient.connect(server.tcpPort)
  t.teardown(() => c.close())
  const ch = await c.createChannel('T:FRAME', 1)
  c.send(msg(1, 4, 0, ch.sid, 9, eventAddPayload(1)))
  await c.next((m) => m.header.command === 1)
  c.socket.pause()
  const posted = 500
  for (let k = 1; k <= posted; k++) {
    const v = new Uint8Array(100_000)
    new DataView(v.buffer).setUint32(0, k)
    frame.set(v)
    if (k % 50 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  await new Promise((resolve) => setTimeout(resolve, 200))
  const sentWhilePaused = server.stats.updatesSent
  t.ok(sentWhilePaused < posted / 2, `${sentWhilePaused} of ${posted} updates written while the client did not read`)
  c.socket.resume()
  const last = await c.next((m) => m.header.command === 1 && m.payload.length >= 4 && new DataView(m.payload.buffer, m.payload.byteOffset).getUint32(0) === posted, 10_000)
  t.ok(last !== undefined, 'the newest update arrived')
  const seqs = c.received.filter((m) => m.header.command === 1).slice(1).map((m) => new DataView(m.payload.buffer, m.payload.byteOffset).getUint32(0))
  t.ok(seqs.every((s, i) => i === 0 || s > (seqs[i - 1] as number)), 'updates in order, none repeated')
  t.ok(seqs.length < posted, `${seqs.length} updates delivered for ${posted} changes`)
  t.ok(server.stats.updatesCoalesced > 0, `${server.stats.updatesCoalesced} updates coalesced`)
})

t.test('large updates go out of reused buffers, each intact; a client that clears its last channel and half-closes is closed at once', async t => {
  const size = 100_000
  const pvs = new Map([['T:FRAME', new TestPv('T:FRAME', DbrBase.CHAR, new Uint8Array(size))]])
  const server = await CaServer.start({ provider: providerOf(pvs), beaconPort: 0, log: () => {} })
  t.teardown(() => server.close())
  const frame = pvOf(pvs, 'T:FRAME')
  /** Frame k: k in its first 4 bytes (big-endian), then k & 0xff in every byte. */
  const post = (k: number): void => {
    const v = new Uint8Array(size).fill(k & 0xff)
    new DataView(v.buffer).setUint32(0, k)
    frame.set(v)
  }
  const c = await RawCaClient.connect(server.tcpPort)
  t.teardown(() => c.close())
  const ch = await c.createChannel('T:FRAME', 1)
  c.send(msg(1, 4, 0, ch.sid, 9, eventAddPayload(1)))
  await c.next((m) => m.header.command === 1)
  const arrived = async (k: number): Promise<void> => {
    await c.next((m) => m.header.command === 1 && m.payload.length >= 4 && new DataView(m.payload.buffer, m.payload.byteOffset).getUint32(0) === k, 10_000)
  }
  // While the client does not read, 10 MB wait in the socket's queue; later frames must not reuse those buffers
  // before they are written. Then batches of 20 frames, each once the previous one arrived, reusing buffers written.
  c.socket.pause()
  const posted = 400
  for (let k = 1; k <= 80; k++) post(k)
  await new Promise((resolve) => setTimeout(resolve, 50))
  for (let k = 81; k <= 100; k++) post(k)
  c.socket.resume()
  await arrived(100)
  for (let k = 101; k <= posted; k++) {
    post(k)
    if (k % 20 === 0) await arrived(k)
  }
  const updates = c.received.filter((m) => m.header.command === 1).slice(1)
  const seqs = updates.map((m) => new DataView(m.payload.buffer, m.payload.byteOffset).getUint32(0))
  t.same(seqs, Array.from({ length: posted }, (_, i) => i + 1), 'every frame once, in order (10 MB stays below the queue limit)')
  const damaged = updates.filter((m, i) => m.payload.length !== size || !m.payload.subarray(4).every((b) => b === ((i + 1) & 0xff)))
  t.equal(damaged.length, 0, `all ${updates.length} updates of ${size} bytes intact`)

  // The client stops reading, 10 MB pile up for it, then it clears its channel and half-closes, as libca does
  // after its last channel: the server closes at once instead of first sending the 10 MB.
  c.socket.pause()
  for (let k = 1; k <= 100; k++) post(k)
  t.equal(server.clientCount, 1)
  c.socket.write(msg(12, 0, 0, ch.sid, 1))
  c.socket.end()
  const t0 = Date.now()
  while (server.clientCount > 0 && Date.now() - t0 < 3000) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(server.clientCount, 0, `closed ${Date.now() - t0} ms after the half-close`)
})

t.test('flow control: requests from a client that does not read wait, instead of their replies piling up', async t => {
  const { server } = await startServer(t, { maxQueuedBytesPerClient: 4 * 1024 * 1024 })
  const c = await RawCaClient.connect(server.tcpPort)
  t.teardown(() => c.close())
  const wave = await c.createChannel('T:WAVE', 1)
  c.socket.pause()
  const requests = 40
  const before = process.memoryUsage().arrayBuffers
  for (let i = 0; i < requests; i++) c.send(msg(15, 6, 0, wave.sid, 100 + i))
  await new Promise((resolve) => setTimeout(resolve, 500))
  const grown = process.memoryUsage().arrayBuffers - before
  t.ok(grown < 100e6, `${(grown / 1e6).toFixed(0)} MB held for ${requests} unread replies of 8 MB`)
  c.socket.resume()
  await c.next((m) => m.header.parameter2 === 100 + requests - 1, 30_000)
  t.equal(c.received.filter((m) => m.header.command === 15 && m.header.payloadSize === 8 * MILLION).length, requests, 'every reply arrived once the client read')
})

t.test('UDP search: VERSION with the sequence number, replies for names served, NOT_FOUND only when asked', async t => {
  const { server } = await startServer(t)
  const version = msg(0, 0, 13, 4242, 0)
  const search = (name: string, id: number, reply: number): Uint8Array => msg(6, reply, 13, id, id, encodePaddedString(name))
  const dg = Buffer.concat([version, search('T:DBL', 1, 5), search('NOT:HERE', 2, 5), search('NOT:THERE', 3, 10), search('T:WAVE', 4, 5)])
  const replies = await udpExchange(server.udpPort, dg)
  t.equal(replies.length, 1, 'one datagram')
  const [reply] = replies
  t.same(reply?.map((m) => m.header), [
    { command: 0, payloadSize: 0, dataType: 1, dataCount: 13, parameter1: 4242, parameter2: 0 },
    { command: 6, payloadSize: 8, dataType: server.tcpPort, dataCount: 0, parameter1: 0xffffffff, parameter2: 1 },
    { command: 14, payloadSize: 0, dataType: 10, dataCount: 13, parameter1: 3, parameter2: 3 },
    { command: 6, payloadSize: 8, dataType: server.tcpPort, dataCount: 0, parameter1: 0xffffffff, parameter2: 4 }
  ])
  t.equal(hex(reply?.[1]?.payload ?? new Uint8Array()), '000d000000000000', 'the payload: minor version 13, padded')
  t.same(await udpExchange(server.udpPort, Buffer.concat([version, search('NOT:HERE', 5, 5)])), [], 'nothing for names not served')
  const many = Buffer.concat([version, ...Array.from({ length: 60 }, (_, i) => search('T:DBL', 100 + i, 5))])
  const split = await udpExchange(server.udpPort, many)
  t.ok(split.length > 1 && split.every((d) => d[0]?.header.command === 0), 'long answers split into datagrams that each start with VERSION')
  t.equal(split.flat().filter((m) => m.header.command === 6).length, 60)
  // TCP search: no payload, NOT_FOUND with DO_REPLY.
  const c = await RawCaClient.connect(server.tcpPort)
  t.teardown(() => c.close())
  c.send(msg(0, 0, 13, 0, 0), search('T:DBL', 7, 10), search('NOT:HERE', 8, 10))
  t.same((await c.next((m) => m.header.command === 6)).header, { command: 6, payloadSize: 0, dataType: server.tcpPort, dataCount: 0, parameter1: 0xffffffff, parameter2: 7 })
  t.same((await c.next((m) => m.header.command === 14)).header, { command: 14, payloadSize: 0, dataType: 10, dataCount: 13, parameter1: 8, parameter2: 8 })
})

t.test('beacons: RSRV_IS_UP to the beacon port at a growing interval; none when nothing listens is harmless', async t => {
  const listener = dgram.createSocket('udp4')
  const beacons: Array<{ at: number, bytes: Buffer }> = []
  listener.on('message', (bytes) => beacons.push({ at: performance.now(), bytes }))
  await new Promise<void>((resolve) => listener.bind(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => listener.close(() => resolve())))
  const { server } = await startServer(t, { beaconPort: listener.address().port })
  const start = performance.now()
  while (beacons.length < 5 && performance.now() - start < 3000) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(beacons.length >= 5, `${beacons.length} beacons`)
  beacons.slice(0, 5).forEach((b, i) => {
    t.equal(hex(b.bytes), hex(msg(13, 13, server.tcpPort, i, 0)), `beacon ${i}: minor version, TCP port, counter`)
  })
  const gaps = beacons.slice(1, 5).map((b, i) => b.at - (beacons[i]?.at ?? 0))
  // 20, 40, 80, 160 ms nominally (300 in all). Load stretches them and jitters each arrival, so the bounds are loose.
  const span = (beacons[4]?.at ?? 0) - (beacons[0]?.at ?? 0)
  t.ok(span >= 250 && (gaps[3] ?? 0) >= 110, `gaps double from 20 ms: ${gaps.map((g) => g.toFixed(0)).join(', ')} ms`)
  // A beacon port nobody listens on.
  const quiet = await CaServer.start({ provider: providerOf(makePvs()), beaconPort: 9, log: () => {} })
  await new Promise((resolve) => setTimeout(resolve, 100))
  await quiet.close()
  t.pass('a server beaconing to a closed port started and closed')
})

t.test('the repeater: registers libca-style (empty datagram) and REPEATER_REGISTER clients, fans beacons out to them', async t => {
  const repeater = await CaRepeater.start({ port: 0, log: () => {} })
  t.teardown(() => repeater.close())
  const clients = await Promise.all([0, 1].map(async () => {
    const socket = dgram.createSocket('udp4')
    const got: Buffer[] = []
    socket.on('message', (b) => got.push(b))
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => socket.close(() => resolve())))
    return { socket, got }
  }))
  const [a, b] = clients as [typeof clients[0], typeof clients[0]]
  a.socket.send(new Uint8Array(0), repeater.port, '127.0.0.1')
  b.socket.send(msg(24, 0, 0, 0, 0x7f000001), repeater.port, '127.0.0.1')
  const until = async (cond: () => boolean): Promise<void> => {
    const start = Date.now()
    while (!cond() && Date.now() - start < 3000) await new Promise((resolve) => setTimeout(resolve, 10))
  }
  await until(() => a.got.length > 0 && b.got.length > 0)
  t.equal(hex(a.got[0] ?? Buffer.alloc(0)), hex(msg(17, 0, 0, 0, 0x7f000001)), 'REPEATER_CONFIRM with the client\'s address')
  t.equal(hex(b.got[0] ?? Buffer.alloc(0)), hex(msg(17, 0, 0, 0, 0x7f000001)))
  t.equal(repeater.clientCount, 2)
  const { server } = await startServer(t, { beaconPort: repeater.port })
  await until(() => a.got.length >= 3 && b.got.length >= 3)
  for (const c of [a, b]) {
    t.equal(hex(c.got[1] ?? Buffer.alloc(0)), hex(msg(13, 13, server.tcpPort, 0, 0x7f000001)), 'the beacon, its zero address filled in')
  }
  // A client's own datagrams are not sent back to it.
  const before = [a.got.length, b.got.length]
  a.socket.send(msg(23, 0, 0, 0, 0), repeater.port, '127.0.0.1')
  await until(() => b.got.some((m) => m.readUInt16BE(0) === 23))
  t.ok(b.got.some((m) => m.readUInt16BE(0) === 23), 'fanned out to the other client')
  t.notOk(a.got.slice(before[0]).some((m) => m.readUInt16BE(0) === 23), 'not reflected to its sender')
})

t.test('many clients at once; close() closes them all and is idempotent', async t => {
  const { server, pvs } = await startServer(t)
  pvOf(pvs, 'T:LONG').set(new Int32Array([5]))
  const clients = await Promise.all(Array.from({ length: 40 }, async () => await RawCaClient.connect(server.tcpPort)))
  const values = await Promise.all(clients.map(async (c, i) => {
    const ch = await c.createChannel('T:LONG', i + 1)
    c.send(msg(15, 5, 1, ch.sid, 1000 + i))
    const r = await c.next((m) => m.header.command === 15)
    return decodeDbr(5, 1, r.payload, false).value[0]
  }))
  t.same(values, Array.from({ length: 40 }, () => 5))
  t.equal(server.clientCount, 40)
  clients[0]?.close()
  await clients[0]?.closed
  while (server.clientCount === 40) await new Promise((resolve) => setTimeout(resolve, 5))
  t.equal(server.clientCount, 39, 'a client that leaves no longer counts')
  await Promise.all([server.close(), server.close()])
  await Promise.all(clients.map(async (c) => await c.closed))
  t.equal(server.clientCount, 0)
  t.equal(pvOf(pvs, 'T:LONG').listenerCount, 0)
  await server.close()
  t.pass('close() a third time resolves')
})
