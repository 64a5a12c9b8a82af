/**
 * Sans-IO state of one control-port connection: the FIFO of commands sent and not yet answered, matched to
 * replies by order (the box answers every command exactly once, in order). The socket adapter (src/panda/) writes
 * what send() returns, pushes what it reads, and settles one promise per completion. Like PandABlocks-client's
 * ControlConnection, but every outcome is a completion with a coded error, and nothing throws on bad bytes.
 */
import { ErrorCode, FlyScanError } from '../../errors.js'
import { PandaControlParser } from './parser.js'
import type { ControlLimits, PartialReply } from './parser.js'
import type { ControlCommand, ControlReply, ReplyExpect } from './types.js'

/** The outcome of one command, in the order the commands were sent. */
export type ControlCompletion =
  | { readonly id: number, readonly label: string, readonly ok: true, readonly value: unknown }
  | { readonly id: number, readonly label: string, readonly ok: false, readonly error: FlyScanError }

export const ConnectionState = {
  OPEN: 'open',
  /** The reply stream broke (malformed bytes, a broken limit, a reply with no command pending). */
  FAILED: 'failed',
  /** close() was called: the socket closed or the client gave up. */
  CLOSED: 'closed'
} as const
export type ConnectionState = typeof ConnectionState[keyof typeof ConnectionState]

interface Pending {
  readonly id: number
  readonly command: ControlCommand<unknown>
}

/** How many pending commands an error message lists by name. */
const LISTED_PENDING = 8

const EXPECTED: Readonly<Record<ReplyExpect, string>> = {
  ok: "'OK'",
  value: "a single value ('OK =value')",
  multi: "a multi-value reply ('!item' lines then '.')",
  'value-or-multi': "a value ('OK =value') or a multi-value reply"
}

function describeReply (reply: ControlReply): string {
  switch (reply.kind) {
    case 'ok': return "'OK'"
    case 'value': return `a single value ${JSON.stringify(reply.value.length > 60 ? reply.value.slice(0, 60) + '...' : reply.value)}`
    case 'multi': return `a multi-value reply of ${reply.lines.length} line${reply.lines.length === 1 ? '' : 's'}`
    case 'error': return `'ERR ${reply.message}'`
  }
}

function matches (expect: ReplyExpect, reply: ControlReply): boolean {
  switch (expect) {
    case 'ok': return reply.kind === 'ok'
    case 'value': return reply.kind === 'value'
    case 'multi': return reply.kind === 'multi'
    case 'value-or-multi': return reply.kind === 'value' || reply.kind === 'multi'
  }
}

export interface ControlConnectionOptions {
  /** Who is at the other end, for error messages, e.g. `10.68.1.5:8888`. */
  readonly peer?: string
  readonly limits?: Partial<ControlLimits>
}

export class PandaControlConnection {
  readonly peer: string | undefined
  readonly #parser: PandaControlParser
  readonly #encoder = new TextEncoder()
  /** Commands sent and not yet answered, oldest first from #head. */
  #pending: Array<Pending | undefined> = []
  #head = 0
  #nextId = 1
  #state: ConnectionState = ConnectionState.OPEN
  #error: FlyScanError | undefined

  constructor (options: ControlConnectionOptions = {}) {
    this.peer = options.peer
    this.#parser = new PandaControlParser({ peer: options.peer, limits: options.limits })
  }

  get state (): ConnectionState {
    return this.#state
  }

  /** Why the connection ended (failed or closed), if it has. */
  get error (): FlyScanError | undefined {
    return this.#error
  }

  /** Labels of the commands waiting for their reply, oldest first. */
  get pending (): string[] {
    return this.#pending.slice(this.#head).map((p) => (p as Pending).command.label)
  }

  get pendingCount (): number {
    return this.#pending.length - this.#head
  }

  /** Bytes received so far and replies parsed. */
  get stats (): { readonly bytes: number, readonly replies: number } {
    return this.#parser.stats
  }

  #where (): string {
    return `PandA control port${this.peer === undefined ? '' : ' ' + this.peer}`
  }

  /**
   * Queues a command and returns the bytes to write for it (its lines, each ended by `\n`) and the id its
   * completion will carry. Throws a CONNECTION FlyScanError if the connection has ended.
   */
  send<T> (command: ControlCommand<T>): { readonly id: number, readonly bytes: Uint8Array } {
    if (this.#state !== ConnectionState.OPEN) {
      throw new FlyScanError(ErrorCode.CONNECTION,
        `${this.#where()}: cannot send '${command.label}': the connection has ${this.#state === ConnectionState.FAILED ? 'failed' : 'closed'}` +
        (this.#error === undefined ? '' : ` (${this.#error.message})`), {
          cause: this.#error, details: { command: command.label, peer: this.peer ?? null }
        })
    }
    const id = this.#nextId++
    this.#pending.push({ id, command: command as ControlCommand<unknown> })
    return { id, bytes: this.#encoder.encode(command.lines.join('\n') + '\n') }
  }

  /**
   * Parses bytes from the socket and returns the completions they bring, in order. Never throws: if the stream
   * breaks, the connection fails, every pending command gets a failed completion (PANDA_PROTOCOL, with the stream
   * error as its cause), `error` tells why, and the caller should close the socket.
   */
  push (chunk: Uint8Array): ControlCompletion[] {
    if (this.#state !== ConnectionState.OPEN) return []
    let replies: readonly ControlReply[]
    let broken: FlyScanError | undefined
    try {
      replies = this.#parser.push(chunk)
    } catch (err) {
      replies = this.#parser.salvage
      broken = err instanceof FlyScanError ? err : new FlyScanError(ErrorCode.PANDA_PROTOCOL, String(err), { cause: err })
    }
    const out: ControlCompletion[] = []
    for (const reply of replies) {
      const next = this.#pending[this.#head]
      if (next === undefined) {
        broken = new FlyScanError(ErrorCode.PANDA_PROTOCOL,
          `${this.#where()}, offset ${reply.offset}: a reply (${describeReply(reply)}) with no command pending`, {
            details: { offset: reply.offset, peer: this.peer ?? null }
          })
        break
      }
      this.#pending[this.#head++] = undefined
      out.push(this.#complete(next, reply))
    }
    if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
      this.#pending = this.#pending.slice(this.#head)
      this.#head = 0
    }
    if (broken !== undefined) this.#failAll(out, broken)
    return out
  }

  #complete (p: Pending, reply: ControlReply): ControlCompletion {
    const label = p.command.label
    const details = { command: label, offset: reply.offset, peer: this.peer ?? null }
    if (reply.kind === 'error') {
      return {
        id: p.id,
        label,
        ok: false,
        error: new FlyScanError(ErrorCode.PANDA_CONTROL_ERR, `${this.#where()}: '${label}' failed: ERR ${reply.message}`, {
          details: { ...details, reply: reply.message }
        })
      }
    }
    if (!matches(p.command.expect, reply)) {
      return {
        id: p.id,
        label,
        ok: false,
        error: new FlyScanError(ErrorCode.PANDA_PROTOCOL,
          `${this.#where()}, offset ${reply.offset}: '${label}' expects ${EXPECTED[p.command.expect]}, got ${describeReply(reply)}`, { details })
      }
    }
    try {
      return { id: p.id, label, ok: true, value: p.command.decode(reply) }
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err)
      return {
        id: p.id,
        label,
        ok: false,
        error: new FlyScanError(ErrorCode.PANDA_PROTOCOL, `${this.#where()}, offset ${reply.offset}: reply to '${label}': ${why}`, {
          details, cause: err
        })
      }
    }
  }

  /** A sentence listing the pending commands, e.g. `3 commands were pending: 'A?', 'B=1', 'C?'`. */
  #pendingList (): string {
    const labels = this.pending
    const shown = labels.slice(0, LISTED_PENDING).map((l) => `'${l}'`).join(', ')
    const more = labels.length > LISTED_PENDING ? ` and ${labels.length - LISTED_PENDING} more` : ''
    return `${labels.length} command${labels.length === 1 ? ' was' : 's were'} pending: ${shown}${more}`
  }

  #failAll (out: ControlCompletion[], cause: FlyScanError): void {
    this.#state = ConnectionState.FAILED
    this.#error = cause
    if (this.pendingCount > 0) {
      const list = this.#pendingList()
      for (let k = this.#head; k < this.#pending.length; k++) {
        const p = this.#pending[k] as Pending
        out.push({
          id: p.id,
          label: p.command.label,
          ok: false,
          error: new FlyScanError(ErrorCode.PANDA_PROTOCOL, `'${p.command.label}' got no reply: ${cause.message}; ${list}`, {
            cause, details: { command: p.command.label, peer: this.peer ?? null }
          })
        })
      }
    }
    this.#pending = []
    this.#head = 0
  }

  /**
   * The connection ended: the socket closed (`reason` says how, e.g. `closed by the box`), the client closed it, or
   * a reply timed out. Every pending command fails with `code` (CONNECTION unless told otherwise), in a message
   * naming the peer, the command, where its reply was cut off if it was, and every command that was pending.
   * Idempotent: after the first call it returns nothing.
   */
  close (reason: string, code: ErrorCode = ErrorCode.CONNECTION): ControlCompletion[] {
    const partial: PartialReply | undefined = this.#parser.close()
    if (this.#state !== ConnectionState.OPEN) return []
    const out: ControlCompletion[] = []
    const list = this.pendingCount > 0 ? `; ${this.#pendingList()}` : ''
    const ended = new FlyScanError(code, `${this.#where()} ${reason}${list}`, {
      details: { peer: this.peer ?? null, pending: this.pendingCount }
    })
    for (let k = this.#head; k < this.#pending.length; k++) {
      const p = this.#pending[k] as Pending
      const cut = k === this.#head && partial !== undefined
        ? ` (its reply was cut off: ${partial.lines} line${partial.lines === 1 ? '' : 's'}, ${partial.bytes} bytes from offset ${partial.offset})`
        : ''
      out.push({
        id: p.id,
        label: p.command.label,
        ok: false,
        error: new FlyScanError(code, `'${p.command.label}' got no reply${cut}: ${ended.message}`, {
          cause: ended, details: { command: p.command.label, peer: this.peer ?? null, pending: this.pendingCount }
        })
      })
    }
    this.#state = ConnectionState.CLOSED
    this.#error = ended
    this.#pending = []
    this.#head = 0
    return out
  }
}
