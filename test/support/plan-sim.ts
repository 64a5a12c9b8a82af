/**
 * The plan simulator (bluesky's RunEngineSimulator, reduced): steps a plan without the engine or devices, answers
 * each message from a table of handlers keyed by command, and returns every message the plan yielded.
 *
 * A handler's return value is sent into the plan; a handler that throws has its error thrown into the plan (so a
 * test injects a device failure and checks that the plan still yields its cleanup). Commands without a handler get
 * a default answer: a finished, successful Status for set/trigger/prepare/kickoff/complete, `{}` for read, a fixed
 * uid for open_run/close_run, undefined otherwise.
 */
import type { Command, Msg, MsgOf, Plan } from '../../src/engine/index.js'

export type SimHandler<C extends Command = Command> = (msg: MsgOf<C>) => unknown
export type SimHandlers = { [C in Command]?: SimHandler<C> }

export interface SimResult<R> {
  /** Every message the plan yielded, in order. */
  readonly messages: Msg[]
  readonly returnValue: R | undefined
  /** What the plan threw at the end, if it did (the simulator does not rethrow). */
  readonly error: unknown
  readonly failed: boolean
}

export const SIM_RUN_UID = 'sim-run-uid'

/** A finished status, as a device would return it. */
export function doneStatus<T = void> (value?: T): PromiseLike<T> & { done: true, success: true, error: undefined } {
  return { done: true, success: true, error: undefined, then: (ok, ko) => Promise.resolve(value as T).then(ok, ko) }
}

function defaultAnswer (m: Msg): unknown {
  switch (m.command) {
    case 'set': case 'trigger': case 'prepare': case 'kickoff': case 'complete': return doneStatus()
    case 'read': return {}
    case 'open_run': case 'close_run': return SIM_RUN_UID
    case 'subscribe': return 1
    default: return undefined
  }
}

export function simulatePlan<R> (plan: Plan<R>, handlers: SimHandlers = {}, options: { maxMessages?: number } = {}): SimResult<R> {
  const max = options.maxMessages ?? 100_000
  const messages: Msg[] = []
  let step: { throw: false, value: unknown } | { throw: true, error: unknown } = { throw: false, value: undefined }
  for (;;) {
    let r: IteratorResult<Msg, R>
    try {
      r = step.throw ? plan.throw(step.error) : plan.next(step.value)
    } catch (error) {
      return { messages, returnValue: undefined, error, failed: true }
    }
    if (r.done === true) return { messages, returnValue: r.value, error: undefined, failed: false }
    const m: Msg = r.value
    messages.push(m)
    if (messages.length > max) throw new Error(`plan-sim: more than ${max} messages (a plan that never ends?)`)
    const handler = handlers[m.command] as SimHandler | undefined
    try {
      step = { throw: false, value: handler === undefined ? defaultAnswer(m) : handler(m) }
    } catch (error) {
      step = { throw: true, error }
    }
  }
}

/** The commands of a message list, for compact choreography assertions. */
export function commands (messages: readonly Msg[]): string[] {
  return messages.map((m) => m.command)
}
