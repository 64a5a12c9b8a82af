/**
 * The HDF5 warm-up (DESIGN.md §7). After an IOC restart the HDF1 plugin has never seen an array, so it does not know
 * the frame size and refuses to open a file ("must collect an array to get dimensions first"). When
 * `HDF1:ArraySize0_RBV` is 0, one internal frame is taken with callbacks on, and the driver's settings are put back:
 *
 *   1. save ImageMode, TriggerMode, NumImages, AcquireTime (in that order);
 *   2. TriggerMode Off, ImageMode Single, AcquireTime `exposureS`, ArrayCallbacks Enable, HDF1 EnableCallbacks Enable;
 *   3. Acquire = 1 with completion (bounded), then wait for ArraySize0_RBV != 0 (bounded);
 *   4. restore AcquireTime, NumImages, ImageMode, TriggerMode (the reverse of 1) — also when 2 or 3 failed.
 *
 * The signals come through small interfaces, so any driver device (ADVimba's `cam1:`, a mock) can pass its own.
 * Every failure is a FlyScanError naming the PV (the signal's source) and the step.
 */
import { defaults } from '../../config/index.js'
import { ErrorCode, FlyScanError } from '../errors.js'

/** A readable value (a SignalR): `source` names the PV in messages. */
export interface WarmupReadable<T> {
  readonly source: string
  getValue (): Promise<T>
}

/** A setting the warm-up reads, writes and puts back (a SignalRW). */
export interface WarmupSetting<T> extends WarmupReadable<T> {
  set (value: T, options?: { wait?: boolean, timeout?: number }): PromiseLike<unknown>
}

/** The driver signals the warm-up uses (`cam1:`). */
export interface WarmupDriver {
  readonly imageMode: WarmupSetting<string>
  readonly triggerMode: WarmupSetting<string>
  readonly numImages: WarmupSetting<number>
  readonly acquireTime: WarmupSetting<number>
  readonly arrayCallbacks: WarmupSetting<string>
  readonly acquire: WarmupSetting<boolean>
}

/** The file plugin signals the warm-up uses (`HDF1:`). */
export interface WarmupPlugin {
  readonly arraySize0: WarmupReadable<number>
  readonly enableCallbacks: WarmupSetting<string>
}

export interface WarmupTimeouts {
  /** Bound on each setting write (with completion). */
  readonly putTimeoutMs: number
  /** Bound on the one frame's Acquire = 1 with completion. */
  readonly acquireTimeoutMs: number
  /** Bound on ArraySize0_RBV becoming non-zero after the frame. */
  readonly arrayTimeoutMs: number
  /** How often ArraySize0_RBV is read again while waiting. */
  readonly pollPeriodMs: number
  /** Exposure of the warm-up frame, seconds. */
  readonly exposureS: number
}

export function defaultWarmupTimeouts (): WarmupTimeouts {
  const w = defaults.iocWriter
  return {
    putTimeoutMs: w.putTimeoutMs,
    acquireTimeoutMs: w.warmupAcquireTimeoutMs,
    arrayTimeoutMs: w.warmupArrayTimeoutMs,
    pollPeriodMs: w.pollPeriodMs,
    exposureS: w.warmupExposureS
  }
}

/** What the warm-up did: `false` when ArraySize0_RBV was already non-zero (nothing was touched). */
export interface WarmupResult {
  readonly warmedUp: boolean
  /** The settings found and put back, by name (ImageMode, TriggerMode, NumImages, AcquireTime). */
  readonly restored: Readonly<Record<string, string | number>>
  /** ArraySize0_RBV after the warm-up. */
  readonly arraySize0: number
}

const pvOf = (source: string): string => source.replace(/^(mock\+)?ca:\/\//, '')

function failure (code: ErrorCode, message: string, pv: string, cause?: unknown): FlyScanError {
  return new FlyScanError(code, message, { details: { pv }, ...(cause === undefined ? {} : { cause }) })
}

function reason (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** Resolve `p`, or reject with TIMEOUT naming `what` after `ms`. */
async function bounded<T> (p: PromiseLike<T>, ms: number, what: string, pv: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      Promise.resolve(p),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => { reject(failure(ErrorCode.TIMEOUT, `${what} did not finish within ${ms} ms`, pv)) }, ms)
      })
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** The PV a setting writes: its source without the readback's `_RBV`. */
const writePvOf = (source: string): string => pvOf(source).replace(/_RBV$/, '')

/**
 * Wait for a write (bounded by `ms`). A timeout (ours or the signal's own) is FLY_ERR_TIMEOUT, any other failure
 * FLY_ERR_DETECTOR, both saying `what` and naming `pv`.
 */
async function settle (write: PromiseLike<unknown>, ms: number, pv: string, what: string): Promise<void> {
  try {
    await bounded(write, ms, what, pv)
  } catch (err) {
    if (err instanceof FlyScanError && err.code === ErrorCode.TIMEOUT) throw failure(ErrorCode.TIMEOUT, `${what} did not finish within ${ms} ms`, pv, err)
    throw failure(ErrorCode.DETECTOR, `${what} failed: ${reason(err)}`, pv, err)
  }
}

/**
 * Read `signal` every `pollMs` until `done(value)`, at most `timeoutMs`; returns the value. On timeout, rejects with
 * the error `onTimeout(last value)` gives.
 */
export async function pollUntil<T> (signal: WarmupReadable<T>, done: (value: T) => boolean, timeoutMs: number, pollMs: number,
  onTimeout: (last: T | undefined) => Error): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: T | undefined
  for (;;) {
    last = await bounded(signal.getValue(), Math.max(deadline - Date.now(), 1), `reading ${pvOf(signal.source)}`, pvOf(signal.source))
    if (done(last)) return last
    if (Date.now() >= deadline) throw onTimeout(last)
    await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, Math.max(deadline - Date.now(), 0))))
  }
}

/** Whether the plugin needs the warm-up: it has never seen an array (ArraySize0_RBV == 0). */
export async function needsWarmup (hdf: Pick<WarmupPlugin, 'arraySize0'>, timeouts: Pick<WarmupTimeouts, 'putTimeoutMs'> = defaultWarmupTimeouts()): Promise<boolean> {
  const pv = pvOf(hdf.arraySize0.source)
  const size = await bounded(hdf.arraySize0.getValue(), timeouts.putTimeoutMs, `reading ${pv}`, pv)
  return size === 0
}

/**
 * Warm the HDF plugin up if ArraySize0_RBV is 0 (see the file comment). Resolves with what was done; rejects with a
 * FlyScanError (DETECTOR or TIMEOUT) naming the PV that failed. The saved settings are put back even when the frame
 * failed; a failure to put one back is reported (after the first failure, if any).
 */
export async function warmUpHdfPlugin (driver: WarmupDriver, hdf: WarmupPlugin, timeouts: WarmupTimeouts = defaultWarmupTimeouts()): Promise<WarmupResult> {
  const sizePv = pvOf(hdf.arraySize0.source)
  const size0 = await bounded(hdf.arraySize0.getValue(), timeouts.putTimeoutMs, `reading ${sizePv}`, sizePv)
  if (size0 !== 0) return { warmedUp: false, restored: {}, arraySize0: size0 }

  const read = async <T>(s: WarmupReadable<T>): Promise<T> => await bounded(s.getValue(), timeouts.putTimeoutMs, `reading ${pvOf(s.source)}`, pvOf(s.source))
  const write = async <T>(s: WarmupSetting<T>, value: T, step: string): Promise<void> => {
    const pv = writePvOf(s.source)
    await settle(s.set(value, { wait: true, timeout: timeouts.putTimeoutMs }), timeouts.putTimeoutMs, pv,
      `HDF5 warm-up, ${step}: writing ${JSON.stringify(value)} to ${pv}`)
  }

  // 1. Save.
  const saved = {
    ImageMode: await read(driver.imageMode),
    TriggerMode: await read(driver.triggerMode),
    NumImages: await read(driver.numImages),
    AcquireTime: await read(driver.acquireTime)
  }
  let first: unknown
  try {
    // 2. One internal frame, callbacks on.
    await write(driver.triggerMode, 'Off', 'internal trigger')
    await write(driver.imageMode, 'Single', 'single frame')
    await write(driver.acquireTime, timeouts.exposureS, 'short exposure')
    await write(driver.arrayCallbacks, 'Enable', 'driver callbacks')
    await write(hdf.enableCallbacks, 'Enable', 'plugin callbacks')
    // 3. Acquire with completion: the IOC answers once the frame is taken.
    const acquirePv = writePvOf(driver.acquire.source)
    await settle(driver.acquire.set(true, { wait: true, timeout: timeouts.acquireTimeoutMs }), timeouts.acquireTimeoutMs, acquirePv,
      `HDF5 warm-up: acquiring one internal frame (${acquirePv} = 1 with completion)`)
    await pollUntil(hdf.arraySize0, (v) => v !== 0, timeouts.arrayTimeoutMs, timeouts.pollPeriodMs, (last) => failure(ErrorCode.DETECTOR,
      `HDF5 warm-up: ${sizePv} is still ${String(last)} ${timeouts.arrayTimeoutMs} ms after the frame: the plugin did not get it ` +
      '(is its NDArrayPort the driver\'s port?)', sizePv))
  } catch (err) {
    first = err
  }
  // 4. Put back, in the reverse order of saving; every one is tried.
  const restoreErrors: string[] = []
  const restore = async <T>(s: WarmupSetting<T>, value: T): Promise<void> => {
    try {
      await write(s, value, 'restore')
    } catch (err) {
      restoreErrors.push(reason(err))
      first ??= err
    }
  }
  await restore(driver.acquireTime, saved.AcquireTime)
  await restore(driver.numImages, saved.NumImages)
  await restore(driver.imageMode, saved.ImageMode)
  await restore(driver.triggerMode, saved.TriggerMode)
  if (first !== undefined) {
    // The first failure leads; failures to put settings back after it are added, since the camera is left changed.
    const later = restoreErrors.filter((m) => !(first instanceof Error && first.message === m))
    if (later.length === 0 || !(first instanceof FlyScanError)) throw first
    throw new FlyScanError(first.code, `${first.message}; and putting the settings back failed: ${later.join('; ')}`, { details: first.details, cause: first })
  }
  const arraySize0 = await read(hdf.arraySize0)
  return { warmedUp: true, restored: saved, arraySize0 }
}
