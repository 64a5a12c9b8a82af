/**
 * The generic fly plan (bluesky's fly + ophyd-async's prepare/kickoff/complete and collect_while_completing): the
 * flyers run by themselves while the plan collects what they have produced every flush period.
 */
import type { Obj, Plan } from '../engine/index.js'
import { isCollectable, isFlyable, isPreparable, isStatus, type Status } from '../devices/index.js'
import { badInput, collect, complete, declareStream, describeArg, kickoff, newGroup, prepare, sleep, wait } from './stubs.js'
import { isCancelled, runWrapper, stageWrapper } from './wrappers.js'
import type { PlanMetadata } from './scans.js'

export interface FlyOptions {
  /** `[device, value]` pairs to prepare (together, then wait) before kickoff; any Preparable, flyer or not. */
  prepareValues?: ReadonlyArray<readonly [Obj, unknown]>
  /** Seconds between collects while the flyers complete (default 0.5). */
  flushPeriod?: number
  /** The stream the flyers' data goes to (default 'primary'). */
  streamName?: string
  /** User metadata for the run. */
  md?: PlanMetadata
}

function isDone (status: unknown): boolean {
  return !isStatus(status) || status.done
}

/**
 * Complete every flyer (one group, not waited on), and until all complete statuses are done: sleep `flushPeriod`,
 * collect each Collectable flyer (or each of `collectables`, when a coordinator completes for devices it drives)
 * into `streamName`. A collect that fails lets the flyers finish before its error goes on. Then wait on the group (a failed complete is thrown into the
 * plan here) and collect a last time. Returns the number of documents collected.
 */
export function * collectWhileCompleting (
  flyers: readonly Obj[], options: { flushPeriod?: number, streamName?: string, collectables?: readonly Obj[] } = {}
): Plan<number> {
  const flushPeriod = options.flushPeriod ?? 0.5
  const collectables = options.collectables ?? flyers.filter(isCollectable)
  const group = newGroup('complete')
  const statuses: Status[] = []
  for (const f of flyers) statuses.push(yield * complete(f, { group }))
  let documents = 0
  try {
    while (!statuses.every(isDone)) {
      yield * sleep(flushPeriod)
      documents += yield * collect(collectables, options.streamName)
    }
  } catch (err) {
    // A collect failed (a writer's error reached its index before its flyer's complete saw it): let the flyers
    // finish first (they fail or complete by themselves, each bounded), so that what they leave behind (closed files,
    // their final reports for run_stop) is final before the error closes the run. Not after a stop or abort request
    // (FLY_ERR_CANCELLED): the engine stops the flyers itself.
    if (!isCancelled(err) && !statuses.every(isDone)) {
      // A flyer that fails gives its own account (a coordinator names the part that failed); it is reported
      // instead of the collect's.
      yield * wait(group)
    }
    throw err
  }
  yield * wait(group)
  documents += yield * collect(collectables, options.streamName)
  return documents
}

/**
 * A fly scan: stage the flyers, open a run (plan_name 'fly_and_collect'), prepare (optional; together, then wait),
 * declare the stream of the Collectable flyers (collect: true), kick them all off (together, then wait), then
 * collectWhileCompleting; close the run and unstage. Arguments are checked at the call. Returns the run uid.
 */
export function flyAndCollect (flyers: readonly Obj[], options: FlyOptions = {}): Plan<string> {
  if (!Array.isArray(flyers) || flyers.length === 0) throw badInput(`flyAndCollect: flyers must be a non-empty array (got ${describeArg(flyers)})`)
  for (const f of flyers) {
    if (!isFlyable(f)) throw badInput(`flyAndCollect: ${describeArg(f)} is not flyable (it needs a name, kickoff() and complete())`)
  }
  const flushPeriod = options.flushPeriod ?? 0.5
  if (typeof flushPeriod !== 'number' || !Number.isFinite(flushPeriod) || flushPeriod <= 0) {
    throw badInput(`flyAndCollect: flushPeriod ${describeArg(flushPeriod)} must be a finite number of seconds > 0`)
  }
  const streamName = options.streamName ?? 'primary'
  if (typeof streamName !== 'string' || streamName === '') throw badInput(`flyAndCollect: streamName ${describeArg(streamName)} must be a non-empty string`)
  const prepareValues = options.prepareValues ?? []
  if (!Array.isArray(prepareValues)) throw badInput(`flyAndCollect: prepareValues must be an array of [device, value] pairs (got ${describeArg(prepareValues)})`)
  for (const pair of prepareValues as unknown[]) {
    if (!Array.isArray(pair) || pair.length !== 2) throw badInput(`flyAndCollect: prepareValues entry ${describeArg(pair)} is not a [device, value] pair`)
    if (!isPreparable(pair[0])) throw badInput(`flyAndCollect: ${describeArg(pair[0])} in prepareValues is not preparable (it needs prepare())`)
  }
  const names = flyers.map((f) => (f as { name: string }).name)
  const md = {
    plan_name: 'fly_and_collect',
    plan_args: { flyers: names, flush_period: flushPeriod, stream_name: streamName },
    ...options.md
  }
  const collectables = flyers.filter(isCollectable)

  function * body (): Plan<number> {
    if (prepareValues.length > 0) {
      const group = newGroup('prepare')
      for (const [obj, value] of prepareValues) yield * prepare(obj, value, { group })
      yield * wait(group)
    }
    if (collectables.length > 0) yield * declareStream(collectables, streamName, true)
    const group = newGroup('kickoff')
    for (const f of flyers) yield * kickoff(f, { group })
    yield * wait(group)
    return yield * collectWhileCompleting(flyers, { flushPeriod, streamName })
  }
  return stageWrapper(runWrapper(body(), md), flyers)
}
