/**
 * The fly-scan coordinator: one device that prepares, kicks off, completes and stops the PandA, the cameras and the
 * rotation stage of a TST fly scan together, watches them with a TimingMonitor, and puts the timing report in
 * run_stop (`timing`). Plans see it as a FlyScanDevice (src/devices/core/fly-scan.ts).
 *
 * - prepare(request) turns a tomography or XAS request into the PandA's trigger setup (validated first: nothing moves
 *   or is written if the request is impossible), the cameras' TriggerInfo (edge-triggered from the PandA's TTLOUT)
 *   and the motor's FlyMotorInfo (run-up from ACCL; velocity at most VMAX), then prepares all three in parallel
 *   (the motor parks at its run-up start). A `still` request (dark and flat fields) prepares the cameras alone,
 *   internally triggered.
 * - kickoff arms the cameras, then the PandA (PCOMP enabled with the stage parked), then starts the motor.
 * - complete waits for every part, polling the TimingMonitor every pollPeriodMs: a part that makes no progress for its
 *   stall timeout (derived from TriggerInfo) fails the scan with a reason naming it (ophyd-async issues 1114 and
 *   1151 hung instead). The first failure stops every other part; the error names the part.
 * - stop stops every part (PandA disarmed, cameras disarmed with their files closed, motor stopped), in parallel.
 *
 * ../../docs/fly-scans.md describes the sequence and the numbers.
 */
import { defaults } from '../../config/index.js'
import { ErrorCode, FlyScanError, isFlyScanError } from '../errors.js'
import {
  AsyncStatus, Device, realClock, withTimeout,
  checkFlyScanRequest, type Clock, type Collectable, type ConnectFailure, type ConnectOptions, type FlyScanDevice, type FlyScanRequest, type Flyable, type FrameCounters, type HasRunStopInfo,
  type Preparable, type Stageable, type Status, type Stoppable, type TriggerInfo, type Watcher
} from '../devices/index.js'
import type { FlyMotorInfo } from '../epics/index.js'
import type { RoiStream } from '../areadetector/index.js'
import { EnergyCalibration } from './calibration.js'
import type { LatencySummary } from '../metrics/index.js'
import { triggerSetup, type PandaFlyInfo, type PandaTriggerSetup, type TriggerContext } from '../panda/index.js'
import {
  TimingMonitor, cameraStallTimeout, pandaStallTimeout, stallError,
  type CameraExpectation, type PandaExpectation, type TimingReport
} from './timing.js'

/** A part that connects (a Device): the coordinator connects its parts when it is connected. */
interface Connects {
  connect? (options?: ConnectOptions): Promise<void>
}

/** The PandA as the coordinator drives it (HDFPanda). */
export interface CoordinatedPanda extends Connects, Flyable, Preparable<PandaFlyInfo>, Stageable, Stoppable, Collectable {
  readonly triggerContext: TriggerContext
  /** Rows on disk in the current capture. */
  readonly rowsWritten: number
  /** The finished capture's pipeline outcome (its latency holds `panda.ts_trig_delta_us`). */
  readonly lastResult: { readonly latency: Readonly<Record<string, LatencySummary>>, readonly files?: readonly string[] } | undefined
}

/** The rotation stage as the coordinator drives it (EpicsMotor). */
export interface CoordinatedMotor extends Connects, Flyable, Preparable<FlyMotorInfo>, Stageable, Stoppable {
  readonly accelerationTime: { getValue (): Promise<number> }
  readonly maxVelocity: { getValue (): Promise<number> }
}

/** A camera as the coordinator drives it (StandardDetector / ADVimba). */
export interface CoordinatedCamera extends Connects, Flyable, Preparable<TriggerInfo>, Stageable, Stoppable, Collectable {
  /** The frames its writer has seen. */
  counters (): FrameCounters
  /** Its deadtime (s) at `livetime` s. */
  getDeadtime (livetime: number | undefined): number
  /** ArrayCounter_RBV: frames the camera says it made. */
  readArrayCounter? (): Promise<number>
  /** Live ROI statistics (ADVimba with `rois`): declared as a stream of its own when a frame writer feeds it. */
  readonly roiStream?: RoiStream | undefined
}

export interface FlyScanOptions {
  readonly name?: string
  readonly panda?: CoordinatedPanda
  readonly motor?: CoordinatedMotor
  readonly cameras?: readonly CoordinatedCamera[]
  /** Fail a scan whose timing report is not 'ok' (frames dropped, rows missing) even though every part finished (default true). */
  readonly failOnTimingProblems?: boolean
  readonly clock?: Clock
  readonly pollPeriodMs?: number
  /**
   * XAS: how far before the window the stage is parked, degrees (default defaults.panda.xasRunUpDeg, TST's 5°); at
   * least 1.2 times the acceleration's run-up is always used.
   */
  readonly xasRunUpDeg?: number
  /** energy_calibration: the reference edge (degrees, as XAS energies are passed) and the scan's half-range (default 1). */
  readonly calibrationEdge?: number
  readonly calibrationRange?: number
}

/** What prepare worked out for one scan: every part's request and the timing expectations. */
export interface FlyScanPlan {
  readonly request: FlyScanRequest
  readonly panda: PandaFlyInfo | undefined
  readonly setup: PandaTriggerSetup | undefined
  readonly motor: FlyMotorInfo | undefined
  readonly trigger: TriggerInfo
  /** Seconds from motor kickoff until the first trigger can come (the run-up), for the first-frame bounds. */
  readonly runUpS: number
  readonly cameras: readonly CameraExpectation[]
  readonly pandaExpectation: PandaExpectation | undefined
}

/** Live progress for a progress bar. */
export interface FlyScanProgress {
  readonly frames: number
  readonly expectedFrames: number
  readonly rows: number
  readonly expectedRows: number | undefined
  readonly bytes: number
  readonly elapsedS: number
}

function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function badRequest (text: string): FlyScanError {
  return new FlyScanError(ErrorCode.BAD_INPUT, text)
}

interface Running {
  readonly plan: FlyScanPlan
  readonly monitor: TimingMonitor
  readonly kickoffMs: number
  /** Set once complete() or stop() has ended the scan. */
  ended: boolean
}

export class FlyScan extends Device implements FlyScanDevice, HasRunStopInfo {
  readonly panda: CoordinatedPanda | undefined
  readonly motor: CoordinatedMotor | undefined
  readonly cameras: readonly CoordinatedCamera[]
  readonly #clock: Clock
  readonly #pollPeriodMs: number
  readonly #failOnTiming: boolean
  readonly #xasRunUpDeg: number
  #plan: FlyScanPlan | undefined
  #running: Running | undefined
  #report: TimingReport | undefined
  /** Reports of the scans before the current one since stage (a run may fly several: dark_flat). */
  #reports: TimingReport[] = []

  constructor (options: FlyScanOptions) {
    super()
    this.panda = options.panda
    this.motor = options.motor
    this.cameras = options.cameras ?? []
    this.#clock = options.clock ?? realClock
    this.#pollPeriodMs = options.pollPeriodMs ?? defaults.timing.pollPeriodMs
    this.#failOnTiming = options.failOnTimingProblems ?? true
    this.#xasRunUpDeg = options.xasRunUpDeg ?? defaults.panda.xasRunUpDeg
    if (!(this.#xasRunUpDeg >= 0)) throw badRequest(`fly scan: xasRunUpDeg ${this.#xasRunUpDeg} must be >= 0`)
    const names = [this.panda, this.motor, ...this.cameras].filter((d) => d !== undefined).map((d) => d.name)
    const twice = names.find((n, i) => names.indexOf(n) !== i)
    if (twice !== undefined) throw badRequest(`fly scan: the device ${twice} is given twice`)
    // The parts keep their own names (panda1, manta1...): they are not children of this device.
    this.setName(options.name ?? 'flyscan')
    this.calibration = options.calibrationEdge === undefined
      ? undefined
      : new EnergyCalibration(`${this.name}_calibration`, { edge: options.calibrationEdge, range: options.calibrationRange ?? 1 })
  }

  /** energy_calibration's stream (configured with calibrationEdge): fits the last XAS scan's PandA file when collected. */
  readonly calibration: EnergyCalibration | undefined

  /** The parts are devices of their own, not children named after this one. */
  override children (): Array<[string, Device]> {
    return []
  }

  /** Connects every part in parallel (each reports its own failures, named). */
  override async connectParts (options: Required<ConnectOptions>): Promise<ConnectFailure[]> {
    const parts: Array<Connects & { readonly name: string }> = [...this.cameras, ...(this.panda === undefined ? [] : [this.panda]), ...(this.motor === undefined ? [] : [this.motor])]
    const results = await Promise.allSettled(parts.map(async (p) => { await p.connect?.(options) }))
    return results.flatMap((r, i) => r.status === 'rejected' ? [{ name: (parts[i] as { name: string }).name, cause: r.reason as unknown }] : [])
  }

  /** What the last prepare worked out (undefined before). */
  get plan (): FlyScanPlan | undefined { return this.#plan }

  /** The timing report of the last scan kicked off (live while it runs, final once it ended). */
  timingReport (): TimingReport | undefined {
    return this.#report ?? this.#running?.monitor.report()
  }

  /**
   * run_stop's `timing`: the last scan's report; a run of several scans (dark_flat) also gets `timing_scans`, every
   * scan's report in order.
   */
  runStopInfo (): Record<string, unknown> | undefined {
    const report = this.timingReport()
    if (report === undefined) return undefined
    const all = [...this.#reports, report]
    const streams = this.roiCollectables()
    const roi = streams.length === 0 ? {} : { roi: Object.fromEntries(streams.map((r) => [r.name, r.counters()])) }
    return all.length > 1 ? { timing: report, timing_scans: all, ...roi } : { timing: report, ...roi }
  }

  /** The cameras' live ROI streams (those fed by a frame writer), for the plans to declare and collect. */
  roiCollectables (): RoiStream[] {
    return this.cameras.flatMap((c) => c.roiStream?.bound === true ? [c.roiStream] : [])
  }

  collectables (): Collectable[] {
    const usesPanda = this.#plan !== undefined && this.#plan.panda !== undefined
    return [...(usesPanda && this.panda !== undefined ? [this.panda] : []), ...this.cameras]
  }

  /** Frames on disk (all cameras), rows on disk, bytes, seconds since kickoff. */
  progress (): FlyScanProgress {
    const plan = this.#plan
    const counters = this.cameras.map((c) => c.counters())
    const framesPerCamera = plan === undefined ? 0 : plan.cameras[0]?.expectedFrames ?? 0
    return {
      frames: counters.reduce((n, c) => n + c.written, 0),
      expectedFrames: framesPerCamera * this.cameras.length,
      rows: plan?.panda === undefined ? 0 : this.panda?.rowsWritten ?? 0,
      expectedRows: plan?.setup?.expectedRows,
      bytes: counters.reduce((n, c) => n + c.bytesWritten, 0),
      elapsedS: this.#running === undefined ? 0 : (this.#clock.now() - this.#running.kickoffMs) / 1000
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Stageable

  #parts (): Array<Stageable & Stoppable & { readonly name: string }> {
    return [...this.cameras, ...(this.panda === undefined ? [] : [this.panda]), ...(this.motor === undefined ? [] : [this.motor])]
  }

  /** Settle every promise; throw one error naming each part that failed (the first one's code). */
  async #all (what: string, parts: ReadonlyArray<{ readonly name: string }>, fn: (part: never) => PromiseLike<unknown>): Promise<void> {
    const results = await Promise.allSettled(parts.map(async (p) => await fn(p as never)))
    const failed = results.flatMap((r, i) => r.status === 'rejected' ? [{ name: (parts[i] as { name: string }).name, err: r.reason as unknown }] : [])
    const first = failed[0]
    if (first === undefined) return
    const code = isFlyScanError(first.err) ? first.err.code : ErrorCode.UNKNOWN
    throw new FlyScanError(code, `${this.name} ${what}: ${failed.map((f) => `${f.name}: ${messageOf(f.err)}`).join('; ')}`,
      { cause: first.err, details: { device: first.name } })
  }

  async stage (): Promise<void> {
    this.#plan = undefined
    this.#running = undefined
    this.#report = undefined
    this.#reports = []
    await this.#all('stage', this.#parts(), (p: Stageable) => p.stage())
  }

  async unstage (): Promise<void> {
    await this.#all('unstage', this.#parts(), (p: Stageable) => p.unstage())
  }

  // -------------------------------------------------------------------------------------------------------------
  // Preparable

  prepare (request: FlyScanRequest): AsyncStatus {
    return new AsyncStatus((async () => {
      checkFlyScanRequest(request)
      if (this.#running !== undefined && !this.#running.ended) throw badRequest(`${this.name}: prepare: a scan is under way (complete or stop it first)`)
      const plan = await this.#work(request)
      // Cameras whose writer does not feed their ROI stream (the IOC's writer) have none this scan.
      const axis = request.kind === 'xas' ? { startE: request.startE, endE: request.endE, npoints: request.npoints } : undefined
      for (const r of this.roiCollectables()) r.prepare(axis)
      if (axis !== undefined) {
        this.calibration?.arm(() => {
          const file = this.panda?.lastResult?.files?.[0]
          if (this.panda === undefined || file === undefined) throw new FlyScanError(ErrorCode.BAD_INPUT, `${this.name}: energy calibration: the PandA wrote no file (did the scan complete?)`)
          return { file, ...axis, countsPerDeg: this.panda.triggerContext.countsPerRev / 360 }
        })
      }
      if (this.#report !== undefined) this.#reports.push(this.#report)
      this.#plan = undefined
      this.#running = undefined
      this.#report = undefined
      const jobs: Array<{ readonly name: string, run: () => PromiseLike<unknown> }> = []
      const { panda, motor } = this
      if (plan.panda !== undefined && panda !== undefined) jobs.push({ name: panda.name, run: () => panda.prepare(plan.panda as PandaFlyInfo) })
      if (plan.motor !== undefined && motor !== undefined) jobs.push({ name: motor.name, run: () => motor.prepare(plan.motor as FlyMotorInfo) })
      for (const c of this.cameras) jobs.push({ name: c.name, run: () => c.prepare(plan.trigger) })
      await this.#all('prepare', jobs, (j: { run: () => PromiseLike<unknown> }) => j.run())
      this.#plan = plan
    })())
  }

  /** Every part's request for `request`, checked before anything is written. */
  async #work (request: FlyScanRequest): Promise<FlyScanPlan> {
    const margin = defaults.detector.stallMarginMs
    if (request.kind === 'still') {
      if (this.cameras.length === 0) throw badRequest(`${this.name}: ${request.label}: there is no camera to take frames with`)
      const trigger: TriggerInfo = { numberOfEvents: request.frames, trigger: 'internal', livetime: request.exposureTime }
      return {
        request,
        panda: undefined,
        setup: undefined,
        motor: undefined,
        trigger,
        runUpS: 0,
        pandaExpectation: undefined,
        cameras: this.cameras.map((c) => this.#cameraExpectation(c, trigger, margin, 0))
      }
    }
    const panda = this.panda
    const motor = this.motor
    if (panda === undefined || motor === undefined) {
      throw badRequest(`${this.name}: a ${request.kind} fly scan needs a PandA and a motor (configured: ${panda?.name ?? 'no PandA'}, ${motor?.name ?? 'no motor'})`)
    }
    const [accl, vmax] = await Promise.all([motor.accelerationTime.getValue(), motor.maxVelocity.getValue()])
    const deadtime = Math.max(0, ...this.cameras.map((c) => c.getDeadtime(request.exposureTime)))
    let info: PandaFlyInfo
    let livetime: number
    let frames: number
    if (request.kind === 'tomography') {
      // TST's rule: the exposure defaults to a third of the time between images.
      livetime = request.exposureTime ?? request.scanTime / (request.numImages - 1) / 3
      info = { logic: 'tomography', numImages: request.numImages, scanTime: request.scanTime, startDeg: request.startDeg, exposureTime: livetime, deadtime, maxVelocity: vmax }
      frames = request.numImages
    } else {
      const velocity = Math.abs(request.endE - request.startE) / request.totalTime
      // The stage must be at speed when the window opens: park at least the acceleration's run-up before it.
      const runUpDeg = Math.max(this.#xasRunUpDeg, 1.2 * velocity * Math.max(accl, 0) / 2)
      livetime = request.exposureTime ?? request.totalTime / request.npoints / 2
      info = {
        logic: 'xas',
        npoints: request.npoints,
        totalTime: request.totalTime,
        startDeg: request.startE,
        endDeg: request.endE,
        runUpDeg,
        maxVelocity: vmax,
        ...(this.cameras.length > 0 ? { exposureTime: livetime, deadtime } : {})
      }
      frames = request.npoints
    }
    const setup = triggerSetup(info, panda.triggerContext)
    const m = setup.motion
    if (m === undefined) throw new FlyScanError(ErrorCode.UNKNOWN, `${this.name}: the ${setup.logic} setup gives no motion`)
    const direction = m.endDeg >= m.startDeg ? 1 : -1
    const accelRunUp = m.velocityDegPerS * Math.max(accl, 0) / 2
    // Tomography: at speed from startDeg (PCOMP is absolute). XAS: PCOMP counts from where the stage is parked at
    // kickoff, runUpDeg before the window; the stage reaches speed accelRunUp after it.
    const startPosition = m.runUpDeg === undefined ? m.startDeg : m.startDeg - direction * (m.runUpDeg - accelRunUp)
    const motorInfo: FlyMotorInfo = { startPosition, endPosition: m.endDeg, timeForMove: Math.abs(m.endDeg - startPosition) / m.velocityDegPerS }
    // From motor kickoff to the first trigger: the acceleration, then the cruise to the window (XAS).
    const runUpS = Math.max(accl, 0) + Math.abs(startPosition - m.startDeg) / m.velocityDegPerS
    const trigger: TriggerInfo = {
      numberOfEvents: frames,
      trigger: 'edge_trigger',
      livetime,
      deadtime,
      exposureTimeout: runUpS + margin / 1000
    }
    const period = setup.captureTimeS / Math.max(1, (setup.expectedRows ?? frames) - (setup.logic === 'tomography' ? 1 : 0))
    const pandaStall = pandaStallTimeout(period, defaults.hdf5.flushPeriodMs, defaults.timing.pandaStallMarginMs)
    return {
      request,
      panda: info,
      setup,
      motor: motorInfo,
      trigger,
      runUpS,
      cameras: this.cameras.map((c) => this.#cameraExpectation(c, trigger, margin, runUpS)),
      pandaExpectation: {
        name: panda.name,
        expectedRows: setup.expectedRows,
        rowTolerance: setup.rowTolerance,
        ...pandaStall,
        firstRowTimeoutMs: Math.ceil((runUpS + period) * 1000 + pandaStall.stallTimeoutMs),
        nominalTriggerPeriodS: period
      }
    }
  }

  #cameraExpectation (c: CoordinatedCamera, trigger: TriggerInfo, marginMs: number, runUpS: number): CameraExpectation {
    const deadtime = c.getDeadtime(trigger.livetime)
    const stall = cameraStallTimeout(trigger, deadtime, marginMs)
    return {
      name: c.name,
      expectedFrames: trigger.numberOfEvents * (trigger.exposuresPerEvent ?? 1),
      ...stall,
      firstFrameTimeoutMs: Math.ceil(runUpS * 1000) + stall.stallTimeoutMs
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Flyable

  kickoff (): AsyncStatus {
    return new AsyncStatus((async () => {
      const plan = this.#plan
      if (plan === undefined) throw badRequest(`${this.name}: kickoff needs a prepare first`)
      if (this.#running !== undefined) throw badRequest(`${this.name}: already kicked off (prepare again for a new scan)`)
      const monitor = new TimingMonitor({
        cameras: plan.cameras,
        ...(plan.pandaExpectation === undefined ? {} : { panda: plan.pandaExpectation }),
        // One frame per row (tomography: PCOMP drives both; XAS: the clock runs only inside the window, and the
        // window's last, cut period may give a frame without a row).
        ...(plan.panda === undefined || this.cameras.length === 0 ? {} : { framesPerRow: { extraAllowed: plan.setup?.rowTolerance ?? 0 } }),
        startMs: this.#clock.now(),
        clock: this.#clock
      })
      const running: Running = { plan, monitor, kickoffMs: this.#clock.now(), ended: false }
      this.#running = running
      await this.#all('kickoff', this.cameras, (c: Flyable) => c.kickoff())
      monitor.armed()
      if (plan.panda !== undefined && this.panda !== undefined) await this.#all('kickoff', [this.panda], (p: Flyable) => p.kickoff())
      if (plan.motor !== undefined && this.motor !== undefined) await this.#all('kickoff', [this.motor], (m: Flyable) => m.kickoff())
      monitor.kickedOff()
    })())
  }

  complete (): AsyncStatus {
    return AsyncStatus.watchable(async (report) => {
      const running = this.#running
      if (running === undefined) throw badRequest(`${this.name}: complete needs a kickoff first`)
      try {
        await this.#complete(running, report)
      } finally {
        running.ended = true
      }
    })
  }

  async #complete (running: Running, report: Watcher): Promise<void> {
    const { plan, monitor } = running
    const parts: Array<{ readonly name: string, readonly status: Status<unknown> }> = []
    for (const c of this.cameras) parts.push({ name: c.name, status: c.complete() })
    if (plan.panda !== undefined && this.panda !== undefined) parts.push({ name: this.panda.name, status: this.panda.complete() })
    if (plan.motor !== undefined && this.motor !== undefined) parts.push({ name: this.motor.name, status: this.motor.complete() })
    // Every status is observed from here on, so that a failure is never an unhandled rejection.
    const settled = parts.map(async (p) => await Promise.resolve(p.status).then(() => undefined, (err: unknown) => err))

    // The parts the monitor watches (not the motor): one that finished never stalls.
    const watched = new Set([...this.cameras.map((c) => c.name), ...(plan.panda !== undefined && this.panda !== undefined ? [this.panda.name] : [])])
    const toldDone = new Set<string>()
    let failure: FlyScanError | undefined
    for (;;) {
      this.#feed(running)
      for (const p of parts) {
        if (p.status.done && p.status.success === true && watched.has(p.name) && !toldDone.has(p.name)) {
          toldDone.add(p.name)
          monitor.done(p.name)
        }
      }
      const progress = this.progress()
      report({
        name: this.name,
        current: progress.frames + progress.rows,
        initial: 0,
        target: progress.expectedFrames + (progress.expectedRows ?? 0),
        unit: 'frames+rows'
      })
      const failed = parts.findIndex((p) => p.status.done && p.status.success === false)
      if (failed >= 0) {
        const p = parts[failed] as { name: string, status: Status<unknown> }
        const err = p.status.error
        failure = new FlyScanError(isFlyScanError(err) ? err.code : ErrorCode.UNKNOWN, `${this.name}: ${p.name} failed: ${messageOf(err)}`,
          { cause: err, details: { device: p.name } })
        break
      }
      if (parts.every((p) => p.status.done)) break
      const stall = monitor.check(this.#clock.now())
      if (stall !== undefined) {
        failure = stallError(stall)
        break
      }
      await this.#clock.sleep(this.#pollPeriodMs)
    }

    if (failure !== undefined) {
      await this.#stopParts().catch(() => {})
      // Stopped parts end their complete(); a part that would not is not waited for past the bound (no hang).
      await withTimeout(Promise.all(settled), defaults.timing.settleTimeoutMs, `${this.name}: the parts' complete() ending after a stop`).catch(() => {})
      await this.#finalFeed(running)
      monitor.ended('fail')
      this.#report = monitor.report()
      throw failure
    }
    await this.#finalFeed(running)
    monitor.ended('success')
    const timing = monitor.report()
    this.#report = timing
    if (this.#failOnTiming && timing.verdict !== 'ok') {
      throw new FlyScanError(timing.verdict === 'frames-dropped' ? ErrorCode.FRAMES_DROPPED : ErrorCode.PANDA_ACQUISITION_FAILED,
        `${this.name}: the timing report's verdict is ${timing.verdict}: ${timing.problems.join('; ')}`, { details: { verdict: timing.verdict } })
    }
  }

  #feed (running: Running): void {
    const { monitor, plan } = running
    for (const c of this.cameras) monitor.camera(c.name, c.counters())
    if (plan.panda !== undefined && this.panda !== undefined) monitor.rows(this.panda.name, this.panda.rowsWritten)
  }

  /** The last counters, the cameras' own frame counts and the PandA's TS_TRIG histogram. */
  async #finalFeed (running: Running): Promise<void> {
    this.#feed(running)
    const { monitor, plan } = running
    await Promise.all(this.cameras.map(async (c) => {
      if (c.readArrayCounter === undefined) return
      try {
        monitor.arrayCounter(c.name, await c.readArrayCounter())
      } catch { /* the camera may be gone: the report says what is known */ }
    }))
    if (plan.panda !== undefined) monitor.tsTrig(this.panda?.lastResult?.latency['panda.ts_trig_delta_us'])
  }

  async #stopParts (): Promise<void> {
    await this.#all('stop', this.#parts(), (p: Stoppable) => p.stop(false))
  }

  // -------------------------------------------------------------------------------------------------------------
  // Stoppable

  /** Stop every part now: the PandA disarmed, the cameras disarmed (files closed), the motor stopped. */
  async stop (success = false): Promise<void> {
    const running = this.#running
    try {
      await this.#all('stop', this.#parts(), (p: Stoppable) => p.stop(success))
    } finally {
      if (running !== undefined && !running.ended) {
        running.ended = true
        await this.#finalFeed(running).catch(() => {})
        running.monitor.ended(success ? 'success' : 'abort')
        this.#report = running.monitor.report()
      }
    }
  }
}
