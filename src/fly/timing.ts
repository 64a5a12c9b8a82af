/**
 * Timing validation of one fly scan: the coordinator feeds a TimingMonitor what its devices report (frame counters,
 * the camera's ArrayCounter, PandA rows on disk, the motor, the TS_TRIG histogram), asks it on every poll whether a
 * device stalled, and puts its report in run_stop (`timing`) and on the console. It fails a scan that would otherwise
 * wait forever for a frame that never comes (ophyd-async issues 1114 and 1151), with a reason that says what is known.
 *
 * Pure: no threads, no I/O, no timers. Time comes from an injected clock (ms). ../../docs/timing.md states the
 * stall rule and the verdict rules.
 */
import { ErrorCode, FlyScanError } from '../errors.js'
import { stallTimeoutMs, type FrameCounters, type TriggerInfo } from '../devices/index.js'
import type { LatencySummary } from '../metrics/index.js'

/** What one camera should do in this scan. */
export interface CameraExpectation {
  readonly name: string
  /** Frames the camera should deliver; 0 when not known (the count is then never "reached"). */
  readonly expectedFrames: number
  /** No new frame for this long, once frames have begun, is a stall (cameraStallTimeout computes it). */
  readonly stallTimeoutMs: number
  /** What stallTimeoutMs is made of, quoted in the reason (e.g. `livetime 0.01 + deadtime 0.000063 + margin 1`). */
  readonly stallTimeoutBasis?: string
  /** No frame this long after kickoff is a stall (covers the motor's run-up before the first trigger). */
  readonly firstFrameTimeoutMs: number
}

/** What the PandA should do in this scan. */
export interface PandaExpectation {
  readonly name: string
  /** Rows the capture should make (PandaTriggerSetup.expectedRows); undefined when not known. */
  readonly expectedRows: number | undefined
  /** Rows may differ from expectedRows by this much (PandaTriggerSetup.rowTolerance). */
  readonly rowTolerance: number
  /** No new row on disk for this long, once rows have begun, is a stall (pandaStallTimeout computes it). */
  readonly stallTimeoutMs: number
  readonly stallTimeoutBasis?: string
  /** No row this long after kickoff is a stall; default stallTimeoutMs. */
  readonly firstRowTimeoutMs?: number
  /** The trigger period the setup asks for (tomography: scanTime / numImages; XAS: the CLOCK period); s. */
  readonly nominalTriggerPeriodS: number | undefined
}

/**
 * How camera frames relate to PandA rows: each camera makes one frame per row, plus between 0 and `extraAllowed`
 * more. Tomography: 0 (PCOMP drives both). XAS: 1 (the window's last clock period may be cut short: a rising edge
 * and a frame, but no falling edge and no row). A layout whose trigger runs before PCAP captures (TST's saved XAS
 * layout clocked the camera from arm) allows the triggers of that time.
 */
export interface FramesPerRow {
  readonly extraAllowed: number
}

export interface TimingExpectations {
  readonly cameras: readonly CameraExpectation[]
  readonly panda?: PandaExpectation
  /** Undefined: frames are not compared with rows (a camera not triggered by the PandA). */
  readonly framesPerRow?: FramesPerRow
  /** When the scan started (the clock's ms); durationS counts from here. */
  readonly startMs: number
  /** Milliseconds, monotonic; default performance.now. */
  readonly clock?: { now(): number }
}

/** A device that made no progress for longer than its bound. */
export interface StallFailure {
  readonly device: string
  readonly what: 'camera' | 'panda'
  /** A sentence naming the device, its count of expected, the seconds since its last progress, and what else is known. */
  readonly reason: string
}

export type ExitStatus = 'success' | 'abort' | 'fail'

export type TimingVerdict = 'ok' | 'frames-dropped' | 'rows-mismatch' | 'stalled' | 'incomplete'

export interface CameraTiming {
  readonly name: string
  readonly expected: number
  readonly received: number
  readonly written: number
  readonly dropped: number
  readonly uniqueIdGaps: number
  /** Frames the driver says it made in this scan; null when never reported. */
  readonly arrayCounter: number | null
  readonly firstUniqueId: number | null
  readonly lastUniqueId: number | null
}

export interface PandaTiming {
  readonly name: string
  readonly expectedRows: number | null
  readonly rows: number
  readonly rowTolerance: number
}

export interface FramesVsRows {
  /** The camera compared (with several, the one farthest out of range, else the first). */
  readonly camera: string
  /** Frames that camera received. */
  readonly frames: number
  readonly rows: number
  readonly extraAllowed: number
  /** frames − rows within [0, extraAllowed] for every camera. */
  readonly ok: boolean
}

/** TS_TRIG deltas (the PandA's trigger period as it captured it), µs. */
export interface TsTrigTiming {
  readonly count: number
  readonly nominalUs: number | null
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly p999: number
  readonly max: number
  readonly min: number
  /** p99 − p50: how much later than usual the slowest 1% of triggers came. */
  readonly jitterUs: number
}

/** The timing report: JSON-able, the same keys every time (null where a part is not known or not in the scan). */
export interface TimingReport {
  readonly verdict: TimingVerdict
  /** One sentence with numbers per problem, in verdict order (the verdict is the first problem's kind). */
  readonly problems: readonly string[]
  readonly durationS: number
  readonly cameras: readonly CameraTiming[]
  readonly panda: PandaTiming | null
  readonly framesVsRows: FramesVsRows | null
  readonly tsTrig: TsTrigTiming | null
}

const NO_COUNTERS: FrameCounters = {
  received: 0, written: 0, dropped: 0, uniqueIdGaps: 0, firstUniqueId: undefined, lastUniqueId: undefined, bytesWritten: 0
}

interface Progress {
  /** The count that is progress (frames received, rows on disk). */
  count: number
  /** The count at kickoff: progress after it starts the device. */
  countAtKickoff: number
  /** When the count last grew (ms), or kickoff if later. */
  lastProgressMs: number
  done: boolean
}

interface CameraState extends Progress {
  readonly expect: CameraExpectation
  counters: FrameCounters
  arrayCounter: number | undefined
}

interface PandaState extends Progress {
  readonly expect: PandaExpectation
}

/** A number of seconds for a sentence: 3 significant digits, no trailing zeros. */
function seconds (ms: number): string {
  return String(Number((ms / 1000).toPrecision(3)))
}

/**
 * A camera's stall timeout (stallTimeoutMs of src/devices/core/detector.ts) and what it is made of, for the reason
 * text: no frame for livetime + deadtime + margin.
 */
export function cameraStallTimeout (info: TriggerInfo, deadtimeS: number, marginMs: number): { stallTimeoutMs: number, stallTimeoutBasis: string } {
  return {
    stallTimeoutMs: stallTimeoutMs(info, deadtimeS, marginMs),
    stallTimeoutBasis: `livetime ${info.livetime ?? 0} + deadtime ${info.deadtime ?? deadtimeS} + margin ${marginMs / 1000}`
  }
}

/**
 * The PandA's stall timeout: rows reach the monitor when the writer flushes (every flushPeriodMs), so no new row on
 * disk for a trigger period + a flush period + a margin is a stall.
 */
export function pandaStallTimeout (triggerPeriodS: number, flushPeriodMs: number, marginMs: number): { stallTimeoutMs: number, stallTimeoutBasis: string } {
  return {
    stallTimeoutMs: Math.ceil(triggerPeriodS * 1000 + flushPeriodMs + marginMs),
    stallTimeoutBasis: `trigger period ${triggerPeriodS} + flush period ${flushPeriodMs / 1000} + margin ${marginMs / 1000}`
  }
}

/** The coded error a coordinator fails the scan with when check() finds a stall. */
export function stallError (stall: StallFailure): FlyScanError {
  return new FlyScanError(ErrorCode.STALLED, stall.reason, { details: { device: stall.device, what: stall.what } })
}

export class TimingMonitor {
  readonly #cameras = new Map<string, CameraState>()
  readonly #panda: PandaState | undefined
  readonly #framesPerRow: FramesPerRow | undefined
  readonly #now: () => number
  readonly #startMs: number
  #armedMs: number | undefined
  #kickoffMs: number | undefined
  #endedMs: number | undefined
  #exitStatus: ExitStatus | undefined
  #motor: number | undefined
  #tsTrig: LatencySummary | undefined
  #stall: StallFailure | undefined

  constructor (expect: TimingExpectations) {
    const clock = expect.clock ?? { now: () => performance.now() }
    this.#now = () => clock.now()
    this.#startMs = expect.startMs
    this.#framesPerRow = expect.framesPerRow
    for (const c of expect.cameras) {
      if (this.#cameras.has(c.name) || c.name === expect.panda?.name) {
        throw new FlyScanError(ErrorCode.BAD_INPUT, `TimingMonitor: device name ${c.name} is given twice`, { details: { device: c.name } })
      }
      checkCount(c.name, 'expectedFrames', c.expectedFrames)
      checkCount(c.name, 'stallTimeoutMs', c.stallTimeoutMs)
      checkCount(c.name, 'firstFrameTimeoutMs', c.firstFrameTimeoutMs)
      this.#cameras.set(c.name, { expect: c, counters: NO_COUNTERS, arrayCounter: undefined, ...startProgress() })
    }
    const p = expect.panda
    if (p !== undefined) {
      if (p.expectedRows !== undefined) checkCount(p.name, 'expectedRows', p.expectedRows)
      checkCount(p.name, 'rowTolerance', p.rowTolerance)
      checkCount(p.name, 'stallTimeoutMs', p.stallTimeoutMs)
      if (p.firstRowTimeoutMs !== undefined) checkCount(p.name, 'firstRowTimeoutMs', p.firstRowTimeoutMs)
      this.#panda = { expect: p, ...startProgress() }
    }
    if (expect.framesPerRow !== undefined) checkCount('framesPerRow', 'extraAllowed', expect.framesPerRow.extraAllowed)
  }

  // ---- inputs (cheap: called on every poll) -------------------------------------------------------------------

  /** The camera writer's counters (DetectorWriter.counters()). */
  camera (name: string, counters: FrameCounters): void {
    const c = this.#camera(name)
    c.counters = counters
    this.#advance(c, counters.received)
    if (c.expect.expectedFrames > 0 && counters.received >= c.expect.expectedFrames) c.done = true
  }

  /** Frames the camera driver says it made in this scan (ArrayCounter_RBV, reset at prepare). */
  arrayCounter (name: string, n: number): void {
    this.#camera(name).arrayCounter = n
  }

  /** PandA rows on disk (the writer's progress). */
  rows (name: string, rowsWritten: number): void {
    const p = this.#pandaNamed(name)
    this.#advance(p, rowsWritten)
    const expected = p.expect.expectedRows
    if (expected !== undefined && rowsWritten >= expected - p.expect.rowTolerance) p.done = true
  }

  /** The motor's position (quoted in stall reasons). */
  motor (position: number): void {
    this.#motor = position
  }

  /** The `panda.ts_trig_delta_us` summary from the PandA pipeline's result. */
  tsTrig (summary: LatencySummary | undefined): void {
    this.#tsTrig = summary
  }

  /** The device says it has finished (PandA END, detector idle): it is never stalled from now on. */
  done (name: string): void {
    const c = this.#cameras.get(name)
    if (c !== undefined) {
      c.done = true
      return
    }
    this.#pandaNamed(name).done = true
  }

  armed (): void {
    this.#armedMs ??= this.#now()
  }

  /** The trigger source started: stall bounds count from here. */
  kickedOff (): void {
    if (this.#kickoffMs !== undefined) return
    const now = this.#now()
    this.#kickoffMs = now
    for (const d of this.#devices()) {
      d.countAtKickoff = d.count
      d.lastProgressMs = Math.max(d.lastProgressMs, now)
    }
  }

  /** The scan ended (complete, or stopped): no stall is found after this; the exit status decides 'incomplete'. */
  ended (exitStatus: ExitStatus = 'success'): void {
    if (this.#endedMs !== undefined) return
    this.#endedMs = this.#now()
    this.#exitStatus = exitStatus
  }

  get stall (): StallFailure | undefined { return this.#stall }

  // ---- the stall check ------------------------------------------------------------------------------------------

  /**
   * The first device that made no progress for longer than its bound, or undefined. Bounds count from kickoff: before
   * a device's first frame or row after kickoff, its first-frame timeout; after it, its stall timeout. A device that
   * reached its expected count, or said it is done, never stalls; nothing stalls before kickoff or after the end.
   * Once a stall is found, every later call returns it.
   */
  check (nowMs: number = this.#now()): StallFailure | undefined {
    if (this.#stall !== undefined) return this.#stall
    if (this.#kickoffMs === undefined || this.#endedMs !== undefined) return undefined
    for (const c of this.#cameras.values()) {
      const s = this.#stalledFor(c, nowMs, c.expect.stallTimeoutMs, c.expect.firstFrameTimeoutMs)
      if (s === undefined) continue
      this.#stall = { device: c.expect.name, what: 'camera', reason: this.#cameraReason(c, s) }
      return this.#stall
    }
    const p = this.#panda
    if (p !== undefined) {
      const s = this.#stalledFor(p, nowMs, p.expect.stallTimeoutMs, p.expect.firstRowTimeoutMs ?? p.expect.stallTimeoutMs)
      if (s !== undefined) {
        this.#stall = { device: p.expect.name, what: 'panda', reason: this.#pandaReason(p, s) }
        return this.#stall
      }
    }
    return undefined
  }

  // ---- the report -----------------------------------------------------------------------------------------------

  /** The report as it stands (normally taken after ended()). docs/timing.md states the verdict rules. */
  report (): TimingReport {
    const complete = this.#endedMs !== undefined && this.#exitStatus === 'success'
    const cameras = [...this.#cameras.values()].map(cameraTiming)
    const p = this.#panda
    const panda: PandaTiming | null = p === undefined
      ? null
      : { name: p.expect.name, expectedRows: p.expect.expectedRows ?? null, rows: p.count, rowTolerance: p.expect.rowTolerance }
    const framesVsRows = this.#framesVsRows(cameras, panda)

    const stalled = this.#stall === undefined ? [] : [this.#stall.reason]
    const dropped = cameras.flatMap((c) => droppedProblems(c, complete))
    const mismatch = [
      ...(panda === null ? [] : rowProblems(panda, complete)),
      ...(framesVsRows === null || !complete ? [] : framesVsRowsProblems(cameras, framesVsRows))
    ]
    const incomplete = complete ? [] : [this.#incompleteProblem(cameras, panda)]
    const verdict: TimingVerdict = stalled.length > 0
      ? 'stalled'
      : dropped.length > 0 ? 'frames-dropped' : mismatch.length > 0 ? 'rows-mismatch' : incomplete.length > 0 ? 'incomplete' : 'ok'
    return {
      verdict,
      problems: [...stalled, ...dropped, ...mismatch, ...incomplete],
      durationS: round3(((this.#endedMs ?? this.#now()) - this.#startMs) / 1000),
      cameras,
      panda,
      framesVsRows,
      tsTrig: this.#tsTrigTiming()
    }
  }

  // ---- internals ------------------------------------------------------------------------------------------------

  #camera (name: string): CameraState {
    const c = this.#cameras.get(name)
    if (c === undefined) throw this.#unknown(name)
    return c
  }

  #pandaNamed (name: string): PandaState {
    const p = this.#panda
    if (p !== undefined && p.expect.name === name) return p
    if (this.#cameras.has(name)) {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `TimingMonitor: ${name} is a camera, not the PandA (${p?.expect.name ?? 'none'})`,
        { details: { device: name } })
    }
    throw this.#unknown(name)
  }

  #unknown (name: string): FlyScanError {
    const known = [...this.#cameras.keys(), ...(this.#panda === undefined ? [] : [this.#panda.expect.name])]
    return new FlyScanError(ErrorCode.BAD_INPUT, `TimingMonitor: no device named ${name} (known: ${known.join(', ') || 'none'})`,
      { details: { device: name } })
  }

  * #devices (): Iterable<Progress> {
    yield * this.#cameras.values()
    if (this.#panda !== undefined) yield this.#panda
  }

  #advance (d: Progress, count: number): void {
    if (count > d.count) d.lastProgressMs = this.#now()
    d.count = count
  }

  /** How long the device has been without progress past its bound, or undefined. */
  #stalledFor (d: Progress, nowMs: number, stallMs: number, firstMs: number): { sinceMs: number, boundMs: number, first: boolean } | undefined {
    if (d.done) return undefined
    const first = d.count <= d.countAtKickoff
    const sinceMs = first ? nowMs - (this.#kickoffMs as number) : nowMs - d.lastProgressMs
    const boundMs = first ? firstMs : stallMs
    return sinceMs > boundMs ? { sinceMs, boundMs, first } : undefined
  }

  #cameraReason (c: CameraState, s: { sinceMs: number, boundMs: number, first: boolean }): string {
    const e = c.expect
    const bound = s.first
      ? `first-frame timeout ${seconds(s.boundMs)} s`
      : `stall timeout ${seconds(s.boundMs)} s${e.stallTimeoutBasis === undefined ? '' : ` = ${e.stallTimeoutBasis}`}`
    const head = s.first
      ? `${e.name}: no frame ${seconds(s.sinceMs)} s after kickoff (${bound})`
      : `${e.name}: no frame for ${seconds(s.sinceMs)} s (${bound}) after ${ofExpected(c.count, e.expectedFrames)}`
    const known = [
      ...this.#othersKnown(e.name),
      c.arrayCounter === undefined ? "the camera's ArrayCounter is not known" : `the camera's ArrayCounter is ${c.arrayCounter}`
    ]
    if (c.counters.dropped > 0 || c.counters.uniqueIdGaps > 0) {
      known.push(`${c.counters.dropped} frames dropped and ${c.counters.uniqueIdGaps} missing by UniqueId so far`)
    }
    return `${head}; ${known.join('; ')}`
  }

  #pandaReason (p: PandaState, s: { sinceMs: number, boundMs: number, first: boolean }): string {
    const e = p.expect
    const basis = e.stallTimeoutBasis === undefined || s.first ? '' : ` = ${e.stallTimeoutBasis}`
    const head = s.first
      ? `${e.name}: no row on disk ${seconds(s.sinceMs)} s after kickoff (first-row timeout ${seconds(s.boundMs)} s)`
      : `${e.name}: no row on disk for ${seconds(s.sinceMs)} s (stall timeout ${seconds(s.boundMs)} s${basis}) after ${ofExpected(p.count, e.expectedRows ?? 0)} rows`
    return [head, ...this.#othersKnown(e.name)].join('; ')
  }

  /** What the other devices have done, for a stall reason. */
  #othersKnown (except: string): string[] {
    const out: string[] = []
    for (const c of this.#cameras.values()) {
      if (c.expect.name !== except) out.push(`${c.expect.name} has ${ofExpected(c.count, c.expect.expectedFrames)} frames`)
    }
    const p = this.#panda
    if (p !== undefined && p.expect.name !== except) out.push(`${p.expect.name} has ${p.count} rows`)
    if (this.#motor !== undefined) out.push(`the motor is at ${this.#motor}`)
    return out
  }

  #framesVsRows (cameras: readonly CameraTiming[], panda: PandaTiming | null): FramesVsRows | null {
    const fpr = this.#framesPerRow
    const first = cameras[0]
    if (fpr === undefined || panda === null || first === undefined) return null
    const outBy = (c: CameraTiming): number => {
      const extra = c.received - panda.rows
      return extra < 0 ? -extra : Math.max(0, extra - fpr.extraAllowed)
    }
    let worst = first
    for (const c of cameras) if (outBy(c) > outBy(worst)) worst = c
    return { camera: worst.name, frames: worst.received, rows: panda.rows, extraAllowed: fpr.extraAllowed, ok: outBy(worst) === 0 }
  }

  #tsTrigTiming (): TsTrigTiming | null {
    const s = this.#tsTrig
    if (s === undefined || s.count === 0) return null
    const period = this.#panda?.expect.nominalTriggerPeriodS
    return {
      count: s.count,
      nominalUs: period === undefined ? null : round3(period * 1e6),
      p50: s.p50,
      p90: s.p90,
      p99: s.p99,
      p999: s.p999,
      max: s.max,
      min: s.min,
      jitterUs: s.p99 - s.p50
    }
  }

  #incompleteProblem (cameras: readonly CameraTiming[], panda: PandaTiming | null): string {
    const counts = [
      ...cameras.map((c) => `${c.name} has ${ofExpected(c.received, c.expected)} frames`),
      ...(panda === null ? [] : [`${panda.name} has ${ofExpected(panda.rows, panda.expectedRows ?? 0)} rows`])
    ]
    const now = this.#endedMs ?? this.#now()
    const when = this.#kickoffMs === undefined
      ? 'before kickoff'
      : `${seconds(now - this.#kickoffMs)} s after kickoff`
    const how = this.#endedMs === undefined ? 'has not ended' : `ended with exit status ${this.#exitStatus ?? 'unknown'}`
    return `the scan ${how} ${when}${counts.length === 0 ? '' : `: ${counts.join(', ')}`}`
  }
}

function startProgress (): Progress {
  return { count: 0, countAtKickoff: 0, lastProgressMs: Number.NEGATIVE_INFINITY, done: false }
}

function checkCount (device: string, key: string, v: number): void {
  if (!(Number.isFinite(v) && v >= 0)) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `TimingMonitor: ${device}: ${key} must be a number >= 0 (got ${String(v)})`,
      { details: { device, key } })
  }
}

function ofExpected (n: number, expected: number): string {
  return expected > 0 ? `${n} of ${expected}` : `${n} (expected count not known)`
}

function round3 (v: number): number {
  return Math.round(v * 1000) / 1000
}

function cameraTiming (c: CameraState): CameraTiming {
  const k = c.counters
  return {
    name: c.expect.name,
    expected: c.expect.expectedFrames,
    received: k.received,
    written: k.written,
    dropped: k.dropped,
    uniqueIdGaps: k.uniqueIdGaps,
    arrayCounter: c.arrayCounter ?? null,
    firstUniqueId: k.firstUniqueId ?? null,
    lastUniqueId: k.lastUniqueId ?? null
  }
}

/**
 * Dropped frames: any time, frames lost in the ring or missing by UniqueId; once the scan completed, also fewer
 * frames received than expected or than the driver made, and frames received but neither written nor dropped.
 */
function droppedProblems (c: CameraTiming, complete: boolean): string[] {
  const out: string[] = []
  if (c.dropped > 0) out.push(`${c.name}: ${c.dropped} of ${c.received} frames received were dropped (frame ring full)`)
  if (c.uniqueIdGaps > 0) {
    out.push(`${c.name}: ${c.uniqueIdGaps} frames missing by UniqueId between ${c.firstUniqueId ?? '?'} and ${c.lastUniqueId ?? '?'} (${c.received} received)`)
  }
  if (!complete) return out
  if (c.expected > 0 && c.received < c.expected) out.push(`${c.name}: received ${c.received} of ${c.expected} frames expected`)
  if (c.arrayCounter !== null && c.arrayCounter > c.received) {
    out.push(`${c.name}: the camera's ArrayCounter is ${c.arrayCounter} but ${c.received} frames were received`)
  }
  if (c.written + c.dropped < c.received) {
    out.push(`${c.name}: ${c.received} frames received but only ${c.written} written and ${c.dropped} dropped`)
  }
  return out
}

/** Rows outside expectedRows ± rowTolerance: too many any time, too few once the scan completed. */
function rowProblems (p: PandaTiming, complete: boolean): string[] {
  if (p.expectedRows === null) return []
  const tol = p.rowTolerance > 0 ? ` ± ${p.rowTolerance}` : ''
  if (p.rows > p.expectedRows + p.rowTolerance) return [`${p.name}: ${p.rows} rows captured, ${p.expectedRows}${tol} expected`]
  if (complete && p.rows < p.expectedRows - p.rowTolerance) return [`${p.name}: ${p.rows} rows captured, ${p.expectedRows}${tol} expected`]
  return []
}

/** Each camera's frames − rows must lie in [0, extraAllowed]. */
function framesVsRowsProblems (cameras: readonly CameraTiming[], f: FramesVsRows): string[] {
  const out: string[] = []
  for (const c of cameras) {
    const extra = c.received - f.rows
    if (extra < 0) {
      out.push(`${c.name}: ${c.received} frames for ${f.rows} PandA rows: ${-extra} triggers made a row but no frame`)
    } else if (extra > f.extraAllowed) {
      out.push(`${c.name}: ${c.received} frames for ${f.rows} PandA rows: ${extra} more frames than rows, at most ${f.extraAllowed} allowed`)
    }
  }
  return out
}
