/**
 * Coded errors. Every error tst-fly raises on purpose is a FlyScanError with a stable `code`.
 *
 * Structured clone (postMessage) keeps an Error's message and stack but drops the subclass, its `name` and
 * extra fields such as `code`, so errors cross threads as a plain `WireError` and are rebuilt with `fromWire`.
 *
 * This module is the root leaf of the import graph: it imports nothing from the project, and the other leaves
 * (shm, parsers, metrics) may import it (docs/decisions/0002-errors-is-the-root-leaf.md).
 */

export const ErrorCode = {
  /** The PandA ring was full: the consumer fell behind. The socket is never paused, so the scan fails. */
  PANDA_RING_FULL: 'FLY_ERR_PANDA_RING_FULL',
  /** A record or frame larger than the ring can ever hold. */
  RING_RECORD_TOO_LARGE: 'FLY_ERR_RING_RECORD_TOO_LARGE',
  /** A ring buffer whose header does not match this build's layout. */
  RING_LAYOUT: 'FLY_ERR_RING_LAYOUT',
  /** An operation on a ring in a state that does not allow it (e.g. push after close). */
  RING_STATE: 'FLY_ERR_RING_STATE',
  /** The other side of a ring marked it FAILED. */
  RING_FAILED: 'FLY_ERR_RING_FAILED',
  /** Malformed bytes on the PandA data port. */
  PANDA_PROTOCOL: 'FLY_ERR_PANDA_PROTOCOL',
  /** The PandA data server answered the options line with ERR. */
  PANDA_REJECTED: 'FLY_ERR_PANDA_REJECTED',
  /** An acquisition ended with a reason other than Ok or Disarmed. */
  PANDA_ACQUISITION_FAILED: 'FLY_ERR_PANDA_ACQUISITION_FAILED',
  /** A TCP connection failed or closed unexpectedly. */
  CONNECTION: 'FLY_ERR_CONNECTION',
  /** HDF5 file creation, write, flush or close failed. */
  HDF5: 'FLY_ERR_HDF5',
  /** A worker thread exited or crashed. */
  WORKER_EXIT: 'FLY_ERR_WORKER_EXIT',
  /** A worker did not report Ready in time, or a request got no answer in time. */
  TIMEOUT: 'FLY_ERR_TIMEOUT',
  /** A device or worker failed to connect. */
  NOT_CONNECTED: 'FLY_ERR_NOT_CONNECTED',
  /** Bad command-line arguments, configuration or plan arguments. */
  BAD_INPUT: 'FLY_ERR_BAD_INPUT',
  /** A file the user named could not be read or is not what it should be. */
  BAD_FILE: 'FLY_ERR_BAD_FILE',
  /** A control message that the receiver does not understand. */
  PROTOCOL_MESSAGE: 'FLY_ERR_PROTOCOL_MESSAGE',
  /** A RunEngine request that its current state does not allow (e.g. resume while running). */
  ENGINE_STATE: 'FLY_ERR_ENGINE_STATE',
  /** A plan yielded something that is not a known Msg command. */
  INVALID_COMMAND: 'FLY_ERR_INVALID_COMMAND',
  /** Malformed bytes on an EPICS Channel Access connection or datagram (either side). */
  CA_PROTOCOL: 'FLY_ERR_CA_PROTOCOL',
  /** libca reported a failure (a get, put or subscription that ended with an ECA_ status other than ECA_NORMAL). */
  CA: 'FLY_ERR_CA',
  /** A native library (libca) could not be found or loaded. */
  LIBRARY_MISSING: 'FLY_ERR_LIBRARY_MISSING',
  /** A known Msg out of order (save without create, open_run inside a run, read outside a bundle's rules...). */
  ILLEGAL_MESSAGE_SEQUENCE: 'FLY_ERR_ILLEGAL_MESSAGE_SEQUENCE',
  /** The operation was cancelled (destroy, abort). */
  CANCELLED: 'FLY_ERR_CANCELLED',
  /** The PandA control port answered a command with `ERR <message>` (the message names the command and the box's text). */
  PANDA_CONTROL_ERR: 'FLY_ERR_PANDA_CONTROL',
  /** A detector (camera) reported an error state, refused a setting, or did not reach the state it was sent to. */
  DETECTOR: 'FLY_ERR_DETECTOR',
  /** Frames were lost: UniqueId gaps, a full frame ring, or fewer frames than the camera counted or was triggered for. */
  FRAMES_DROPPED: 'FLY_ERR_FRAMES_DROPPED',
  /** A fly scan made no progress (frames, rows or motion) for longer than its stall timeout (derived from TriggerInfo). */
  STALLED: 'FLY_ERR_STALLED',
  /** The file system ran out of space (ENOSPC, EDQUOT) while writing data; what was flushed before stays readable. */
  DISK_FULL: 'FLY_ERR_DISK_FULL',
  /** Anything that is not one of ours, after crossing a thread. */
  UNKNOWN: 'FLY_ERR_UNKNOWN'
} as const

export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode]

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode))

export type ErrorDetails = Readonly<Record<string, string | number | boolean | null>>

export class FlyScanError extends Error {
  override readonly name = 'FlyScanError'
  readonly code: ErrorCode
  /** Numbers and names involved, for programs (the message already quotes them for people). */
  readonly details: ErrorDetails

  constructor (code: ErrorCode, message: string, options: { details?: ErrorDetails, cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.details = options.details ?? {}
  }
}

export function isFlyScanError (err: unknown, code?: ErrorCode): err is FlyScanError {
  return err instanceof FlyScanError && (code === undefined || err.code === code)
}

/** The plain-object form of an error, safe for postMessage. */
export interface WireError {
  readonly code: ErrorCode
  readonly message: string
  readonly stack: string | undefined
  readonly details: ErrorDetails
  readonly cause: WireError | undefined
}

export function toWire (err: unknown, depth = 0): WireError {
  if (err instanceof FlyScanError) {
    return {
      code: err.code,
      message: err.message,
      stack: err.stack,
      details: err.details,
      cause: err.cause === undefined || depth > 4 ? undefined : toWire(err.cause, depth + 1)
    }
  }
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code
    const message = typeof code === 'string' && !KNOWN_CODES.has(code) ? `${code}: ${err.message}` : err.message
    return {
      code: typeof code === 'string' && KNOWN_CODES.has(code) ? code as ErrorCode : ErrorCode.UNKNOWN,
      message,
      stack: err.stack,
      details: {},
      cause: err.cause === undefined || depth > 4 ? undefined : toWire(err.cause, depth + 1)
    }
  }
  return { code: ErrorCode.UNKNOWN, message: String(err), stack: undefined, details: {}, cause: undefined }
}

export function fromWire (wire: WireError): FlyScanError {
  const code = KNOWN_CODES.has(wire.code) ? wire.code : ErrorCode.UNKNOWN
  const err = new FlyScanError(code, wire.message, {
    details: wire.details,
    cause: wire.cause === undefined ? undefined : fromWire(wire.cause)
  })
  if (wire.stack !== undefined) err.stack = wire.stack
  return err
}
