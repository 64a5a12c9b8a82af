/**
 * VimbaController: the trigger-and-acquire part of an ADVimba camera (ophyd-async's VimbaController and
 * adcore's ADBaseController), over the driver's Channel Access signals (drivers.ts).
 *
 * - prepare(info): the settings of vimba-trigger.ts written with completion (TriggerMode last, once source and exposure
 *   mode are set), plus ArrayCounter = 0 and ArrayCallbacks = Enable; then every readback must show the value written
 *   (a camera that refuses or clamps a setting is FLY_ERR_DETECTOR naming the PV, the value wanted and the value got).
 * - arm(): DetectorState_RBV must be Idle (or Aborted, as ophyd-async's good states); Acquire = 1 is written without
 *   waiting for completion (its put callback ends only when the acquisition ends); then Acquire_RBV = 1, or the state
 *   Acquire/Waiting/Readout, within armTimeoutMs. While armed, a change of DetectorState_RBV to Error, Disconnected or
 *   Aborted fails waitForIdle() (and onError listeners) with FLY_ERR_DETECTOR naming the state and StatusMessage_RBV.
 * - waitForIdle(ms): Acquire_RBV back to 0 (the image count reached).
 * - disarm(): Acquire = 0, then DetectorState_RBV Idle (or Aborted) within disarmTimeoutMs.
 *
 * Every wait is bounded by a value of config/defaults.ts `detector`.
 */
import { defaults } from '../../config/index.js'
import { ErrorCode, FlyScanError, isFlyScanError } from '../errors.js'
import {
  checkTriggerInfo, withTimeout,
  type DetectorController, type SignalR, type SignalRW, type TriggerInfo, type Unsubscribe
} from '../devices/index.js'
import type { VimbaDriverIO } from './drivers.js'
import { exposureLimits, vimbaDeadtime, vimbaSettings, type VimbaCamera, type VimbaSettings } from './vimba-trigger.js'

/** DetectorState_RBV values that end an acquisition badly. */
export const BAD_DETECTOR_STATES: readonly string[] = ['Error', 'Disconnected', 'Aborted']
/** DetectorState_RBV values from which arm() may start (ophyd-async's DEFAULT_GOOD_STATES). */
export const READY_DETECTOR_STATES: readonly string[] = ['Idle', 'Aborted']
/** DetectorState_RBV values that show an acquisition under way. */
export const ACQUIRING_DETECTOR_STATES: readonly string[] = ['Acquire', 'Waiting', 'Readout']

/** The named waits of a VimbaController (defaults: config/defaults.ts `detector`). */
export interface VimbaTimeouts {
  readonly putTimeoutMs: number
  readonly readbackTimeoutMs: number
  readonly armTimeoutMs: number
  readonly disarmTimeoutMs: number
  readonly diagnoseTimeoutMs: number
}

export function defaultVimbaTimeouts (): VimbaTimeouts {
  const d = defaults.detector
  return {
    putTimeoutMs: d.putTimeoutMs,
    readbackTimeoutMs: d.readbackTimeoutMs,
    armTimeoutMs: d.armTimeoutMs,
    disarmTimeoutMs: d.disarmTimeoutMs,
    diagnoseTimeoutMs: d.diagnoseTimeoutMs
  }
}

/** What a controller can say about its detector when a scan goes wrong (for the stall reason). */
export interface DetectorDiagnosis {
  /** DetectorState_RBV (e.g. `Waiting`), or `unreadable (<why>)`. */
  readonly state: string
  /** StatusMessage_RBV when the IOC has it. */
  readonly statusMessage: string | undefined
  /** Frames the driver produced since prepare (ArrayCounter_RBV); undefined when unreadable. */
  readonly framesProduced: number | undefined
}

export interface VimbaControllerOptions {
  /** The device's name, read when a message is made (the name is set after the controller is built). */
  readonly label: () => string
  /** The camera model (default: Model_RBV, read by identify()). */
  readonly model?: string
  /** Seconds; wins over the model's table entry. */
  readonly deadtime?: number
  /** External trigger input, 1..4 (default 1). */
  readonly triggerLine?: number
  /** StatusMessage_RBV, when the IOC has it (connected by the owner). */
  readonly statusMessage?: () => SignalR<string> | undefined
  readonly timeouts?: Partial<VimbaTimeouts>
}

/** The control limits of a DataKey's `limits` (low, high; undefined when absent or not numbers). */
function controlLimits (limits: Record<string, unknown> | undefined): { low?: number, high?: number } {
  const control = limits?.control
  if (typeof control !== 'object' || control === null) return {}
  const { low, high } = control as { low?: unknown, high?: unknown }
  return { ...(typeof low === 'number' ? { low } : {}), ...(typeof high === 'number' ? { high } : {}) }
}

function message (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/**
 * Resolve once `done` accepts the values of `signals` (each the current value, then every change; undefined until a
 * signal's first value); reject with the error `onTimeout(values)` makes after `timeoutMs`, or at once with the error of
 * `failed` if it rejects first. Every subscription and the timer end when it settles.
 */
export async function waitUntil (
  signals: ReadonlyArray<SignalR<unknown>>, done: (values: readonly unknown[]) => boolean, timeoutMs: number,
  onTimeout: (values: readonly unknown[]) => Error, failed?: Promise<never>
): Promise<void> {
  const unsubscribes: Unsubscribe[] = []
  let timer: NodeJS.Timeout | undefined
  const values: unknown[] = signals.map(() => undefined)
  try {
    await new Promise<void>((resolve, reject) => {
      let settled = false
      timer = setTimeout(() => { settled = true; reject(onTimeout(values)) }, timeoutMs)
      failed?.catch((err: unknown) => { settled = true; reject(err) })
      signals.forEach((signal, i) => {
        if (settled) return
        unsubscribes.push(signal.subscribeValue((value) => {
          values[i] = value
          if (!settled && done(values)) { settled = true; resolve() }
        }))
      })
    })
  } finally {
    clearTimeout(timer)
    for (const u of unsubscribes) u()
  }
}

/** waitUntil for one signal: resolves with the first value `done` accepts. */
export async function waitForValue<T> (
  signal: SignalR<T>, done: (value: T) => boolean, timeoutMs: number,
  onTimeout: (last: T | undefined) => Error, failed?: Promise<never>
): Promise<T> {
  let found: T | undefined
  await waitUntil([signal as SignalR<unknown>], ([v]) => {
    if (v === undefined || !done(v as T)) return false
    found = v as T
    return true
  }, timeoutMs, ([v]) => onTimeout(v as T | undefined), failed)
  return found as T
}

interface Armed {
  /** Rejects with the detector's failure while armed; never resolves. */
  readonly failed: Promise<never>
  error: FlyScanError | undefined
  readonly unwatch: Unsubscribe
}

/** One setting written by prepare, and how its readback is judged. */
interface Setting {
  readonly signal: SignalRW<string> | SignalRW<number> | SignalRW<boolean>
  readonly pv: string
  readonly value: string | number | boolean
}

export class VimbaController implements DetectorController {
  readonly driver: VimbaDriverIO
  readonly timeouts: VimbaTimeouts
  readonly triggerLine: number
  readonly #label: () => string
  readonly #modelOption: string | undefined
  readonly #deadtimeOption: number | undefined
  readonly #statusMessage: () => SignalR<string> | undefined
  #model: string | undefined
  #armed: Armed | undefined
  readonly #errorListeners = new Set<(err: Error) => void>()
  /** The settings of the last prepare. */
  #settings: VimbaSettings | undefined

  constructor (driver: VimbaDriverIO, options: VimbaControllerOptions) {
    this.driver = driver
    this.#label = options.label
    this.#modelOption = options.model
    this.#model = options.model
    this.#deadtimeOption = options.deadtime
    this.triggerLine = options.triggerLine ?? 1
    this.#statusMessage = options.statusMessage ?? (() => undefined)
    this.timeouts = { ...defaultVimbaTimeouts(), ...options.timeouts }
  }

  get label (): string { return this.#label() }
  /** The camera model in use (the option, else Model_RBV once identify() read it). */
  get model (): string | undefined { return this.#model }
  get armed (): boolean { return this.#armed !== undefined }
  get settings (): VimbaSettings | undefined { return this.#settings }

  #fail (code: ErrorCode, text: string, details: Record<string, string | number> = {}, cause?: unknown): FlyScanError {
    const label = this.label
    return new FlyScanError(code, `${label}: ${text}`, { details: { device: label, ...details }, cause })
  }

  /** Read Model_RBV (unless the `model` option names the model); returns the model. */
  async identify (): Promise<string> {
    if (this.#modelOption !== undefined) return this.#modelOption
    this.#model = (await this.driver.model.getValue()).trim()
    return this.#model
  }

  /** The deadtime (s): the `deadtime` option, else the model's (DESIGN.md §7). Needs identify() or the `model` option. */
  getDeadtime (_exposure: number | undefined): number {
    if (this.#deadtimeOption === undefined && this.#model === undefined) {
      throw this.#fail(ErrorCode.BAD_INPUT, 'the camera model is not known yet (connect() reads Model_RBV); ' +
        'or set the `model` or `deadtime` option')
    }
    return vimbaDeadtime(this.#model ?? '', this.#deadtimeOption, this.label)
  }

  /** The trigger logic's view of this camera: deadtime, exposure and image limits from the IOC (else config). */
  async camera (): Promise<VimbaCamera> {
    if (this.#model === undefined) await this.identify()
    const [exposureKey, imagesKey] = await Promise.all([this.driver.acquireTime.describe(), this.driver.numImages.describe()])
    const exposure = exposureLimits(controlLimits(Object.values(exposureKey)[0]?.limits))
    const images = controlLimits(Object.values(imagesKey)[0]?.limits)
    const maxImages = images.low !== undefined && images.high !== undefined && images.high > images.low ? images.high : undefined
    return {
      name: this.label,
      deadtime: this.getDeadtime(undefined),
      minExposure: exposure.min,
      maxExposure: exposure.max,
      triggerLine: this.triggerLine,
      ...(maxImages === undefined ? {} : { maxImages })
    }
  }

  async prepare (info: TriggerInfo): Promise<void> {
    checkTriggerInfo(info, this.label)
    const settings = vimbaSettings(info, await this.camera())
    const d = this.driver
    const pv = (suffix: string): string => `${d.prefix}${suffix}`
    const first: Setting[] = [
      { signal: d.imageMode, pv: pv('ImageMode'), value: settings.imageMode },
      { signal: d.numImages, pv: pv('NumImages'), value: settings.numImages },
      { signal: d.triggerSource, pv: pv('TriggerSource'), value: settings.triggerSource },
      { signal: d.exposureMode, pv: pv('ExposureMode'), value: settings.exposureMode },
      { signal: d.arrayCounter, pv: pv('ArrayCounter'), value: 0 },
      { signal: d.arrayCallbacks, pv: pv('ArrayCallbacks'), value: 'Enable' }
    ]
    if (settings.acquireTime !== undefined) first.push({ signal: d.acquireTime, pv: pv('AcquireTime'), value: settings.acquireTime })
    if (settings.acquirePeriod !== undefined) first.push({ signal: d.acquirePeriod, pv: pv('AcquirePeriod'), value: settings.acquirePeriod })
    const last: Setting = { signal: d.triggerMode, pv: pv('TriggerMode'), value: settings.triggerMode }
    this.#settings = undefined
    await Promise.all(first.map(async (s) => { await this.#write(s) }))
    await this.#write(last)
    const mismatches = (await Promise.all([...first, last].map(async (s) => await this.#checkReadback(s))))
      .filter((m): m is string => m !== undefined)
    if (mismatches.length > 0) {
      throw this.#fail(ErrorCode.DETECTOR, `the camera did not take ${mismatches.length === 1 ? 'a setting' : `${mismatches.length} settings`}: ${mismatches.join('; ')}`,
        { refused: mismatches.length })
    }
    this.#settings = settings
  }

  async #write (s: Setting): Promise<void> {
    try {
      await (s.signal as SignalRW<unknown>).set(s.value, { timeout: this.timeouts.putTimeoutMs })
    } catch (err) {
      throw this.#fail(isFlyScanError(err, ErrorCode.TIMEOUT) ? ErrorCode.TIMEOUT : ErrorCode.DETECTOR,
        `writing ${s.pv} = ${JSON.stringify(s.value)} failed: ${message(err)}`, { pv: s.pv }, err)
    }
  }

  /** undefined when the readback took the value within readbackTimeoutMs, else `<pv>_RBV: wanted X, got Y`. */
  async #checkReadback (s: Setting): Promise<string | undefined> {
    const signal = s.signal as SignalRW<unknown>
    const matches = (got: unknown): boolean => {
      if (typeof s.value === 'number' && typeof got === 'number') {
        const d = defaults.detector
        return Math.abs(got - s.value) <= Math.max(d.readbackAbsTolerance, d.readbackRelTolerance * Math.abs(s.value))
      }
      return got === s.value
    }
    let got: unknown
    try {
      await waitForValue(signal, (v) => { got = v; return matches(v) }, this.timeouts.readbackTimeoutMs, () => new Error('mismatch'))
      return undefined
    } catch {
      return `${s.pv}_RBV: wanted ${JSON.stringify(s.value)}, got ${JSON.stringify(got)} (after ${this.timeouts.readbackTimeoutMs} ms)`
    }
  }

  /** StatusMessage_RBV, or undefined when the IOC has none or it cannot be read in time. */
  async statusMessage (): Promise<string | undefined> {
    const signal = this.#statusMessage()
    if (signal === undefined || !signal.connected) return undefined
    try {
      return await withTimeout(signal.getValue(), this.timeouts.diagnoseTimeoutMs, `reading ${signal.name}`)
    } catch {
      return undefined
    }
  }

  async #stateText (state: string): Promise<string> {
    const status = await this.statusMessage()
    return `DetectorState_RBV ${state}${status === undefined || status === '' ? '' : ` (StatusMessage_RBV: ${JSON.stringify(status)})`}`
  }

  async arm (): Promise<void> {
    if (this.#armed !== undefined) return
    const d = this.driver
    const state = await d.detectorState.getValue()
    if (!READY_DETECTOR_STATES.includes(state)) {
      throw this.#fail(ErrorCode.DETECTOR, `cannot arm: the camera is not idle: ${await this.#stateText(state)}`, { state })
    }
    const armed = this.#watch(state)
    this.#armed = armed
    try {
      await d.acquire.set(true, { wait: false, timeout: this.timeouts.putTimeoutMs })
      await waitUntil([d.acquire, d.detectorState] as ReadonlyArray<SignalR<unknown>>,
        ([acquire, state]) => acquire === true || ACQUIRING_DETECTOR_STATES.includes(String(state)),
        this.timeouts.armTimeoutMs, () => new Error('arm'), armed.failed
      ).catch(async (err: unknown) => {
        if (armed.error !== undefined) throw armed.error
        const [acq, st] = await Promise.all([d.acquire.getValue().catch(() => undefined), d.detectorState.getValue().catch(() => 'unreadable')])
        throw this.#fail(ErrorCode.DETECTOR, `armed (Acquire = 1) but the camera did not start within ${this.timeouts.armTimeoutMs} ms: ` +
          `Acquire_RBV ${String(acq)}, ${await this.#stateText(st)}`, { state: st, timeoutMs: this.timeouts.armTimeoutMs }, err)
      })
    } catch (err) {
      this.#stopWatching()
      await d.acquire.set(false, { timeout: this.timeouts.putTimeoutMs }).then(() => {}, () => {})
      throw err
    }
  }

  /** Watch DetectorState_RBV for a bad state once it has left `initial`. */
  #watch (initial: string): Armed {
    let rejectFailed = (_err: Error): void => {}
    const failed = new Promise<never>((_resolve, reject) => { rejectFailed = reject })
    failed.catch(() => {})
    let left = false
    const armed: Armed = {
      failed,
      error: undefined,
      unwatch: this.driver.detectorState.subscribeValue((state) => {
        if (!left && state === initial) return
        left = true
        if (!BAD_DETECTOR_STATES.includes(state) || armed.error !== undefined || this.#armed !== armed) return
        const err = this.#fail(ErrorCode.DETECTOR, `the camera went to DetectorState_RBV ${state} while acquiring`, { state })
        armed.error = err
        // The status message makes the reason better; the failure must not wait long for it.
        this.#stateText(state).then((text) => {
          const full = this.#fail(ErrorCode.DETECTOR, `the camera went to ${text} while acquiring`, { state })
          armed.error = full
          rejectFailed(full)
          for (const l of [...this.#errorListeners]) l(full)
        }, () => {})
      })
    }
    return armed
  }

  #stopWatching (): void {
    const armed = this.#armed
    this.#armed = undefined
    armed?.unwatch()
  }

  /** `cb` gets the error that ends an armed acquisition (a bad DetectorState); returns the function that stops it. */
  onError (cb: (err: Error) => void): Unsubscribe {
    this.#errorListeners.add(cb)
    const current = this.#armed?.error
    if (current !== undefined) queueMicrotask(() => { cb(current) })
    return () => { this.#errorListeners.delete(cb) }
  }

  async waitForIdle (timeoutMs: number): Promise<void> {
    const armed = this.#armed
    if (armed?.error !== undefined) throw armed.error
    try {
      await waitForValue(this.driver.acquire, (v) => !v, timeoutMs, () => new Error('idle'), armed?.failed)
    } catch (err) {
      if (armed?.error !== undefined) throw armed.error
      const diag = await this.diagnose()
      throw this.#fail(ErrorCode.TIMEOUT, `still acquiring after ${timeoutMs} ms: DetectorState_RBV ${diag.state}, ` +
        `ArrayCounter_RBV ${String(diag.framesProduced)} of NumImages ${String(this.#settings?.numImages)}`, { timeoutMs }, err)
    }
    this.#stopWatching()
  }

  async disarm (): Promise<void> {
    this.#stopWatching()
    const d = this.driver
    await d.acquire.set(false, { timeout: this.timeouts.disarmTimeoutMs })
    const ms = this.timeouts.disarmTimeoutMs
    try {
      await waitUntil([d.acquire, d.detectorState] as ReadonlyArray<SignalR<unknown>>,
        ([acquire, state]) => acquire === false && READY_DETECTOR_STATES.includes(String(state)), ms, () => new Error('disarm'))
    } catch (err) {
      const state = await d.detectorState.getValue().catch(() => 'unreadable')
      throw this.#fail(ErrorCode.DETECTOR, `disarm (Acquire = 0) did not stop the camera within ${ms} ms: ${await this.#stateText(state)}`,
        { state, timeoutMs: ms }, err)
    }
  }

  /** ArrayCounter_RBV: frames the driver produced since prepare reset it. */
  async readArrayCounter (): Promise<number> {
    return await this.driver.arrayCounter.getValue()
  }

  /** DetectorState_RBV, StatusMessage_RBV and ArrayCounter_RBV, each bounded by diagnoseTimeoutMs; never rejects. */
  async diagnose (): Promise<DetectorDiagnosis> {
    const ms = this.timeouts.diagnoseTimeoutMs
    const [state, frames, status] = await Promise.all([
      withTimeout(this.driver.detectorState.getValue(), ms, 'reading DetectorState_RBV').then((s) => s, (err: unknown) => `unreadable (${message(err)})`),
      withTimeout(this.readArrayCounter(), ms, 'reading ArrayCounter_RBV').then((n) => n, () => undefined),
      this.statusMessage()
    ])
    return { state, statusMessage: status, framesProduced: frames }
  }
}
