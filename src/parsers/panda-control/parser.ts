/**
 * Sans-IO parser of the PandA control port's reply stream (TCP 8888): bytes in (`push`), complete replies out,
 * nothing else. It does not know which command a reply answers: PandaControlConnection (connection.ts) matches
 * replies to commands by order. The grammar as implemented is in ../../../docs/panda-control-port.md (from
 * PandABlocks-server docs/commands.rst and server/config_server.c).
 *
 * Replies are lines ending in `\n` (a trailing `\r` is dropped): `OK`, `OK =value`, `ERR message`, or `!item` lines
 * ended by a line holding only `.`. The first line of a reply tells its kind, so the parser needs no hint.
 */
import { ErrorCode, FlyScanError } from '../../errors.js'
import type { ControlReply } from './types.js'
import { describeBytes, LineReader } from '../text.js'

/** Where the parser is in the reply stream. */
export const ControlState = {
  /** Between replies: the next line starts one. */
  IDLE: 'idle',
  /** Inside a multi-value reply, after its first `!item` line. */
  MULTI: 'multi',
  /** close() was called: nothing more may arrive. */
  CLOSED: 'closed',
  /** Malformed input: every further push() throws the same error. */
  FAILED: 'failed'
} as const
export type ControlState = typeof ControlState[keyof typeof ControlState]

/** Bounds that keep a malformed or hostile stream from making the parser buffer without limit. */
export interface ControlLimits {
  /** Longest reply line, without its newline. The server's own values are at most 255 bytes (MAX_RESULT_LENGTH). */
  readonly maxLineBytes: number
  /** Most `!item` lines in one multi-value reply. */
  readonly maxReplyLines: number
  /** Largest multi-value reply, first `!` to the `.` line's newline. */
  readonly maxReplyBytes: number
}

export const CONTROL_DEFAULT_LIMITS: ControlLimits = {
  maxLineBytes: 64 * 1024,
  maxReplyLines: 4 * 1024 * 1024,
  maxReplyBytes: 64 * 1024 * 1024
}

/** A reply cut off by close(): where it began and how much of it had arrived. */
export interface PartialReply {
  readonly offset: number
  /** Whole `!item` lines received (0 when the cut came inside a first line). */
  readonly lines: number
  readonly bytes: number
}

const utf8 = new TextDecoder('utf-8')

/** Printable rendering of up to 16 bytes of a reply, for error messages: `0x48 0x49 ('HI')`. */
export function describeControlBytes (bytes: Uint8Array, start: number, end: number): string {
  return describeBytes(bytes, start, end, 16, 'an empty line')
}

/** The coded error for malformed bytes at an absolute stream offset. */
export function controlProtocolError (peer: string | undefined, offset: number, expected: string, got: string): FlyScanError {
  return new FlyScanError(ErrorCode.PANDA_PROTOCOL,
    `PandA control port${peer === undefined ? '' : ' ' + peer}, offset ${offset}: expected ${expected}, got ${got}`, {
      details: { offset, expected, got, peer: peer ?? null }
    })
}

function text (bytes: Uint8Array): string {
  for (let k = 0; k < bytes.length; k++) {
    if ((bytes[k] as number) >= 0x80) return utf8.decode(bytes)
  }
  return bytes.length < 4096 ? String.fromCharCode(...bytes) : utf8.decode(bytes)
}

export interface ControlParserOptions {
  readonly limits?: Partial<ControlLimits>
  /** Who is talking, for error messages, e.g. `10.68.1.5:8888`. */
  readonly peer?: string
}

export class PandaControlParser {
  readonly limits: ControlLimits
  readonly peer: string | undefined

  #state: ControlState = ControlState.IDLE
  #error: FlyScanError | undefined
  #salvage: ControlReply[] = []
  /** Absolute stream offset of the current chunk's first byte. */
  #base = 0
  #replies = 0

  // A line split across chunks.
  readonly #lines = new LineReader()
  // The multi-value reply in progress.
  #items: string[] = []
  #replyStart = 0

  constructor (options: ControlParserOptions = {}) {
    this.limits = { ...CONTROL_DEFAULT_LIMITS, ...options.limits }
    this.peer = options.peer
  }

  get state (): ControlState {
    return this.#state
  }

  /** The error that failed the parser, if it failed. */
  get error (): FlyScanError | undefined {
    return this.#error
  }

  /** Replies completed by the push() that threw, before the malformed byte. */
  get salvage (): readonly ControlReply[] {
    return this.#salvage
  }

  /** Bytes pushed so far (the absolute offset of the next byte) and replies completed. */
  get stats (): { readonly bytes: number, readonly replies: number } {
    return { bytes: this.#base, replies: this.#replies }
  }

  /** The reply in progress, if some of it has arrived. */
  get partial (): PartialReply | undefined {
    if (this.#state === ControlState.MULTI) {
      const end = this.#lines.len > 0 ? this.#lines.start + this.#lines.len : this.#base
      return { offset: this.#replyStart, lines: this.#items.length, bytes: end - this.#replyStart }
    }
    if (this.#lines.len > 0) return { offset: this.#lines.start, lines: 0, bytes: this.#lines.len }
    return undefined
  }

  /**
   * Parses the next bytes from the socket and returns the replies they complete, in order. Throws a FlyScanError
   * (PANDA_PROTOCOL) naming the absolute byte offset on malformed input or a broken limit; the parser then stays
   * failed, every later push() throws the same error, and `salvage` holds the replies completed before the fault.
   */
  push (chunk: Uint8Array): ControlReply[] {
    if (this.#error !== undefined) throw this.#error
    this.#salvage = []
    const out: ControlReply[] = []
    let i = 0
    try {
      if (this.#state === ControlState.CLOSED && chunk.length > 0) {
        throw controlProtocolError(this.peer, this.#base, 'nothing after close()', describeControlBytes(chunk, 0, chunk.length))
      }
      while (i < chunk.length) i = this.#step(chunk, i, out)
    } catch (err) {
      this.#base += i
      this.#salvage = out
      throw this.#fail(err)
    }
    this.#base += chunk.length
    return out
  }

  /**
   * The socket closed. Returns the reply that was cut off, if any. Idempotent; after it, push() of any byte throws.
   */
  close (): PartialReply | undefined {
    if (this.#state === ControlState.CLOSED || this.#state === ControlState.FAILED) return undefined
    const partial = this.partial
    this.#state = ControlState.CLOSED
    this.#items = []
    this.#lines.len = 0
    return partial
  }

  #fail (err: unknown): FlyScanError {
    this.#state = ControlState.FAILED
    this.#items = []
    const error = err instanceof FlyScanError
      ? err
      : new FlyScanError(ErrorCode.PANDA_PROTOCOL, `PandA control port parser failed at offset ${this.#base}: ${String(err)}`, {
        details: { offset: this.#base }, cause: err
      })
    this.#error = error
    return error
  }

  /** Reads one line starting at `i` and handles it; returns the index after what was consumed. */
  #step (chunk: Uint8Array, i: number, out: ControlReply[]): number {
    const max = this.limits.maxLineBytes
    const [line, next] = this.#lines.read(chunk, i, this.#base, max, (offset, from, to) =>
      controlProtocolError(this.peer, offset, `a newline ending the reply line within ${max} bytes`,
        describeControlBytes(chunk, Math.max(from, to - 16), to)))
    if (line === undefined) return next
    this.#line(line, this.#lines.start, this.#base + next, out)
    return next
  }

  /** One whole line (without its newline) that began at absolute offset `at` and ended just before `next`. */
  #line (line: Uint8Array, at: number, next: number, out: ControlReply[]): void {
    const first = line[0]
    const isDot = line.length === 1 && first === 0x2e
    if (this.#state === ControlState.MULTI) {
      if (isDot) {
        this.#emit(out, { kind: 'multi', lines: this.#items, offset: this.#replyStart, bytes: next - this.#replyStart })
        this.#items = []
        this.#state = ControlState.IDLE
        return
      }
      if (first !== 0x21) {
        throw controlProtocolError(this.peer, at,
          `'!item' or '.' (inside the multi-value reply that began at offset ${this.#replyStart})`,
          describeControlBytes(line, 0, line.length))
      }
      this.#item(line, at, next)
      return
    }
    if (first === 0x21) {
      this.#replyStart = at
      this.#items = []
      this.#state = ControlState.MULTI
      this.#item(line, at, next)
      return
    }
    const place = { offset: at, bytes: next - at }
    if (isDot) {
      this.#emit(out, { kind: 'multi', lines: [], ...place })
    } else if (line.length === 2 && first === 0x4f && line[1] === 0x4b) {
      this.#emit(out, { kind: 'ok', ...place })
    } else if (line.length >= 4 && first === 0x4f && line[1] === 0x4b && line[2] === 0x20 && line[3] === 0x3d) {
      this.#emit(out, { kind: 'value', value: text(line.subarray(4)), ...place })
    } else if (line.length >= 3 && first === 0x45 && line[1] === 0x52 && line[2] === 0x52 && (line.length === 3 || line[3] === 0x20)) {
      this.#emit(out, { kind: 'error', message: text(line.subarray(4)), ...place })
    } else {
      throw controlProtocolError(this.peer, at, "a reply: 'OK', 'OK =value', 'ERR message', '!item' or '.'",
        describeControlBytes(line, 0, line.length))
    }
  }

  #item (line: Uint8Array, at: number, next: number): void {
    if (this.#items.length >= this.limits.maxReplyLines) {
      throw controlProtocolError(this.peer, at,
        `at most ${this.limits.maxReplyLines} lines in the multi-value reply that began at offset ${this.#replyStart}`, 'more')
    }
    if (next - this.#replyStart > this.limits.maxReplyBytes) {
      throw controlProtocolError(this.peer, at,
        `at most ${this.limits.maxReplyBytes} bytes in the multi-value reply that began at offset ${this.#replyStart}`, 'more')
    }
    this.#items.push(text(line.subarray(1)))
  }

  #emit (out: ControlReply[], reply: ControlReply): void {
    this.#replies++
    out.push(reply)
  }
}
