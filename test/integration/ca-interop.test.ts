/**
 * Interop on the simulated IOC of config/sim.yaml: two independent libca clients (Debian's pyepics, and ours through
 * koffi) get, put and monitor one record of every type, the motor record and a camera, including the
 * 1,000,000-element waveform. Each client's results are checked against the expected values and against what the
 * simulated records themselves hold afterwards.
 */
import t from 'tap'
import { join } from 'node:path'
import { CaChannel, CaContext } from '../../src/backends/index.js'
import { loadConfigFile } from '../../src/config/index.js'
import { DbrBase, DbrClass, dbrType, type DbrValue } from '../../src/parsers/index.js'
import { CaServer, simIocFromConfig, type SimIoc } from '../../src/sim/index.js'
import { REPO_ROOT } from '../support/h5py.js'
import { caEnv, runPython } from '../support/pyepics.js'
import { privateCaRepeater } from '../support/ca-repeater.js'

await privateCaRepeater(t)

const S = 'XF:31ID1-ES{Sim}'
const MTR = 'XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr'
const CAM = 'XF:31ID1-ES{GigE-Cam:1}'

/** What each client writes, and what a get must then return (as pyepics reports it: enums as their strings). */
const PUTS: ReadonlyArray<{ pv: string, type: string, put: number | string, expect: number | string }> = [
  { pv: `${S}Temp-I`, type: 'ai', put: 23.25, expect: 23.25 },
  { pv: `${S}Volt-SP`, type: 'ao', put: -1.5, expect: -1.5 },
  { pv: `${S}Shutter-Sts`, type: 'bi', put: 1, expect: 'Open' },
  { pv: `${S}Shutter-Cmd`, type: 'bo', put: 'Open', expect: 'Open' },
  { pv: `${S}Mode-Sts`, type: 'mbbi', put: 2, expect: 'Step' },
  { pv: `${S}Filter-Sel`, type: 'mbbo', put: 'Al 0.5 mm', expect: 'Al 0.5 mm' },
  { pv: `${S}Cnt-I`, type: 'longin', put: 1234, expect: 1234 },
  { pv: `${S}Cnt-SP`, type: 'longout', put: 777, expect: 777 },
  { pv: `${S}Status-I`, type: 'stringin', put: 'Busy', expect: 'Busy' },
  { pv: `${S}Sample-SP`, type: 'stringout', put: 'LaB6 standard', expect: 'LaB6 standard' }
]

const WAVE = `${S}Wave-I`
const WAVE_N = 1_000_000

async function startIoc (t: { teardown: (fn: () => unknown) => void }): Promise<{ ioc: SimIoc, server: CaServer }> {
  const config = await loadConfigFile(join(REPO_ROOT, 'config', 'sim.yaml'))
  const ioc = simIocFromConfig(config)
  const server = await CaServer.start({ provider: ioc, tcpPort: 0, udpPort: 0, beaconPort: 0, log: () => {} })
  t.teardown(async () => {
    await server.close()
    ioc.close()
  })
  return { ioc, server }
}

/** What a simulated PV holds now, as a JS value (enums as their index). */
function held (ioc: SimIoc, pv: string): number | string {
  const v = ioc.find(pv)?.get().value
  if (v === undefined) throw new Error(`${pv} is not served`)
  return v[0] as number | string
}

const PYEPICS_SCRIPT = `
import json, os, time
import numpy as np
import epics
spec = json.loads(os.environ['INTEROP_SPEC'])
out = {'types': {}, 'puts': {}, 'ctrl': {}, 'monitor': [], 'motor': {}, 'camera': {}, 'wave': {}}
for item in spec['puts']:
    pv = epics.PV(item['pv'], form='ctrl')
    assert pv.wait_for_connection(10), 'no connection to ' + item['pv']
    out['types'][item['pv']] = pv.type
    pv.put(item['put'], wait=True, timeout=10)
    out['puts'][item['pv']] = pv.get(as_string=isinstance(item['expect'], str), use_monitor=False)
ai = epics.PV(spec['S'] + 'Temp-I', form='ctrl')
ai.wait_for_connection(10)
ai.get_ctrlvars()
out['ctrl']['ai'] = {'units': ai.units, 'precision': ai.precision, 'upper_disp_limit': ai.upper_disp_limit, 'upper_alarm_limit': ai.upper_alarm_limit}
mbbo = epics.PV(spec['S'] + 'Filter-Sel', form='ctrl')
mbbo.wait_for_connection(10)
mbbo.get_ctrlvars()
out['ctrl']['mbbo'] = list(mbbo.enum_strs)
seen = []
mon = epics.PV(spec['S'] + 'Volt-SP', form='time', callback=lambda value=None, **kw: seen.append(float(value)))
mon.wait_for_connection(10)
time.sleep(0.3)
for v in (1.0, 2.0, 3.0):
    epics.caput(spec['S'] + 'Volt-SP', v, wait=True)
deadline = time.time() + 10
while 3.0 not in seen and time.time() < deadline:
    time.sleep(0.05)
out['monitor'] = seen
t0 = time.time()
epics.caput(spec['MTR'], 4.5, wait=True, timeout=30)
out['motor'] = {'rbv': epics.caget(spec['MTR'] + '.RBV', use_monitor=False), 'dmov': epics.caget(spec['MTR'] + '.DMOV', use_monitor=False), 'seconds': time.time() - t0}
ids = []
img = epics.PV(spec['CAM'] + 'image1:UniqueId_RBV', callback=lambda value=None, **kw: ids.append(int(value)))
img.wait_for_connection(10)
epics.caput(spec['CAM'] + 'cam1:ImageMode', 'Multiple', wait=True)
epics.caput(spec['CAM'] + 'cam1:NumImages', 3, wait=True)
epics.caput(spec['CAM'] + 'cam1:AcquireTime', 0.01, wait=True)
epics.caput(spec['CAM'] + 'cam1:AcquirePeriod', 0.02, wait=True)
epics.caput(spec['CAM'] + 'cam1:Acquire', 1, wait=True, timeout=30)
time.sleep(0.2)
frame = epics.caget(spec['CAM'] + 'image1:ArrayData', use_monitor=False)
out['camera'] = {'ids': ids, 'counter': epics.caget(spec['CAM'] + 'cam1:ArrayCounter_RBV', use_monitor=False), 'frame_len': len(frame), 'frame_dtype': str(frame.dtype), 'state': epics.caget(spec['CAM'] + 'cam1:DetectorState_RBV', as_string=True, use_monitor=False)}
wave = epics.PV(spec['WAVE'])
wave.wait_for_connection(10)
data = np.arange(spec['WAVE_N'], dtype='float64') * 0.5
wave.put(data, wait=True, timeout=30)
back = wave.get(use_monitor=False, timeout=30)
out['wave'] = {'len': int(len(back)), 'first': float(back[0]), 'last': float(back[-1]), 'sum': float(back.sum())}
print(json.dumps(out))
`

t.test('pyepics: every record type, the motor record, a camera and the 1M-element waveform', async t => {
  const { ioc, server } = await startIoc(t)
  const spec = { S, MTR, CAM, WAVE, WAVE_N, puts: PUTS }
  const out = JSON.parse(await runPython(PYEPICS_SCRIPT, { ...caEnv(server.udpPort), INTEROP_SPEC: JSON.stringify(spec) }, { timeoutMs: 120_000 }))
  for (const p of PUTS) {
    t.equal(out.puts[p.pv], p.expect, `${p.type} ${p.pv}: pyepics reads back what it wrote`)
  }
  t.equal(out.types[`${S}Temp-I`], 'ctrl_double')
  t.equal(out.types[`${S}Filter-Sel`], 'ctrl_enum')
  t.equal(out.types[`${S}Cnt-SP`], 'ctrl_long')
  // A string has no CTRL metadata: pyepics asks for DBR_TIME_STRING instead, and says so.
  t.equal(out.types[`${S}Sample-SP`], 'time_string')
  // And the simulated records hold what was written (independently of any client's reading of it).
  t.equal(held(ioc, `${S}Volt-SP`), 3, 'the last monitored put is held')
  t.equal(held(ioc, `${S}Filter-Sel`), 2, 'the mbbo holds state index 2')
  t.equal(held(ioc, `${S}Sample-SP`), 'LaB6 standard')
  t.same(out.ctrl.ai, { units: 'C', precision: 2, upper_disp_limit: 50, upper_alarm_limit: 40 })
  t.same(out.ctrl.mbbo, ['Out', 'Al 0.1 mm', 'Al 0.5 mm', 'Cu 0.1 mm'])
  t.same(out.monitor.slice(-3), [1, 2, 3], 'the monitor saw every put in order')
  t.equal(out.motor.rbv, 4.5)
  t.equal(out.motor.dmov, 1)
  t.ok(out.motor.seconds >= 0.05, `put with wait lasted the move (${Number(out.motor.seconds).toFixed(3)} s)`)
  t.equal(out.camera.frame_len, 728 * 544)
  t.equal(out.camera.frame_dtype, 'uint8')
  t.equal(out.camera.state, 'Idle')
  t.equal(out.camera.counter, 3)
  t.same(out.camera.ids.slice(-3), [1, 2, 3], 'one UniqueId update per frame')
  t.same(out.wave, { len: WAVE_N, first: 0, last: (WAVE_N - 1) * 0.5, sum: 0.5 * WAVE_N * (WAVE_N - 1) / 2 })
  const wave = ioc.find(WAVE)?.get().value as Float64Array
  t.equal(wave.length, WAVE_N)
  t.equal(wave[123456], 123456 * 0.5, 'the server holds the waveform pyepics wrote')
})

/** Our client's value as pyepics reports it: enum as its string when asked, scalars unwrapped. */
async function ours (ch: CaChannel, asString: boolean): Promise<number | string> {
  const p = await ch.get({ type: dbrType(asString ? DbrBase.STRING : ch.nativeType, DbrClass.TIME) })
  return p.value[0] as number | string
}

t.test('tst-fly client (libca through koffi): the same on the same IOC', async t => {
  const { ioc, server } = await startIoc(t)
  const context = CaContext.get({ addrList: `127.0.0.1:${server.udpPort}`, autoAddrList: false, maxArrayBytes: 100_000_000 })
  t.teardown(async () => { await context.destroy() })
  const open = async (pv: string): Promise<CaChannel> => {
    const ch = new CaChannel(pv, { context })
    await ch.waitConnected(10_000)
    return ch
  }
  const natives = new Map<string, DbrBase>()
  for (const p of PUTS) {
    const ch = await open(p.pv)
    natives.set(p.type, ch.nativeType)
    const value: DbrValue = typeof p.put === 'string' ? [p.put] : new Float64Array([p.put])
    await ch.put(dbrType(typeof p.put === 'string' ? DbrBase.STRING : DbrBase.DOUBLE, DbrClass.PLAIN), value, true)
    t.equal(await ours(ch, typeof p.expect === 'string'), p.expect, `${p.type} ${p.pv}: our client reads back what it wrote`)
  }
  t.equal(natives.get('ai'), DbrBase.DOUBLE)
  t.equal(natives.get('mbbo'), DbrBase.ENUM)
  t.equal(natives.get('longout'), DbrBase.LONG)
  t.equal(natives.get('stringout'), DbrBase.STRING)
  t.equal(held(ioc, `${S}Filter-Sel`), 2)
  t.equal(held(ioc, `${S}Cnt-I`), 1234)

  const ai = await open(`${S}Temp-I`)
  const ctrl = await ai.get({ type: dbrType(DbrBase.DOUBLE, DbrClass.CTRL) })
  t.match(ctrl.metadata, { units: 'C', precision: 2, upperDispLimit: 50, upperAlarmLimit: 40 })
  const mbbo = await open(`${S}Filter-Sel`)
  const enumCtrl = await mbbo.get({ type: dbrType(DbrBase.ENUM, DbrClass.CTRL) })
  t.same(enumCtrl.metadata?.enumStrings, ['Out', 'Al 0.1 mm', 'Al 0.5 mm', 'Cu 0.1 mm'])

  const volt = await open(`${S}Volt-SP`)
  const seen: number[] = []
  const monitor = volt.monitor((p) => { seen.push(p.value[0] as number) })
  for (const v of [1, 2, 3]) await volt.put(dbrType(DbrBase.DOUBLE, DbrClass.PLAIN), new Float64Array([v]), true)
  const deadline = Date.now() + 10_000
  while (!seen.includes(3) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  await monitor.close()
  t.same(seen.slice(-3), [1, 2, 3], 'the monitor saw every put in order')

  const mtr = await open(MTR)
  const t0 = Date.now()
  await mtr.put(dbrType(DbrBase.DOUBLE, DbrClass.PLAIN), new Float64Array([-2.25]), true)
  t.ok(Date.now() - t0 >= 50, 'put with completion lasted the move')
  t.equal(await ours(await open(`${MTR}.RBV`), false), -2.25)
  t.equal(await ours(await open(`${MTR}.DMOV`), false), 1)

  const ids: number[] = []
  const uid = await open(`${CAM}image1:UniqueId_RBV`)
  const uidMonitor = uid.monitor((p) => { ids.push(p.value[0] as number) })
  const frames: number[] = []
  const data = await open(`${CAM}image1:ArrayData`)
  const frameMonitor = data.monitor((p) => { if (p.value.length > 0) frames.push(p.value.length) })
  const put = async (suffix: string, v: string | number): Promise<void> => {
    const ch = await open(`${CAM}${suffix}`)
    await ch.put(dbrType(typeof v === 'string' ? DbrBase.STRING : DbrBase.DOUBLE, DbrClass.PLAIN), typeof v === 'string' ? [v] : new Float64Array([v]), true)
  }
  await put('cam1:ImageMode', 'Multiple')
  await put('cam1:NumImages', 3)
  await put('cam1:AcquireTime', 0.01)
  await put('cam1:AcquirePeriod', 0.02)
  await put('cam1:Acquire', 1)
  await new Promise((resolve) => setTimeout(resolve, 200))
  await uidMonitor.close()
  await frameMonitor.close()
  t.same(ids.slice(-3), [1, 2, 3], 'one UniqueId update per frame')
  t.same(frames, [728 * 544, 728 * 544, 728 * 544], 'three whole Mono8 frames monitored')
  t.equal(await ours(await open(`${CAM}cam1:DetectorState_RBV`), true), 'Idle')

  const wave = await open(WAVE)
  const values = new Float64Array(WAVE_N).map((_, i) => i * 0.25)
  await wave.put(dbrType(DbrBase.DOUBLE, DbrClass.PLAIN), values, true)
  const back = (await wave.get({ timeoutMs: 30_000 })).value as Float64Array
  t.equal(back.length, WAVE_N)
  t.equal(back[WAVE_N - 1], (WAVE_N - 1) * 0.25)
  t.equal((ioc.find(WAVE)?.get().value as Float64Array)[999], 999 * 0.25, 'the server holds the waveform we wrote')
})
