import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseJsonl, type NamedDocument } from '../../src/documents/index.js'
import { REPO_ROOT } from '../support/h5py.js'
import { runCli } from '../support/cli.js'
import { validateDocument } from '../support/schemas.js'

// `tst-fly run` and `tst-fly plans` end to end: the built command in a child process, config/sim.yaml's simulated
// devices, the JSONL documents read back and schema-checked.
const dir = mkdtempSync(join(tmpdir(), 'tst-fly-run-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const SIM = join(REPO_ROOT, 'config', 'sim.yaml')

function readDocs (file: string): NamedDocument[] {
  const docs = parseJsonl(readFileSync(file, 'utf8'), file)
  for (const [name, doc] of docs) validateDocument(name, doc)
  return docs
}

function field (doc: unknown, key: string): unknown {
  return (doc as Record<string, unknown>)[key]
}

t.test('run count --num 5 writes start, descriptor, 5 events, stop, all schema-valid', async t => {
  const out = join(dir, 'out.jsonl')
  const r = await runCli(['run', 'count', '--num', '5', '--config', SIM, '--docs', out, '--md', 'sample=Si', '--md', 'temperature=295'])
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`)
  const docs = readDocs(out)
  t.same(docs.map(([n]) => n), ['start', 'descriptor', 'event', 'event', 'event', 'event', 'event', 'stop'])
  const start = docs[0]?.[1]
  t.equal(field(start, 'plan_name'), 'count')
  t.equal(field(start, 'beamline_id'), 'tst', 'config metadata in the start document')
  t.equal(field(start, 'sample'), 'Si', '--md string value')
  t.equal(field(start, 'temperature'), 295, '--md value parsed as JSON')
  t.equal(field(docs[7]?.[1], 'exit_status'), 'success')
  t.match(r.stdout, /seq_num/, 'live table header')
  t.match(r.stdout, /\|\s+5 \|/, 'live table has the fifth row')
  t.match(r.stdout, /8 documents \(5 events\) written to /)
})

t.test('run scan moves the motor through the points', async t => {
  const out = join(dir, 'scan.jsonl')
  const r = await runCli(['run', 'scan', '--motor', 'sim_rot', '--start', '-1', '--stop', '1', '--num', '3', '--config', SIM, '--docs', out])
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`)
  const docs = readDocs(out)
  const events = docs.filter(([n]) => n === 'event').map(([, d]) => field(field(d, 'data'), 'sim_rot'))
  t.same(events, [-1, 0, 1])
  t.equal(field(docs[0]?.[1], 'plan_name'), 'scan')
})

t.test('run grid_scan --snake and --json summary', async t => {
  const yaml = readFileSync(SIM, 'utf8').replace(/ {2}SimMotor:\n/, '  SimMotor:\n    - name: sim_x\n      labels: [motors]\n')
  const config = join(dir, 'two-motors.yaml')
  writeFileSync(config, yaml)
  const out = join(dir, 'grid.jsonl')
  const r = await runCli(['run', 'grid_scan', '--motor', 'sim_x', '--start', '0', '--stop', '1', '--num', '2',
    '--motor2', 'sim_rot', '--start2', '0', '--stop2', '2', '--num2', '3', '--snake', '--config', config, '--docs', out, '--json'])
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`)
  const summary = JSON.parse(r.stdout) as { outcome: string, exitStatus: string, events: number, documents: number, docs: string }
  t.match(summary, { outcome: 'completed', exitStatus: 'success', events: 6, documents: 9, docs: out })
  const fast = readDocs(out).filter(([n]) => n === 'event').map(([, d]) => field(field(d, 'data'), 'sim_rot'))
  t.same(fast, [0, 1, 2, 2, 1, 0], 'the fast axis snakes')
})

t.test('without --docs the documents go beside the data: <data.root>/run-<time>.jsonl', async t => {
  const root = join(dir, 'data-root')
  const config = join(dir, 'rooted.yaml')
  writeFileSync(config, readFileSync(SIM, 'utf8').replace(/root: out\/data/, `root: ${JSON.stringify(root)}`))
  const r = await runCli(['run', 'count', '--config', config])
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`)
  t.ok(existsSync(root), 'data root created')
  const files = readdirSync(root)
  t.equal(files.length, 1)
  t.match(files[0], /^run-\d{8}-\d{6}-\d{3}\.jsonl$/)
  t.match(r.stdout, files[0] as string, 'prints where the documents went')
  t.equal(readDocs(join(root, files[0] as string)).length, 4)
})

t.test('plans lists the plans with their arguments and defaults', async t => {
  const r = await runCli(['plans'])
  t.equal(r.code, 0)
  for (const name of ['count', 'scan', 'rel_scan', 'grid_scan']) t.match(r.stdout, new RegExp(`^${name}: `, 'm'), name)
  t.match(r.stdout, /--num <integer> \(integer, default 1\)/)
  t.match(r.stdout, /--motor <name> \(device, required\)/)
  t.match(r.stdout, /--detectors <name,...> \(devices, default: devices labelled 'detectors'\)/)
})

t.test('bad input exits 2 and lists what is accepted', async t => {
  const unknown = await runCli(['run', 'nope', '--config', SIM])
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /unknown plan 'nope'; plans: tomo_fly, xas_fly, energy_calibration, dark_flat, count, scan, rel_scan, grid_scan/)

  const badNum = await runCli(['run', 'count', '--num', 'five', '--config', SIM, '--docs', join(dir, 'never.jsonl')])
  t.equal(badNum.code, 2)
  t.match(badNum.stderr, /--num must be a finite number, got 'five'; accepted arguments:/)
  t.match(badNum.stderr, /--delay <number> \(number, default 0\)/)
  t.notOk(existsSync(join(dir, 'never.jsonl')), 'no documents file for bad input')

  const unknownArg = await runCli(['run', 'count', '--bogus', '1', '--config', SIM])
  t.equal(unknownArg.code, 2)
  t.match(unknownArg.stderr, /count: unknown argument --bogus; accepted arguments:\n {2}--detectors/)

  const missing = await runCli(['run', 'scan', '--motor', 'sim_rot', '--start', '0', '--num', '3', '--config', SIM])
  t.equal(missing.code, 2)
  t.match(missing.stderr, /scan: missing --stop/)

  const noDevice = await runCli(['run', 'scan', '--motor', 'nothing', '--start', '0', '--stop', '1', '--num', '3', '--config', SIM])
  t.equal(noDevice.code, 2)
  t.match(noDevice.stderr, /no device named 'nothing'; known: sim_rot, sim_det/)

  const badMd = await runCli(['run', 'count', '--md', 'novalue', '--config', SIM])
  t.equal(badMd.code, 2)
  t.match(badMd.stderr, /--md takes key=value/)
})

t.test('a run that fails exits 1 and its documents end with exit_status fail', async t => {
  const config = join(dir, 'limited.yaml')
  writeFileSync(config, readFileSync(SIM, 'utf8').replace(/velocity: 90\n {6}units: deg/, 'velocity: 90\n      units: deg\n      highLimit: 1'))
  const out = join(dir, 'fail.jsonl')
  const r = await runCli(['run', 'scan', '--motor', 'sim_rot', '--start', '0', '--stop', '5', '--num', '3', '--config', config, '--docs', out])
  t.equal(r.code, 1, `exit 1 (stderr: ${r.stderr})`)
  t.match(r.stderr, /run scan failed: /)
  const docs = readDocs(out)
  t.equal(docs.at(-1)?.[0], 'stop')
  t.equal(field(docs.at(-1)?.[1], 'exit_status'), 'fail')
})
