/**
 * What every worker shares: the typed port to the supervisor, crash handlers that report before the thread dies
 * (an uncaught exception or unhandled rejection is posted as an `error`, then the thread exits with code 1), and
 * the decoding of workerData. Installed once per worker by `startWorker`.
 */
import { parentPort, workerData, isMainThread } from 'node:worker_threads'
import { ErrorCode, FlyScanError, toWire, type WireError } from '../src/errors.js'

export interface WorkerPort<Up, Down> {
  post (msg: Up): void
  onMessage (handler: (msg: Down) => void): void
  /** Stops receiving messages so that the thread can exit once its work is done. */
  release (): void
}

export interface StartWorkerOptions {
  /**
   * Run before a crashing worker exits, bounded by `timeoutMs`: a worker holding a Channel Access context destroys
   * it here (a thread that exits with a live libca context crashes the process).
   */
  readonly beforeExit?: { readonly run: () => Promise<void>, readonly timeoutMs: number }
}

export function startWorker<Data extends { kind: string }, Up, Down> (expectedKind: Data['kind'], options: StartWorkerOptions = {}): { data: Data, port: WorkerPort<Up, Down> } {
  if (isMainThread || parentPort === null) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `the ${expectedKind} worker must be started as a worker thread`)
  }
  const parent = parentPort
  const data = workerData as Data
  if (data === null || typeof data !== 'object' || data.kind !== expectedKind) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `${expectedKind} worker: workerData.kind is ${String((data as { kind?: unknown } | null)?.kind)}`)
  }
  let dying = false
  const die = (err: unknown): void => {
    // A second failure while the first one's cleanup runs is not reported: the first is the cause.
    if (dying) return
    dying = true
    let wire: WireError
    try {
      wire = toWire(err)
    } catch {
      // A thrown value that cannot even be printed (e.g. an object without a prototype).
      wire = { code: ErrorCode.UNKNOWN, message: 'unprintable error', stack: undefined, details: {}, cause: undefined }
    }
    try {
      parent.postMessage({ kind: 'error', error: wire })
    } finally {
      const hook = options.beforeExit
      if (hook === undefined) {
        process.exit(1)
      } else {
        const bound = new Promise<void>((resolve) => setTimeout(resolve, hook.timeoutMs))
        Promise.race([hook.run().catch(() => {}), bound]).finally(() => process.exit(1)).catch(() => {})
      }
    }
  }
  process.on('uncaughtException', die)
  process.on('unhandledRejection', die)
  return {
    data,
    port: {
      post: (msg: Up) => parent.postMessage(msg),
      onMessage: (handler: (msg: Down) => void) => parent.on('message', handler),
      release: () => {
        parent.removeAllListeners('message')
        parent.unref()
      }
    }
  }
}

/** Exhaustiveness check for switch statements over message unions. */
export function unknownMessage (worker: string, msg: never): never {
  throw new FlyScanError(ErrorCode.PROTOCOL_MESSAGE, `${worker} worker: unknown control message ${JSON.stringify(msg)}`)
}
