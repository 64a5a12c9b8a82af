import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfigFile } from '../../src/config/index.js'
import { ErrorCode, isFlyScanError } from '../../src/errors.js'
import { DbrBase } from '../../src/parsers/index.js'
import {
  ManualClock, RECORD_TYPES, SimIoc, iocPvNames, parseIocConfig, simIocFromConfig, type IocConfig
} from '../../src/sim/ioc/index.js'

/** The repository root: the first directory above this file (build/test/unit/...) holding package.json. */
function repoRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir)
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`)
    dir = up
  }
  return dir
}

const ROOT = repoRoot()

async function simYaml (): Promise<SimIoc> {
  return simIocFromConfig(await loadConfigFile(join(ROOT, 'config', 'sim.yaml')), { clock: new ManualClock() })
}

function problemsOf (raw: unknown): string {
  try {
    parseIocConfig(raw, 'my.yaml')
  } catch (err) {
    if (isFlyScanError(err, ErrorCode.BAD_INPUT)) return (err as Error).message
    throw err
  }
  throw new Error('expected a BAD_INPUT error')
}

t.test('config/sim.yaml: a record of every type, the TST motor and both cameras', async t => {
  const ioc = await simYaml()
  const types = new Set([...ioc.records.values()].map((r) => r.type))
  t.same([...types].sort(), [...RECORD_TYPES].sort(), 'every plain record type')
  for (const r of ioc.records.values()) t.match(r.name, /^XF:31ID1-ES\{Sim\}/, `${r.name} under the simulated-equipment prefix`)
  const wave = ioc.find('XF:31ID1-ES{Sim}Wave-I')
  t.equal(wave?.base, DbrBase.DOUBLE)
  t.equal(wave?.maxCount, 1_000_000)
  t.equal(wave?.get().value.length, 1_000_000)
  const mbbo = ioc.find('XF:31ID1-ES{Sim}Filter-Sel')
  t.equal(mbbo?.base, DbrBase.ENUM)
  t.ok((mbbo?.metadata().enumStrings?.length ?? 0) >= 2, 'an enum mbbo')
  t.same([...ioc.motors.keys()], ['XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr'])
  t.same([...ioc.cameras.keys()], ['XF:31ID1-ES{GigE-Cam:1}', 'XF:31ID1-ES{GigE-Cam:2}'])
  t.equal(ioc.find('XF:31ID1-ES{GigE-Cam:2}image1:ArrayData')?.maxCount, 728 * 544)
  t.equal(ioc.find('XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr.VMAX')?.get().value[0], 720)
  const config = parseIocConfig((await loadConfigFile(join(ROOT, 'config', 'sim.yaml'))).ioc, 'sim.yaml')
  t.same(iocPvNames(config), ioc.names(), 'the listing function names what the provider serves')
  t.equal(new Set(ioc.names()).size, ioc.names().length, 'no name twice')
  t.ok(ioc.names().every((n) => n.split('.')[0]!.length <= 60), 'record names within the EPICS limit')
})

t.test('docs/sim-ioc.md mentions every PV that config/sim.yaml serves', async t => {
  const doc = readFileSync(join(ROOT, 'docs', 'sim-ioc.md'), 'utf8')
  const lines = doc.split('\n')
  /** The text under a `## heading` starting with `title`, up to the next `## `. */
  const section = (title: string): string => {
    const start = lines.findIndex((l) => l.startsWith(`## ${title}`))
    if (start < 0) return ''
    const end = lines.findIndex((l, i) => i > start && l.startsWith('## '))
    return lines.slice(start, end < 0 ? undefined : end).join('\n')
  }
  const ioc = await simYaml()
  const missing: string[] = []
  for (const device of ioc.devices()) {
    const suffixes = device.pvs.map((pv) => pv.slice(device.name.length)).filter((s) => s !== '')
    if (device.kind === 'record') {
      // The record's row names its type; the row of that type in the fields table names every field.
      const row = lines.find((l) => l.includes(`\`${device.name}\``))
      if (row === undefined || !row.includes(`| ${device.recordType ?? ''} |`)) missing.push(`${device.name} (a row with its type)`)
      const fieldsRow = lines.find((l) => l.startsWith(`| ${device.recordType ?? ''} |`) && l.includes('`.'))
      for (const s of suffixes) if (fieldsRow === undefined || !fieldsRow.includes(`\`${s}\``)) missing.push(`${device.name}${s}`)
    } else {
      const text = section(device.kind === 'motor' ? 'Motor record' : 'Cameras')
      if (!text.includes(`\`${device.name}\``)) missing.push(device.name)
      for (const s of suffixes) if (!text.includes(`\`${s}\``)) missing.push(`${device.name}${s}`)
    }
  }
  t.same(missing, [], 'every PV (by device and suffix) is in the doc')
  t.ok(ioc.names().length > 500, `checked ${ioc.names().length} PVs`)
})

t.test('a missing or empty ioc section serves nothing', async t => {
  for (const raw of [undefined, null, {}, { records: [], motors: [], cameras: [] }]) {
    const config = parseIocConfig(raw, 'empty.yaml')
    t.same(config, { records: [], motors: [], cameras: [] })
    t.same(new SimIoc(config).names(), [])
  }
})

t.test('values, enums and defaults are read as given', async t => {
  const config: IocConfig = parseIocConfig({
    records: [
      { name: 'S:bo', type: 'bo', znam: 'Off', onam: 'On', value: 'On' },
      { name: 'S:mbbi', type: 'mbbi', states: ['A', 'B', 'C'], value: 2, stateSeverities: ['NO_ALARM', 'MINOR'] },
      { name: 'S:wf', type: 'waveform', nelm: 4, ftvl: 'LONG', value: [1, 2] },
      { name: 'S:note', type: 'waveform', nelm: 16, ftvl: 'CHAR', value: 'hi' }
    ],
    motors: [{ prefix: 'S:m', velo: 5, accl: 0.1, hlm: 10, llm: -10, value: 3 }],
    cameras: [{ prefix: 'S:cam:', model: 'Manta G-235', width: 8, height: 4 }]
  }, 'ok.yaml')
  const ioc = new SimIoc(config, { clock: new ManualClock() })
  t.equal(ioc.find('S:bo')?.get().value[0], 1)
  t.equal(ioc.find('S:mbbi')?.get().value[0], 2)
  t.equal(ioc.find('S:wf')?.base, DbrBase.LONG)
  t.same(Array.from(ioc.find('S:wf')?.get().value as Int32Array), [1, 2])
  t.equal(ioc.records.get('S:note')?.text, 'hi')
  t.equal(ioc.motors.get('S:m')?.position, 3)
  t.equal(ioc.cameras.get('S:cam:')?.deadtime, 390e-6, 'the Manta G-235 deadtime from DESIGN.md')
  t.equal(ioc.find('S:cam:image1:ArrayData')?.maxCount, 32)
})

t.test('every problem is reported at once with its path', async t => {
  const msg = problemsOf({
    records: [
      { name: 'S:ok', type: 'ai' },
      { name: 'S:a', type: 'ai', value: 'warm', egu: 'degrees Celsius!', hhsv: 'LOUD' },
      { name: 'S:b' },
      { name: 'S:c', type: 'calc' },
      { name: 'S:d', type: 'bo', znam: 'Off', onam: 'On', value: 'Maybe', states: ['x'] },
      { name: 'S:e', type: 'waveform', ftvl: 'DOUBLE' },
      { name: 'S:f', type: 'waveform', ftvl: 'SHORT', nelm: 2, value: [1, 2, 3] },
      { name: 'S:ok', type: 'ao' },
      { name: 'has space', type: 'ai' },
      { name: `S:${'x'.repeat(60)}`, type: 'ai' },
      { name: 'S:g', type: 'mbbo', states: Array.from({ length: 17 }, (_, i) => `s${i}`) },
      { name: 'S:h', type: 'longout', value: 1.5, prec: 2 },
      'not a mapping'
    ],
    motors: [{ prefix: 'S:m', velo: -1, hlm: -5, llm: 5, speed: 3 }, { velo: 1 }],
    cameras: [{ prefix: 'S:cam', width: 0, dataType: 'Float64', model: 'Mako G-030' }, { prefix: `S:${'y'.repeat(35)}` }],
    extras: 1
  })
  const expected: Array<[string, RegExp]> = [
    ['ioc.extras', /unknown key; allowed: records, motors, cameras/],
    ['ioc.records[1].value', /must be a finite number \(got "warm"\)/],
    ['ioc.records[1].egu', /must be at most 15 bytes/],
    ['ioc.records[1].hhsv', /must be one of NO_ALARM, MINOR, MAJOR, INVALID \(got "LOUD"\)/],
    ['ioc.records[2].type', /is required; one of ai, ao, bi/],
    ['ioc.records[3].type', /must be one of ai, ao, .* \(got "calc"\)/],
    ['ioc.records[4].states', /unknown key for a bo record; allowed: name, type, value, desc, readOnly, znam, onam, zsv, osv/],
    ['ioc.records[4].value', /must be a state index 0\.\.1 or one of Off, On \(got "Maybe"\)/],
    ['ioc.records[5].nelm', /is required for a waveform/],
    ['ioc.records[6].value', /has 3 elements; nelm is 2/],
    ['ioc.records[7].name', /"S:ok" is already used by ioc\.records\[0\]\.name/],
    ['ioc.records[8].name', /must be a non-empty PV name without spaces or dots/],
    ['ioc.records[9].name', /is 62 characters; EPICS record names are at most 60/],
    ['ioc.records[10].states', /must be a list of at most 16 strings/],
    ['ioc.records[11].value', /must be an integer for a longout record \(got 1\.5\)/],
    ['ioc.records[11].prec', /unknown key for a longout record/],
    ['ioc.records[12]', /must be a mapping/],
    ['ioc.motors[0].velo', /must be >= 0 \(got -1\)/],
    ['ioc.motors[0].hlm', /must be >= llm \(got hlm -5, llm 5\)/],
    ['ioc.motors[0].speed', /unknown key for a motor; allowed: prefix, desc/],
    ['ioc.motors[1].prefix', /must be a non-empty PV name/],
    ['ioc.cameras[0].width', /must be > 0 \(got 0\)/],
    ['ioc.cameras[0].dataType', /must be one of UInt8, UInt16 \(got "Float64"\)/],
    ['ioc.cameras[0].deadtime', /is required for model "Mako G-030" \(models with a known deadtime: Manta G-125, Manta G-235, Manta G-2460\)/],
    ['ioc.cameras[1].prefix', /makes S:y{35}image1:BlockingCallbacks_RBV 65 characters; EPICS record names are at most 60/]
  ]
  const head = `my.yaml: ${expected.length} problems: `
  t.ok(msg.startsWith(head), msg)
  // Problems are joined with '; ' and each starts with its path, which starts with `ioc`.
  const parts = msg.slice(head.length).split(/; (?=ioc[.[])/)
  t.equal(parts.length, expected.length)
  for (const [path, what] of expected) {
    const part = parts.find((p) => p.startsWith(`${path}: `))
    t.ok(part !== undefined && what.test(part), `${path}: ${what.source} (got ${part ?? 'nothing'})`)
  }
})

t.test('the ioc section of a whole config file is checked with the file name in the error', async t => {
  const dir = t.testdir({ 'bad.yaml': 'ioc:\n  records:\n    - { name: "S:x", type: ao, drvh: high }\n' })
  const config = await loadConfigFile(join(dir, 'bad.yaml'))
  t.throws(() => simIocFromConfig(config), { code: ErrorCode.BAD_INPUT, message: /bad\.yaml: 1 problem: ioc\.records\[0\]\.drvh: must be a finite number \(got "high"\)/ })
})
