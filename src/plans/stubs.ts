/**
 * Plan stubs (bluesky's plan_stubs, camelCased): small plans that scans and user plans compose with `yield*`.
 *
 * Argument checks: stubs whose arguments can be wrong (mv, mvr, absSet, relSet, triggerAndRead, sleep) check them
 * when they are called — the call throws FlyScanError BAD_INPUT before any message is yielded. The bare generator
 * stubs (prepare, kickoff, complete) check when first stepped (the error comes out of the first next()).
 */
import { ErrorCode, FlyScanError } from '../errors.js'
import { msg, type Obj, type Plan } from '../engine/index.js'
import {
  isFlyable, isLocatable, isMovable, isPreparable, isReadable, isStageable, isTriggerable,
  type Location, type Movable, type Reading, type Status
} from '../devices/index.js'

export type Readings = Record<string, Reading>

let groupCounter = 0

/** A fresh status-group name (bluesky's short_uid): `${label}-${n}`. */
export function newGroup (label: string): string {
  groupCounter += 1
  return `${label}-${groupCounter}`
}

/** A printable name of any argument, for error messages. */
export function describeArg (x: unknown): string {
  if (typeof x === 'object' && x !== null) {
    const name = (x as { name?: unknown }).name
    if (typeof name === 'string') return name === '' ? '(unnamed device)' : name
    return Array.isArray(x) ? `[array of ${x.length}]` : '(object without a name)'
  }
  if (typeof x === 'string') return JSON.stringify(x)
  return String(x)
}

export function badInput (message: string): FlyScanError {
  return new FlyScanError(ErrorCode.BAD_INPUT, message)
}

export function nameOf (x: unknown): string {
  const name = typeof x === 'object' && x !== null ? (x as { name?: unknown }).name : undefined
  return typeof name === 'string' ? name : String(x)
}

/** Throws BAD_INPUT unless `x` is Movable (has a name and set()). */
export function checkMovable (x: unknown, where: string): asserts x is Movable<unknown> {
  if (!isMovable(x)) throw badInput(`${where}: ${describeArg(x)} is not movable (it needs a name and a set() method)`)
}

/** Throws BAD_INPUT unless `x` is a finite number. */
export function checkFinite (x: unknown, where: string): asserts x is number {
  if (typeof x !== 'number' || !Number.isFinite(x)) throw badInput(`${where}: ${describeArg(x)} is not a finite number`)
}

/** Splits mv-style `obj, value, obj, value...` arguments, checking that there is an even number and each obj is movable. */
function pairs (args: readonly unknown[], where: string, numeric: boolean): Array<[Movable<unknown>, unknown]> {
  if (args.length === 0 || args.length % 2 !== 0) {
    throw badInput(`${where}: expected pairs of (device, value); got ${args.length} argument${args.length === 1 ? '' : 's'}`)
  }
  const out: Array<[Movable<unknown>, unknown]> = []
  for (let i = 0; i < args.length; i += 2) {
    const obj = args[i]
    const value = args[i + 1]
    checkMovable(obj, `${where} argument ${i + 1}`)
    if (numeric) checkFinite(value, `${where} value for ${obj.name}`)
    if (out.some(([o]) => o === obj)) throw badInput(`${where}: ${obj.name} is given more than once`)
    out.push([obj, value])
  }
  return out
}

/** Start one set (bluesky's abs_set); with `wait`, wait for it. Returns the Status. */
export function absSet (obj: Movable<unknown>, value: unknown, options: { group?: string, wait?: boolean } = {}): Plan<Status> {
  checkMovable(obj, 'absSet')
  return (function * () {
    const group = options.group ?? (options.wait === true ? newGroup('set') : undefined)
    const status = (yield msg.set(obj, value, group === undefined ? {} : { group })) as Status
    if (options.wait === true) yield msg.wait(group)
    return status
  })()
}

/** Set relative to the current setpoint (read with locate; bluesky's rel_set). Returns the Status. */
export function relSet (obj: Movable<number>, delta: number, options: { group?: string, wait?: boolean } = {}): Plan<Status> {
  checkMovable(obj, 'relSet')
  if (!isLocatable(obj)) throw badInput(`relSet: ${obj.name} is not locatable (it needs locate() to read its position)`)
  checkFinite(delta, `relSet value for ${obj.name}`)
  return (function * () {
    const here = yield * locate(obj)
    return yield * absSet(obj, here + delta, options)
  })()
}

/** Where a device is: the setpoint of its locate() (a number for a motor). */
export function * locate (obj: Obj): Plan<number> {
  const location = (yield msg.locate(obj)) as Location<unknown> | undefined
  const setpoint = location?.setpoint
  if (typeof setpoint !== 'number') throw badInput(`locate: ${describeArg(obj)} reported a setpoint ${String(setpoint)}, not a number`)
  return setpoint
}

function * moveAll (targets: ReadonlyArray<[Movable<unknown>, unknown]>, options: { group?: string, timeout?: number }): Plan<Status[]> {
  const group = options.group ?? newGroup('mv')
  const statuses: Status[] = []
  for (const [obj, value] of targets) statuses.push((yield msg.set(obj, value, { group })) as Status)
  yield msg.wait(group, options.timeout === undefined ? {} : { timeout: options.timeout })
  return statuses
}

/**
 * Move one or more devices together and wait for all of them (bluesky's mv): `mv(m1, 1, m2, 2)`. Every set is in
 * one status group. An odd number of arguments, a repeated device or a non-movable object is BAD_INPUT at the call.
 */
export function mv (...args: unknown[]): Plan<Status[]> {
  const targets = pairs(args, 'mv', false)
  return moveAll(targets, {})
}

/** mv with a group name and/or a wait timeout (seconds). */
export function mvWith (options: { group?: string, timeout?: number }, ...args: unknown[]): Plan<Status[]> {
  const targets = pairs(args, 'mv', false)
  return moveAll(targets, options)
}

/**
 * Move relative to where the devices are (bluesky's mvr): each position is read with locate (setpoint), then all
 * devices move together. Every device must also be Locatable; values must be finite numbers.
 */
export function mvr (...args: unknown[]): Plan<Status[]> {
  const targets = pairs(args, 'mvr', true)
  for (const [obj] of targets) {
    if (!isLocatable(obj)) throw badInput(`mvr: ${obj.name} is not locatable (it needs locate() to read its position)`)
  }
  return (function * () {
    const absolute: Array<[Movable<unknown>, unknown]> = []
    for (const [obj, delta] of targets) absolute.push([obj, (yield * locate(obj)) + (delta as number)])
    return yield * moveAll(absolute, {})
  })()
}

/** Wait for a status group (all ungrouped statuses when undefined); timeout in seconds. */
export function * wait (group?: string, options: { timeout?: number } = {}): Plan {
  yield msg.wait(group, options)
}

/**
 * Trigger every Triggerable device (one group), wait, then bundle one event in `name`: create, read each device,
 * save. If a read fails the bundle is dropped and the error rethrown. Returns the merged readings.
 */
export function triggerAndRead (devices: readonly Obj[], name = 'primary'): Plan<Readings> {
  if (!Array.isArray(devices) || devices.length === 0) throw badInput(`triggerAndRead: devices must be a non-empty array (got ${describeArg(devices)})`)
  const unique = [...new Set(devices)]
  for (const d of unique) {
    if (!isReadable(d)) throw badInput(`triggerAndRead: ${describeArg(d)} is not readable (it needs a name, read() and describe())`)
  }
  if (typeof name !== 'string' || name === '') throw badInput(`triggerAndRead: the stream name ${describeArg(name)} must be a non-empty string`)
  return (function * () {
    const group = newGroup('trigger')
    let triggered = false
    for (const d of unique) {
      if (isTriggerable(d)) {
        yield msg.trigger(d, { group })
        triggered = true
      }
    }
    if (triggered) yield msg.wait(group)
    yield msg.create(name)
    const readings: Readings = {}
    try {
      for (const d of unique) Object.assign(readings, (yield msg.read(d)) as Readings | undefined)
    } catch (err) {
      yield msg.drop()
      throw err
    }
    yield msg.save()
    return readings
  })()
}

/** Read once into a stream without triggering (create, read each, save). */
export function * readOnce (devices: readonly Obj[], name = 'primary'): Plan<Readings> {
  yield msg.create(name)
  const readings: Readings = {}
  for (const d of devices) Object.assign(readings, (yield msg.read(d)) as Readings | undefined)
  yield msg.save()
  return readings
}

export function * stage (obj: Obj): Plan {
  yield msg.stage(obj)
}

export function * unstage (obj: Obj): Plan {
  yield msg.unstage(obj)
}

/** Stage every Stageable object (others are skipped: a motor has nothing to stage), in order. */
export function * stageAll (...objs: Obj[]): Plan {
  for (const o of new Set(objs)) if (isStageable(o)) yield msg.stage(o)
}

/** Unstage every Stageable object, in the order given. */
export function * unstageAll (...objs: Obj[]): Plan {
  for (const o of new Set(objs)) if (isStageable(o)) yield msg.unstage(o)
}

/** Open a run; returns its uid. */
export function * openRun (md: Readonly<Record<string, unknown>> = {}): Plan<string> {
  return (yield msg.openRun(md)) as string
}

/** Close the run; returns its uid. */
export function * closeRun (exitStatus?: 'success' | 'abort' | 'fail', reason?: string): Plan<string> {
  return (yield msg.closeRun({ ...(exitStatus === undefined ? {} : { exitStatus }), ...(reason === undefined ? {} : { reason }) })) as string
}

export function * checkpoint (): Plan {
  yield msg.checkpoint()
}

/** Sleep `seconds` (engine clock). A negative or non-finite time is BAD_INPUT at the call. */
export function sleep (seconds: number): Plan {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) throw badInput(`sleep: seconds ${describeArg(seconds)} must be a finite number >= 0`)
  return (function * (): Plan { yield msg.sleep(seconds) })()
}

export function * declareStream (objs: readonly Obj[], name: string, collect = false): Plan<unknown> {
  return yield msg.declareStream(objs, { name, collect })
}

export function * prepare (obj: Obj, value: unknown, options: { group?: string, wait?: boolean } = {}): Plan<Status> {
  if (!isPreparable(obj)) throw badInput(`prepare: ${describeArg(obj)} is not preparable (it needs prepare())`)
  const group = options.group ?? (options.wait === true ? newGroup('prepare') : undefined)
  const status = (yield msg.prepare(obj, value, group === undefined ? {} : { group })) as Status
  if (options.wait === true) yield msg.wait(group)
  return status
}

export function * kickoff (obj: Obj, options: { group?: string, wait?: boolean } = {}): Plan<Status> {
  if (!isFlyable(obj)) throw badInput(`kickoff: ${describeArg(obj)} is not flyable (it needs a name, kickoff() and complete())`)
  const group = options.group ?? (options.wait === true ? newGroup('kickoff') : undefined)
  const status = (yield msg.kickoff(obj, group === undefined ? {} : { group })) as Status
  if (options.wait === true) yield msg.wait(group)
  return status
}

export function * complete (obj: Obj, options: { group?: string, wait?: boolean } = {}): Plan<Status> {
  if (!isFlyable(obj)) throw badInput(`complete: ${describeArg(obj)} is not flyable (it needs a name, kickoff() and complete())`)
  const group = options.group ?? (options.wait === true ? newGroup('complete') : undefined)
  const status = (yield msg.complete(obj, group === undefined ? {} : { group })) as Status
  if (options.wait === true) yield msg.wait(group)
  return status
}

/** Collect from each object into `name` (default: the object's name); returns the number of documents emitted. */
export function * collect (objs: readonly Obj[], name?: string): Plan<number> {
  let n = 0
  for (const o of objs) {
    const r = yield msg.collect(o, name === undefined ? {} : { name })
    if (typeof r === 'number') n += r
  }
  return n
}

/**
 * One step of an N-dimensional scan (bluesky's one_nd_step): checkpoint, move the motors whose target differs from
 * `posCache` (together, one group, then wait; no move and no wait when none changed), then triggerAndRead of the
 * detectors followed by the motors.
 */
export function * oneNdStep (detectors: readonly Obj[], step: ReadonlyArray<readonly [Movable<unknown>, number]>,
  posCache: Map<Obj, number>, name = 'primary'): Plan<Readings> {
  yield msg.checkpoint()
  const group = newGroup('set')
  let moved = false
  for (const [motor, target] of step) {
    if (posCache.get(motor) === target) continue
    yield msg.set(motor, target, { group })
    posCache.set(motor, target)
    moved = true
  }
  if (moved) yield msg.wait(group)
  return yield * triggerAndRead([...detectors, ...step.map(([m]) => m)], name)
}
