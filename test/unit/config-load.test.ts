import t from 'tap'
import { join } from 'node:path'
import { writeFile } from 'node:fs/promises'
import { loadConfigFile, parseConfig, createDevices } from '../../src/config/index.js'
import { REPO_ROOT } from '../support/h5py.js'
import { isFlyScanError, ErrorCode } from '../../src/errors.js'
import { SimMotor, SimDetector } from '../../src/devices/index.js'
import { ADVimba } from '../../src/areadetector/index.js'
import { FlyScan } from '../../src/fly/index.js'

t.test('config/sim.yaml loads and builds its sim devices', async t => {
  const cfg = await loadConfigFile(join(REPO_ROOT, 'config', 'sim.yaml'))
  t.equal(cfg.metadata.beamline_id, 'tst')
  t.same(cfg.data, { provider: 'local', root: 'out/data' })
  t.same(cfg.devices.map((d) => d.name), ['sim_rot', 'sim_det', 'rot_motor', 'manta1', 'manta2', 'panda1', 'flyscan'])
  t.equal(cfg.devices.find((d) => d.name === 'panda1')?.options.host, '127.0.0.1')
  const { registry, skipped } = createDevices(cfg)
  t.ok(registry.find('sim_rot') instanceof SimMotor)
  t.ok(registry.find('sim_det') instanceof SimDetector)
  t.same(registry.findAll({ label: 'motors' }).map((d) => d.name), ['sim_rot', 'rot_motor'])
  t.same(skipped, [], 'every class in sim.yaml is implemented (ADVimba since issue 6)')
  t.ok(registry.find('manta1') instanceof ADVimba)
  const flyscan = registry.find('flyscan')
  t.ok(flyscan instanceof FlyScan, 'the FlyScan composite is built from the devices it names')
  t.equal((flyscan as FlyScan).panda, registry.find('panda1'))
  t.equal((flyscan as FlyScan).motor, registry.find('rot_motor'))
  t.same((flyscan as FlyScan).cameras.map((c) => c.name), ['manta1', 'manta2'])
  await registry.find('sim_rot').connect({ mock: true })
})

t.test('config/tst.yaml loads: the real prefixes, a placeholder PandA host', async t => {
  const cfg = await loadConfigFile(join(REPO_ROOT, 'config', 'tst.yaml'))
  t.same(cfg.data, { provider: 'nsls2', root: '/nsls2/data/tst/legacy/mock-proposals' })
  const byName = new Map(cfg.devices.map((d) => [d.name, d]))
  t.equal(byName.get('rot_motor')?.prefix, 'XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr')
  t.equal(byName.get('manta2')?.prefix, 'XF:31ID1-ES{GigE-Cam:2}')
  t.equal(byName.get('panda1')?.prefix, 'XF:31ID1-ES{PANDA:1}:')
  t.match(String(byName.get('panda1')?.options.host), /\.invalid$/)
})

t.test('every problem is reported with file and path', async t => {
  const doc = {
    metadata: { beamline_id: 'tst', bad: { x: 1 } },
    data: { provider: 'ftp', root: '/x' },
    extra: 1,
    devices: {
      EpicsMotor: [{ name: 'a', prefix: 'P:' }, { name: 'b', prefix: 'P2:' }, { name: 'c', prefix: 42 }, { name: 'a', prefix: 'P3:' }],
      SimMotor: [{ name: 'm', velocity: 'fast', colour: 'red' }],
      HDFPanda: [{ name: 'p', prefix: 'X:' }],
      Teleporter: [{ name: 't' }],
      SimDetector: { name: 'notalist' }
    }
  }
  const err = (() => { try { parseConfig(doc, 'my.yaml'); return undefined } catch (e) { return e } })()
  t.ok(isFlyScanError(err, ErrorCode.BAD_INPUT))
  const msg = (err as Error).message
  t.match(msg, /^my\.yaml: 10 problems: /)
  t.match(msg, /extra: unknown key; allowed: metadata, data, ca, ioc, devices/)
  t.match(msg, /metadata\.bad: must be a string, number or boolean/)
  t.match(msg, /data\.provider: must be one of nsls2, local, static \(got "ftp"\)/)
  t.match(msg, /devices\.EpicsMotor\[2\]\.prefix: must be a string \(got 42\)/)
  t.match(msg, /devices\.EpicsMotor\[3\]\.name: 'a' is already used by devices\.EpicsMotor\[0\]/)
  t.match(msg, /devices\.SimMotor\[0\]\.velocity: must be a number \(got "fast"\)/)
  t.match(msg, /devices\.SimMotor\[0\]\.colour: unknown option for SimMotor; allowed: name, prefix, labels, velocity/)
  t.match(msg, /devices\.HDFPanda\[0\]\.host: is required for HDFPanda/)
  t.match(msg, /devices\.Teleporter: unknown device class; known: SimMotor, SimDetector, EpicsMotor, ADVimba, HDFPanda/)
  t.match(msg, /devices\.SimDetector: must be a list/)
})

t.test('unreadable and malformed files are BAD_FILE naming the file', async t => {
  const dir = t.testdir({})
  await t.rejects(loadConfigFile(join(dir, 'none.yaml')), { code: ErrorCode.BAD_FILE, message: /cannot read config .*none\.yaml/ })
  const bad = join(dir, 'bad.yaml')
  await writeFile(bad, 'devices:\n  SimMotor: [\n')
  await t.rejects(loadConfigFile(bad), { code: ErrorCode.BAD_FILE, message: /bad\.yaml:\d+:\d+: not valid YAML/ })
  t.same(parseConfig({}, 'empty.yaml').devices, [])
})

t.test('the ca section: each key typed, unknown keys and bad values named by path', async t => {
  const good = parseConfig({ ca: { addrList: '127.0.0.1:5064 10.0.0.1', autoAddrList: false, serverPort: 5064, maxArrayBytes: 20000000 } }, 'ca.yaml')
  t.same(good.ca, { addrList: '127.0.0.1:5064 10.0.0.1', autoAddrList: false, serverPort: 5064, maxArrayBytes: 20000000 })
  t.same(parseConfig({}, 'empty.yaml').ca, {}, 'no ca section: the environment decides')
  const err = (() => { try { parseConfig({ ca: { addrList: 5, serverPort: -1, maxArrayBytes: 1.5, colour: 'red' } }, 'c.yaml'); return undefined } catch (e) { return e } })()
  t.ok(isFlyScanError(err, ErrorCode.BAD_INPUT))
  const msg = (err as Error).message
  t.match(msg, /^c\.yaml: 4 problems: /)
  t.match(msg, /ca\.addrList: must be a string \(got 5\)/)
  t.match(msg, /ca\.serverPort: must be a positive integer \(got -1\)/)
  t.match(msg, /ca\.maxArrayBytes: must be a positive integer \(got 1\.5\)/)
  t.match(msg, /ca\.colour: unknown key; allowed: addrList, autoAddrList, serverPort, maxArrayBytes, libraryPath/)
  const notMap = (() => { try { parseConfig({ ca: 'x' }, 'd.yaml'); return undefined } catch (e) { return e } })()
  t.match((notMap as Error).message, /ca: must be a mapping \(got "x"\)/)
})

t.test('a FlyScan naming a missing or wrong device is refused naming the file, the entry and the option', async t => {
  const base = {
    metadata: { beamline_id: 'tst' },
    data: { provider: 'local', root: '/tmp/x' },
    devices: {
      SimMotor: [{ name: 'sim_rot' }],
      EpicsMotor: [{ name: 'rot_motor', prefix: 'XF:M' }],
      HDFPanda: [{ name: 'panda1', prefix: 'P:', host: '127.0.0.1' }]
    }
  }
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ name: 'fly', panda: 'panda9', motor: 'rot_motor' }, /x\.yaml: FlyScan fly: panda: there is no device called panda9/],
    [{ name: 'fly', panda: 'panda1', motor: 'sim_rot' }, /FlyScan fly: motor: sim_rot is a SimMotor, not an EpicsMotor/],
    [{ name: 'fly', panda: 'panda1', motor: 'rot_motor', cameras: 'sim_rot' }, /FlyScan fly: cameras: sim_rot is a SimMotor, not a camera/],
    [{ name: 'fly', panda: 'panda1', motor: 'rot_motor', xasRunUpDeg: -1 }, /xasRunUpDeg: -1 must be degrees >= 0/]
  ]
  for (const [entry, re] of cases) {
    const cfg = parseConfig({ ...base, devices: { ...base.devices, FlyScan: [entry] } }, 'x.yaml')
    t.throws(() => createDevices(cfg), re)
  }
  const ok = parseConfig({ ...base, devices: { FlyScan: [{ name: 'fly', panda: 'panda1', motor: 'rot_motor' }], ...base.devices } }, 'x.yaml')
  t.ok(createDevices(ok).registry.find('fly') instanceof FlyScan, 'a composite listed before its parts is still built after them')
})
