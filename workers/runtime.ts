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

export function startWorker<Data extends { kind: string }, Up, Down> (expectedKind: Data['kind']): { data: Data, port: WorkerPort<Up, Down> } {
  if (isMainThread || parentPort === null) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `the ${expectedKind} worker must be started as a worker thread`)
  }
  const parent = parentPort
  const data = workerData as Data
  if (data === null || typeof data !== 'object' || data.kind !== expectedKind) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `${expectedKind} worker: workerData.kind is ${String((data as { kind?: unknown } | null)?.kind)}`)
  }
  const die = (err: unknown): void => {
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
      process.exit(1)
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
