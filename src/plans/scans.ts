/**
 * Step scans (bluesky's plans.count, scan, rel_scan, list_scan, grid_scan). Each checks its arguments when it is
 * called (BAD_INPUT before any message), then stages the detectors and motors, opens a run with plan_name,
 * plan_args and hints (dimensions from the motors' hint fields), and at every point: checkpoint, move the motors
 * that change (one group, wait), trigger and read detectors then motors into 'primary'.
 */
import type { Obj, Plan } from '../engine/index.js'
import { hasHints, isLocatable, isMovable, isReadable, type Movable, type Readable } from '../devices/index.js'
import { badInput, checkFinite, checkpoint, describeArg, locate, mvWith, oneNdStep, sleep, triggerAndRead } from './stubs.js'
import { finalizeWrapper, runWrapper, stageWrapper } from './wrappers.js'

/** What a scan moves and reads: Movable and Readable (a SimMotor, an EpicsMotor). */
export type Motor = Movable<number> & Readable
export type PlanMetadata = Readonly<Record<string, unknown>>
/** [motor, start, stop] */
export type ScanSpec = readonly [Motor, number, number]
/** [motor, positions] */
export type ListScanSpec = readonly [Motor, readonly number[]]
/** [motor, start, stop, num, snake?] (slowest axis first; the first axis cannot snake) */
export type GridAxis = readonly [Motor, number, number, number, boolean?] | readonly [Motor, number, number, number]

type Step = Array<[Motor, number]>

function checkDetectors (detectors: unknown, where: string): readonly Readable[] {
  if (!Array.isArray(detectors)) throw badInput(`${where}: detectors must be an array (got ${describeArg(detectors)})`)
  for (const d of detectors as unknown[]) {
    if (!isReadable(d)) throw badInput(`${where}: detector ${describeArg(d)} is not readable (it needs a name, read() and describe())`)
  }
  return detectors as readonly Readable[]
}

function checkMotor (m: unknown, where: string): Motor {
  if (!isMovable(m) || !isReadable(m)) throw badInput(`${where}: ${describeArg(m)} is not a motor (it needs a name, set(), read() and describe())`)
  return m as unknown as Motor
}

function checkNum (num: unknown, where: string, min = 1): number {
  if (typeof num !== 'number' || !Number.isInteger(num) || num < min) throw badInput(`${where}: num ${describeArg(num)} must be an integer >= ${min}`)
  return num
}

function checkSpecs<T extends readonly unknown[]> (specs: unknown, where: string): readonly T[] {
  if (!Array.isArray(specs) || specs.length === 0) throw badInput(`${where}: expected a non-empty array of motor specs (got ${describeArg(specs)})`)
  const seen = new Set<unknown>()
  for (const [i, s] of (specs as unknown[]).entries()) {
    if (!Array.isArray(s)) throw badInput(`${where}: spec ${i} ${describeArg(s)} is not an array`)
    checkMotor(s[0], `${where} spec ${i}`)
    if (seen.has(s[0])) throw badInput(`${where}: motor ${describeArg(s[0])} appears in more than one spec`)
    seen.add(s[0])
  }
  return specs as readonly T[]
}

function linspace (start: number, stop: number, num: number): number[] {
  if (num === 1) return [start]
  return Array.from({ length: num }, (_, i) => i === num - 1 ? stop : start + (stop - start) * i / (num - 1))
}

function fieldsOf (motor: Obj): string[] {
  const fields = hasHints(motor) ? motor.hints.fields : undefined
  return fields !== undefined && fields.length > 0 ? [...fields] : [(motor as { name: string }).name]
}

function names (objs: readonly Obj[]): string[] {
  return objs.map((o) => (o as { name: string }).name)
}

/** bluesky's metadata: defaults, then the user's md over them; the user's hints over the default hints. */
function runMetadata (defaults: Record<string, unknown>, defaultHints: Record<string, unknown>, md: PlanMetadata | undefined): Record<string, unknown> {
  const user = md ?? {}
  if (typeof user !== 'object' || user === null || Array.isArray(user)) throw badInput(`md must be an object (got ${describeArg(md)})`)
  const userHints = user.hints
  if (userHints !== undefined && (typeof userHints !== 'object' || userHints === null || Array.isArray(userHints))) {
    throw badInput(`md.hints must be an object (got ${describeArg(userHints)})`)
  }
  return { ...defaults, ...user, hints: { ...defaultHints, ...(userHints as Record<string, unknown> | undefined) } }
}

/** The scan body: one oneNdStep per step, wrapped in the run and the staging of detectors and motors. */
function stepScan (detectors: readonly Readable[], motors: readonly Motor[], steps: readonly Step[], md: Record<string, unknown>): Plan<string> {
  function * body (): Plan {
    const posCache = new Map<Obj, number>()
    for (const step of steps) yield * oneNdStep(detectors, step, posCache)
  }
  return stageWrapper(runWrapper(body(), md), [...detectors, ...motors])
}

/**
 * Read the detectors `num` times (bluesky's count): checkpoint, trigger and read; `delay` seconds between
 * readings. Returns the run uid.
 */
export function count (detectors: readonly Readable[], num = 1, delay = 0, md?: PlanMetadata): Plan<string> {
  checkDetectors(detectors, 'count')
  if (detectors.length === 0) throw badInput('count: detectors must not be empty')
  checkNum(num, 'count')
  checkFinite(delay, 'count delay')
  if (delay < 0) throw badInput(`count: delay ${delay} must be >= 0`)
  const planArgs: Record<string, unknown> = { detectors: names(detectors), num, ...(delay === 0 ? {} : { delay }) }
  const runMd = runMetadata({
    plan_name: 'count', plan_args: planArgs, detectors: names(detectors), num_points: num, num_intervals: num - 1
  }, { dimensions: [[['time'], 'primary']] }, md)
  function * body (): Plan {
    for (let i = 0; i < num; i++) {
      if (i > 0 && delay > 0) yield * sleep(delay)
      yield * checkpoint()
      yield * triggerAndRead(detectors)
    }
  }
  return stageWrapper(runWrapper(body(), runMd), detectors)
}

function checkScanSpecs (motorSpecs: unknown, where: string): readonly ScanSpec[] {
  const specs = checkSpecs<ScanSpec>(motorSpecs, where)
  for (const [motor, start, stop] of specs) {
    checkFinite(start, `${where} start for ${motor.name}`)
    checkFinite(stop, `${where} stop for ${motor.name}`)
  }
  return specs
}

function innerProduct (detectors: readonly Readable[], specs: readonly ScanSpec[], num: number, md: Record<string, unknown>): Plan<string> {
  const motors = specs.map(([m]) => m)
  const tracks = specs.map(([, start, stop]) => linspace(start, stop, num))
  const steps: Step[] = Array.from({ length: num }, (_, i) => motors.map((m, k) => [m, tracks[k]?.[i] as number]))
  return stepScan(detectors, motors, steps, md)
}

function innerProductMd (planName: string, detectors: readonly Readable[], specs: readonly ScanSpec[], num: number, md: PlanMetadata | undefined): Record<string, unknown> {
  const motors = specs.map(([m]) => m)
  return runMetadata({
    plan_name: planName,
    plan_args: { detectors: names(detectors), num, args: specs.flatMap(([m, start, stop]) => [m.name, start, stop]) },
    plan_pattern: 'inner_product',
    detectors: names(detectors),
    motors: names(motors),
    num_points: num,
    num_intervals: num - 1
  }, { dimensions: [[motors.flatMap(fieldsOf), 'primary']] }, md)
}

/**
 * Move every motor from its start to its stop in `num` evenly spaced points, all together (bluesky's scan, the
 * inner product). Returns the run uid.
 */
export function scan (detectors: readonly Readable[], motorSpecs: readonly ScanSpec[], num: number, md?: PlanMetadata): Plan<string> {
  checkDetectors(detectors, 'scan')
  const specs = checkScanSpecs(motorSpecs, 'scan')
  checkNum(num, 'scan')
  return innerProduct(detectors, specs, num, innerProductMd('scan', detectors, specs, num, md))
}

/**
 * scan relative to each motor's setpoint at the start (read with locate); the motors go back there at the end,
 * whatever happens (bluesky's rel_scan with reset_positions). Motors must be Locatable.
 */
export function relScan (detectors: readonly Readable[], motorSpecs: readonly ScanSpec[], num: number, md?: PlanMetadata): Plan<string> {
  checkDetectors(detectors, 'relScan')
  const specs = checkScanSpecs(motorSpecs, 'relScan')
  checkNum(num, 'relScan')
  for (const [m] of specs) if (!isLocatable(m)) throw badInput(`relScan: motor ${m.name} is not locatable (it needs locate())`)
  const runMd = innerProductMd('rel_scan', detectors, specs, num, md)
  return (function * (): Plan<string> {
    const initial: Array<[Motor, number]> = []
    for (const [m] of specs) initial.push([m, yield * locate(m)])
    const absolute = specs.map(([m, start, stop], k): ScanSpec => {
      const here = initial[k]?.[1] as number
      return [m, start + here, stop + here]
    })
    return yield * finalizeWrapper(innerProduct(detectors, absolute, num, runMd), () => mvWith({}, ...initial.flat()))
  })()
}

/** Visit the given positions, every motor's list in step (bluesky's list_scan; the lists have equal lengths). */
export function listScan (detectors: readonly Readable[], motorSpecs: readonly ListScanSpec[], md?: PlanMetadata): Plan<string> {
  checkDetectors(detectors, 'listScan')
  const specs = checkSpecs<ListScanSpec>(motorSpecs, 'listScan')
  const num = Array.isArray(specs[0]?.[1]) ? specs[0][1].length : 0
  for (const [motor, positions] of specs) {
    if (!Array.isArray(positions) || positions.length === 0) throw badInput(`listScan: positions for ${motor.name} must be a non-empty array (got ${describeArg(positions)})`)
    if (positions.length !== num) throw badInput(`listScan: positions for ${motor.name} has ${positions.length} points; the first motor has ${num}`)
    positions.forEach((p, i) => { checkFinite(p, `listScan position ${i} for ${motor.name}`) })
  }
  const motors = specs.map(([m]) => m)
  const runMd = runMetadata({
    plan_name: 'list_scan',
    plan_args: { detectors: names(detectors), args: specs.flatMap(([m, positions]) => [m.name, [...positions]]) },
    plan_pattern: 'inner_list_product',
    detectors: names(detectors),
    motors: names(motors),
    num_points: num,
    num_intervals: num - 1
  }, { dimensions: [[motors.flatMap(fieldsOf), 'primary']] }, md)
  const steps: Step[] = Array.from({ length: num }, (_, i) => specs.map(([m, positions]) => [m, positions[i] as number]))
  return stepScan(detectors, motors, steps, runMd)
}

/** The points of an outer product, slowest axis first; a snaked axis reverses on every other pass. */
export function gridPoints (tracks: ReadonlyArray<readonly number[]>, snake: readonly boolean[]): number[][] {
  const sizes = tracks.map((t) => t.length)
  const total = sizes.reduce((a, b) => a * b, 1)
  const points: number[][] = []
  for (let i = 0; i < total; i++) {
    const point: number[] = []
    let inner = total
    for (let k = 0; k < tracks.length; k++) {
      const size = sizes[k] as number
      inner /= size
      const pass = Math.floor(i / (inner * size)) // how many times this axis has been run through before
      const digit = Math.floor(i / inner) % size
      const index = snake[k] === true && pass % 2 === 1 ? size - 1 - digit : digit
      point.push(tracks[k]?.[index] as number)
    }
    points.push(point)
  }
  return points
}

/**
 * The outer product of the axes, slowest first (bluesky's grid_scan): `[motor, start, stop, num, snake?]`. A
 * snaked axis runs back and forth instead of returning to its start; the first (slowest) axis cannot snake.
 */
export function gridScan (detectors: readonly Readable[], axes: readonly GridAxis[], md?: PlanMetadata): Plan<string> {
  checkDetectors(detectors, 'gridScan')
  const specs = checkSpecs<GridAxis>(axes, 'gridScan')
  for (const [k, [motor, start, stop, num, snake]] of specs.entries()) {
    checkFinite(start, `gridScan start for ${motor.name}`)
    checkFinite(stop, `gridScan stop for ${motor.name}`)
    checkNum(num, `gridScan axis ${motor.name}`)
    if (snake !== undefined && typeof snake !== 'boolean') throw badInput(`gridScan: snake for ${motor.name} must be a boolean (got ${describeArg(snake)})`)
    if (k === 0 && snake === true) throw badInput(`gridScan: the first (slowest) axis ${motor.name} cannot snake`)
  }
  const motors = specs.map(([m]) => m)
  const shape = specs.map(([, , , num]) => num)
  const snaking = specs.map(([, , , , snake]) => snake === true)
  const numPoints = shape.reduce((a, b) => a * b, 1)
  const runMd = runMetadata({
    plan_name: 'grid_scan',
    plan_args: {
      detectors: names(detectors),
      args: specs.flatMap(([m, start, stop, num]) => [m.name, start, stop, num]),
      snake_axes: motors.filter((_, k) => snaking[k]).map((m) => m.name)
    },
    plan_pattern: 'outer_product',
    detectors: names(detectors),
    motors: names(motors),
    shape,
    extents: specs.map(([, start, stop]) => [start, stop]),
    snaking,
    num_points: numPoints,
    num_intervals: numPoints - 1
  }, { dimensions: motors.map((m) => [fieldsOf(m), 'primary']), gridding: 'rectilinear' }, md)
  const points = gridPoints(specs.map(([, start, stop, num]) => linspace(start, stop, num)), snaking)
  const steps: Step[] = points.map((p) => motors.map((m, k) => [m, p[k] as number]))
  return stepScan(detectors, motors, steps, runMd)
}
