// The state table, legal and illegal transitions (table-driven), and the plan simulator on a small plan.
import t from 'tap'
import { ENGINE_STATES, StateMachine, TRANSITIONS, msg, type EngineState, type Plan } from '../../src/engine/index.js'
import { isFlyScanError } from '../../src/errors.js'
import { commands, simulatePlan } from '../support/plan-sim.js'

/** A machine put in `from` through legal transitions only. */
function machineIn (from: EngineState, log: string[]): StateMachine {
  const sm = new StateMachine({ info: (m) => { log.push(m) }, warn: () => {} })
  const path: Record<EngineState, EngineState[]> = {
    idle: [],
    running: ['running'],
    pausing: ['running', 'pausing'],
    paused: ['running', 'pausing', 'paused'],
    halting: ['running', 'halting'],
    stopping: ['running', 'stopping'],
    aborting: ['running', 'aborting'],
    suspending: ['running', 'suspending'],
    panicked: ['panicked']
  }
  for (const s of path[from]) sm.transition(s)
  return sm
}

for (const from of ENGINE_STATES) {
  for (const to of ENGINE_STATES) {
    const legal = TRANSITIONS[from].includes(to)
    t.test(`${from} -> ${to} is ${legal ? 'legal' : 'illegal'}`, async t => {
      const log: string[] = []
      const sm = machineIn(from, log)
      t.equal(sm.state, from)
      if (legal) {
        sm.transition(to, 'test')
        t.equal(sm.state, to)
        t.equal(log.at(-1), `RunEngine ${from} -> ${to}: test`)
      } else {
        const before = log.length
        let thrown: unknown
        try { sm.transition(to) } catch (err) { thrown = err }
        t.ok(isFlyScanError(thrown, 'FLY_ERR_ENGINE_STATE'), 'coded ENGINE_STATE')
        t.match((thrown as Error).message, `RunEngine cannot go from ${from} to ${to}; from ${from} it may go to: `)
        t.equal((thrown as { details: Record<string, unknown> }).details.allowed, TRANSITIONS[from].join(','))
        t.equal(sm.state, from)
        t.equal(log.length, before, 'nothing logged for a refused transition')
      }
    })
  }
}

t.test('panicked is terminal', async t => {
  t.same(TRANSITIONS.panicked, [])
  for (const s of ENGINE_STATES) if (s !== 'panicked') t.ok(TRANSITIONS[s].includes('panicked'), `${s} may panic`)
})

function * moveAndRead (motor: object, det: object): Plan<number> {
  yield msg.stage(det)
  yield msg.openRun()
  try {
    yield msg.set(motor, 1, { group: 'a' })
    yield msg.wait('a')
    yield msg.create()
    const reading = (yield msg.read(det)) as Record<string, { value: number }>
    yield msg.save()
    return reading.det?.value ?? -1
  } finally {
    yield msg.closeRun()
    yield msg.unstage(det)
  }
}

t.test('plan-sim: choreography and answers from the handler table', async t => {
  const motor = { name: 'm1' }
  const det = { name: 'det' }
  const r = simulatePlan(moveAndRead(motor, det), { read: () => ({ det: { value: 7, timestamp: 0 } }) })
  t.equal(r.failed, false)
  t.equal(r.returnValue, 7)
  t.same(commands(r.messages), ['stage', 'open_run', 'set', 'wait', 'create', 'read', 'save', 'close_run', 'unstage'])
})

t.test('plan-sim: an injected failure still yields the cleanup', async t => {
  const r = simulatePlan(moveAndRead({ name: 'm1' }, { name: 'det' }), { wait: () => { throw new Error('m1 stalled') } })
  t.equal(r.failed, true)
  t.equal((r.error as Error).message, 'm1 stalled')
  t.same(commands(r.messages), ['stage', 'open_run', 'set', 'wait', 'close_run', 'unstage'])
})
