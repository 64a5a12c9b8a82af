// The RunEngine on fake devices in virtual time: every command, documents, failures and cleanup, pause/resume with
// rewind, stop/abort/halt, suspenders, wait timeout, unknown commands and SIGINT.
import t from 'tap'
import { EventEmitter } from 'node:events'
import { msg, RunEngine, VirtualClock, suspendOutsideRange, type Msg, type Plan, type RunEngineOptions } from '../../src/engine/index.js'
import type { Document, DocumentName, RunStop } from '../../src/documents/index.js'
import { isFlyScanError } from '../../src/errors.js'
import { AsyncStatus } from '../../src/devices/index.js'
import { FakeDetector, FakeMotor, FakeSignal, assetsFlyer, pagesFlyer } from './engine-fakes.js'
import { documentErrors } from '../support/schemas.js'

/** Every document any test below makes the engine emit is checked against the event-model schemas (last test). */
const schemaChecked = { count: 0, invalid: [] as string[] }

function setup (options: RunEngineOptions = {}) {
  const clock = new VirtualClock()
  const calls: string[] = []
  const dispatched: Msg[] = []
  const hooks: Array<(m: Msg) => void> = []
  const RE = new RunEngine({ clock, msgHook: (m) => { dispatched.push(m); for (const h of hooks) h(m) }, ...options })
  const docs: Array<[DocumentName, Document]> = []
  RE.subscribe((name, doc) => {
    docs.push([name, doc])
    schemaChecked.count++
    const errors = documentErrors(name, doc)
    if (errors !== undefined) schemaChecked.invalid.push(`${name}: ${errors.slice(0, 300)}`)
  })
  const motor = new FakeMotor('m1', clock, calls)
  const det = new FakeDetector('det', clock, calls)
  const names = (): string[] => docs.map(([n]) => n)
  const stopDoc = (): RunStop => docs.filter(([n]) => n === 'stop').map(([, d]) => d as RunStop)[0] as RunStop
  const onMsg = (command: string, fn: () => void, once = true): void => {
    let done = false
    hooks.push((m) => { if (m.command === command && !(once && done)) { done = true; queueMicrotask(fn) } })
  }
  return { clock, calls, dispatched, RE, docs, motor, det, names, stopDoc, onMsg }
}

function * countPlan (det: object, motor: object, n: number): Plan<string> {
  yield msg.stage(det)
  const uid = (yield msg.openRun({ plan_name: 'count' })) as string
  for (let i = 0; i < n; i++) {
    yield msg.checkpoint()
    yield msg.trigger(det, { group: 'g' })
    yield msg.wait('g')
    yield msg.create('primary')
    yield msg.read(det)
    yield msg.read(motor)
    yield msg.save()
  }
  yield msg.closeRun()
  yield msg.unstage(det)
  return uid
}

t.test('a count plan: documents, return value, state back to idle', async t => {
  const { RE, det, motor, names, stopDoc, docs, calls } = setup({ metadata: { beamline_id: 'tst' } })
  const result = await RE.run(countPlan(det, motor, 3))
  t.equal(result.outcome, 'completed')
  t.same(names(), ['start', 'descriptor', 'event', 'event', 'event', 'stop'])
  t.equal(result.returnValue, result.runUids[0])
  const start = docs[0]?.[1] as Record<string, unknown>
  t.equal(start.beamline_id, 'tst')
  t.equal(start.plan_name, 'count')
  t.equal(start.scan_id, 1)
  const event = docs[4]?.[1] as { data: Record<string, unknown>, seq_num: number }
  t.same(event.data, { det: 3, m1: 0 })
  t.equal(event.seq_num, 3)
  t.equal(stopDoc().exit_status, 'success')
  t.same(stopDoc().num_events, { primary: 3 })
  t.same(calls.filter((c) => c.includes('stage')), ['det.stage', 'det.unstage'])
  t.equal(RE.state, 'idle')
})

t.test('every command answers the plan', async t => {
  const { RE, det, motor, docs, clock, calls } = setup()
  const flyer = pagesFlyer('fly', clock, calls)
  const streamer = assetsFlyer('cam', clock, calls)
  const seen: Record<string, unknown> = {}
  const received: string[] = []
  const signal = new FakeSignal('ring', 1)
  const susp = suspendOutsideRange(signal, { low: 0.5, settleTime: 1 })
  function * plan (): Plan {
    yield msg.openRun()
    const status = (yield msg.set(motor, 5, { group: 'mv' })) as { done: boolean }
    seen.setDoneBefore = status.done
    yield msg.wait('mv')
    seen.setDoneAfter = status.done
    seen.locate = yield msg.locate(motor)
    seen.read = yield msg.read(motor)
    const t0 = clock.now()
    yield msg.sleep(2.5)
    seen.slept = clock.now() - t0
    seen.null = yield msg.null()
    const token = (yield msg.subscribe((name) => { received.push(name) }, 'event')) as number
    yield msg.create('primary'); yield msg.read(det); yield msg.save()
    yield msg.unsubscribe(token)
    yield msg.create('primary'); yield msg.read(det); yield msg.drop()
    yield msg.create('primary'); yield msg.read(det); yield msg.save()
    seen.prepare = ((yield msg.prepare(det, { n: 3 })) as { done: boolean }).done
    yield msg.installSuspender(susp)
    seen.suspenders = RE.suspenders.length
    yield msg.removeSuspender(susp)
    seen.suspendersAfter = RE.suspenders.length
    const desc = (yield msg.declareStream([streamer], { name: 'cam', collect: true })) as { name: string }
    seen.declared = desc.name
    yield msg.kickoff(flyer, { group: 'k' }); yield msg.kickoff(streamer, { group: 'k' }); yield msg.wait('k')
    yield msg.complete(flyer, { group: 'c' }); yield msg.complete(streamer, { group: 'c' }); yield msg.wait('c')
    seen.collectedPages = yield msg.collect(flyer)
    seen.collectedAssets = yield msg.collect(streamer, { name: 'cam' })
    yield msg.checkpoint()
    yield msg.pause({ defer: true }) // paused at the next checkpoint
    yield msg.checkpoint()
    yield msg.closeRun()
  }
  const first = await RE.run(plan())
  t.equal(first.outcome, 'paused')
  t.equal(RE.state, 'paused')
  const second = await RE.resume()
  t.equal(second.outcome, 'completed')
  t.equal(seen.setDoneBefore, false)
  t.equal(seen.setDoneAfter, true)
  t.same(seen.locate, { setpoint: 5, readback: 5 })
  t.same((seen.read as Record<string, { value: number }>).m1?.value, 5)
  t.equal(seen.slept, 2.5)
  t.equal(seen.null, undefined)
  t.same(received, ['event'], 'plan subscription got the event saved while subscribed, not later ones')
  t.equal(seen.prepare, true)
  t.equal(seen.suspenders, 1)
  t.equal(seen.suspendersAfter, 0)
  t.equal(signal.subscribers, 0)
  t.equal(seen.declared, 'cam')
  t.equal(seen.collectedPages, 1)
  t.equal(seen.collectedAssets, 2)
  const names = docs.map(([n]) => n)
  t.same(names, ['start', 'descriptor', 'event', 'event', 'descriptor', 'descriptor', 'event_page', 'stream_resource', 'stream_datum', 'stop'])
  const datum = docs.find(([n]) => n === 'stream_datum')?.[1] as { descriptor: string, indices: unknown }
  const camDesc = docs.filter(([n]) => n === 'descriptor').map(([, d]) => d as { uid: string, name: string }).find((d) => d.name === 'cam')
  t.equal(datum.descriptor, camDesc?.uid)
  t.same(datum.indices, { start: 0, stop: 5 })
  t.same(calls.filter((c) => c.startsWith('fly') || c.startsWith('cam')),
    ['fly.kickoff', 'cam.kickoff', 'fly.complete', 'cam.complete', 'fly.collect', 'cam.collect'])
})

t.test('unknown command and non-Msg values are thrown into the plan', async t => {
  const { RE } = setup()
  const codes: string[] = []
  function * plan (): Plan {
    for (const bad of [{ command: 'frobnicate' }, 42]) {
      try {
        yield bad as unknown as Msg
      } catch (err) {
        if (isFlyScanError(err)) codes.push(`${err.code}: ${err.message.slice(0, 90)}`)
      }
    }
  }
  await RE.run(plan())
  t.equal(codes.length, 2)
  t.match(codes[0], /^FLY_ERR_INVALID_COMMAND: RunEngine: the plan yielded unknown command 'frobnicate'/)
  t.match(codes[1], /^FLY_ERR_INVALID_COMMAND: .*not a Msg \(number\)/)
})

t.test('a failed set is thrown into the plan, which may catch it', async t => {
  const { RE, motor, stopDoc } = setup()
  motor.failNextSet = new Error('m1: following error')
  let caught: unknown
  function * plan (): Plan {
    yield msg.openRun()
    yield msg.set(motor, 3)
    try { yield msg.wait() } catch (err) { caught = err }
    yield msg.set(motor, 4)
    yield msg.wait()
    yield msg.closeRun()
  }
  const r = await RE.run(plan())
  t.equal(r.outcome, 'completed')
  t.equal((caught as Error).message, 'm1: following error')
  t.equal(motor.position, 4)
  t.equal(stopDoc().exit_status, 'success')
})

t.test('an uncaught failure: cleanup stops movers, completes and collects flyers, unstages, closes with fail', async t => {
  const { RE, motor, det, stopDoc, names, calls, clock } = setup()
  const flyer = pagesFlyer('fly', clock, calls)
  motor.failNextSet = new Error('m1: limit switch')
  function * plan (): Plan {
    yield msg.stage(det)
    yield msg.stage(motor)
    yield msg.openRun()
    yield msg.kickoff(flyer)
    yield msg.set(motor, 3)
    yield msg.wait()
    yield msg.closeRun()
  }
  await t.rejects(RE.run(plan()), { message: 'm1: limit switch' })
  t.equal(RE.state, 'idle')
  t.equal(stopDoc().exit_status, 'fail')
  t.equal(stopDoc().reason, 'm1: limit switch')
  t.same(calls.slice(calls.indexOf('m1.set(3)') + 1), ['m1.stop(false)', 'fly.complete', 'fly.collect', 'm1.unstage', 'det.unstage'])
  t.same(names(), ['start', 'descriptor', 'event_page', 'stop'])
})

t.test('wait with a timeout gives a coded TIMEOUT naming the group', async t => {
  const { RE, motor } = setup()
  const slow = new FakeMotor('slow', new VirtualClock({ autoAdvance: false }), [])
  let err: unknown
  function * plan (): Plan {
    yield msg.set(slow, 1, { group: 'move' })
    yield msg.set(motor, 1, { group: 'move' })
    try { yield msg.wait('move', { timeout: 5 }) } catch (e) { err = e }
  }
  await RE.run(plan())
  t.ok(isFlyScanError(err, 'FLY_ERR_TIMEOUT'))
  t.match((err as Error).message, /group 'move' timed out after 5 s: 1 of 2 not done \(slow\)/)
})

function * resumable (motor: object): Plan {
  yield msg.openRun()
  yield msg.checkpoint()
  yield msg.set(motor, 1)
  yield msg.wait()
  yield msg.sleep(5)
  yield msg.checkpoint()
  yield msg.set(motor, 2)
  yield msg.wait()
  yield msg.closeRun()
}

t.test('deferred pause waits for the next checkpoint; resume replays nothing', async t => {
  const { RE, motor, dispatched, onMsg } = setup()
  onMsg('sleep', () => { RE.requestPause(true) })
  const states: string[] = []
  RE.onStateChange((_f, to) => { states.push(to) })
  const r = await RE.run(resumable(motor))
  t.equal(r.outcome, 'paused')
  t.equal(dispatched.at(-1)?.command, 'checkpoint')
  const before = dispatched.length
  const r2 = await RE.resume()
  t.equal(r2.outcome, 'completed')
  t.same(dispatched.slice(before).map((m) => m.command), ['set', 'wait', 'close_run'])
  t.same(states, ['running', 'pausing', 'paused', 'running', 'idle'])
})

t.test('immediate pause rewinds to the last checkpoint and replays the messages since', async t => {
  const { RE, motor, dispatched, onMsg, calls, stopDoc } = setup()
  onMsg('sleep', () => { RE.requestPause(false) })
  const r = await RE.run(resumable(motor))
  t.equal(r.outcome, 'paused')
  t.ok(calls.includes('m1.stop(true)'), 'movers stopped on pause')
  const before = dispatched.length
  await RE.resume()
  t.same(dispatched.slice(before).map((m) => m.command), ['set', 'wait', 'sleep', 'checkpoint', 'set', 'wait', 'close_run'])
  t.same(calls.filter((c) => c.includes('set')), ['m1.set(1)', 'm1.set(1)', 'm1.set(2)'])
  t.equal(stopDoc().exit_status, 'success')
})

t.test('immediate pause without a checkpoint in the run aborts', async t => {
  const { RE, motor, onMsg, stopDoc } = setup()
  function * plan (): Plan { yield msg.openRun(); yield msg.set(motor, 1); yield msg.sleep(3); yield msg.closeRun() }
  onMsg('sleep', () => { RE.requestPause(false) })
  const r = await RE.run(plan())
  t.equal(r.outcome, 'aborted')
  t.equal(stopDoc().exit_status, 'abort')
  t.match(stopDoc().reason, /cannot pause: no checkpoint/)
})

function * withCleanup (det: object, marks: string[]): Plan {
  yield msg.stage(det)
  yield msg.openRun()
  try {
    yield msg.checkpoint()
    yield msg.sleep(10)
    marks.push('not reached')
  } finally {
    marks.push('finally')
    yield msg.null()
    marks.push('cleanup message answered')
  }
  yield msg.closeRun()
}

for (const [how, outcome, exit, reason] of [
  ['stop', 'stopped', 'success', 'stop requested'],
  ['abort', 'aborted', 'abort', 'operator abort'],
  ['halt', 'halted', 'abort', 'halt']
] as const) {
  t.test(`${how} while running: ${outcome}, exit_status ${exit}`, async t => {
    const { RE, det, onMsg, stopDoc, calls } = setup()
    const marks: string[] = []
    let ended: Promise<unknown> | undefined
    onMsg('sleep', () => { ended = how === 'abort' ? RE.abort('operator abort') : how === 'stop' ? RE.stop() : RE.halt() })
    const r = await RE.run(withCleanup(det, marks))
    t.equal(r.outcome, outcome)
    t.equal(r.reason, reason)
    t.same(await ended, r)
    t.equal(stopDoc().exit_status, exit)
    t.equal(stopDoc().reason, reason)
    t.same(marks, how === 'halt' ? ['finally'] : ['finally', 'cleanup message answered'], 'halt gives the plan no cleanup')
    t.ok(calls.includes('det.unstage'), 'the engine unstages in every case')
    t.equal(RE.state, 'idle')
  })
}

t.test('abort from paused runs the plan cleanup and closes the run', async t => {
  const { RE, det, onMsg, stopDoc } = setup()
  const marks: string[] = []
  onMsg('sleep', () => { RE.requestPause(false) })
  t.equal((await RE.run(withCleanup(det, marks))).outcome, 'paused')
  const r = await RE.abort('beam lost')
  t.equal(r.outcome, 'aborted')
  t.same(marks, ['finally', 'cleanup message answered'])
  t.equal(stopDoc().reason, 'beam lost')
})

t.test('illegal requests give ENGINE_STATE errors', async t => {
  const { RE, motor } = setup()
  await t.rejects(RE.resume(), { code: 'FLY_ERR_ENGINE_STATE', message: 'RunEngine resume: the engine is idle, and resume needs it paused' })
  await t.rejects(RE.stop(), { code: 'FLY_ERR_ENGINE_STATE', message: /from idle to stopping/ })
  const running = RE.run(resumable(motor))
  await t.rejects(RE.run(resumable(motor)), { code: 'FLY_ERR_ENGINE_STATE', message: /RunEngine run: the engine is running/ })
  await running
})

t.test('a suspender suspends the run and resumes it after the settle time', async t => {
  const { RE, motor, dispatched, onMsg, clock } = setup()
  const ring = new FakeSignal('ring_current', 400)
  RE.installSuspender(suspendOutsideRange(ring, { low: 100, settleTime: 2 }))
  const states: string[] = []
  RE.onStateChange((_f, to) => {
    states.push(to)
    if (to === 'suspending') clock.sleep(3).then(() => { ring.put(50); return clock.sleep(1) }).then(() => { ring.put(390) }).catch(() => {})
  })
  onMsg('sleep', () => { ring.put(0) })
  const t0 = clock.now()
  const r = await RE.run(resumable(motor))
  t.equal(r.outcome, 'completed')
  t.same(states, ['running', 'suspending', 'running', 'idle'])
  t.same(dispatched.map((m) => m.command),
    ['open_run', 'checkpoint', 'set', 'wait', 'sleep', 'set', 'wait', 'sleep', 'checkpoint', 'set', 'wait', 'close_run'])
  // move 1 s, beam lost at once in the sleep; back at +4 s, settle 2 s; replay: move 1 s, sleep 5 s, move 1 s.
  t.equal(clock.now() - t0, 1 + 4 + 2 + 1 + 5 + 1)
})

t.test('SIGINT once pauses at the next checkpoint, twice aborts', async t => {
  const { RE, motor, onMsg, stopDoc } = setup()
  const target = new EventEmitter()
  const uninstall = RE.installSigintHandler({ target })
  onMsg('sleep', () => { target.emit('SIGINT') })
  t.equal((await RE.run(resumable(motor))).outcome, 'paused')
  await RE.abort('done')
  const second = setup()
  const un2 = second.RE.installSigintHandler({ target })
  second.onMsg('sleep', () => { target.emit('SIGINT'); target.emit('SIGINT') })
  uninstall()
  const r = await second.RE.run(resumable(second.motor))
  t.equal(r.outcome, 'aborted')
  t.equal(second.stopDoc().reason, 'SIGINT twice')
  t.equal(stopDoc().reason, 'done')
  un2()
  t.equal(target.listenerCount('SIGINT'), 0)
})

/** A Stoppable flyer that reports a timing summary into run_stop (HasRunStopInfo), as the fly-scan coordinator does. */
class ReportingFlyer {
  stopped: boolean | undefined
  constructor (readonly name: string, private readonly clock: VirtualClock, readonly calls: string[]) {}
  kickoff (): AsyncStatus { this.calls.push(`${this.name}.kickoff`); return AsyncStatus.resolved<void>(undefined) }
  complete (): AsyncStatus { this.calls.push(`${this.name}.complete`); return new AsyncStatus(this.clock.sleep(5)) }
  async stop (success = true): Promise<void> { this.calls.push(`${this.name}.stop(${String(success)})`); this.stopped = success }
  runStopInfo (): Record<string, unknown> { return { timing: { verdict: this.stopped === false ? 'incomplete' : 'ok', frames: 3 } } }
}

t.test('devices add keys to run_stop (runStopInfo), on success and on abort; an aborted run stops its flyers', async t => {
  for (const how of ['success', 'abort'] as const) {
    const { RE, stopDoc, calls, clock, onMsg } = setup()
    const flyer = new ReportingFlyer('fly', clock, calls)
    function * plan (): Plan {
      yield msg.openRun()
      yield msg.kickoff(flyer)
      yield msg.complete(flyer, { group: 'c' })
      yield msg.wait('c')
      yield msg.closeRun()
    }
    let ended: Promise<unknown> | undefined
    if (how === 'abort') onMsg('complete', () => { ended = RE.abort('beam dump') })
    const r = await RE.run(plan())
    await ended
    t.equal(r.outcome, how === 'success' ? 'completed' : 'aborted', how)
    t.same(stopDoc().timing, { verdict: how === 'success' ? 'ok' : 'incomplete', frames: 3 }, `${how}: run_stop carries the flyer's timing`)
    t.equal(stopDoc().exit_status, how === 'success' ? 'success' : 'abort')
  }
})

t.test('an aborted run stops an uncompleted Stoppable flyer instead of completing it', async t => {
  const { RE, stopDoc, calls, clock, onMsg } = setup()
  const flyer = new ReportingFlyer('fly', clock, calls)
  function * plan (): Plan {
    yield msg.openRun()
    yield msg.kickoff(flyer)
    yield msg.sleep(10)
    yield msg.closeRun()
  }
  onMsg('sleep', () => { RE.abort('operator abort').catch(() => {}) })
  const r = await RE.run(plan())
  t.equal(r.outcome, 'aborted')
  t.same(calls, ['fly.kickoff', 'fly.stop(false)'], 'stopped, not completed')
  t.equal(stopDoc().timing !== undefined, true)
})

t.test('a runStopInfo that throws is left out of run_stop; the run still closes', async t => {
  const { RE, stopDoc, calls, clock } = setup()
  const flyer = new ReportingFlyer('fly', clock, calls)
  flyer.runStopInfo = () => { throw new Error('report not ready') }
  function * plan (): Plan {
    yield msg.openRun()
    yield msg.kickoff(flyer)
    yield msg.complete(flyer, { group: 'c' })
    yield msg.wait('c')
    yield msg.closeRun()
  }
  const r = await RE.run(plan())
  t.equal(r.outcome, 'completed')
  t.equal(stopDoc().exit_status, 'success')
  t.equal('timing' in stopDoc(), false)
})

t.test('every document the engine emitted in the tests above is schema-valid', async t => {
  t.ok(schemaChecked.count > 30, `${schemaChecked.count} documents checked`)
  t.same(schemaChecked.invalid, [])
})
