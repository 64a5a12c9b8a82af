/**
 * StandardDetector (ophyd-async's StandardDetector): a detector that flies, composed of a DetectorController (trigger
 * and acquire: the camera's PVs) and a DetectorWriter (data: where frames go). Stageable, Preparable<TriggerInfo>,
 * Flyable, Stoppable and Collectable with stream assets.
 *
 * - stage: disarm (a leftover acquisition), forget the last scan.
 * - prepare(info): checkTriggerInfo, controller.prepare, then (first prepare since stage) writer.open → the data keys
 *   describeCollect() gives.
 * - kickoff: controller.arm.
 * - complete: wait until the writer has numberOfEvents more events on disk, reporting frames. The stall watchdog
 *   (ophyd-async issues 1114 and 1151: a scan that waited forever for a frame) fails it with FLY_ERR_STALLED when no new
 *   frame arrives for stallTimeoutMs(info, deadtime, stallMarginMs) — before the first frame, for exposureTimeout when
 *   given — with a reason naming the first suspect (the detector's state, frames produced against frames received).
 *   A detector error state fails it with FLY_ERR_DETECTOR. Success: the controller goes idle, the writer closes.
 *   Failure or stop(): controller.disarm, writer.abort (the file stays readable).
 * - unstage: disarm, writer.close (idempotent).
 *
 * Every wait is bounded by a value of config/defaults.ts `detector` (or the controller's and writer's own bounds).
 */
import { defaults } from '../../config/index.js'
import { ErrorCode, FlyScanError, isFlyScanError } from '../errors.js'
import {
  AsyncStatus, Device, checkTriggerInfo, framesFor, realClock, stallTimeoutMs, withTimeout,
  type Clock, type Collectable, type ConnectFailure, type ConnectOptions, type DataKey, type DetectorController, type DetectorWriter, type Flyable, type FrameCounters,
  type Preparable, type Stageable, type Stoppable, type StreamAsset, type TriggerInfo, type Unsubscribe, type Watcher
} from '../devices/index.js'
import type { DetectorDiagnosis } from './vimba-controller.js'

/** What a controller may offer beyond DetectorController (VimbaController does both). */
export interface ObservableController extends DetectorController {
  /** `cb` gets the error that ends an armed acquisition (a detector error state); returns the function that stops it. */
  onError?(cb: (err: Error) => void): Unsubscribe
  /** The detector's state and frame count, to explain a stall; never rejects. */
  diagnose?(): Promise<DetectorDiagnosis>
}

/** The named waits of a StandardDetector (defaults: config/defaults.ts `detector`). */
export interface DetectorTimeouts {
  readonly stallMarginMs: number
  readonly idleTimeoutMs: number
  readonly progressPollMs: number
  readonly errorWatchSliceMs: number
  /** Bound on each writer call (open, close, abort) and on each controller call (prepare, arm, disarm). */
  readonly partTimeoutMs: number
}

export function defaultDetectorTimeouts (): DetectorTimeouts {
  const d = defaults.detector
  return {
    stallMarginMs: d.stallMarginMs,
    idleTimeoutMs: d.idleTimeoutMs,
    progressPollMs: d.progressPollMs,
    errorWatchSliceMs: d.errorWatchSliceMs,
    partTimeoutMs: d.partTimeoutMs
  }
}

export interface StandardDetectorOptions {
  readonly name?: string
  /** May also be given later with setWriter() (before prepare). */
  readonly writer?: DetectorWriter
  readonly timeouts?: Partial<DetectorTimeouts>
  /** Time for the stall watchdog and the progress poll (virtual in tests). */
  readonly clock?: Clock
}

const NO_FRAMES: FrameCounters = Object.freeze({
  received: 0, written: 0, dropped: 0, uniqueIdGaps: 0, firstUniqueId: undefined, lastUniqueId: undefined, bytesWritten: 0
})

/** One kickoff: what complete() waits for and measures against. */
interface Run {
  readonly info: TriggerInfo
  /** Events on disk before kickoff (several kickoffs may share one file). */
  readonly initialIndex: number
  /** Writer counters at kickoff. */
  readonly receivedAtKickoff: number
  readonly writtenAtKickoff: number
  /** clock.now() once armed. */
  readonly armedAtMs: number
  /** The detector's failure, once it reported one. */
  error: Error | undefined
  /** Set by stop(). */
  stopped: { readonly success: boolean } | undefined
  /** The acquisition is over (complete finished, stop, unstage): watchers end. */
  over: boolean
  status: AsyncStatus | undefined
  readonly unwatch: Unsubscribe
}

function message (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function seconds (ms: number): string {
  return (ms / 1000).toFixed(ms < 10_000 ? 2 : 1)
}

export class StandardDetector<C extends ObservableController = ObservableController> extends Device
  implements Stageable, Preparable<TriggerInfo>, Flyable, Stoppable, Collectable {
  readonly controller: C
  readonly timeouts: DetectorTimeouts
  readonly #clock: Clock
  #writer: DetectorWriter | undefined
  #describe: Record<string, DataKey> | undefined
  #info: TriggerInfo | undefined
  #run: Run | undefined

  constructor (controller: C, options: StandardDetectorOptions = {}) {
    super()
    this.controller = controller
    this.timeouts = { ...defaultDetectorTimeouts(), ...options.timeouts }
    this.#clock = options.clock ?? realClock
    this.#writer = options.writer
    // Subclasses call setName last, once their signals exist (Device's rule).
    if (new.target === StandardDetector) this.setName(options.name ?? '')
  }

  get writer (): DetectorWriter | undefined { return this.#writer }

  /** Give the data part (TstFlyFrameWriter, IocHdfWriter); not while a scan's file is open. */
  setWriter (writer: DetectorWriter): void {
    if (this.#describe !== undefined) {
      throw this.#fail(ErrorCode.BAD_INPUT, 'cannot change the writer while a file is open (unstage first)')
    }
    this.#writer = writer
  }

  /** Connects the signals, and the writer too when it is a device with signals of its own (IocHdfWriter). */
  override async connectParts (options: Required<ConnectOptions>): Promise<ConnectFailure[]> {
    const writer = this.#writer
    const [own, writers] = await Promise.all([
      super.connectParts(options),
      writer instanceof Device ? writer.connectParts(options) : Promise.resolve([])
    ])
    return [...own, ...writers]
  }

  /** The detector's deadtime (s) at `livetime` s (the controller's). */
  getDeadtime (livetime: number | undefined): number {
    return this.controller.getDeadtime(livetime)
  }

  /** The TriggerInfo of the last prepare (for the timing report). */
  get lastTriggerInfo (): TriggerInfo | undefined { return this.#info }

  /** The writer's counters (zeros without a writer). */
  counters (): FrameCounters {
    return this.#writer?.counters() ?? NO_FRAMES
  }

  get label (): string { return this.name === '' ? this.constructor.name : this.name }

  #fail (code: ErrorCode, text: string, details: Record<string, string | number> = {}, cause?: unknown): FlyScanError {
    return new FlyScanError(code, `${this.label}: ${text}`, { details: { device: this.label, ...details }, cause })
  }

  async #bounded<T> (promise: Promise<T>, what: string): Promise<T> {
    return await withTimeout(promise, this.timeouts.partTimeoutMs, `${this.label}: ${what}`)
  }

  #requireWriter (what: string): DetectorWriter {
    const w = this.#writer
    if (w === undefined) {
      throw this.#fail(ErrorCode.BAD_INPUT, `${what} needs a DetectorWriter: call setWriter() first (the CLI wires TstFlyFrameWriter or IocHdfWriter)`)
    }
    return w
  }

  // -------------------------------------------------------------------------------------------------------------
  // Stageable

  /** Disarm (a leftover acquisition) and forget the last scan. */
  async stage (): Promise<void> {
    this.#endRun()
    this.#info = undefined
    await this.#bounded(this.controller.disarm(), 'disarm')
  }

  /** Disarm and close the file; safe to call twice. Both are tried; the first failure is thrown. */
  async unstage (): Promise<void> {
    this.#endRun()
    const opened = this.#describe !== undefined
    this.#describe = undefined
    const results = await Promise.allSettled([
      this.#bounded(this.controller.disarm(), 'disarm'),
      opened && this.#writer !== undefined ? this.#bounded(this.#writer.close(), 'closing the writer') : Promise.resolve()
    ])
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed !== undefined) throw failed.reason
  }

  // -------------------------------------------------------------------------------------------------------------
  // Preparable

  prepare (info: TriggerInfo): AsyncStatus {
    return new AsyncStatus((async () => {
      checkTriggerInfo(info, this.label)
      const writer = this.#requireWriter('prepare()')
      if (this.#run !== undefined && !this.#run.over) {
        throw this.#fail(ErrorCode.BAD_INPUT, 'prepare() while an acquisition is under way: complete() or stop() it first')
      }
      this.#info = undefined
      // The writer first: opening it may acquire a frame (the IOC's HDF5 warm-up), which the controller's prepare
      // must not count (it resets ArrayCounter).
      if (this.#describe === undefined) {
        this.#describe = await this.#bounded(writer.open(this.name, info.exposuresPerEvent ?? 1, framesFor(info)), 'opening the writer')
      }
      await this.#bounded(this.controller.prepare(info), 'prepare')
      this.#info = info
    })())
  }

  // -------------------------------------------------------------------------------------------------------------
  // Flyable, Stoppable

  kickoff (): AsyncStatus {
    return new AsyncStatus((async () => {
      const info = this.#info
      if (info === undefined || this.#describe === undefined) throw this.#fail(ErrorCode.BAD_INPUT, 'kickoff() needs a prepare(TriggerInfo) first')
      if (this.#run !== undefined && !this.#run.over) throw this.#fail(ErrorCode.BAD_INPUT, 'kickoff() while an acquisition is under way')
      const writer = this.#requireWriter('kickoff()')
      const initialIndex = await this.#bounded(writer.getIndicesWritten(), 'reading the writer\'s index')
      const before = writer.counters()
      await this.#bounded(this.controller.arm(), 'arm')
      const run: Run = {
        info,
        initialIndex,
        receivedAtKickoff: before.received,
        writtenAtKickoff: before.written,
        armedAtMs: this.#clock.now(),
        error: undefined,
        stopped: undefined,
        over: false,
        status: undefined,
        unwatch: () => {}
      }
      ;(run as { unwatch: Unsubscribe }).unwatch = this.#watchErrors(run)
      this.#run = run
    })())
  }

  /** The acquisition's status: done when every event is on disk; progress in frames written. */
  complete (): AsyncStatus {
    const run = this.#run
    if (run === undefined) return AsyncStatus.rejected(this.#fail(ErrorCode.BAD_INPUT, 'complete() needs a kickoff() first'))
    run.status ??= AsyncStatus.watchable(async (report) => { await this.#complete(run, report) })
    return run.status
  }

  /** Stop the acquisition: disarm, abort the writer (the file stays readable). complete() then fails (CANCELLED) unless `success`. */
  async stop (success = false): Promise<void> {
    const run = this.#run
    if (run !== undefined && !run.over) run.stopped = { success }
    await this.#cleanup(run, 'stopped', success)
  }

  /** Disarm, then abort the writer if a file is open; every failure is collected, the first one is thrown. */
  async #cleanup (run: Run | undefined, reason: string, success: boolean): Promise<void> {
    if (run !== undefined) this.#endRunOf(run)
    const errors: unknown[] = []
    await this.#bounded(this.controller.disarm(), 'disarm').catch((err: unknown) => { errors.push(err) })
    if (this.#describe !== undefined && this.#writer !== undefined) {
      const writer = this.#writer
      await this.#bounded(success ? writer.close() : writer.abort(reason), success ? 'closing the writer' : 'aborting the writer')
        .catch((err: unknown) => { errors.push(err) })
    }
    if (errors.length > 0) throw errors[0]
  }

  #endRun (): void {
    if (this.#run !== undefined) this.#endRunOf(this.#run)
  }

  #endRunOf (run: Run): void {
    if (run.over) return
    run.over = true
    run.unwatch()
  }

  /** Record the detector's failure in `run`: from controller.onError, else by asking waitForIdle in slices. */
  #watchErrors (run: Run): Unsubscribe {
    const c = this.controller
    if (c.onError !== undefined) return c.onError((err) => { run.error ??= err })
    const slice = this.timeouts.errorWatchSliceMs
    const watch = async (): Promise<void> => {
      while (!run.over) {
        try {
          await c.waitForIdle(slice)
          return
        } catch (err) {
          if (isFlyScanError(err, ErrorCode.TIMEOUT)) continue
          run.error ??= err instanceof Error ? err : new Error(String(err))
          return
        }
      }
    }
    watch().catch(() => {})
    return () => {}
  }

  async #complete (run: Run, report: Watcher): Promise<void> {
    const writer = this.#requireWriter('complete()')
    const info = run.info
    const expectedFrames = framesFor(info)
    const target = run.initialIndex + info.numberOfEvents
    const deadtime = this.controller.getDeadtime(info.livetime)
    const stallMs = stallTimeoutMs(info, deadtime, this.timeouts.stallMarginMs)
    const firstMs = info.exposureTimeout === undefined ? stallMs : Math.ceil(info.exposureTimeout * 1000)
    let lastReceived = run.receivedAtKickoff
    let lastChangeMs = run.armedAtMs
    let lastWritten = -1
    try {
      for (;;) {
        if (run.stopped !== undefined) {
          if (run.stopped.success) return
          throw this.#fail(ErrorCode.CANCELLED, `stopped after ${writer.counters().received - run.receivedAtKickoff} of ${expectedFrames} frames`)
        }
        if (run.error !== undefined) throw run.error
        const index = await this.#bounded(writer.getIndicesWritten(), 'reading the writer\'s index')
        const counters = writer.counters()
        const now = this.#clock.now()
        const written = counters.written - run.writtenAtKickoff
        if (written !== lastWritten) {
          lastWritten = written
          report({
            name: this.name,
            current: written,
            initial: 0,
            unit: 'frames',
            timeElapsed: (now - run.armedAtMs) / 1000,
            ...(expectedFrames > 0 ? { target: expectedFrames, fraction: Math.min(1, written / expectedFrames) } : {})
          })
        }
        if (info.numberOfEvents > 0 && index >= target) break
        if (counters.received !== lastReceived) {
          lastReceived = counters.received
          lastChangeMs = now
        }
        const received = counters.received - run.receivedAtKickoff
        const bound = received === 0 ? firstMs : stallMs
        if (now - lastChangeMs > bound) throw await this.#stallError(run, received, expectedFrames, now - lastChangeMs, bound, deadtime)
        await this.#clock.sleep(this.timeouts.progressPollMs)
      }
      await this.#bounded(this.controller.waitForIdle(this.timeouts.idleTimeoutMs), 'waiting for the detector to go idle')
      this.#endRunOf(run)
      // The scan's file is complete: the next prepare opens a new one (dark_flat prepares twice in one stage).
      this.#describe = undefined
      await this.#bounded(writer.close(), 'closing the writer')
    } catch (err) {
      const stopped = run.stopped
      this.#endRunOf(run)
      // stop() cleans up itself; any other failure disarms and aborts here.
      if (stopped === undefined) {
        await this.#cleanup(run, message(err), false).catch(() => {})
      }
      throw err
    }
  }

  async #stallError (run: Run, received: number, expected: number, sinceMs: number, boundMs: number, deadtime: number): Promise<FlyScanError> {
    const info = run.info
    const of = expected > 0 ? `${received} of ${expected}` : `${received}`
    const why = received === 0
      ? `no frame arrived within ${seconds(sinceMs)} s of kickoff (bound ${boundMs} ms: ` +
        (info.exposureTimeout !== undefined ? `exposureTimeout ${info.exposureTimeout} s)` : this.#stallBoundText(info, deadtime))
      : `no new frame for ${seconds(sinceMs)} s (bound ${boundMs} ms: ${this.#stallBoundText(info, deadtime)}`
    const diag = this.controller.diagnose === undefined ? undefined : await this.controller.diagnose()
    const suspect = diag === undefined ? '' : `; ${suspectOf(diag, received, expected)}`
    return this.#fail(ErrorCode.STALLED, `stalled: ${why}; ${of} frames received${suspect}`, {
      received,
      expected,
      sinceLastFrameMs: Math.round(sinceMs),
      stallTimeoutMs: boundMs,
      ...(diag === undefined ? {} : { state: diag.state }),
      ...(diag?.framesProduced === undefined ? {} : { framesProduced: diag.framesProduced })
    })
  }

  #stallBoundText (info: TriggerInfo, deadtime: number): string {
    return `livetime ${info.livetime ?? 0} s + deadtime ${info.deadtime ?? deadtime} s + margin ${this.timeouts.stallMarginMs} ms)`
  }

  // -------------------------------------------------------------------------------------------------------------
  // Collectable

  async describeCollect (): Promise<Record<string, DataKey>> {
    if (this.#describe === undefined) throw this.#fail(ErrorCode.BAD_INPUT, 'describeCollect() needs a prepare(TriggerInfo) first (it opens the file)')
    return this.#describe
  }

  async getIndex (): Promise<number> {
    return await this.#requireWriter('getIndex()').getIndicesWritten()
  }

  async * collectAssetDocs (index?: number): AsyncIterable<StreamAsset> {
    const writer = this.#requireWriter('collectAssetDocs()')
    yield * writer.collectStreamDocs(this.name, index ?? await writer.getIndicesWritten())
  }
}

/** The first suspect of a stall, in words, from what the controller could read. */
export function suspectOf (diag: DetectorDiagnosis, received: number, expected: number): string {
  const state = `DetectorState_RBV ${diag.state}${diag.statusMessage === undefined || diag.statusMessage === '' ? '' : ` (StatusMessage_RBV: ${JSON.stringify(diag.statusMessage)})`}`
  const produced = diag.framesProduced
  if (['Error', 'Disconnected', 'Aborted'].includes(diag.state)) return `the camera is in ${state}`
  if (produced === undefined) return `the camera's frame count (ArrayCounter_RBV) could not be read; ${state}`
  if (produced > received) {
    return `the camera produced ${produced} frames but ${received} arrived: frames are lost between the camera and the writer ` +
      `(plugin callbacks, Channel Access, the frame ring); ${state}`
  }
  const short = expected > 0 ? ` of ${expected}` : ''
  return `the camera produced only ${produced} frames${short} and is in ${state}: it got no more triggers (check the trigger source and its wiring)`
}
