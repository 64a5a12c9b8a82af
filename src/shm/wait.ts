/**
 * Bounded waits on a ring. Who may block (docs/rings.md):
 * - waitForData / waitForSpace (Atomics.wait) block the thread: only for a thread with no other I/O (the HDF5
 *   writer). Never on the supervisor (main thread).
 * - waitForDataAsync / waitForSpaceAsync (Atomics.waitAsync) for threads that own sockets or timers.
 * Every wait takes a required timeout in ms and re-reads the ring state on every wake-up.
 *
 * Handshake (no lost wake-up): the waiter reads the futex word (DATA_SIGNAL / SPACE_SIGNAL), sets its WAITING flag,
 * polls once more, then sleeps on the futex word with the value it read. The other side publishes its index, then
 * reads the WAITING flag and, if set, bumps the futex word and notifies. State changes bump both futex words.
 */
import { ErrorCode, FlyScanError } from '../errors.js'
import { I32 } from './ring-layout.js'

/** 'ready': data (or space) is there now. 'closed': end-of-stream (reader) or the ring no longer takes writes
 * (writer). 'failed': the ring is FAILED. 'timeout': nothing happened within the bound. */
export type WaitResult = 'ready' | 'timeout' | 'closed' | 'failed'

/** A consumer handle (RecordReader, SlotReader). */
export interface DataWaitable {
  readonly name: string
  readonly header: Int32Array
  pollData (): WaitResult | null
}

/** A producer handle (RecordWriter, SlotWriter). */
export interface SpaceWaitable {
  readonly name: string
  readonly header: Int32Array
  pollSpace (payloadBytes: number): WaitResult | null
}

export interface WaitOptions {
  /** Polls before going to sleep (cheap, avoids a futex round trip when the other side is about to publish). */
  readonly spin?: number
}

const DEFAULT_SPIN = 256

interface WaitAsyncResult {
  readonly async: boolean
  readonly value: 'not-equal' | 'timed-out' | 'ok' | Promise<'ok' | 'timed-out'>
}
type WaitAsyncFn = (ta: Int32Array, index: number, value: number, timeoutMs: number) => WaitAsyncResult
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsyncFn }).waitAsync

function checkTimeout (name: string, timeoutMs: number): void {
  if (!(typeof timeoutMs === 'number' && timeoutMs >= 0 && Number.isFinite(timeoutMs))) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `ring ${name}: wait timeout must be a finite number of ms >= 0, got ${String(timeoutMs)}`,
      { details: { ring: name, timeoutMs: String(timeoutMs) } })
  }
}

/** Either the wait is over (a result), or the caller should sleep on `signalIdx` while it still holds `sig`. */
type Step = { readonly result: WaitResult } | { readonly sig: number, readonly left: number }

/** Spins `spin` polls; returns a result, or the deadline to sleep until. */
function spinFirst (name: string, poll: () => WaitResult | null, timeoutMs: number, spin: number): WaitResult | number {
  checkTimeout(name, timeoutMs)
  for (let i = 0; i < spin; i++) {
    const r = poll()
    if (r !== null) return r
  }
  return performance.now() + timeoutMs
}

/**
 * One step of the sleep protocol: read the signal word, say we are about to sleep, poll once more (a producer that
 * published after our last poll either sees the flag and bumps the signal, or is seen by this poll), then either
 * finish or tell the caller what to sleep on. The caller clears the flag after waking.
 */
function arm (h: Int32Array, waitingIdx: number, signalIdx: number, poll: () => WaitResult | null, deadline: number): Step {
  const sig = Atomics.load(h, signalIdx)
  Atomics.store(h, waitingIdx, 1)
  const r = poll()
  if (r !== null) {
    Atomics.store(h, waitingIdx, 0)
    return { result: r }
  }
  const left = deadline - performance.now()
  if (left <= 0) {
    Atomics.store(h, waitingIdx, 0)
    return { result: 'timeout' }
  }
  return { sig, left }
}

function waitSync (name: string, h: Int32Array, waitingIdx: number, signalIdx: number,
  poll: () => WaitResult | null, timeoutMs: number, spin: number): WaitResult {
  const deadline = spinFirst(name, poll, timeoutMs, spin)
  if (typeof deadline === 'string') return deadline
  for (;;) {
    const step = arm(h, waitingIdx, signalIdx, poll, deadline)
    if ('result' in step) return step.result
    Atomics.wait(h, signalIdx, step.sig, step.left)
    Atomics.store(h, waitingIdx, 0)
  }
}

async function waitAsyncLoop (name: string, h: Int32Array, waitingIdx: number, signalIdx: number,
  poll: () => WaitResult | null, timeoutMs: number, spin: number): Promise<WaitResult> {
  const deadline = spinFirst(name, poll, timeoutMs, spin)
  if (typeof deadline === 'string') return deadline
  for (;;) {
    const step = arm(h, waitingIdx, signalIdx, poll, deadline)
    if ('result' in step) return step.result
    const w = waitAsync(h, signalIdx, step.sig, step.left)
    if (w.async) {
      const promise = w.value as Promise<'ok' | 'timed-out'>
      // Atomics.waitAsync alone does not keep the event loop alive: a timer does, until the wait settles.
      await new Promise<void>((resolve) => {
        const keepAlive = setTimeout(resolve, step.left + 1)
        promise.then(() => { clearTimeout(keepAlive); resolve() }, () => { clearTimeout(keepAlive); resolve() })
      })
    }
    Atomics.store(h, waitingIdx, 0)
  }
}

/** Blocks (Atomics.wait) until the reader has a record/frame, end-of-stream, FAILED, or `timeoutMs` passes. */
export function waitForData (reader: DataWaitable, timeoutMs: number, options: WaitOptions = {}): WaitResult {
  return waitSync(reader.name, reader.header, I32.DATA_WAITING, I32.DATA_SIGNAL, () => reader.pollData(), timeoutMs,
    options.spin ?? DEFAULT_SPIN)
}

/** Like waitForData without blocking the thread (Atomics.waitAsync). */
export function waitForDataAsync (reader: DataWaitable, timeoutMs: number, options: WaitOptions = {}): Promise<WaitResult> {
  return waitAsyncLoop(reader.name, reader.header, I32.DATA_WAITING, I32.DATA_SIGNAL, () => reader.pollData(), timeoutMs,
    options.spin ?? DEFAULT_SPIN)
}

/**
 * Blocks until a record of `payloadBytes` (record ring) or one slot (slot ring; payloadBytes ignored) fits, the ring
 * stops taking writes ('closed'), FAILED, or `timeoutMs` passes.
 */
export function waitForSpace (writer: SpaceWaitable, timeoutMs: number, payloadBytes = 0, options: WaitOptions = {}): WaitResult {
  return waitSync(writer.name, writer.header, I32.SPACE_WAITING, I32.SPACE_SIGNAL, () => writer.pollSpace(payloadBytes),
    timeoutMs, options.spin ?? DEFAULT_SPIN)
}

/** Like waitForSpace without blocking the thread (Atomics.waitAsync). */
export function waitForSpaceAsync (writer: SpaceWaitable, timeoutMs: number, payloadBytes = 0,
  options: WaitOptions = {}): Promise<WaitResult> {
  return waitAsyncLoop(writer.name, writer.header, I32.SPACE_WAITING, I32.SPACE_SIGNAL, () => writer.pollSpace(payloadBytes),
    timeoutMs, options.spin ?? DEFAULT_SPIN)
}
