/**
 * The RunEngine (bluesky's, in TypeScript): a command registry, a stack of generators and a state table. It steps
 * the plan, dispatches each Msg to its handler, sends the response back (or throws the failure into the plan),
 * turns readings into event-model documents and always cleans up. See docs/engine.md.
 *
 * Never blocks: every wait is an await on a promise or on the injected clock.
 */
import {
  hasRunStopInfo, isCollectable, isConfigurable, isFlyable, isLocatable, isMovable, isPreparable, isReadable, isStageable,
  isStoppable, isTriggerable, type Collectable, type HasRunStopInfo, type Readable, type Reading
} from '../devices/index.js'
import {
  composeRun, DocumentRouter, type DataKey, type DescriptorBundle, type DocumentCallback, type DocumentName,
  type ExitStatus, type RunBundle, type StreamResourceBundle
} from '../documents/index.js'
import { ErrorCode, FlyScanError } from '../errors.js'
import { realClock, type Clock } from './clock.js'
import type { Msg, MsgOf, Command, Obj, Plan } from './msg.js'
import { StateMachine, type EngineState } from './state.js'
import { silentLogger, type EngineLogger, type Suspender } from './types.js'

/**
 * A command handler: gets the message and a signal aborted when the engine interrupts the message. A returned
 * Promise is awaited and its value sent to the plan; anything else (e.g. a Status) is sent as it is. The signal is
 * shared by the messages that run until an interrupt: a handler that listens to it must remove its listener when
 * it finishes (as `wait` and the clocks' `sleep` do).
 */
export type CommandHandler = (msg: Msg, signal: AbortSignal) => unknown

export type RunOutcome = 'completed' | 'paused' | 'stopped' | 'aborted' | 'halted'

export interface RunResult {
  readonly outcome: RunOutcome
  /** uids of the runs opened by this plan so far. */
  readonly runUids: readonly string[]
  /** The plan's return value (completed only). */
  readonly returnValue?: unknown
  /** Why the plan ended early (abort reason, 'halt'...). */
  readonly reason?: string
  /** Errors of cleanup steps (stop, complete, collect, unstage), logged and kept here. */
  readonly cleanupErrors: readonly unknown[]
}

export interface RunEngineOptions {
  readonly clock?: Clock
  readonly logger?: EngineLogger
  readonly router?: DocumentRouter
  /** Metadata merged into every run_start (bluesky's RE.md), under the plan's own. */
  readonly metadata?: Readonly<Record<string, unknown>>
  /** The scan_id of the first run (default 1); each open_run increments it. */
  readonly firstScanId?: number
  /** Bound on each cleanup step (complete of an outstanding flyer...), seconds (default 10). */
  readonly cleanupTimeout?: number
  /** Called with every message just before it is dispatched, replayed ones included (bluesky's RE.msg_hook). */
  readonly msgHook?: (msg: Msg) => void
}

interface Bundle { readonly name: string, readonly readings: Map<string, { obj: Readable, reading: Record<string, Reading> }> }
interface Tracked { readonly obj: Obj, readonly status: PromiseLike<unknown> & { readonly done?: boolean } }
type Step = { kind: 'send', value: unknown } | { kind: 'throw', error: unknown }
type Request = { kind: 'pause' } | { kind: 'stop' } | { kind: 'abort', reason: string } | { kind: 'halt' }

const INTERRUPT = Symbol('RunEngine interrupt')

/** Carries the plan's own error out of the loop (as opposed to a defect of the engine, which panics it). */
class PlanFailure {
  constructor (readonly thrown: unknown) {}
}

function nameOf (obj: unknown): string {
  if (typeof obj === 'object' && obj !== null && typeof (obj as { name?: unknown }).name === 'string') return (obj as { name: string }).name
  return String(obj)
}

function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function * replay (msgs: readonly Msg[]): Generator<Msg, unknown, unknown> {
  let last: unknown
  for (const m of msgs) last = yield m
  return last
}

/**
 * `p`, or the signal's reason if the signal aborts first. The abort listener is removed as soon as `p` settles, so a
 * signal shared by many messages does not collect listeners.
 */
function raceInterrupt<T> (p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => { reject(signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
    p.then((v) => { signal.removeEventListener('abort', onAbort); resolve(v) },
      (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e) })
  })
}

function interrupted (signal: AbortSignal): Promise<never> {
  return new Promise<never>((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason)
    else signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
  })
}

function sequenceError (message: string, command: string): FlyScanError {
  return new FlyScanError(ErrorCode.ILLEGAL_MESSAGE_SEQUENCE, message, { details: { command } })
}

export class RunEngine {
  readonly router: DocumentRouter
  readonly #clock: Clock
  readonly #logger: EngineLogger
  readonly #sm: StateMachine
  readonly #md: Readonly<Record<string, unknown>>
  readonly #cleanupTimeout: number
  readonly #msgHook: ((msg: Msg) => void) | undefined
  readonly #registry = new Map<string, CommandHandler>()
  #scanId: number

  // Per plan.
  #stack: Array<Iterator<Msg, unknown, unknown>> = []
  #step: Step = { kind: 'send', value: undefined }
  #msgCache: Msg[] | null = null
  #atCheckpoint = false
  #deferredPause = false
  #request: Request | null = null
  #endRequest: Request | null = null
  #msgAbort: AbortController | null = null
  #runUids: string[] = []
  #planSubscriptions: number[] = []
  #planSuspenders: Suspender[] = []
  #cleanupErrors: unknown[] = []
  #segment: Promise<RunResult> | null = null

  // Per run.
  #run: RunBundle | null = null
  #descriptors = new Map<string, DescriptorBundle>()
  #resources = new Map<string, StreamResourceBundle>()
  #describeCache = new Map<Obj, Record<string, DataKey>>()
  #bundle: Bundle | null = null
  #groups = new Map<string | null, Tracked[]>()
  #movers = new Set<Obj>()
  #staged: Obj[] = []
  #uncompleted = new Set<Obj>()
  /** Flyers kicked off since the last cleanup: stopped by a cleanup that does not end in success. */
  readonly #flown = new Set<Obj>()
  /** Devices staged, prepared, kicked off or collected since the last run closed that add keys to run_stop. */
  readonly #stopInfoSources = new Set<HasRunStopInfo>()
  #uncollected = new Set<Obj>()

  // Suspenders (engine-wide).
  readonly #suspenders = new Map<Suspender, { tripped: boolean, stop: () => void }>()
  #suspendRequested = false
  #tripGeneration = 0
  #clearWaiters: Array<() => void> = []

  constructor (options: RunEngineOptions = {}) {
    this.#clock = options.clock ?? realClock
    this.#logger = options.logger ?? silentLogger
    this.#sm = new StateMachine(this.#logger)
    this.router = options.router ?? new DocumentRouter()
    this.#md = options.metadata ?? {}
    this.#scanId = (options.firstScanId ?? 1) - 1
    this.#cleanupTimeout = options.cleanupTimeout ?? 10
    this.#msgHook = options.msgHook
    this.#registerBuiltins()
  }

  get state (): EngineState { return this.#sm.state }

  /** Calls `cb` after every state transition; returns the function that stops it. */
  onStateChange (cb: (from: EngineState, to: EngineState) => void): () => void {
    return this.#sm.onTransition((r) => { cb(r.from, r.to) })
  }

  /** The commands the engine understands. */
  get commands (): string[] { return [...this.#registry.keys()] }

  /** Adds or replaces the handler of a command (bluesky's register_command). */
  registerCommand (command: string, handler: CommandHandler): void {
    this.#registry.set(command, handler)
  }

  unregisterCommand (command: string): void {
    this.#registry.delete(command)
  }

  /** Subscribe to every document, or to those of one name (bluesky's RE.subscribe). */
  subscribe (cb: DocumentCallback, name?: DocumentName): number {
    return this.router.subscribe(cb, name)
  }

  unsubscribe (token: number): void {
    this.router.unsubscribe(token)
  }

  // -------------------------------------------------------------------------------------------------------------
  // Control

  /**
   * Runs a plan from idle. Resolves when the plan ends (completed, stopped, aborted, halted) or pauses; rejects with
   * the plan's error after cleanup when it fails. `metadata` goes into every run_start of this plan.
   */
  async run (plan: Plan<unknown> | (() => Plan<unknown>), metadata: Readonly<Record<string, unknown>> = {}): Promise<RunResult> {
    this.#expectState('run', 'idle')
    this.#sm.transition('running', 'run')
    const gen = typeof plan === 'function' ? plan() : plan
    this.#resetPlan()
    this.#planMd = metadata
    this.#stack = [gen]
    this.#msgCache = []
    return await this.#startSegment()
  }

  #planMd: Readonly<Record<string, unknown>> = {}

  /** Requests a pause: at the next checkpoint (defer) or now, rewinding to the last checkpoint on resume. */
  requestPause (defer = true): void {
    const state = this.#sm.state
    if (state === 'paused' || (state === 'pausing' && defer)) return
    if (state !== 'pausing') this.#sm.transition('pausing', defer ? 'deferred pause requested' : 'pause requested')
    if (defer) {
      this.#deferredPause = true
    } else {
      this.#request = { kind: 'pause' }
      this.#interrupt()
    }
  }

  /** Resumes a paused plan: replays the messages since the last checkpoint, then continues the plan. */
  async resume (): Promise<RunResult> {
    this.#expectState('resume', 'paused')
    this.#sm.transition('running', 'resume')
    return await this.#startSegment()
  }

  /** Ends the plan with exit_status success; the plan's own cleanup runs. */
  async stop (): Promise<RunResult> {
    return await this.#end({ kind: 'stop' }, 'stopping')
  }

  /** Ends the plan with exit_status abort and `reason`; the plan's own cleanup runs. */
  async abort (reason = 'abort requested'): Promise<RunResult> {
    return await this.#end({ kind: 'abort', reason }, 'aborting')
  }

  /** Ends the plan without letting it clean up (the engine's own cleanup still runs); exit_status abort. */
  async halt (): Promise<RunResult> {
    return await this.#end({ kind: 'halt' }, 'halting')
  }

  #expectState (request: string, expected: EngineState): void {
    const state = this.#sm.state
    if (state === expected) return
    throw new FlyScanError(ErrorCode.ENGINE_STATE, `RunEngine ${request}: the engine is ${state}, and ${request} needs it ${expected}`,
      { details: { request, state, expected } })
  }

  async #end (request: Request, to: EngineState): Promise<RunResult> {
    const from = this.#sm.state
    this.#sm.transition(to, `${request.kind} requested`)
    this.#request = request
    this.#deferredPause = false
    if (from === 'paused') return await this.#startSegment()
    this.#interrupt()
    return await (this.#segment as Promise<RunResult>)
  }

  /**
   * Opt-in SIGINT handling: the first SIGINT requests a deferred pause, a second one within `windowSeconds`
   * aborts. Returns the function that removes the handler.
   */
  installSigintHandler (options: { target?: NodeJS.EventEmitter, windowSeconds?: number } = {}): () => void {
    const target = options.target ?? process
    const window = options.windowSeconds ?? 10
    let last = -Infinity
    const onSigint = (): void => {
      const state = this.#sm.state
      if (state !== 'running' && state !== 'pausing') return
      const now = this.#clock.now()
      if (now - last <= window) {
        this.#logger.warn('SIGINT twice: aborting', {})
        this.abort('SIGINT twice').catch((err: unknown) => { this.#logger.warn(`abort after SIGINT failed: ${messageOf(err)}`) })
      } else {
        this.#logger.warn('SIGINT: pausing at the next checkpoint (SIGINT again to abort)', {})
        this.requestPause(true)
      }
      last = now
    }
    target.on('SIGINT', onSigint)
    return () => { target.removeListener('SIGINT', onSigint) }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Suspenders

  installSuspender (suspender: Suspender): void {
    if (this.#suspenders.has(suspender)) return
    const entry = { tripped: false, stop: () => {} }
    this.#suspenders.set(suspender, entry)
    entry.stop = suspender.subscribe((value) => { this.#onSuspenderValue(suspender, value) })
  }

  removeSuspender (suspender: Suspender): void {
    const entry = this.#suspenders.get(suspender)
    if (entry === undefined) return
    this.#suspenders.delete(suspender)
    entry.stop()
    this.#notifyIfClear()
  }

  get suspenders (): Suspender[] { return [...this.#suspenders.keys()] }

  #onSuspenderValue (suspender: Suspender, value: unknown): void {
    const entry = this.#suspenders.get(suspender)
    if (entry === undefined) return
    const trip = suspender.shouldSuspend(value)
    if (trip && !entry.tripped) {
      entry.tripped = true
      this.#tripGeneration++
      this.#logger.warn(`suspender ${suspender.name} tripped (value ${String(value)})`, { suspender: suspender.name })
      if (this.#sm.state === 'running') {
        this.#suspendRequested = true
        this.#interrupt()
      }
    } else if (!trip && entry.tripped) {
      entry.tripped = false
      this.#logger.info(`suspender ${suspender.name} clear (value ${String(value)})`, { suspender: suspender.name })
      this.#notifyIfClear()
    }
  }

  #anyTripped (): boolean {
    for (const e of this.#suspenders.values()) if (e.tripped) return true
    return false
  }

  #notifyIfClear (): void {
    if (this.#anyTripped()) return
    for (const w of this.#clearWaiters.splice(0)) w()
  }

  async #waitSuspendersClear (signal: AbortSignal): Promise<void> {
    for (;;) {
      if (this.#anyTripped()) {
        await Promise.race([new Promise<void>((resolve) => { this.#clearWaiters.push(resolve) }), interrupted(signal)])
      }
      const generation = this.#tripGeneration
      const settle = Math.max(0, ...[...this.#suspenders.keys()].map((s) => s.settleTime))
      await this.#clock.sleep(settle, signal)
      if (generation === this.#tripGeneration && !this.#anyTripped()) return
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // The loop

  #interrupt (): void {
    this.#msgAbort?.abort(INTERRUPT)
  }

  #startSegment (): Promise<RunResult> {
    const segment = this.#loop()
    this.#segment = segment
    return segment
  }

  #resetPlan (): void {
    this.#step = { kind: 'send', value: undefined }
    this.#msgCache = null
    this.#atCheckpoint = false
    this.#deferredPause = false
    this.#request = null
    this.#endRequest = null
    this.#suspendRequested = this.#anyTripped()
    this.#runUids = []
    this.#planSubscriptions = []
    this.#planSuspenders = []
    this.#cleanupErrors = []
  }

  async #loop (): Promise<RunResult> {
    try {
      return await this.#loopInner()
    } catch (err) {
      if (err instanceof PlanFailure) throw err.thrown
      // Only a defect of the engine itself gets here (plan and device errors are thrown into the plan).
      if (this.#sm.state !== 'panicked') this.#sm.transition('panicked', `internal error: ${messageOf(err)}`)
      throw err
    }
  }

  async #loopInner (): Promise<RunResult> {
    for (;;) {
      // Requests are honoured between messages.
      const request = this.#request
      if (request !== null) {
        this.#request = null
        if (request.kind === 'pause') {
          const paused = await this.#pauseNow()
          if (paused !== null) return paused
          continue
        }
        this.#endRequest = request
        const main = this.#stack[0] as Iterator<Msg, unknown, unknown>
        this.#stack = [main]
        if (request.kind === 'halt') {
          this.#closePlan(main)
          return await this.#finish('halted')
        }
        this.#step = { kind: 'throw', error: this.#requestError(request) }
      } else if (this.#deferredPause && this.#atCheckpoint && this.#sm.state === 'pausing') {
        const paused = await this.#pauseNow()
        if (paused !== null) return paused
        continue
      } else if (this.#suspendRequested && this.#sm.state === 'running') {
        await this.#suspendNow()
        continue
      }

      const top = this.#stack[this.#stack.length - 1] as Iterator<Msg, unknown, unknown>
      let result: IteratorResult<Msg, unknown>
      try {
        const step = this.#step
        result = step.kind === 'throw'
          ? (top.throw === undefined ? (() => { throw step.error })() : top.throw(step.error))
          : top.next(step.value)
      } catch (err) {
        if (this.#stack.length > 1) {
          this.#stack.pop()
          this.#step = { kind: 'throw', error: err }
          continue
        }
        return await this.#planFailed(err)
      }
      if (result.done === true) {
        if (this.#stack.length > 1) {
          this.#stack.pop()
          this.#step = { kind: 'send', value: result.value }
          continue
        }
        return await this.#finish(this.#outcomeOfEnd(), result.value)
      }
      this.#step = await this.#dispatch(result.value)
    }
  }

  async #dispatch (m: unknown): Promise<Step> {
    const command = typeof m === 'object' && m !== null ? (m as { command?: unknown }).command : undefined
    const handler = typeof command === 'string' ? this.#registry.get(command) : undefined
    if (handler === undefined) {
      const what = typeof command === 'string' ? `unknown command '${command}'` : `a value that is not a Msg (${typeof m})`
      return {
        kind: 'throw',
        error: new FlyScanError(ErrorCode.INVALID_COMMAND,
          `RunEngine: the plan yielded ${what}; known commands: ${this.commands.join(', ')}`,
          { details: { command: typeof command === 'string' ? command : null } })
      }
    }
    const msg = m as Msg
    this.#msgHook?.(msg)
    if (this.#msgCache !== null && msg.command !== 'pause') this.#msgCache.push(msg)
    this.#atCheckpoint = false
    // One interrupt signal serves every message until an interrupt aborts it (creating an AbortController per
    // message cost most of the engine's time per message); handlers that listen to it (wait, sleep) remove their
    // listeners when they finish.
    let abort = this.#msgAbort
    if (abort === null || abort.signal.aborted) {
      abort = new AbortController()
      this.#msgAbort = abort
    }
    try {
      // A Promise is awaited; any other value (a Status is a thenable, not a Promise) is sent to the plan as it is.
      const out = handler(msg, abort.signal)
      const value = out instanceof Promise ? await raceInterrupt(out, abort.signal) : out
      return { kind: 'send', value }
    } catch (err) {
      if (abort.signal.aborted && err === abort.signal.reason) return { kind: 'send', value: undefined }
      return { kind: 'throw', error: err }
    }
  }

  #requestError (request: Request): FlyScanError {
    const what = request.kind === 'abort' ? `abort requested: ${request.reason}` : `${request.kind} requested`
    return new FlyScanError(ErrorCode.CANCELLED, `RunEngine ${what}`, { details: { request: request.kind } })
  }

  #outcomeOfEnd (): RunOutcome {
    const end = this.#endRequest
    if (end === null) return 'completed'
    return end.kind === 'stop' ? 'stopped' : end.kind === 'abort' ? 'aborted' : 'halted'
  }

  #closePlan (plan: Iterator<Msg, unknown, unknown>): void {
    // halt: the plan gets no chance to clean up; messages its finally blocks yield are discarded.
    try {
      for (let i = 0; i < 1000; i++) {
        const r = plan.return?.(undefined)
        if (r === undefined || r.done === true) return
      }
    } catch (err) {
      this.#logger.warn(`halt: the plan threw while being closed: ${messageOf(err)}`)
    }
  }

  async #planFailed (err: unknown): Promise<RunResult> {
    if (this.#endRequest !== null) {
      // A stop/abort request thrown into the plan (or an error of its cleanup after one) ends it as requested.
      if (!(err instanceof FlyScanError && err.code === ErrorCode.CANCELLED)) {
        this.#logger.warn(`plan failed while ${this.#endRequest.kind}ping: ${messageOf(err)}`)
      }
      return await this.#finish(this.#outcomeOfEnd())
    }
    await this.#cleanup('fail', messageOf(err))
    this.#toIdle('plan failed')
    throw new PlanFailure(err)
  }

  async #finish (outcome: RunOutcome, returnValue?: unknown): Promise<RunResult> {
    const end = this.#endRequest
    const exitStatus: ExitStatus = outcome === 'completed' || outcome === 'stopped' ? 'success' : 'abort'
    const reason = end?.kind === 'abort' ? end.reason : end?.kind === 'halt' ? 'halt' : end?.kind === 'stop' ? 'stop requested' : ''
    await this.#cleanup(exitStatus, reason)
    this.#toIdle(outcome)
    return {
      outcome,
      runUids: [...this.#runUids],
      cleanupErrors: [...this.#cleanupErrors],
      ...(outcome === 'completed' ? { returnValue } : {}),
      ...(reason === '' ? {} : { reason })
    }
  }

  #toIdle (why: string): void {
    this.#stack = []
    for (const token of this.#planSubscriptions) this.router.unsubscribe(token)
    for (const s of this.#planSuspenders) this.removeSuspender(s)
    this.#planSubscriptions = []
    this.#planSuspenders = []
    this.#sm.transition('idle', why)
  }

  /** Rewinds to the last checkpoint and pauses; null (after arranging an abort) when there is no checkpoint. */
  async #pauseNow (): Promise<RunResult | null> {
    this.#deferredPause = false
    const cache = this.#msgCache
    if (cache === null) {
      this.#failedRewind('pause')
      return null
    }
    await this.#rewind(cache)
    this.#sm.transition('paused', 'paused')
    return { outcome: 'paused', runUids: [...this.#runUids], cleanupErrors: [] }
  }

  async #suspendNow (): Promise<void> {
    this.#suspendRequested = false
    const cache = this.#msgCache
    if (cache === null) {
      this.#failedRewind('suspend')
      return
    }
    this.#sm.transition('suspending', 'suspender tripped')
    await this.#rewind(cache)
    const abort = new AbortController()
    this.#msgAbort = abort
    try {
      await this.#waitSuspendersClear(abort.signal)
    } catch (err) {
      if (abort.signal.aborted && err === abort.signal.reason) return // stop/abort/halt: the loop handles it
      throw err
    } finally {
      if (this.#msgAbort === abort) this.#msgAbort = null
    }
    this.#suspendRequested = false
    this.#sm.transition('running', 'suspenders clear')
  }

  #failedRewind (what: string): void {
    const reason = `cannot ${what}: no checkpoint since the run opened (the plan is not resumable here)`
    this.#logger.warn(reason)
    this.#sm.transition('aborting', reason)
    this.#request = { kind: 'abort', reason }
  }

  /** bluesky's rewind: stop movers, forget bundles and groups, replay the messages since the checkpoint on resume. */
  async #rewind (cache: Msg[]): Promise<void> {
    await this.#stopMovers(true)
    this.#bundle = null
    this.#groups.clear()
    this.#stack.push(replay([...cache]))
    this.#step = { kind: 'send', value: undefined }
    this.#msgCache = []
  }

  // -------------------------------------------------------------------------------------------------------------
  // Cleanup: stop movers, complete and collect outstanding flyers, unstage, close the run.

  async #bounded<T> (what: string, fn: () => PromiseLike<T> | T): Promise<void> {
    const abort = new AbortController()
    try {
      await Promise.race([
        Promise.resolve().then(fn),
        this.#clock.sleep(this.#cleanupTimeout, abort.signal).then(() => {
          throw new FlyScanError(ErrorCode.TIMEOUT, `cleanup: ${what} did not finish within ${this.#cleanupTimeout} s`,
            { details: { step: what, timeoutS: this.#cleanupTimeout } })
        })
      ])
    } catch (err) {
      this.#cleanupErrors.push(err)
      this.#logger.warn(`cleanup: ${what} failed: ${messageOf(err)}`, { step: what })
    } finally {
      abort.abort()
    }
  }

  async #stopMovers (success: boolean): Promise<void> {
    for (const obj of this.#movers) {
      if (isStoppable(obj)) await this.#bounded(`stop ${nameOf(obj)}`, () => obj.stop(success))
    }
    this.#movers.clear()
  }

  async #cleanup (exitStatus: ExitStatus, reason: string): Promise<void> {
    await this.#stopMovers(exitStatus === 'success')
    // A run that ended badly stops every flyer it kicked off that can stop, completing or not (a fly scan aborted
    // mid-way must not run to its end); a successful one (stop requested) lets the uncompleted ones complete.
    const stopped = new Set<Obj>()
    if (exitStatus !== 'success') {
      for (const obj of this.#flown) {
        if (isStoppable(obj)) { stopped.add(obj); await this.#bounded(`stop ${nameOf(obj)}`, () => obj.stop(false)) }
      }
    }
    this.#flown.clear()
    for (const obj of [...this.#uncompleted]) {
      if (!stopped.has(obj) && isFlyable(obj)) await this.#bounded(`complete ${nameOf(obj)}`, () => obj.complete())
    }
    this.#uncompleted.clear()
    for (const obj of [...this.#uncollected]) {
      if (this.#run !== null && isCollectable(obj)) await this.#bounded(`collect ${nameOf(obj)}`, () => this.#collect(obj, nameOf(obj)))
    }
    this.#uncollected.clear()
    for (const obj of [...this.#staged].reverse()) {
      if (isStageable(obj)) await this.#bounded(`unstage ${nameOf(obj)}`, () => obj.unstage())
    }
    this.#staged = []
    this.#bundle = null
    this.#groups.clear()
    if (this.#run !== null) this.#closeRun(exitStatus, reason)
  }

  // -------------------------------------------------------------------------------------------------------------
  // Commands

  #on<C extends Command> (command: C, handler: (m: MsgOf<C>, signal: AbortSignal) => unknown): void {
    this.#registry.set(command, handler as CommandHandler)
  }

  #registerBuiltins (): void {
    this.#on('open_run', (m) => this.#openRun(m.metadata))
    this.#on('close_run', (m) => {
      if (this.#run === null) throw sequenceError('close_run: no run is open', 'close_run')
      if (this.#bundle !== null) throw sequenceError(`close_run: the bundle '${this.#bundle.name}' is open (save or drop it first)`, 'close_run')
      return this.#closeRun(m.exitStatus ?? 'success', m.reason ?? '')
    })
    this.#on('stage', async (m) => {
      const obj = this.#need(m.obj, isStageable, 'Stageable', 'stage')
      this.#touch(obj)
      if (this.#staged.includes(obj)) return
      await obj.stage()
      this.#staged.push(obj)
    })
    this.#on('unstage', async (m) => {
      const obj = this.#need(m.obj, isStageable, 'Stageable', 'unstage')
      await obj.unstage()
      this.#staged = this.#staged.filter((x) => x !== obj)
    })
    this.#on('declare_stream', async (m) => {
      const run = this.#needRun('declare_stream')
      if (this.#descriptors.has(m.name)) throw sequenceError(`declare_stream: the stream '${m.name}' is already declared`, 'declare_stream')
      const dataKeys: Record<string, DataKey> = {}
      const objectKeys: Record<string, string[]> = {}
      for (const o of m.objs) {
        const keys = m.collect
          ? await this.#need(o, isCollectable, 'Collectable', 'declare_stream').describeCollect()
          : await this.#describe(this.#need(o, isReadable, 'Readable', 'declare_stream'))
        Object.assign(dataKeys, keys)
        objectKeys[nameOf(o)] = Object.keys(keys)
      }
      const bundle = run.composeDescriptor({ name: m.name, dataKeys, objectKeys, time: this.#clock.now() })
      this.#descriptors.set(m.name, bundle)
      this.router.emit('descriptor', bundle.descriptorDoc)
      return bundle.descriptorDoc
    })
    this.#on('create', (m) => {
      this.#needRun('create')
      if (this.#bundle !== null) throw sequenceError(`create '${m.name}': the bundle '${this.#bundle.name}' is still open (save or drop it first)`, 'create')
      this.#bundle = { name: m.name, readings: new Map() }
    })
    this.#on('read', async (m) => {
      const obj = this.#need(m.obj, isReadable, 'Readable', 'read')
      const reading = await obj.read()
      if (this.#bundle !== null) {
        await this.#describe(obj)
        this.#bundle.readings.set(obj.name, { obj, reading })
      }
      return reading
    })
    this.#on('save', () => this.#save())
    this.#on('drop', () => {
      if (this.#bundle === null) throw sequenceError('drop: no bundle is open (create first)', 'drop')
      this.#bundle = null
    })
    this.#on('set', (m) => {
      const obj = this.#need(m.obj, isMovable, 'Movable', 'set')
      this.#movers.add(obj)
      return this.#track(obj, obj.set(m.value), m.group)
    })
    this.#on('trigger', (m) => {
      const obj = this.#need(m.obj, isTriggerable, 'Triggerable', 'trigger')
      return this.#track(obj, obj.trigger(), m.group)
    })
    this.#on('prepare', (m) => {
      const obj = this.#need(m.obj, isPreparable, 'Preparable', 'prepare')
      this.#touch(obj)
      return this.#track(obj, obj.prepare(m.value), m.group)
    })
    this.#on('kickoff', (m) => {
      const obj = this.#need(m.obj, isFlyable, 'Flyable', 'kickoff')
      this.#touch(obj)
      this.#uncompleted.add(obj)
      this.#flown.add(obj)
      if (isCollectable(obj)) this.#uncollected.add(obj)
      return this.#track(obj, obj.kickoff(), m.group)
    })
    this.#on('complete', (m) => {
      const obj = this.#need(m.obj, isFlyable, 'Flyable', 'complete')
      this.#uncompleted.delete(obj)
      return this.#track(obj, obj.complete(), m.group)
    })
    this.#on('collect', async (m) => {
      const obj = this.#need(m.obj, isCollectable, 'Collectable', 'collect')
      this.#needRun('collect')
      this.#uncollected.delete(obj)
      return await this.#collect(obj, m.name ?? obj.name)
    })
    this.#on('wait', (m, signal) => this.#wait(m.group, m.timeout, signal))
    this.#on('sleep', (m, signal) => this.#clock.sleep(m.seconds, signal))
    this.#on('checkpoint', () => {
      if (this.#bundle !== null) throw sequenceError(`checkpoint inside the open bundle '${this.#bundle.name}'`, 'checkpoint')
      this.#msgCache = []
      this.#atCheckpoint = true
    })
    this.#on('pause', (m) => { this.requestPause(m.defer) })
    this.#on('locate', async (m) => await this.#need(m.obj, isLocatable, 'Locatable', 'locate').locate())
    this.#on('null', () => undefined)
    this.#on('subscribe', (m) => {
      const token = this.router.subscribe(m.callback, m.name as DocumentName | undefined)
      this.#planSubscriptions.push(token)
      return token
    })
    this.#on('unsubscribe', (m) => {
      this.router.unsubscribe(m.token)
      this.#planSubscriptions = this.#planSubscriptions.filter((t) => t !== m.token)
    })
    this.#on('install_suspender', (m) => {
      this.installSuspender(m.suspender)
      this.#planSuspenders.push(m.suspender)
    })
    this.#on('remove_suspender', (m) => {
      this.removeSuspender(m.suspender)
      this.#planSuspenders = this.#planSuspenders.filter((s) => s !== m.suspender)
    })
  }

  #need<T> (obj: unknown, guard: (x: unknown) => x is T, protocol: string, command: string): T {
    if (guard(obj)) return obj
    throw new FlyScanError(ErrorCode.BAD_INPUT, `${command}: ${nameOf(obj)} is not ${protocol}`,
      { details: { command, obj: nameOf(obj), protocol } })
  }

  #needRun (command: string): RunBundle {
    if (this.#run === null) throw sequenceError(`${command}: no run is open (open_run first)`, command)
    return this.#run
  }

  #track<S extends PromiseLike<unknown>> (obj: Obj, status: S, group: string | undefined): S {
    // Observe the failure now so an unwaited failing status is never an unhandled rejection; wait() rethrows it.
    Promise.resolve(status).catch(() => {})
    const key = group ?? null
    const list = this.#groups.get(key)
    if (list === undefined) this.#groups.set(key, [{ obj, status }])
    else list.push({ obj, status })
    return status
  }

  async #wait (group: string | undefined, timeout: number | undefined, signal: AbortSignal): Promise<void> {
    const key = group ?? null
    const tracked = this.#groups.get(key) ?? []
    this.#groups.delete(key)
    const all = Promise.all(tracked.map((t) => t.status))
    if (timeout === undefined) {
      await all
      return
    }
    const timer = new AbortController()
    const onAbort = (): void => { timer.abort() }
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      await Promise.race([all, this.#clock.sleep(timeout, timer.signal).then(() => {
        const pending = tracked.filter((t) => t.status.done !== true).map((t) => nameOf(t.obj))
        const label = group === undefined ? 'the ungrouped statuses' : `group '${group}'`
        throw new FlyScanError(ErrorCode.TIMEOUT,
          `wait for ${label} timed out after ${timeout} s: ${pending.length} of ${tracked.length} not done (${pending.join(', ')})`,
          { details: { group: group ?? null, timeoutS: timeout, pending: pending.join(',') } })
      })])
    } finally {
      signal.removeEventListener('abort', onAbort)
      timer.abort()
    }
  }

  async #describe (obj: Readable): Promise<Record<string, DataKey>> {
    let keys = this.#describeCache.get(obj)
    if (keys === undefined) {
      keys = await obj.describe()
      this.#describeCache.set(obj, keys)
    }
    return keys
  }

  #openRun (metadata: Readonly<Record<string, unknown>>): string {
    if (this.#run !== null) throw sequenceError(`open_run: the run ${this.#run.startDoc.uid} is still open (close_run first)`, 'open_run')
    this.#scanId++
    const run = composeRun({
      metadata: { ...this.#md, ...this.#planMd, ...metadata, scan_id: this.#scanId },
      time: this.#clock.now(),
      now: () => this.#clock.now()
    })
    this.#run = run
    this.#runUids.push(run.startDoc.uid)
    this.#msgCache = null // rewinding across open_run would open a second run: resumable again after a checkpoint
    this.router.emit('start', run.startDoc)
    return run.startDoc.uid
  }

  /** Remember `obj` if it contributes to run_stop (HasRunStopInfo); asked when the run closes. */
  #touch (obj: unknown): void {
    if (hasRunStopInfo(obj)) this.#stopInfoSources.add(obj)
  }

  /**
   * What the devices used in the run add to run_stop (e.g. a fly scan's timing report). A contribution that fails or
   * clashes with another is logged and left out: closing the run must not fail because of it.
   */
  #runStopExtras (): Record<string, unknown> {
    const extra: Record<string, unknown> = {}
    for (const obj of this.#stopInfoSources) {
      try {
        const info = obj.runStopInfo()
        if (info === undefined) continue
        for (const [k, v] of Object.entries(info)) {
          if (k in extra) this.#logger.warn(`run_stop: ${nameOf(obj)} and another device both add '${k}'; keeping the first`, { key: k })
          else extra[k] = v
        }
      } catch (err) {
        this.#logger.warn(`run_stop: ${nameOf(obj)}.runStopInfo() failed: ${messageOf(err)}`, { device: nameOf(obj) })
      }
    }
    this.#stopInfoSources.clear()
    return extra
  }

  #closeRun (exitStatus: ExitStatus, reason: string): string {
    const run = this.#run as RunBundle
    this.#run = null
    this.#descriptors.clear()
    this.#resources.clear()
    this.#describeCache.clear()
    this.#msgCache = null
    const extra = this.#runStopExtras()
    const stop = run.composeStop({ exitStatus, reason, time: this.#clock.now(), extra })
    this.router.emit('stop', stop)
    return run.startDoc.uid
  }

  async #save (): Promise<void> {
    const bundle = this.#bundle
    if (bundle === null) throw sequenceError('save: no bundle is open (create first)', 'save')
    this.#bundle = null
    const run = this.#needRun('save')
    const data: Record<string, unknown> = {}
    const timestamps: Record<string, number> = {}
    const dataKeys: Record<string, DataKey> = {}
    const objectKeys: Record<string, string[]> = {}
    for (const { obj, reading } of bundle.readings.values()) {
      const keys = await this.#describe(obj)
      Object.assign(dataKeys, keys)
      objectKeys[obj.name] = Object.keys(keys)
      for (const [k, r] of Object.entries(reading)) {
        data[k] = r.value
        timestamps[k] = r.timestamp
      }
    }
    let descriptor = this.#descriptors.get(bundle.name)
    if (descriptor === undefined) {
      const configuration: Record<string, { data: Record<string, unknown>, timestamps: Record<string, number>, data_keys: Record<string, DataKey> }> = {}
      for (const { obj } of bundle.readings.values()) {
        if (!isConfigurable(obj)) continue
        const [conf, confKeys] = await Promise.all([obj.readConfiguration(), obj.describeConfiguration()])
        configuration[obj.name] = {
          data: Object.fromEntries(Object.entries(conf).map(([k, r]) => [k, r.value])),
          timestamps: Object.fromEntries(Object.entries(conf).map(([k, r]) => [k, r.timestamp])),
          data_keys: confKeys
        }
      }
      descriptor = run.composeDescriptor({ name: bundle.name, dataKeys, objectKeys, configuration, time: this.#clock.now() })
      this.#descriptors.set(bundle.name, descriptor)
      this.router.emit('descriptor', descriptor.descriptorDoc)
    } else {
      const expected = Object.keys(descriptor.descriptorDoc.data_keys).sort().join(',')
      const got = Object.keys(data).sort().join(',')
      if (expected !== got) {
        throw sequenceError(`save '${bundle.name}': the readings have keys [${got}] but the stream's descriptor has [${expected}]`, 'save')
      }
    }
    const event = descriptor.composeEvent({ data, timestamps, time: this.#clock.now() })
    this.router.emit('event', event)
  }

  async #collect (obj: Collectable, stream: string): Promise<number> {
    const run = this.#needRun('collect')
    let descriptor = this.#descriptors.get(stream)
    if (descriptor === undefined) {
      const dataKeys = await obj.describeCollect()
      descriptor = run.composeDescriptor({ name: stream, dataKeys, objectKeys: { [obj.name]: Object.keys(dataKeys) }, time: this.#clock.now() })
      this.#descriptors.set(stream, descriptor)
      this.router.emit('descriptor', descriptor.descriptorDoc)
    }
    let emitted = 0
    if (obj.collectAssetDocs !== undefined) {
      for await (const [kind, doc] of obj.collectAssetDocs()) {
        if (kind === 'stream_resource') {
          const resource = run.composeStreamResource({ dataKey: doc.data_key, mimetype: doc.mimetype, uri: doc.uri, parameters: doc.parameters, uid: doc.uid })
          this.#resources.set(doc.uid, resource)
          this.router.emit('stream_resource', resource.streamResourceDoc)
        } else {
          const resource = this.#resources.get(doc.stream_resource)
          if (resource === undefined) throw sequenceError(`collect ${obj.name}: stream_datum for unknown stream_resource ${doc.stream_resource}`, 'collect')
          this.router.emit('stream_datum', resource.composeStreamDatum({ descriptor: descriptor.descriptorDoc.uid, indices: doc.indices, seqNums: doc.seq_nums }))
        }
        emitted++
      }
    } else if (obj.collectPages !== undefined) {
      for await (const page of obj.collectPages()) {
        this.router.emit('event_page', descriptor.composeEventPage({ data: page.data, timestamps: page.timestamps, time: page.time }))
        emitted++
      }
    } else if (obj.collect !== undefined) {
      for await (const ev of obj.collect()) {
        this.router.emit('event', descriptor.composeEvent({ data: ev.data, timestamps: ev.timestamps, time: ev.time }))
        emitted++
      }
    }
    return emitted
  }
}
