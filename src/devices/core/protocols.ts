/**
 * The protocols plans and the RunEngine drive devices through (bluesky's `bluesky.protocols`, camelCased), the
 * awaitable `Status` every action returns, and runtime guards that tell which protocols an object implements.
 *
 * Units: every timeout here is in milliseconds; every `Reading.timestamp` is seconds since the epoch (float), as in
 * event-model documents.
 */
import { defaults } from '../../../config/index.js'
import type { DataKey, Dtype } from '../../documents/index.js'

/** Bound on connect, set and trigger when the caller gives none (ophyd-async's DEFAULT_TIMEOUT), in milliseconds. */
export const DEFAULT_TIMEOUT_MS: number = defaults.devices.defaultTimeoutMs

// ---------------------------------------------------------------------------------------------------------------
// Status

/** One progress report of a running action (bluesky's watcher arguments; ophyd-async's WatcherUpdate). */
export interface WatcherUpdate {
  readonly current: number
  readonly initial?: number
  readonly target?: number
  readonly unit?: string
  readonly precision?: number
  readonly fraction?: number
  readonly name?: string
  readonly timeElapsed?: number
  readonly timeRemaining?: number
}

export type Watcher = (progress: WatcherUpdate) => void

/** An action under way: awaitable, and inspectable without awaiting. */
export interface Status<T = void> extends PromiseLike<T> {
  readonly done: boolean
  /** undefined while running. */
  readonly success: boolean | undefined
  /** The failure, once failed. */
  readonly error: Error | undefined
  /** Receive progress reports; the latest one, if any, is replayed at once. */
  watch?(cb: Watcher): void
}

/**
 * A Status over a promise. The promise's rejection is observed (no unhandled rejection if nobody awaits the status);
 * awaiting the status rethrows it. Producers report progress with the `report` function given to `watchable`.
 */
export class AsyncStatus<T = void> implements Status<T> {
  private readonly promise: Promise<T>
  private state: 'running' | 'succeeded' | 'failed' = 'running'
  private failure: Error | undefined
  private readonly callbacks: Array<(status: AsyncStatus<T>) => void> = []
  private readonly watchers: Watcher[] = []
  private lastUpdate: WatcherUpdate | undefined

  constructor (promise: PromiseLike<T>) {
    this.promise = Promise.resolve(promise)
    this.promise.then(
      () => { this.settle('succeeded', undefined) },
      (err: unknown) => { this.settle('failed', err instanceof Error ? err : new Error(String(err))) }
    )
  }

  /** A function that returns an AsyncStatus running `fn` (ophyd-async's `AsyncStatus.wrap`). */
  static wrap<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => AsyncStatus<R> {
    return (...args: A) => new AsyncStatus(fn(...args))
  }

  /** An AsyncStatus whose producer reports progress (ophyd-async's WatchableAsyncStatus). */
  static watchable<R>(fn: (report: Watcher) => Promise<R>): AsyncStatus<R> {
    const holder: { status?: AsyncStatus<R>, pending: WatcherUpdate[] } = { pending: [] }
    const report: Watcher = (update) => {
      if (holder.status === undefined) holder.pending.push(update)
      else holder.status.report(update)
    }
    const status = new AsyncStatus<R>(fn(report))
    holder.status = status
    for (const update of holder.pending) status.report(update)
    return status
  }

  /** An already-finished status. */
  static resolved<R = void>(value: R): AsyncStatus<R> {
    return new AsyncStatus<R>(Promise.resolve(value))
  }

  /** An already-failed status. */
  static rejected<R = void>(error: Error): AsyncStatus<R> {
    return new AsyncStatus<R>(Promise.reject(error))
  }

  get done (): boolean { return this.state !== 'running' }
  get success (): boolean | undefined { return this.state === 'running' ? undefined : this.state === 'succeeded' }
  get error (): Error | undefined { return this.failure }

  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null
  ): Promise<R1 | R2> {
    return this.promise.then(onfulfilled, onrejected)
  }

  /** Call `cb` once the status is done (at once, on a later microtask, if it already is). */
  addCallback (cb: (status: AsyncStatus<T>) => void): void {
    if (this.done) queueMicrotask(() => { cb(this) })
    else this.callbacks.push(cb)
  }

  watch (cb: Watcher): void {
    this.watchers.push(cb)
    if (this.lastUpdate !== undefined) cb(this.lastUpdate)
  }

  /** Deliver a progress report to the watchers (ignored once done). */
  report (update: WatcherUpdate): void {
    if (this.done) return
    this.lastUpdate = update
    for (const w of this.watchers) w(update)
  }

  private settle (state: 'succeeded' | 'failed', error: Error | undefined): void {
    this.state = state
    this.failure = error
    const callbacks = this.callbacks.splice(0)
    for (const cb of callbacks) cb(this)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Readings and data keys

export interface Reading<T = unknown> {
  readonly value: T
  /** Seconds since the epoch. */
  readonly timestamp: number
  readonly alarmSeverity?: number
}

export interface Limits {
  readonly low?: number
  readonly high?: number
}

/**
 * event-model's DataKey and dtype: one type, declared with the documents (src/documents/types.ts), so that what a
 * device describes goes into a descriptor as it is. Limits, when a device gives them, are
 * `{ control?, display?, warning?, alarm? }` of `Limits`.
 */
export type { DataKey, Dtype }

/** Fields a plan's live table and documents should show first (bluesky's hints). */
export interface Hints {
  fields?: string[]
}

// ---------------------------------------------------------------------------------------------------------------
// Streamed data (ophyd-async's WritesStreamAssets / bluesky's collect_pages)

/** A stream_resource as a device emits it; the RunEngine adds `run_start`. */
export interface PartialStreamResource {
  uid: string
  data_key: string
  mimetype: string
  uri: string
  parameters: Record<string, unknown>
}

/** A stream_datum as a device emits it; the RunEngine adds `descriptor`. */
export interface PartialStreamDatum {
  uid: string
  stream_resource: string
  indices: { start: number, stop: number }
  seq_nums: { start: number, stop: number }
}

export type StreamAsset = ['stream_resource', PartialStreamResource] | ['stream_datum', PartialStreamDatum]

/** An event without descriptor, uid or seq_num; the RunEngine adds them. */
export interface PartialEvent {
  data: Record<string, unknown>
  timestamps: Record<string, number>
  time: number
  filled?: Record<string, boolean>
}

/** An event_page without descriptor, uid or seq_num. */
export interface PartialEventPage {
  data: Record<string, unknown[]>
  timestamps: Record<string, number[]>
  time: number[]
}

// ---------------------------------------------------------------------------------------------------------------
// Protocols

export interface HasName { readonly name: string }

export interface HasParent { readonly parent: HasName | undefined }

export interface HasHints { readonly hints: Hints }

export interface Readable extends HasName {
  read (): Promise<Record<string, Reading>>
  describe (): Promise<Record<string, DataKey>>
}

export interface Configurable {
  readConfiguration (): Promise<Record<string, Reading>>
  describeConfiguration (): Promise<Record<string, DataKey>>
}

export interface SetOptions {
  /** Milliseconds; DEFAULT_TIMEOUT_MS when absent. */
  timeout?: number
}

export interface Movable<T = number> extends HasName {
  set (value: T, options?: SetOptions): Status
}

export interface Stoppable {
  stop (success?: boolean): Promise<void>
}

export interface Stageable {
  stage (): Promise<void>
  unstage (): Promise<void>
}

export interface Triggerable {
  trigger (): Status
}

export interface Preparable<T = unknown> {
  prepare (value: T): Status
}

export interface Flyable extends HasName {
  kickoff (): Status
  complete (): Status
}

export interface Collectable extends HasName {
  describeCollect (): Promise<Record<string, DataKey>>
  /** Events read by the device itself (bluesky's EventCollectable). */
  collect?(): AsyncIterable<PartialEvent>
  /** Pages of events (bluesky's EventPageCollectable). */
  collectPages?(): AsyncIterable<PartialEventPage>
  /** How many complete events have been written so far (WritesStreamAssets.get_index). */
  getIndex?(): Promise<number>
  /** stream_resource documents (once per data key) and stream_datum documents up to `index` (WritesStreamAssets). */
  collectAssetDocs?(index?: number): AsyncIterable<StreamAsset>
}

export interface Locatable<T = number> {
  locate (): Promise<Location<T>>
}

export interface Location<T = number> {
  setpoint: T
  readback: T
}

/**
 * A device that adds keys to the run_stop document of a run it took part in (e.g. a fly scan's timing report as
 * `timing`). Asked, synchronously, when the run closes, whatever the exit status. Keys may not contain '.' or '/'
 * and may not be run_stop's own fields (event-model allows other keys in run_stop).
 */
export interface HasRunStopInfo extends HasName {
  runStopInfo (): Record<string, unknown> | undefined
}

export type Unsubscribe = () => void

/** Monitored values (for suspenders and live displays). */
export interface Subscribable<T = unknown> extends HasName {
  /** `cb` gets `{ [name]: Reading }` now and on every change; returns the function that stops it. */
  subscribe (cb: (reading: Record<string, Reading<T>>) => void): Unsubscribe
  /** `cb` gets the value now and on every change; returns the function that stops it. */
  subscribeValue (cb: (value: T) => void): Unsubscribe
}

// ---------------------------------------------------------------------------------------------------------------
// Runtime guards

function hasMethods (x: unknown, ...names: string[]): boolean {
  if (typeof x !== 'object' || x === null) return false
  const rec = x as Record<string, unknown>
  return names.every((n) => typeof rec[n] === 'function')
}

function hasName (x: unknown): x is HasName {
  return typeof x === 'object' && x !== null && typeof (x as { name?: unknown }).name === 'string'
}

export function isStatus (x: unknown): x is Status<unknown> {
  return hasMethods(x, 'then') && typeof (x as { done?: unknown }).done === 'boolean'
}
export function isReadable (x: unknown): x is Readable {
  return hasName(x) && hasMethods(x, 'read', 'describe')
}
export function isConfigurable (x: unknown): x is Configurable {
  return hasMethods(x, 'readConfiguration', 'describeConfiguration')
}
export function isMovable (x: unknown): x is Movable<unknown> {
  return hasName(x) && hasMethods(x, 'set')
}
export function isStoppable (x: unknown): x is Stoppable {
  return hasMethods(x, 'stop')
}
export function isStageable (x: unknown): x is Stageable {
  return hasMethods(x, 'stage', 'unstage')
}
export function isTriggerable (x: unknown): x is Triggerable {
  return hasMethods(x, 'trigger')
}
export function isPreparable (x: unknown): x is Preparable {
  return hasMethods(x, 'prepare')
}
export function isFlyable (x: unknown): x is Flyable {
  return hasName(x) && hasMethods(x, 'kickoff', 'complete')
}
export function isCollectable (x: unknown): x is Collectable {
  return hasName(x) && hasMethods(x, 'describeCollect')
}
export function isLocatable (x: unknown): x is Locatable<unknown> {
  return hasMethods(x, 'locate')
}
export function isSubscribable (x: unknown): x is Subscribable {
  return hasName(x) && hasMethods(x, 'subscribe', 'subscribeValue')
}
export function hasRunStopInfo (x: unknown): x is HasRunStopInfo {
  return hasName(x) && hasMethods(x, 'runStopInfo')
}
export function hasHints (x: unknown): x is HasHints {
  return typeof x === 'object' && x !== null && typeof (x as { hints?: unknown }).hints === 'object' &&
    (x as { hints?: unknown }).hints !== null
}
