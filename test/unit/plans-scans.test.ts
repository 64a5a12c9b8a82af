import t from 'tap'
import { ErrorCode } from '../../src/errors.js'
import type { Readable } from '../../src/devices/index.js'
import { count, gridPoints, gridScan, listScan, relScan, scan, type Motor } from '../../src/plans/index.js'
import { commands, simulatePlan } from '../support/plan-sim.js'
import { fakeDetector, fakeMotor, render } from './plans-fakes.js'

const det = fakeDetector('det') as unknown as Readable
const m1 = fakeMotor('m1') as unknown as Motor
const m2 = fakeMotor('m2') as unknown as Motor
const m3 = fakeMotor('m3') as unknown as Motor
const badInput = (re: RegExp) => ({ code: ErrorCode.BAD_INPUT, message: re })

const point = (moves: string[], reads: string[]): string[] => [
  'checkpoint', ...moves, ...(moves.length > 0 ? ['wait'] : []), 'trigger:det', 'wait', 'create:primary', ...reads.map((r) => `read:${r}`), 'save'
]

t.test('count: exact choreography and run metadata', async t => {
  const r = simulatePlan(count([det], 2, 0, { sample: 'Cu' }))
  t.same(render(r.messages), ['stage:det', 'open_run', ...point([], ['det']), ...point([], ['det']), 'close_run', 'unstage:det'])
  t.same(r.messages[1], {
    command: 'open_run',
    metadata: {
      plan_name: 'count',
      plan_args: { detectors: ['det'], num: 2 },
      detectors: ['det'],
      num_points: 2,
      num_intervals: 1,
      sample: 'Cu',
      hints: { dimensions: [[['time'], 'primary']] }
    }
  })
  t.equal(r.returnValue, 'sim-run-uid')
  const delayed = simulatePlan(count([det], 3, 0.5))
  t.same(commands(delayed.messages).filter((c) => c === 'sleep').length, 2, 'a delay between readings, not after the last')
})

t.test('scan: all motors move together at each point (inner product)', async t => {
  const r = simulatePlan(scan([det], [[m1, 0, 2], [m2, 10, 20]], 3))
  t.same(render(r.messages), [
    'stage:det', 'open_run',
    ...point(['set:m1=0', 'set:m2=10'], ['det', 'm1', 'm2']),
    ...point(['set:m1=1', 'set:m2=15'], ['det', 'm1', 'm2']),
    ...point(['set:m1=2', 'set:m2=20'], ['det', 'm1', 'm2']),
    'close_run', 'unstage:det'
  ])
  t.match(r.messages[1], {
    metadata: {
      plan_name: 'scan',
      plan_args: { detectors: ['det'], num: 3, args: ['m1', 0, 2, 'm2', 10, 20] },
      motors: ['m1', 'm2'],
      num_points: 3,
      hints: { dimensions: [[['m1', 'm2'], 'primary']] }
    }
  })
})

t.test('scan, listScan, gridScan reject bad arguments at the call', async t => {
  t.throws(() => scan([det], [], 3), badInput(/scan: expected a non-empty array of motor specs/))
  t.throws(() => scan([det], [[det as unknown as Motor, 0, 1]], 3), badInput(/scan spec 0: det is not a motor/))
  t.throws(() => scan([det], [[m1, 0, Number.NaN]], 3), badInput(/scan stop for m1: NaN is not a finite number/))
  t.throws(() => scan([det], [[m1, 0, 1]], 0), badInput(/scan: num 0 must be an integer >= 1/))
  t.throws(() => scan([det], [[m1, 0, 1], [m1, 0, 1]], 2), badInput(/m1 appears in more than one spec/))
  t.throws(() => scan([{ name: 'x' } as unknown as Readable], [[m1, 0, 1]], 2), badInput(/detector x is not readable/))
  t.throws(() => count([det], 1.5), badInput(/count: num 1.5/))
  t.throws(() => count([det], 1, -1), badInput(/count: delay -1 must be >= 0/))
  t.throws(() => listScan([det], [[m1, [1, 2]], [m2, [1]]]), badInput(/positions for m2 has 1 points; the first motor has 2/))
  t.throws(() => gridScan([det], [[m1, 0, 1, 2, true], [m2, 0, 1, 2]]), badInput(/first \(slowest\) axis m1 cannot snake/))
  t.throws(() => gridScan([det], [[m1, 0, 1, 2], [m2, 0, 1, -2]]), badInput(/gridScan axis m2: num -2/))
})

t.test('listScan visits the listed positions in step', async t => {
  const r = simulatePlan(listScan([det], [[m1, [3, 1]], [m2, [7, 7]]]))
  t.same(render(r.messages).filter((s) => s.startsWith('set:')), ['set:m1=3', 'set:m2=7', 'set:m1=1'], 'an unchanged motor is not moved again')
  t.match(r.messages[1], { metadata: { plan_name: 'list_scan', plan_args: { args: ['m1', [3, 1], 'm2', [7, 7]] }, num_points: 2 } })
})

t.test('gridPoints: outer product with snaking', async t => {
  t.same(gridPoints([[0, 1], [10, 11, 12]], [false, true]), [[0, 10], [0, 11], [0, 12], [1, 12], [1, 11], [1, 10]])
  t.same(gridPoints([[0, 1], [10, 11]], [false, false]), [[0, 10], [0, 11], [1, 10], [1, 11]])
  t.same(gridPoints([[0, 1], [5, 6], [8, 9]], [false, true, true]).map((p) => p.join(',')), [
    '0,5,8', '0,5,9', '0,6,9', '0,6,8', '1,6,8', '1,6,9', '1,5,9', '1,5,8'
  ], 'the path never jumps: each step changes one axis by one point')
})

t.test('gridScan: snaking order of the moves, and grid metadata', async t => {
  const r = simulatePlan(gridScan([det], [[m1, 0, 1, 2], [m2, 10, 12, 3, true]]))
  t.same(render(r.messages).filter((s) => s.startsWith('set:') || s === 'checkpoint'), [
    'checkpoint', 'set:m1=0', 'set:m2=10', 'checkpoint', 'set:m2=11', 'checkpoint', 'set:m2=12',
    'checkpoint', 'set:m1=1', 'checkpoint', 'set:m2=11', 'checkpoint', 'set:m2=10'
  ])
  t.equal(commands(r.messages).filter((c) => c === 'save').length, 6)
  t.match(r.messages[1], {
    metadata: {
      plan_name: 'grid_scan',
      plan_args: { args: ['m1', 0, 1, 2, 'm2', 10, 12, 3], snake_axes: ['m2'] },
      shape: [2, 3],
      extents: [[0, 1], [10, 12]],
      snaking: [false, true],
      num_points: 6,
      hints: { dimensions: [[['m1'], 'primary'], [['m2'], 'primary']], gridding: 'rectilinear' }
    }
  })
  const unsnaked = simulatePlan(gridScan([det], [[m1, 0, 1, 2], [m2, 10, 12, 3], [m3, 0, 0, 1]]))
  t.same(render(unsnaked.messages).filter((s) => s.startsWith('set:m2')), ['set:m2=10', 'set:m2=11', 'set:m2=12', 'set:m2=10', 'set:m2=11', 'set:m2=12'])
})

t.test('relScan moves relative to the start and returns the motors there, also after a failure', async t => {
  const where = new Map<unknown, number>([[m1, 5], [m2, -1]])
  const locate = (m: { obj: unknown }) => ({ setpoint: where.get(m.obj), readback: 0 })
  const r = simulatePlan(relScan([det], [[m1, -1, 1], [m2, 0, 2]], 2), { locate })
  const moves = render(r.messages).filter((s) => s.startsWith('set:') || s.startsWith('locate'))
  t.same(moves, ['locate:m1', 'locate:m2', 'set:m1=4', 'set:m2=-1', 'set:m1=6', 'set:m2=1', 'set:m1=5', 'set:m2=-1'])
  t.same(render(r.messages).slice(-5), ['close_run', 'unstage:det', 'set:m1=5', 'set:m2=-1', 'wait'], 'reset after the run ends')
  t.match(r.messages.find((m) => m.command === 'open_run'), { metadata: { plan_name: 'rel_scan', plan_args: { args: ['m1', -1, 1, 'm2', 0, 2] } } })

  let reads = 0
  const failed = simulatePlan(relScan([det], [[m1, -1, 1]], 3), {
    locate,
    read: () => { if (++reads === 3) throw new Error('detector lost'); return {} }
  })
  t.ok(failed.failed)
  t.match(failed.error, /detector lost/)
  t.same(render(failed.messages).slice(-6), ['read:det', 'drop', 'close_run:fail', 'unstage:det', 'set:m1=5', 'wait'],
    'an injected failure still drops the bundle, closes the run, unstages and returns the motor')
})

t.test('an injected move failure in a scan still yields the cleanup messages', async t => {
  let sets = 0
  const r = simulatePlan(scan([det], [[m1, 0, 1]], 3), { wait: () => { if (++sets === 2) throw new Error('m1 hit a limit') } })
  t.ok(r.failed)
  t.same(render(r.messages).slice(-3), ['wait', 'close_run:fail', 'unstage:det'])
  t.match(r.messages.at(-2), { reason: 'm1 hit a limit' })
})
