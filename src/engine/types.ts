/** Small shared types of the engine: the injectable logger, document callbacks and suspenders. */
import type { DocumentCallback } from '../documents/index.js'
import { ErrorCode, FlyScanError } from '../errors.js'

export type { DocumentCallback }

/** Where the engine logs state transitions and cleanup problems (default: nothing). */
export interface EngineLogger {
  info (message: string, details?: Readonly<Record<string, unknown>>): void
  warn (message: string, details?: Readonly<Record<string, unknown>>): void
}

export const silentLogger: EngineLogger = { info: () => {}, warn: () => {} }

/**
 * A suspender (bluesky's SuspenderBase): it watches a value and, while `shouldSuspend(value)` is true, the engine
 * suspends the run; the run resumes once the value has been acceptable for `settleTime` seconds.
 */
export interface Suspender {
  /** Names the suspender in logs and in the engine's reports. */
  readonly name: string
  /** Seconds the value must stay acceptable before the run resumes. */
  readonly settleTime: number
  /** Start watching: `cb` gets the current value now (if known) and every change; returns the stop function. */
  subscribe (cb: (value: unknown) => void): () => void
  /** True when the value is outside the allowed range. */
  shouldSuspend (value: unknown): boolean
}

/** A value source a suspender can watch: a device signal (subscribeValue) or anything with subscribe(cb) → stop. */
export interface ValueSource {
  readonly name?: string
  subscribeValue? (cb: (value: unknown) => void): () => void
  subscribe? (cb: (value: unknown) => void): () => void
}

/** Suspend while the value is outside [low, high] (bluesky's SuspendOutBand; an open side is ±Infinity). */
export function suspendOutsideRange (source: ValueSource, options: { low?: number, high?: number, settleTime?: number, name?: string }): Suspender {
  const low = options.low ?? -Infinity
  const high = options.high ?? Infinity
  return suspendWhen(source, (v) => typeof v !== 'number' || !(v >= low && v <= high), {
    settleTime: options.settleTime ?? 0,
    name: options.name ?? `${source.name ?? 'signal'} outside [${low}, ${high}]`
  })
}

/** Suspend while `predicate(value)` is true. */
export function suspendWhen (source: ValueSource, predicate: (value: unknown) => boolean, options: { settleTime?: number, name?: string } = {}): Suspender {
  return {
    name: options.name ?? `${source.name ?? 'signal'} suspender`,
    settleTime: options.settleTime ?? 0,
    subscribe (cb) {
      if (source.subscribeValue !== undefined) return source.subscribeValue(cb)
      if (source.subscribe !== undefined) return source.subscribe(cb)
      throw new FlyScanError(ErrorCode.BAD_INPUT, `suspender ${options.name ?? source.name ?? '(unnamed)'}: the source has neither subscribeValue nor subscribe`)
    },
    shouldSuspend: predicate
  }
}
