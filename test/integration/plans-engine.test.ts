import t, { type Test } from 'tap'
import { AsyncStatus, SimDetector, SimMotor, type DataKey, type PartialEventPage } from '../../src/devices/index.js'
import type { DocumentName } from '../../src/documents/index.js'
import { RunEngine, type Plan } from '../../src/engine/index.js'
import { count, flyAndCollect, gridScan, relScan, scan } from '../../src/plans/index.js'
import { validateDocument } from '../support/schemas.js'

// The plans run by the real RunEngine on SimMotor/SimDetector (mock: true): the expected events, and every
// document schema-valid.
async function rig (): Promise<{ m1: SimMotor, m2: SimMotor, det: SimDetector }> {
  const m1 = new SimMotor({ name: 'm1', velocity: 1000, updatePeriodMs: 1 })
  const m2 = new SimMotor({ name: 'm2', velocity: 1000, updatePeriodMs: 1 })
  const det = new SimDetector({ name: 'det', acquireTime: 0.001 })
  await Promise.all([m1.connect({ mock: true }), m2.connect({ mock: true }), det.connect({ mock: true })])
  return { m1, m2, det }
}

type Docs = Array<[DocumentName, Record<string, unknown>]>

async function runAll (t: Test, plan: Plan<string>): Promise<Docs> {
  const RE = new RunEngine()
  const docs: Docs = []
  RE.subscribe((name, doc) => { docs.push([name, doc as Record<string, unknown>]) })
  const result = await RE.run(plan, { beamline_id: 'tst' })
  t.equal(result.outcome, 'completed')
  t.equal(result.returnValue, result.runUids[0], 'the plan returns the run uid')
  for (const [name, doc] of docs) t.doesNotThrow(() => validateDocument(name, doc), `${name} is schema-valid`)
  t.equal((docs.at(-1)?.[1])?.exit_status, 'success')
  return docs
}

function eventData (docs: Docs): Array<Record<string, number>> {
  return docs.filter(([n]) => n === 'event').map(([, d]) => d.data as Record<string, number>)
}

t.test('count emits one event per reading', async t => {
  const { det } = await rig()
  const docs = await runAll(t, count([det], 3))
  t.same(docs.map(([n]) => n), ['start', 'descriptor', 'event', 'event', 'event', 'stop'])
  t.same(eventData(docs).map((d) => d.det), [1001, 1002, 1003])
  t.match(docs[0]?.[1], { plan_name: 'count', beamline_id: 'tst', hints: { dimensions: [[['time'], 'primary']] } })
  t.notOk(det.staged, 'unstaged at the end')
})

t.test('scan moves both motors together and reads them', async t => {
  const { m1, m2, det } = await rig()
  const docs = await runAll(t, scan([det], [[m1, 0, 1], [m2, 10, 8]], 3))
  t.same(eventData(docs).map((d) => [d.m1, d.m2]), [[0, 10], [0.5, 9], [1, 8]])
  t.same((docs.at(-1)?.[1])?.num_events, { primary: 3 })
})

t.test('gridScan with snaking visits the grid in snake order', async t => {
  const { m1, m2, det } = await rig()
  const docs = await runAll(t, gridScan([det], [[m1, 0, 1, 2], [m2, 0, 2, 3, true]]))
  t.same(eventData(docs).map((d) => [d.m1, d.m2]), [[0, 0], [0, 1], [0, 2], [1, 2], [1, 1], [1, 0]])
  t.match(docs[0]?.[1], { shape: [2, 3], hints: { gridding: 'rectilinear' } })
})

t.test('relScan returns the motor to where it started', async t => {
  const { m1, det } = await rig()
  await m1.set(3)
  const docs = await runAll(t, relScan([det], [[m1, -1, 1]], 3))
  t.same(eventData(docs).map((d) => d.m1), [2, 3, 4])
  t.equal(await m1.userReadback.getValue(), 3)
})

t.test('flyAndCollect with a fake flyer: pages collected while completing, documents valid', async t => {
  let t0 = 0
  const flyer = {
    name: 'flyer',
    kickoff: () => { t0 = Date.now(); return AsyncStatus.resolved<void>(undefined) },
    complete: () => new AsyncStatus(new Promise<void>((resolve) => setTimeout(resolve, 60))),
    describeCollect: async (): Promise<Record<string, DataKey>> => ({ 'flyer-x': { dtype: 'number', shape: [], source: 'sim:flyer' } }),
    collectPages: async function * (): AsyncIterable<PartialEventPage> {
      const t = (Date.now() - t0) / 1000 + 1e9
      yield { data: { 'flyer-x': [1, 2] }, timestamps: { 'flyer-x': [t, t] }, time: [t, t] }
    }
  }
  const docs = await runAll(t, flyAndCollect([flyer], { flushPeriod: 0.02 }))
  const names = docs.map(([n]) => n)
  t.same(names.slice(0, 2), ['start', 'descriptor'])
  t.ok(names.filter((n) => n === 'event_page').length >= 2, `pages while completing and at the end (${names.length} docs)`)
})
