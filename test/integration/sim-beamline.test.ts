/**
 * The simulated beamline end to end, with the devices that exist today: SimBeamline serves config/sim.yaml on free
 * ports; the devices are built from `configFor(config)` (EpicsMotor over Channel Access, HDFPanda over the PandA's
 * ports); both cameras are armed over Channel Access for 21 triggered frames on Line1; a tomography fly scan
 * (21 images over 180° in 2 s) turns the IOC's motor record, whose position the PandA's encoder follows, and PCOMP
 * edges on TTLOUT1 trigger the cameras. Checked: each camera's ArrayCounter_RBV reaches 21 with no missed
 * trigger, the PandA file has 21 rows at the PCOMP positions, and close() is idempotent and frees the ports.
 */
import t from 'tap'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { CaChannel, CaContext, destroyCaContext } from '../../src/backends/index.js'
import { createDevices, loadConfigFile, type FlyConfig } from '../../src/config/index.js'
import { EpicsMotor } from '../../src/epics/index.js'
import { HDFPanda } from '../../src/panda/index.js'
import { DbrBase, DbrClass, dbrType, type DbrValue } from '../../src/parsers/index.js'
import { SimBeamline } from '../../src/sim/index.js'
import { privateCaRepeater } from '../support/ca-repeater.js'
import { REPO_ROOT, readWithH5py, requireHdf5Tools } from '../support/h5py.js'

requireHdf5Tools()
const dir = mkdtempSync(join(tmpdir(), 'tst-fly-sim-beamline-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const CAMERAS = ['XF:31ID1-ES{GigE-Cam:1}', 'XF:31ID1-ES{GigE-Cam:2}']
const MOTOR = 'XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr'
const IMAGES = 21

const repeater = await privateCaRepeater(t)
const config = await loadConfigFile(join(REPO_ROOT, 'config', 'sim.yaml'))
const beamline = await SimBeamline.start(config, { log: (line) => t.comment(line), beaconPort: repeater.port })
const run: FlyConfig = beamline.configFor(config)
CaContext.get(run.ca)
const channels: CaChannel[] = []
t.teardown(async () => {
  for (const c of channels) await c.clear()
  await destroyCaContext()
  await beamline.close()
})

/** Write one value over Channel Access (with put-callback unless `wait` is false). */
async function put (pv: string, base: DbrBase, value: DbrValue, wait = true): Promise<void> {
  const channel = new CaChannel(pv)
  channels.push(channel)
  await channel.waitConnected(5000)
  await channel.put(dbrType(base, DbrClass.PLAIN), value, wait)
}

async function getNumber (pv: string): Promise<number> {
  const channel = new CaChannel(pv)
  channels.push(channel)
  await channel.waitConnected(5000)
  const payload = await channel.get({ type: dbrType(DbrBase.DOUBLE, DbrClass.PLAIN) })
  return Number(payload.value[0])
}

t.test('configFor points the config at this beamline and changes nothing else', async t => {
  t.match(beamline.caAddrList, /^127\.0\.0\.1:\d+$/)
  t.equal(beamline.caAddrList, `127.0.0.1:${beamline.caServer.udpPort}`)
  t.same(run.ca, { addrList: beamline.caAddrList, autoAddrList: false })
  t.same(config.ca, { addrList: '127.0.0.1:5064', autoAddrList: false }, 'the original config is untouched')
  const panda = run.devices.find((d) => d.name === 'panda1')
  t.same(panda?.options, { host: '127.0.0.1', controlPort: beamline.pandaControlPort, dataPort: beamline.pandaDataPort })
  t.not(beamline.pandaControlPort, beamline.pandaDataPort)
  t.same(run.devices.filter((d) => d.deviceClass !== 'HDFPanda'), config.devices.filter((d) => d.deviceClass !== 'HDFPanda'))
  t.equal(run.ioc, config.ioc)
  t.equal(run.sim, config.sim)
  t.equal(beamline.panda.clock, beamline.ioc.clock, 'the PandA and the IOC run on one clock')
})

t.test('a tomography fly scan: the IOC motor turns the PandA encoder, TTLOUT1 triggers both cameras 21 times', async t => {
  // The devices as a plan gets them: from the config, with the PandA's files in our directory.
  const entries = run.devices.filter((d) => d.name === 'rot_motor' || d.name === 'panda1')
    .map((d) => d.name === 'panda1' ? { ...d, options: { ...d.options, dataRoot: dir } } : d)
  const { registry } = createDevices({ ...run, devices: entries })
  const motor = registry.find('rot_motor')
  const panda = registry.find('panda1')
  if (!(motor instanceof EpicsMotor) || !(panda instanceof HDFPanda)) throw new Error('createDevices built the wrong classes')
  t.teardown(async () => { await panda.close() })
  await Promise.all([motor.connect({ timeout: 5000 }), panda.connect({ timeout: 5000 })])

  for (const cam of CAMERAS) {
    await put(`${cam}cam1:TriggerMode`, DbrBase.ENUM, new Uint16Array([1])) // On
    await put(`${cam}cam1:TriggerSource`, DbrBase.ENUM, new Uint16Array([1])) // Line1
    await put(`${cam}cam1:ImageMode`, DbrBase.ENUM, new Uint16Array([1])) // Multiple
    await put(`${cam}cam1:NumImages`, DbrBase.LONG, new Int32Array([IMAGES]))
    await put(`${cam}cam1:AcquireTime`, DbrBase.DOUBLE, new Float64Array([0.002]))
    await put(`${cam}cam1:ArrayCounter`, DbrBase.LONG, new Int32Array([0]))
    await put(`${cam}cam1:Acquire`, DbrBase.ENUM, new Uint16Array([1]), false)
  }
  for (const cam of CAMERAS) {
    const camera = beamline.ioc.cameras.get(cam)
    const deadline = Date.now() + 5000
    while (camera?.acquiring !== true) {
      if (Date.now() > deadline) throw new Error(`${cam} is not acquiring 5 s after Acquire=1`)
      await sleep(5)
    }
  }

  await panda.stage()
  await motor.stage()
  // Tomography: 21 images over 0..180° in 2 s; the motor cruises at 90°/s from 0° to 180°.
  await Promise.all([
    motor.prepare({ startPosition: 0, endPosition: 180, timeForMove: 2 }),
    panda.prepare({ logic: 'tomography', numImages: IMAGES, scanTime: 2, startDeg: 0 })
  ])
  const record = beamline.ioc.motors.get(MOTOR)
  t.ok(record !== undefined && record.position < 0, `the motor is parked before the start (${record?.position ?? NaN}°)`)
  await panda.kickoff()
  await motor.kickoff()
  await Promise.all([motor.complete(), panda.complete()])
  t.equal(await panda.getIndex(), IMAGES, `${IMAGES} PandA rows`)

  for (const cam of CAMERAS) {
    const deadline = Date.now() + 5000
    let count = await getNumber(`${cam}cam1:ArrayCounter_RBV`)
    while (count < IMAGES && Date.now() < deadline) {
      await sleep(20)
      count = await getNumber(`${cam}cam1:ArrayCounter_RBV`)
    }
    t.equal(count, IMAGES, `${cam}cam1:ArrayCounter_RBV reached ${IMAGES}`)
    t.equal(await getNumber(`${cam}cam1:Acquire`), 0, `${cam} finished its acquisition (Acquire back to Done)`)
  }
  t.same(beamline.triggerStats.map((s) => [s.wire.camera, s.accepted, s.missed, s.ignored]),
    CAMERAS.map((c) => [c, IMAGES, 0, 0]), 'each wire carried 21 edges, all taken')
  t.same(beamline.panda.stats.ttloutEdges[0], IMAGES, 'TTLOUT1 rose 21 times')

  await panda.unstage()
  await motor.unstage()
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.h5'))
  t.equal(files.length, 1, `one PandA file (${files.join(', ')})`)
  const file = readWithH5py(join(dir, files[0] ?? 'none.h5'))
  t.equal(file.attrs.rows_written, IMAGES)
  const enc = file.datasets['INENC1.VAL.Value']?.values.map(Number) ?? []
  t.equal(enc.length, IMAGES)
  const step = 8000 / (2 * (IMAGES - 1))
  enc.forEach((v, k) => { if (Math.abs(v - k * step) > 1) t.fail(`row ${k}: encoder ${v}, expected ${k * step} (START + ${k} STEP)`) })
  t.pass('each row holds the encoder at its PCOMP position: the encoder followed the IOC motor')
})

t.test('close() is idempotent and frees the ports', async t => {
  const other = await SimBeamline.start(config, { log: () => {}, beaconPort: 0 })
  const ports = [other.caServer.tcpPort, other.pandaControlPort, other.pandaDataPort]
  await Promise.all([other.close(), other.close()])
  await other.close()
  for (const port of ports) {
    const server = net.createServer()
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, '127.0.0.1', resolve) })
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  t.pass(`ports ${ports.join(', ')} are free again`)
  // A fixed port: the beamline listens where it is told, search and circuits on one port.
  const fixed = await SimBeamline.start(config, { caPort: ports[0], pandaControlPort: ports[1], pandaDataPort: ports[2], log: () => {}, beaconPort: 0 })
  t.same([fixed.caServer.tcpPort, fixed.caServer.udpPort, fixed.pandaControlPort, fixed.pandaDataPort], [ports[0], ports[0], ports[1], ports[2]])
  await t.rejects(SimBeamline.start(config, { pandaControlPort: ports[1], log: () => {}, beaconPort: 0 }),
    { code: 'FLY_ERR_CONNECTION', message: /cannot start the simulated PandA .*EADDRINUSE/ }, 'a taken port fails naming it, and leaves nothing running')
  await fixed.close()
})

t.test('without a sim section nothing is wired; a hand-built wiring naming a camera the IOC lacks is refused', async t => {
  const bare = await SimBeamline.start({ ...config, sim: undefined }, { log: () => {}, beaconPort: 0 })
  t.same(bare.sim, { embedded: false, encoderMotor: undefined, triggers: [], panda: {} })
  t.same(bare.triggerStats, [])
  await bare.close()
  const wiring = { embedded: false, encoderMotor: undefined, triggers: [{ ttlout: 1, camera: 'XF:31ID1-ES{GigE-Cam:9}', line: 1 }], panda: {} }
  await t.rejects(SimBeamline.start({ ...config, sim: wiring }, { log: () => {}, beaconPort: 0 }), {
    code: 'FLY_ERR_BAD_INPUT',
    message: `${config.file}: sim.triggers[0].camera: the simulated IOC has no camera XF:31ID1-ES{GigE-Cam:9} (it has ${CAMERAS.join(', ')})`
  })
  await t.rejects(SimBeamline.start({ ...config, sim: { ...wiring, triggers: [], encoderMotor: 'M:' } }, { log: () => {}, beaconPort: 0 }), {
    code: 'FLY_ERR_BAD_INPUT', message: /sim\.encoderMotor: the simulated IOC has no motor M: \(it has XF:31ID1-OP:1\{CMT:1-Ax:Rot\}Mtr\)/
  })
})
