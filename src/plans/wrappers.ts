/**
 * Plan wrappers (bluesky's preprocessors finalize_wrapper, stage_wrapper, run_wrapper): each takes a plan (a
 * generator) and returns a plan that adds messages around it.
 */
import { ErrorCode, FlyScanError } from '../errors.js'
import type { Obj, Plan } from '../engine/index.js'
import { closeRun, openRun, stageAll, unstageAll } from './stubs.js'

/** A plan, or a function that makes one (called only when it is needed). */
export type PlanSource = Plan<unknown> | (() => Plan<unknown>)

function planOf (source: PlanSource): Plan<unknown> {
  return typeof source === 'function' ? source() : source
}

/**
 * Run `plan`, then always run `finalPlan`: after success, after an error thrown into (or raised by) the plan — the
 * error is rethrown once the final plan has run — and when the generator is closed with return().
 */
export function * finalizeWrapper<R> (plan: Plan<R>, finalPlan: PlanSource): Plan<R> {
  try {
    return yield * plan
  } finally {
    yield * planOf(finalPlan)
  }
}

/**
 * Stage the Stageable `devices` (in order) before the plan, unstage them (in reverse order) after it, whatever
 * happens (finalizeWrapper). Devices that are not Stageable (a motor) are skipped.
 */
export function stageWrapper<R> (plan: Plan<R>, devices: readonly Obj[]): Plan<R> {
  const unique = [...new Set(devices)]
  return finalizeWrapper((function * (): Plan<R> {
    yield * stageAll(...unique)
    return yield * plan
  })(), () => unstageAll(...[...unique].reverse()))
}

/** A RunEngine stop or abort thrown into the plan (FLY_ERR_CANCELLED). */
export function isCancelled (err: unknown): boolean {
  return err instanceof FlyScanError && err.code === ErrorCode.CANCELLED
}

/**
 * open_run(md) before the plan, close_run after it; returns the run uid (as bluesky's run_wrapper). If the plan
 * fails, the run is closed with exit_status 'fail' and the error's message as the reason, then the error is
 * rethrown. A RunEngine stop/abort (FLY_ERR_CANCELLED) is rethrown without closing: the engine closes the run with
 * the exit status that the request implies (success or abort).
 */
export function * runWrapper (plan: Plan<unknown>, md: Readonly<Record<string, unknown>> = {}): Plan<string> {
  const uid = yield * openRun(md)
  try {
    yield * plan
  } catch (err) {
    if (isCancelled(err)) throw err
    yield * closeRun('fail', err instanceof Error ? err.message : String(err))
    throw err
  }
  yield * closeRun()
  return uid
}
