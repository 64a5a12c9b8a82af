import t from 'tap'
import { ErrorCode, FlyScanError } from '../../src/errors.js'
import { collectWhileCompleting, flyAndCollect } from '../../src/plans/index.js'
import { doneStatus, simulatePlan } from '../support/plan-sim.js'
import { render } from './plans-fakes.js'

// A fake flyer: Flyable, Collectable, Preparable and Stageable in shape; the simulator answers for it.
function fakeFlyer (name: string): { name: string, [k: string]: unknown } {
  const never = (): never => { throw new Error('not called by the simulator') }
  return { name, kickoff: never, complete: never, prepare: never, describeCollect: never, stage: never, unstage: never }
}

/** A complete status that becomes done after `sleeps` sleep messages. */
function slowComplete (sleeps: number): { handlers: Parameters<typeof simulatePlan>[1] } {
  let slept = 0
  const status = { get done () { return slept >= sleeps }, success: undefined, error: undefined, then: doneStatus().then }
  return { handlers: { complete: () => status, sleep: () => { slept++ } } }
}

t.test('flyAndCollect: prepare, declare, kickoff, then collect every flush period until complete, then a final collect', async t => {
  const flyer = fakeFlyer('panda')
  const { handlers } = slowComplete(2)
  const r = simulatePlan(flyAndCollect([flyer], { prepareValues: [[flyer, { frames: 10 }]], flushPeriod: 0.25, md: { sample: 'Fe' } }), handlers)
  t.notOk(r.failed, String(r.error))
  t.same(render(r.messages), [
    'stage:panda', 'open_run',
    'prepare:panda={"frames":10}', 'wait',
    'declare_stream:primary:panda',
    'kickoff:panda', 'wait',
    'complete:panda',
    'sleep:0.25', 'collect:panda>primary',
    'sleep:0.25', 'collect:panda>primary',
    'wait', 'collect:panda>primary',
    'close_run', 'unstage:panda'
  ])
  t.match(r.messages[1], { metadata: { plan_name: 'fly_and_collect', plan_args: { flyers: ['panda'], flush_period: 0.25, stream_name: 'primary' }, sample: 'Fe' } })
  const groups = r.messages.filter((m) => m.command === 'complete' || m.command === 'wait').map((m) => (m as { group?: string }).group)
  t.equal(groups.at(-1), groups[2], 'the last wait is on the complete group')
})

t.test('collectWhileCompleting with an already finished complete collects once', async t => {
  const a = fakeFlyer('a')
  const b = fakeFlyer('b')
  const r = simulatePlan(collectWhileCompleting([a, b], { streamName: 's' }))
  t.same(render(r.messages), ['complete:a', 'complete:b', 'wait', 'collect:a>s', 'collect:b>s'])
})

t.test('a failed complete is thrown into the plan, and the run is still closed and the flyer unstaged', async t => {
  const flyer = fakeFlyer('panda')
  let waits = 0
  const r = simulatePlan(flyAndCollect([flyer]), { wait: () => { if (++waits === 2) throw new Error('PandA disarmed early') } })
  t.ok(r.failed)
  t.same(render(r.messages).slice(-4), ['complete:panda', 'wait', 'close_run:fail', 'unstage:panda'])
})

t.test('a collect that fails while the flyers still run waits for their complete before the error closes the run', async t => {
  const flyer = fakeFlyer('flyscan')
  const { handlers } = slowComplete(5)
  const r = simulatePlan(flyAndCollect([flyer]), {
    ...handlers,
    collect: () => { throw new Error('manta1: disk full after 6 frames') },
    wait: (m) => { if ((m as { group?: string }).group?.startsWith('complete') === true) throw new Error('flyscan: manta1 failed: disk full') }
  })
  t.ok(r.failed)
  t.match(String(r.error), /flyscan: manta1 failed: disk full/, "the flyer's own account is reported (it names the part)")
  t.same(render(r.messages).slice(-6), ['complete:flyscan', 'sleep:0.5', 'collect:flyscan>primary', 'wait', 'close_run:fail', 'unstage:flyscan'],
    'the complete group is waited on (the flyers finish their files and reports) before the run closes')
})

t.test('a collect that fails while the flyers then complete reports the collect\'s error', async t => {
  const flyer = fakeFlyer('flyscan')
  const { handlers } = slowComplete(5)
  const r = simulatePlan(collectWhileCompleting([flyer]), { ...handlers, collect: () => { throw new Error('stream_datum for unknown stream_resource') } })
  t.ok(r.failed)
  t.match(String(r.error), /unknown stream_resource/)
  t.same(render(r.messages), ['complete:flyscan', 'sleep:0.5', 'collect:flyscan>', 'wait'])
})

t.test('a stop or abort thrown into the collect loop is not held up waiting for the flyers', async t => {
  const flyer = fakeFlyer('flyscan')
  const { handlers } = slowComplete(5)
  const r = simulatePlan(collectWhileCompleting([flyer]), { ...handlers, sleep: () => { throw new FlyScanError(ErrorCode.CANCELLED, 'abort requested') } })
  t.ok(r.failed)
  t.same(render(r.messages), ['complete:flyscan', 'sleep:0.5'], 'no wait after the cancel')
})

t.test('flyAndCollect checks its arguments at the call', async t => {
  t.throws(() => flyAndCollect([]), { code: ErrorCode.BAD_INPUT, message: /flyers must be a non-empty array/ })
  t.throws(() => flyAndCollect([{ name: 'm' }]), { code: ErrorCode.BAD_INPUT, message: /m is not flyable/ })
  t.throws(() => flyAndCollect([fakeFlyer('f')], { flushPeriod: 0 }), { code: ErrorCode.BAD_INPUT, message: /flushPeriod 0/ })
  t.throws(() => flyAndCollect([fakeFlyer('f')], { prepareValues: [[{ name: 'x' }, 1]] }), { code: ErrorCode.BAD_INPUT, message: /x in prepareValues is not preparable/ })
})
