import t from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SimDetector, SimMotor } from '../../src/devices/index.js'
import { JsonlSink, parseJsonl, type DocumentName } from '../../src/documents/index.js'
import { RunEngine, msg, type Plan } from '../../src/engine/index.js'
import { validateDocument } from '../support/schemas.js'

// The engine, the simulated devices and the documents module together: a step scan run by the real RunEngine on
// SimMotor and SimDetector emits documents that all validate against the event-model schemas, and the JSONL sink
// writes them back exactly.
const dir = mkdtempSync(join(tmpdir(), 'tst-fly-engine-docs-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

function * stepScan (motor: SimMotor, det: SimDetector, points: readonly number[]): Plan<number> {
  yield msg.stage(det)
  yield msg.openRun({ plan_name: 'step_scan', plan_args: { points: [...points] }, beamline_id: 'tst', cycle: '2025-2', data_session: 'pass-56789' })
  for (const p of points) {
    yield msg.checkpoint()
    yield msg.set(motor, p, { group: 'move' })
    yield msg.wait('move')
    yield msg.trigger(det, { group: 'det' })
    yield msg.wait('det')
    yield msg.create('primary')
    yield msg.read(motor)
    yield msg.read(det)
    yield msg.save()
  }
  yield msg.closeRun({})
  yield msg.unstage(det)
  return points.length
}

t.test('every document of a step scan on simulated devices is schema-valid and round-trips through JSONL', async t => {
  const motor = new SimMotor({ name: 'rot', velocity: 1000, updatePeriodMs: 1 })
  const det = new SimDetector({ name: 'det', acquireTime: 0.001 })
  await Promise.all([motor.connect({ mock: true }), det.connect({ mock: true })])
  const RE = new RunEngine()
  const docs: Array<[DocumentName, unknown]> = []
  const sink = await JsonlSink.open(join(dir, 'run.jsonl'))
  RE.subscribe((name, doc) => { docs.push([name, doc]); sink.write(name, doc) })
  const result = await RE.run(stepScan(motor, det, [0, 1.5, 3]))
  await sink.close()
  t.equal(result.outcome, 'completed')
  t.same(docs.map(([n]) => n), ['start', 'descriptor', 'event', 'event', 'event', 'stop'])
  for (const [name, doc] of docs) t.doesNotThrow(() => validateDocument(name, doc), `${name} is schema-valid`)
  const stop = docs.at(-1)?.[1] as { exit_status: string, num_events: Record<string, number> }
  t.equal(stop.exit_status, 'success')
  t.same(stop.num_events, { primary: 3 })
  const events = docs.filter(([n]) => n === 'event').map(([, d]) => d as { data: Record<string, number>, seq_num: number })
  t.same(events.map((e) => e.seq_num), [1, 2, 3])
  t.same(events.map((e) => e.data.rot), [0, 1.5, 3], 'the motor readback at each point')
  const back = parseJsonl(readFileSync(join(dir, 'run.jsonl'), 'utf8'))
  t.same(back, JSON.parse(JSON.stringify(docs)), 'the JSONL file holds the same documents in order')
})

t.test('a failing plan still closes the run with exit_status fail, and those documents validate too', async t => {
  const det = new SimDetector({ name: 'det', acquireTime: 0.001 })
  await det.connect({ mock: true })
  const RE = new RunEngine()
  const docs: Array<[DocumentName, unknown]> = []
  RE.subscribe((name, doc) => { docs.push([name, doc]) })
  function * failing (): Plan {
    yield msg.stage(det)
    yield msg.openRun({ plan_name: 'failing' })
    yield msg.create('primary')
    yield msg.read(det)
    yield msg.save()
    throw new Error('sample fell off the stage')
  }
  await t.rejects(RE.run(failing()), /sample fell off the stage/)
  for (const [name, doc] of docs) t.doesNotThrow(() => validateDocument(name, doc), `${name} is schema-valid`)
  const stop = docs.at(-1)?.[1] as { exit_status: string, reason: string }
  t.equal(docs.at(-1)?.[0], 'stop')
  t.equal(stop.exit_status, 'fail')
  t.match(stop.reason, /sample fell off the stage/)
})
