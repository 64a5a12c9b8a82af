import t from 'tap'
import { ErrorCode, FlyScanError } from '../../src/errors.js'
import { msg, type Plan } from '../../src/engine/index.js'
import {
  absSet, finalizeWrapper, mv, mvr, relSet, runWrapper, sleep, stageWrapper, triggerAndRead
} from '../../src/plans/index.js'
import { simulatePlan } from '../support/plan-sim.js'
import { fakeDetector, fakeMotor, render } from './plans-fakes.js'

const badInput = (re: RegExp) => ({ code: ErrorCode.BAD_INPUT, message: re })

t.test('mv sets every device in one group and waits on that group', async t => {
  const m1 = fakeMotor('m1')
  const m2 = fakeMotor('m2')
  const r = simulatePlan(mv(m1, 1, m2, 2))
  t.same(render(r.messages), ['set:m1=1', 'set:m2=2', 'wait'])
  const [s1, s2, w] = r.messages as Array<{ group?: string }>
  t.ok(s1?.group !== undefined && s1.group === s2?.group && s1.group === w?.group, 'one group')
  t.equal((r.returnValue ?? []).length, 2, 'returns the statuses')
})

t.test('mv and mvr check their arguments when called', async t => {
  const m1 = fakeMotor('m1')
  t.throws(() => mv(m1, 1, m1), badInput(/mv: expected pairs of \(device, value\); got 3 arguments/))
  t.throws(() => mv(), badInput(/got 0 arguments/))
  t.throws(() => mv({ name: 'det' }, 1), badInput(/mv argument 1: det is not movable/))
  t.throws(() => mv(42, 1), badInput(/42 is not movable/))
  t.throws(() => mv(m1, 1, m1, 2), badInput(/m1 is given more than once/))
  t.throws(() => mvr(m1, 'x'), badInput(/mvr value for m1: "x" is not a finite number/))
  const noLocate = { name: 'nl', set: () => undefined }
  t.throws(() => mvr(noLocate, 1), badInput(/mvr: nl is not locatable/))
  t.throws(() => relSet(noLocate as never, 1), badInput(/relSet: nl is not locatable/))
  t.throws(() => sleep(-1), badInput(/sleep: seconds -1/))
  t.throws(() => triggerAndRead([]), badInput(/non-empty array/))
  t.throws(() => triggerAndRead([{ name: 'x' }]), badInput(/x is not readable/))
  t.ok(new FlyScanError(ErrorCode.BAD_INPUT, 'x') instanceof Error)
})

t.test('mvr and relSet move relative to the located setpoint', async t => {
  const m1 = fakeMotor('m1')
  const m2 = fakeMotor('m2')
  const where = new Map<unknown, number>([[m1, 5], [m2, -1]])
  const handlers = { locate: (m: { obj: unknown }) => ({ setpoint: where.get(m.obj), readback: 0 }) }
  t.same(render(simulatePlan(mvr(m1, 1, m2, 2), handlers).messages), ['locate:m1', 'locate:m2', 'set:m1=6', 'set:m2=1', 'wait'])
  t.same(render(simulatePlan(relSet(m1 as never, -2, { wait: true }), handlers).messages), ['locate:m1', 'set:m1=3', 'wait'])
  t.same(render(simulatePlan(absSet(m1 as never, 7)).messages), ['set:m1=7'])
})

t.test('triggerAndRead triggers what is triggerable, waits, bundles and returns the readings', async t => {
  const det = fakeDetector('det')
  const m1 = fakeMotor('m1')
  const r = simulatePlan(triggerAndRead([det, m1, det], 'baseline'), {
    read: (m) => ({ [(m.obj as { name: string }).name]: { value: 1, timestamp: 2 } })
  })
  t.same(render(r.messages), ['trigger:det', 'wait', 'create:baseline', 'read:det', 'read:m1', 'save'])
  t.same(r.returnValue, { det: { value: 1, timestamp: 2 }, m1: { value: 1, timestamp: 2 } })
  const noTrigger = simulatePlan(triggerAndRead([m1]))
  t.same(render(noTrigger.messages), ['create:primary', 'read:m1', 'save'], 'no wait when nothing was triggered')
  const failing = simulatePlan(triggerAndRead([det, m1]), { read: () => { throw new Error('read timed out') } })
  t.same(render(failing.messages), ['trigger:det', 'wait', 'create:primary', 'read:det', 'drop'])
  t.match(failing.error, /read timed out/)
})

function * threeNulls (fail = false): Plan<string> {
  yield msg.null()
  yield msg.null()
  if (fail) throw new Error('plan broke')
  yield msg.null()
  return 'done'
}

function * finalPlan (): Plan {
  yield msg.checkpoint()
}

t.test('finalizeWrapper runs the final plan on success, on error and on close', async t => {
  const ok = simulatePlan(finalizeWrapper(threeNulls(), finalPlan))
  t.same(render(ok.messages), ['null', 'null', 'null', 'checkpoint'])
  t.equal(ok.returnValue, 'done')

  const raised = simulatePlan(finalizeWrapper(threeNulls(true), finalPlan()))
  t.same(render(raised.messages), ['null', 'null', 'checkpoint'])
  t.match(raised.error, /plan broke/)

  let n = 0
  const injected = simulatePlan(finalizeWrapper(threeNulls(), finalPlan), {
    null: () => { if (++n === 2) throw new Error('device failed') }
  })
  t.same(render(injected.messages), ['null', 'null', 'checkpoint'], 'an error thrown into the plan still runs the final plan')
  t.match(injected.error, /device failed/)

  const closing = finalizeWrapper(threeNulls(), finalPlan)
  t.match(closing.next().value, { command: 'null' })
  const r = closing.return('closed')
  t.equal(r.done, false)
  t.match(r.value, { command: 'checkpoint' }, 'return() yields the final plan')
  t.same(closing.next(), { done: true, value: 'closed' })
})

t.test('stageWrapper stages stageable devices before and unstages them in reverse after, even on failure', async t => {
  const a = fakeDetector('a')
  const b = fakeDetector('b')
  const m = fakeMotor('m')
  t.same(render(simulatePlan(stageWrapper(threeNulls(), [a, m, b])).messages),
    ['stage:a', 'stage:b', 'null', 'null', 'null', 'unstage:b', 'unstage:a'])
  const failed = simulatePlan(stageWrapper(threeNulls(true), [a, b]))
  t.same(render(failed.messages), ['stage:a', 'stage:b', 'null', 'null', 'unstage:b', 'unstage:a'])
  t.ok(failed.failed)
})

t.test('runWrapper opens and closes the run; on failure it closes with fail and the reason, then rethrows', async t => {
  const ok = simulatePlan(runWrapper(threeNulls(), { plan_name: 'x' }))
  t.same(render(ok.messages), ['open_run', 'null', 'null', 'null', 'close_run'])
  t.same(ok.messages[0], { command: 'open_run', metadata: { plan_name: 'x' } })
  t.equal(ok.returnValue, 'sim-run-uid', 'returns the run uid')

  let n = 0
  const failed = simulatePlan(runWrapper(threeNulls()), { null: () => { if (++n === 1) throw new Error('motor stalled') } })
  t.same(render(failed.messages), ['open_run', 'null', 'close_run:fail'])
  t.match(failed.messages.at(-1), { reason: 'motor stalled' })
  t.match(failed.error, /motor stalled/)

  const cancelled = simulatePlan(runWrapper(threeNulls()), {
    null: () => { throw new FlyScanError(ErrorCode.CANCELLED, 'RunEngine stop') }
  })
  t.same(render(cancelled.messages), ['open_run', 'null'], 'a stop/abort is left to the engine, which closes the run')
  t.match(cancelled.error, { code: ErrorCode.CANCELLED })
})
