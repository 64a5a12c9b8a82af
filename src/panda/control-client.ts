/**
 * The PandA control port (TCP 8888) over a socket: a thin adapter around the sans-IO PandaControlConnection
 * (src/parsers/panda-control/). Commands may be pipelined: each call writes its command at once and its promise
 * settles when the reply that answers it (by order) arrives. ../../docs/panda-control-port.md has the protocol.
 *
 * Every wait is bounded: connecting by `timeoutMs`, and each pending command by `replyTimeoutMs` without progress
 * (no byte received while a command waits). A timeout, the socket closing or a broken reply stream ends the
 * connection and fails every pending command; later calls reject at once.
 */
import net from 'node:net'
import { ErrorCode, FlyScanError } from '../errors.js'
import {
  armCommand, attributeListCommand, blocksCommand, changesCommand, descCommand, disarmCommand, enumsCommand,
  fieldListCommand, fieldTarget, getCommand, getMultilineCommand, idnCommand, PandaControlConnection,
  pcapCapturedCommand, pcapCompletionCommand, pcapStatusCommand, putCommand, queryCommand, readTableCommand,
  resetChangesCommand, tableWriteCommand
} from '../parsers/index.js'
import type {
  BlockFieldListing, ChangeGroup, ControlChanges, ControlCommand, ControlCompletion, ControlLimits,
  PandaIdentification, PcapStatus, TableWriteOptions
} from '../parsers/index.js'

export interface PandaControlClientOptions {
  /**
   * Bound on a pending command waiting with no byte arriving. Replies are matched by order, so a reply that never
   * comes stalls every later one: the connection is closed and every pending command fails with TIMEOUT.
   * Defaults to the connect timeout.
   */
  readonly replyTimeoutMs?: number
  readonly limits?: Partial<ControlLimits>
}

interface Settler {
  readonly resolve: (value: unknown) => void
  readonly reject: (err: FlyScanError) => void
}

export class PandaControlClient {
  readonly host: string
  readonly port: number
  readonly replyTimeoutMs: number
  readonly #socket: net.Socket
  readonly #connection: PandaControlConnection
  readonly #settlers = new Map<number, Settler>()
  #timer: NodeJS.Timeout | undefined
  /** Resolves when the socket has closed, for whatever reason (then `error` says why). */
  readonly closed: Promise<void>

  /**
   * Connects to the box's control port. Rejects with CONNECTION if the connection is refused or not made within
   * `timeoutMs`.
   */
  static async connect (host: string, port: number, timeoutMs: number, options: PandaControlClientOptions = {}): Promise<PandaControlClient> {
    return await new Promise<PandaControlClient>((resolve, reject) => {
      const socket = net.connect({ host, port })
      const onError = (err: Error): void => {
        clearTimeout(timer)
        socket.destroy()
        reject(new FlyScanError(ErrorCode.CONNECTION, `PandA control port ${host}:${port}: ${err.message}`, {
          cause: err, details: { host, port }
        }))
      }
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new FlyScanError(ErrorCode.CONNECTION, `PandA control port ${host}:${port}: no connection within ${timeoutMs} ms`, {
          details: { host, port, timeoutMs }
        }))
      }, timeoutMs)
      socket.once('error', onError)
      socket.once('connect', () => {
        clearTimeout(timer)
        // The client's own listeners go on before the connect-phase one comes off: no error goes unheard.
        const client = new PandaControlClient(socket, host, port, options.replyTimeoutMs ?? timeoutMs, options.limits)
        socket.off('error', onError)
        resolve(client)
      })
    })
  }

  private constructor (socket: net.Socket, host: string, port: number, replyTimeoutMs: number, limits?: Partial<ControlLimits>) {
    this.host = host
    this.port = port
    this.replyTimeoutMs = replyTimeoutMs
    this.#socket = socket
    this.#connection = new PandaControlConnection({ peer: `${host}:${port}`, limits })
    socket.setNoDelay(true)
    let socketError: Error | undefined
    socket.on('data', (chunk: Buffer) => {
      this.#settle(this.#connection.push(chunk))
      if (this.#connection.error !== undefined) socket.destroy()
      else this.#armTimer(true)
    })
    socket.on('error', (err) => { socketError = err })
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.#stopTimer()
        const how = socketError === undefined ? 'closed the connection' : `connection failed: ${socketError.message}`
        this.#settle(this.#connection.close(how))
        resolve()
      })
    })
  }

  /** Why the connection ended, once it has (undefined while it is open). */
  get error (): FlyScanError | undefined {
    return this.#connection.error
  }

  /** Labels of the commands waiting for their reply, oldest first. */
  get pending (): string[] {
    return this.#connection.pending
  }

  /** Sends any command built by src/parsers/panda-control and resolves with its decoded reply. */
  async send<T> (command: ControlCommand<T>): Promise<T> {
    const { id, bytes } = this.#connection.send(command)
    const result = new Promise<T>((resolve, reject) => {
      this.#settlers.set(id, { resolve: resolve as (value: unknown) => void, reject })
    })
    this.#socket.write(bytes)
    this.#armTimer(false)
    return await result
  }

  #settle (completions: readonly ControlCompletion[]): void {
    for (const c of completions) {
      const s = this.#settlers.get(c.id)
      if (s === undefined) continue
      this.#settlers.delete(c.id)
      if (c.ok) s.resolve(c.value)
      else s.reject(c.error)
    }
    if (this.#connection.pendingCount === 0) this.#stopTimer()
  }

  /** Starts the reply timer when a command waits and none runs; `progress` (bytes arrived) restarts it. */
  #armTimer (progress: boolean): void {
    if (this.#connection.pendingCount === 0) return
    if (this.#timer !== undefined && !progress) return
    this.#stopTimer()
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      const oldest = this.#connection.pending[0] ?? ''
      this.#settle(this.#connection.close(
        `gave no reply to '${oldest}' within ${this.replyTimeoutMs} ms (replies are matched by order, so the connection is closed)`,
        ErrorCode.TIMEOUT))
      this.#socket.destroy()
    }, this.replyTimeoutMs)
  }

  #stopTimer (): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /**
   * Closes the connection. Commands still pending fail with CANCELLED. Idempotent; resolves once the socket has
   * closed.
   */
  async close (): Promise<void> {
    this.#stopTimer()
    this.#settle(this.#connection.close('was closed by the client', ErrorCode.CANCELLED))
    this.#socket.destroy()
    await this.closed
  }

  // -------------------------------------------------------------------------------------------------------------
  // Typed helpers

  /** `BLOCK.FIELD?`, e.g. getField('PCAP', 'ACTIVE') → '1'. */
  async getField (block: string, field: string): Promise<string> {
    return await this.send(getCommand(fieldTarget(block, field)))
  }

  /** `BLOCK.FIELD=value`, e.g. putField('CLOCK1', 'PERIOD', 0.01). */
  async putField (block: string, field: string, value: string | number): Promise<void> {
    await this.send(putCommand(fieldTarget(block, field), value))
  }

  /** `BLOCK.FIELD.ATTR?`, e.g. getAttr('PULSE1', 'DELAY', 'UNITS') → 's'. */
  async getAttr (block: string, field: string, attr: string): Promise<string> {
    return await this.send(getCommand(fieldTarget(block, field, attr)))
  }

  /** `BLOCK.FIELD.ATTR=value`, e.g. putAttr('INENC1', 'VAL', 'CAPTURE', 'Mean'). */
  async putAttr (block: string, field: string, attr: string, value: string | number): Promise<void> {
    await this.send(putCommand(fieldTarget(block, field, attr), value))
  }

  /** `TARGET?` answered by a single value, for any target (`*CLOCK_FREQ`, `PCAP.TS_TRIG.UNITS`...). */
  async get (target: string): Promise<string> {
    return await this.send(getCommand(target))
  }

  /** `TARGET?` when the form of the answer is not known: a string, or the lines of a multi-value reply. */
  async query (target: string): Promise<string | string[]> {
    return await this.send(queryCommand(target))
  }

  /** `TARGET=value` for any target (`*CAPTURE=`, `*CHANGES=S`...). */
  async put (target: string, value: string | number = ''): Promise<void> {
    await this.send(putCommand(target, value))
  }

  /** `TARGET?` answered by a multi-value list (`PCAP.*`, `*CAPTURE`, `*WHO`...): the lines without `!`. */
  async getMultiline (target: string): Promise<string[]> {
    return await this.send(getMultilineCommand(target))
  }

  /** A table write (`SEQ1.TABLE<`, `<<`, `<<|`, optionally `B`): 32-bit words, ROW_WORDS per row. */
  async putTable (block: string, field: string, words: ArrayLike<number>, options: TableWriteOptions = {}): Promise<void> {
    await this.send(tableWriteCommand(fieldTarget(block, field), words, options))
  }

  /** A table's words (`SEQ1.TABLE?`). */
  async readTable (block: string, field: string): Promise<Uint32Array> {
    return await this.send(readTableCommand(fieldTarget(block, field)))
  }

  /** `*PCAP.ARM=`. */
  async arm (): Promise<void> {
    await this.send(armCommand())
  }

  /** `*PCAP.DISARM=`. */
  async disarm (): Promise<void> {
    await this.send(disarmCommand())
  }

  /** `*PCAP.STATUS?` → {state: 'Busy' | 'Idle', readers, takingData}. */
  async pcapStatus (): Promise<PcapStatus> {
    return await this.send(pcapStatusCommand())
  }

  /** `*PCAP.CAPTURED?`: rows captured in the current or last capture. */
  async pcapCaptured (): Promise<number> {
    return await this.send(pcapCapturedCommand())
  }

  /** `*PCAP.COMPLETION?`: `Busy`, `Ok`, `Disarmed`, ... */
  async pcapCompletion (): Promise<string> {
    return await this.send(pcapCompletionCommand())
  }

  /** `*CHANGES?` / `*CHANGES.<group>?`: what changed since this connection last asked (everything, the first time). */
  async changes (group?: ChangeGroup): Promise<ControlChanges> {
    return await this.send(changesCommand(group))
  }

  /** `*CHANGES=` (forget pending changes) or `*CHANGES=S` (report everything again). */
  async resetChanges (group?: ChangeGroup, from: 'now' | 'start' = 'now'): Promise<void> {
    await this.send(resetChangesCommand(group, from))
  }

  /** `*BLOCKS?` → block name → instance count. */
  async blocks (): Promise<Map<string, number>> {
    return await this.send(blocksCommand())
  }

  /** `BLOCK.*?` → the block's fields with their types. */
  async fields (block: string): Promise<BlockFieldListing[]> {
    return await this.send(fieldListCommand(block))
  }

  /** `BLOCK.FIELD.*?` → the field's attribute names. */
  async attributes (block: string, field: string): Promise<string[]> {
    return await this.send(attributeListCommand(block, field))
  }

  /** `*DESC.BLOCK[.FIELD[.ATTR]]?` → the description. */
  async desc (block: string, field?: string, attr?: string): Promise<string> {
    return await this.send(descCommand(block, field, attr))
  }

  /** `*ENUMS.BLOCK.FIELD[.ATTR]?` → the allowed values. */
  async enums (block: string, field: string, attr?: string): Promise<string[]> {
    return await this.send(enumsCommand(block, field, attr))
  }

  /** `*IDN?` → name, software, FPGA and rootfs versions. */
  async idn (): Promise<PandaIdentification> {
    return await this.send(idnCommand())
  }
}
