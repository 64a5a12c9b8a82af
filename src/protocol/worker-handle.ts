/**
 * The supervisor's side of one worker thread: spawn, the Ready handshake (bounded), events, id-correlated
 * requests, and two idempotent exits. `close()` asks the worker to finish and waits for it to exit on its own
 * (bounded, then `destroy()`); `destroy()` terminates now. Both settle every pending promise.
 *
 * A worker that exits without having said `closed` (a crash, an uncaught exception, terminate) rejects `done`
 * with FLY_ERR_WORKER_EXIT naming the worker and, when it reported one before dying, the error it reported. The
 * supervisor turns that into a scan outcome; it never respawns a worker in the middle of a scan.
 */
import { Worker } from 'node:worker_threads'
import { ErrorCode, FlyScanError, fromWire, toWire, type ErrorDetails, type WireError } from '../errors.js'

interface UpBase { readonly kind: string }

export interface WorkerHandleOptions<Data> {
  /** A name for messages: `panda-capture`, `hdf5-writer`. */
  readonly name: string
  readonly url: URL
  readonly workerData: Data
  readonly readyTimeoutMs: number
  /** How long close() waits for the worker to exit by itself before terminating it. */
  readonly closeTimeoutMs: number
  /** SharedArrayBuffers are shared, not copied; nothing else large belongs in workerData. */
  readonly resourceLimits?: { readonly maxOldGenerationSizeMb?: number }
}

type Listener<Up> = (msg: Up) => void

export class WorkerHandle<Up extends UpBase, Down extends UpBase> {
  readonly name: string
  readonly ready: Promise<void>
  /** Resolves when the worker exits after reporting `closed`; rejects when it exits any other way. */
  readonly done: Promise<void>
  readonly #worker: Worker
  readonly #listeners = new Set<Listener<Up>>()
  readonly #closeTimeoutMs: number
  #exited = false
  #sawClosed = false
  #lastError: FlyScanError | undefined
  #destroyReason: string | undefined
  #resolveReady!: () => void
  #rejectReady!: (err: Error) => void
  #readyTimer: NodeJS.Timeout | undefined

  constructor (options: WorkerHandleOptions<unknown>) {
    this.name = options.name
    this.#closeTimeoutMs = options.closeTimeoutMs
    this.ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve
      this.#rejectReady = reject
    })
    // Callers may only await `done`; an unobserved ready rejection must not crash the process.
    this.ready.catch(() => {})
    this.#worker = new Worker(options.url, {
      workerData: options.workerData,
      resourceLimits: options.resourceLimits
    })
    this.#readyTimer = setTimeout(() => {
      this.#rejectReady(new FlyScanError(ErrorCode.TIMEOUT,
        `worker ${this.name} did not report ready within ${options.readyTimeoutMs} ms`,
        { details: { worker: this.name, timeoutMs: options.readyTimeoutMs } }))
      this.destroy('never became ready').catch(() => {})
    }, options.readyTimeoutMs)
    this.done = new Promise<void>((resolve, reject) => {
      this.#worker.on('message', (msg: Up) => {
        if (msg.kind === 'ready') {
          clearTimeout(this.#readyTimer)
          this.#resolveReady()
        } else if (msg.kind === 'closed') {
          this.#sawClosed = true
        } else if (msg.kind === 'error') {
          const wire = (msg as unknown as { error?: unknown }).error
          this.#lastError = isWire(wire)
            ? fromWire(wire)
            : new FlyScanError(ErrorCode.PROTOCOL_MESSAGE, `worker ${this.name} sent an error message without a valid error`)
        }
        for (const l of this.#listeners) l(msg)
      })
      this.#worker.on('error', (err) => {
        // An uncaught exception the runtime could not report itself (e.g. a syntax error at load, or a throw before
        // startWorker). Node's error serialization keeps own fields (`code`, `details`) but not the class: rebuild it.
        this.#lastError ??= rebuild(err)
      })
      this.#worker.on('exit', (exitCode) => {
        this.#exited = true
        clearTimeout(this.#readyTimer)
        if (this.#sawClosed && exitCode === 0) {
          this.#rejectReady(new FlyScanError(ErrorCode.WORKER_EXIT, `worker ${this.name} exited before ready`))
          resolve()
          return
        }
        const why = this.#destroyReason !== undefined
          ? `was destroyed (${this.#destroyReason})`
          : `exited with code ${exitCode}`
        const cause = this.#lastError
        const err = new FlyScanError(ErrorCode.WORKER_EXIT,
          `worker ${this.name} ${why}${cause === undefined ? '' : `: ${cause.code}: ${cause.message}`}`,
          { details: { worker: this.name, exitCode }, cause })
        this.#rejectReady(err)
        reject(err)
      })
    })
    this.done.catch(() => {})
  }

  get exited (): boolean {
    return this.#exited
  }

  /** The last error the worker reported (it may still be running). */
  get lastError (): FlyScanError | undefined {
    return this.#lastError
  }

  on (listener: Listener<Up>): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  post (msg: Down): void {
    if (!this.#exited) this.#worker.postMessage(msg)
  }

  /**
   * Sends a request carrying `id` and resolves with the first reply of kind `replyKind` with the same id.
   * Rejects on timeout or when the worker exits first.
   */
  request<K extends Up['kind']> (msg: Down & { readonly id: number }, replyKind: K, timeoutMs: number): Promise<Extract<Up, { kind: K }>> {
    return new Promise((resolve, reject) => {
      if (this.#exited) {
        reject(new FlyScanError(ErrorCode.WORKER_EXIT, `worker ${this.name} has exited; cannot send ${msg.kind}`))
        return
      }
      const timer = setTimeout(() => {
        off()
        reject(new FlyScanError(ErrorCode.TIMEOUT, `worker ${this.name} did not answer ${msg.kind} within ${timeoutMs} ms`,
          { details: { worker: this.name, timeoutMs } }))
      }, timeoutMs)
      const off = this.on((up) => {
        if (up.kind === replyKind && (up as unknown as { id?: number }).id === msg.id) {
          clearTimeout(timer)
          off()
          resolve(up as Extract<Up, { kind: K }>)
        }
      })
      this.done.then(() => undefined, (err: unknown) => err).then((died) => {
        clearTimeout(timer)
        off()
        const why = died instanceof Error ? `: ${died.message}` : ''
        reject(new FlyScanError(ErrorCode.WORKER_EXIT, `worker ${this.name} exited before answering ${msg.kind}${why}`,
          { details: { worker: this.name }, cause: died }))
      })
      this.#worker.postMessage(msg)
    })
  }

  /**
   * Waits (bounded) for the worker to finish by itself, after the caller has told it to (in-band or by message);
   * terminates it when the bound passes. Resolves when it has exited, whatever the outcome (see `done`).
   */
  async close (closeMsg?: Down): Promise<void> {
    if (this.#exited) return
    if (closeMsg !== undefined) this.post(closeMsg)
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), this.#closeTimeoutMs) })
    const outcome = await Promise.race([this.done.then(() => 'exited' as const, () => 'exited' as const), timedOut])
    clearTimeout(timer)
    if (outcome === 'timeout') await this.destroy(`did not exit within ${this.#closeTimeoutMs} ms of close`)
  }

  /** Terminates the worker now. Idempotent. */
  async destroy (reason = 'destroyed'): Promise<void> {
    if (this.#exited) return
    this.#destroyReason ??= reason
    await this.#worker.terminate()
    await this.done.catch(() => {})
  }
}

/** A worker 'error' event's error (an Error rebuilt by Node, or anything thrown) as a FlyScanError with its code. */
function rebuild (err: unknown): FlyScanError {
  const wire = toWire(err)
  const details = (err as { details?: unknown } | null)?.details
  return fromWire({ ...wire, details: isDetails(details) ? details : wire.details })
}

function isWire (value: unknown): value is WireError {
  const w = value as Partial<Record<keyof WireError, unknown>> | null
  return typeof w === 'object' && w !== null && typeof w.code === 'string' && typeof w.message === 'string' &&
    (w.details === undefined || isDetails(w.details)) && (w.cause === undefined || isWire(w.cause))
}

function isDetails (value: unknown): value is ErrorDetails {
  return typeof value === 'object' && value !== null && !Array.isArray(value) &&
    Object.values(value).every((v) => v === null || ['string', 'number', 'boolean'].includes(typeof v))
}
