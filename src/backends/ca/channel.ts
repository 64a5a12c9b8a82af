/**
 * One Channel Access channel: connection state, native type, get, put (with or without completion) and monitors,
 * over this thread's CaContext. Values arrive as libca's host-order DBR structures and are decoded by the one DBR
 * codec (src/parsers/ca/dbr.ts), copied out of libca's buffer inside the callback.
 *
 * libca reconnects by itself after a server restart (it searches again, then re-issues every subscription), so a
 * monitor made once keeps delivering across restarts; the channel reports `disconnected` then `connected`.
 */
import { ErrorCode, FlyScanError } from '../../errors.js'
import {
  type DbrBase, DbrClass, type DbrPayload, type DbrValue, dbrSize, dbrType, dbrTypeName, decodeDbr, encodeDbr, isDbrType
} from '../../parsers/index.js'
import { defaults } from '../../../config/index.js'
import { CaContext, type CaResource } from './context.js'
import { Dbe, Eca, type EventArgs } from './libca.js'

export type CaConnectionState = 'connecting' | 'connected' | 'disconnected' | 'closed'

export interface CaChannelOptions {
  /** Default: this thread's context (CaContext.get()). */
  readonly context?: CaContext
  /** CA priority 0..99 (default 0). */
  readonly priority?: number
}

export interface CaGetOptions {
  /** DBR type to ask for; default DBR_TIME_<native>. */
  readonly type?: number
  /** Elements to ask for; 0 (default) is the server's current count (libca sends the element count to old servers). */
  readonly count?: number
  /** Default defaults.ca.getTimeoutMs. */
  readonly timeoutMs?: number
}

export interface CaMonitorOptions {
  /** DBE_ bits; default DBE_VALUE | DBE_ALARM. */
  readonly mask?: number
  /** A subscription the server failed (status other than ECA_NORMAL); default: a process warning. */
  readonly onError?: (err: FlyScanError) => void
}

/** A decoded monitor update. */
export type MonitorCallback = (payload: DbrPayload) => void
/**
 * An undecoded monitor update: `bytes` is libca's buffer itself, valid only until the callback returns (copy what
 * you keep, e.g. straight into a ring slot).
 */
export type RawMonitorCallback = (bytes: Uint8Array, type: number, count: number) => void

/** The error for an ECA status other than ECA_NORMAL; a lost connection is NOT_CONNECTED. */
function caError (context: CaContext, pv: string, what: string, status: number): FlyScanError {
  const text = context.lib.message(status)
  return new FlyScanError(status === Eca.DISCONN ? ErrorCode.NOT_CONNECTED : ErrorCode.CA, `${what} ${pv} failed: ${text}`,
    { details: { pv, status, eca: text } })
}

export class CaChannel {
  readonly pv: string
  readonly context: CaContext
  readonly #chid: bigint
  #state: CaConnectionState = 'connecting'
  #nativeBase: DbrBase | undefined
  #elementCount = 0
  readonly #listeners = new Set<(state: CaConnectionState) => void>()
  /** Gets and puts in flight: usr → reject. */
  readonly #pending = new Map<number, (err: FlyScanError) => void>()
  readonly #monitors = new Set<CaMonitor>()
  readonly #resource: CaResource = { release: async () => { await this.clear() } }
  #cleared: Promise<void> | undefined

  constructor (pv: string, options: CaChannelOptions = {}) {
    this.pv = pv
    this.context = options.context ?? CaContext.get()
    this.context.assertAlive(`opening ${pv}`)
    const lib = this.context.lib
    const [status, chid] = lib.createChannel(pv, this.context.connectionCallback, 0, options.priority ?? 0)
    if (status !== Eca.NORMAL || chid === null) throw caError(this.context, pv, 'creating the channel', status)
    this.#chid = chid
    this.context.onConnection(chid, (up) => { this.#onConnection(up) })
    this.context.track(this.#resource)
    this.context.requestFlush()
  }

  get state (): CaConnectionState { return this.#state }
  get connected (): boolean { return this.#state === 'connected' }

  /** The native DBR base (DBR_DOUBLE, ...), known once connected (kept while disconnected). */
  get nativeType (): DbrBase {
    if (this.#nativeBase === undefined) throw this.#neverConnected('native type')
    return this.#nativeBase
  }

  /** The element count (NELM) the server reported at the last connection. */
  get elementCount (): number {
    if (this.#nativeBase === undefined) throw this.#neverConnected('element count')
    return this.#elementCount
  }

  #neverConnected (what: string): FlyScanError {
    return new FlyScanError(ErrorCode.NOT_CONNECTED, `${this.pv} has not connected yet: its ${what} is unknown`, { details: { pv: this.pv } })
  }

  /** The server's host:port, or '' when not connected. */
  get host (): string {
    if (this.#cleared !== undefined) return ''
    return this.context.lib.hostName(this.#chid)
  }

  /** `cb` gets 'connected', 'disconnected' and 'closed'; returns the function that stops it. */
  onConnectionChange (cb: (state: CaConnectionState) => void): () => void {
    this.#listeners.add(cb)
    return () => { this.#listeners.delete(cb) }
  }

  /** Resolve when connected; NOT_CONNECTED naming the PV and the search settings after `timeoutMs`. */
  async waitConnected (timeoutMs: number): Promise<void> {
    this.#assertOpen('connecting to')
    if (this.#state === 'connected') return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        stop()
        const why = this.#state === 'disconnected' ? 'it was connected and lost its server' : 'no server answered the search'
        reject(new FlyScanError(ErrorCode.NOT_CONNECTED,
          `${this.pv} did not connect within ${timeoutMs} ms: ${why} (${this.context.describeSearch()})`,
          { details: { pv: this.pv, timeoutMs, search: this.context.describeSearch() } }))
      }, timeoutMs)
      const stop = this.onConnectionChange((state) => {
        if (state === 'connected') {
          clearTimeout(timer)
          stop()
          resolve()
        } else if (state === 'closed') {
          clearTimeout(timer)
          stop()
          reject(new FlyScanError(ErrorCode.CANCELLED, `${this.pv} was closed while connecting`, { details: { pv: this.pv } }))
        }
      })
    })
  }

  /** ca_array_get_callback: the decoded structure (DBR_TIME_<native>, server's current count, by default). */
  async get (options: CaGetOptions = {}): Promise<DbrPayload> {
    this.#assertOpen('reading')
    const type = options.type ?? dbrType(this.nativeType, DbrClass.TIME)
    const count = options.count ?? 0
    const timeoutMs = options.timeoutMs ?? defaults.ca.getTimeoutMs
    checkType(this.pv, type)
    const what = `get of ${dbrTypeName(type)} from`
    return await this.#request<DbrPayload>(what, timeoutMs, (usr) => {
      return this.context.lib.arrayGetCallback(type, count, this.#chid, this.context.eventCallback, usr)
    }, (args) => decodeDbr(args.type, args.count, this.#view(args), true))
  }

  /**
   * Write `value` as `type` (a plain DBR_ type; values of another base are converted as C casts them). With `wait`,
   * ca_array_put_callback: resolves when the server reports the write complete (a motor's move, an acquisition),
   * rejects with a CA error naming the PV and libca's message. Without, ca_array_put: resolves once queued.
   */
  async put (type: number, value: DbrValue, wait: boolean): Promise<void> {
    this.#assertOpen('writing')
    checkType(this.pv, type)
    const count = value.length
    if (count === 0) throw new FlyScanError(ErrorCode.BAD_INPUT, `cannot write an empty array to ${this.pv}`, { details: { pv: this.pv } })
    if (this.#nativeBase !== undefined && count > this.#elementCount) {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `cannot write ${count} elements to ${this.pv}: it holds at most ${this.#elementCount}`,
        { details: { pv: this.pv, count, elementCount: this.#elementCount } })
    }
    const bytes = new Uint8Array(dbrSize(type, count))
    encodeDbr(type, count, { value, status: 0, severity: 0 }, bytes, 0, true)
    const lib = this.context.lib
    if (!wait) {
      const status = lib.arrayPut(type, count, this.#chid, bytes)
      if (status !== Eca.NORMAL) throw caError(this.context, this.pv, `put of ${dbrTypeName(type)} to`, status)
      this.context.requestFlush()
      return
    }
    await this.#request<undefined>(`put of ${dbrTypeName(type)} to`, undefined, (usr) => {
      return lib.arrayPutCallback(type, count, this.#chid, bytes, this.context.eventCallback, usr)
    }, () => undefined)
  }

  /** ca_create_subscription delivering decoded values (DBR_TIME_<native> at the server's current count by default). */
  monitor (callback: MonitorCallback, options: CaMonitorOptions & { type?: number, count?: number } = {}): CaMonitor {
    const type = options.type ?? dbrType(this.nativeType, DbrClass.TIME)
    return new CaMonitor(this, type, options.count ?? 0, options, (args) => {
      callback(decodeDbr(args.type, args.count, this.#view(args), true))
    })
  }

  /** ca_create_subscription delivering libca's buffer undecoded, for a caller that copies it itself (a frame ring). */
  monitorRaw (type: number, count: number, callback: RawMonitorCallback, options: CaMonitorOptions = {}): CaMonitor {
    return new CaMonitor(this, type, count, options, (args) => {
      callback(this.#view(args), args.type, args.count)
    })
  }

  /**
   * Close every monitor, reject gets and puts in flight with CANCELLED, and clear the channel. Safe to call twice;
   * the context's destroy() does it for every channel still open.
   */
  async clear (): Promise<void> {
    if (this.#cleared !== undefined) return await this.#cleared
    this.#cleared = this.#clear()
    return await this.#cleared
  }

  async #clear (): Promise<void> {
    this.#setState('closed')
    const cancelled = new FlyScanError(ErrorCode.CANCELLED, `${this.pv} was closed`, { details: { pv: this.pv } })
    for (const [usr, reject] of this.#pending) {
      this.context.removeEventHandler(usr)
      reject(cancelled)
    }
    this.#pending.clear()
    await Promise.allSettled([...this.#monitors].map(async (m) => { await m.close() }))
    await this.context.lib.clearChannel(this.#chid)
    this.context.offConnection(this.#chid)
    this.context.untrack(this.#resource)
  }

  /** @internal The chid, for CaMonitor. */
  get chid (): bigint { return this.#chid }
  /** @internal */
  addMonitor (m: CaMonitor): void { this.#monitors.add(m) }
  /** @internal */
  removeMonitor (m: CaMonitor): void { this.#monitors.delete(m) }

  /** @internal Fail with CANCELLED once cleared (libca must never see a cleared chid). */
  assertOpen (what: string): void { this.#assertOpen(what) }

  #assertOpen (what: string): void {
    if (this.#cleared !== undefined) {
      throw new FlyScanError(ErrorCode.CANCELLED, `${what} ${this.pv}: the channel is closed`, { details: { pv: this.pv } })
    }
    this.context.assertAlive(`${what} ${this.pv}`)
  }

  #view (args: EventArgs): Uint8Array {
    if (args.dbr === null) throw new FlyScanError(ErrorCode.CA, `libca delivered no data for ${this.pv}`, { details: { pv: this.pv } })
    return this.context.lib.view(args.dbr, dbrSize(args.type, args.count))
  }

  /** Issue one request whose completion arrives as an event callback; decode inside the callback. */
  async #request<R> (what: string, timeoutMs: number | undefined, issue: (usr: number) => number, decode: (args: EventArgs) => R): Promise<R> {
    const context = this.context
    return await new Promise<R>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const finish = (): void => {
        context.removeEventHandler(usr)
        this.#pending.delete(usr)
        clearTimeout(timer)
      }
      const usr = context.addEventHandler((args) => {
        finish()
        if (args.status !== Eca.NORMAL) {
          reject(caError(context, this.pv, what, args.status))
          return
        }
        try {
          resolve(decode(args))
        } catch (err) {
          reject(err)
        }
      })
      const status = issue(usr)
      if (status !== Eca.NORMAL) {
        finish()
        reject(caError(context, this.pv, what, status))
        return
      }
      this.#pending.set(usr, (err) => { finish(); reject(err) })
      context.requestFlush()
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          finish()
          reject(new FlyScanError(ErrorCode.TIMEOUT, `${what} ${this.pv} got no answer within ${timeoutMs} ms`,
            { details: { pv: this.pv, timeoutMs } }))
        }, timeoutMs)
      }
    })
  }

  #onConnection (up: boolean): void {
    if (this.#cleared !== undefined) return
    if (up) {
      const lib = this.context.lib
      const type = lib.fieldType(this.#chid)
      // The connection may already be gone again by the time this runs; the down callback follows.
      if (type >= 0) {
        this.#nativeBase = type as DbrBase
        this.#elementCount = lib.elementCount(this.#chid)
      }
    }
    this.#setState(up ? 'connected' : 'disconnected')
  }

  #setState (state: CaConnectionState): void {
    if (this.#state === state) return
    this.#state = state
    for (const l of [...this.#listeners]) l(state)
  }
}

/** One subscription (ca_create_subscription); libca keeps it across reconnections. */
export class CaMonitor {
  readonly channel: CaChannel
  readonly type: number
  readonly #usr: number
  readonly #evid: bigint
  #closed: Promise<void> | undefined

  /** @internal Use CaChannel.monitor / monitorRaw. */
  constructor (channel: CaChannel, type: number, count: number, options: CaMonitorOptions, deliver: (args: EventArgs) => void) {
    channel.assertOpen('monitoring')
    checkType(channel.pv, type)
    this.channel = channel
    this.type = type
    const context = channel.context
    const onError = options.onError ?? ((err: FlyScanError) => { process.emitWarning(err) })
    this.#usr = context.addEventHandler((args) => {
      if (this.#closed !== undefined) return
      if (args.status !== Eca.NORMAL) {
        onError(caError(context, channel.pv, `monitor of ${dbrTypeName(type)} on`, args.status))
        return
      }
      deliver(args)
    })
    const [status, evid] = context.lib.createSubscription(type, count, channel.chid, options.mask ?? (Dbe.VALUE | Dbe.ALARM),
      context.eventCallback, this.#usr)
    if (status !== Eca.NORMAL || evid === null) {
      context.removeEventHandler(this.#usr)
      throw caError(context, channel.pv, `subscribing to ${dbrTypeName(type)} of`, status)
    }
    this.#evid = evid
    channel.addMonitor(this)
    context.requestFlush()
  }

  get closed (): boolean { return this.#closed !== undefined }

  /** ca_clear_subscription; no callback is delivered once this is called. Safe to call twice. */
  async close (): Promise<void> {
    if (this.#closed !== undefined) return await this.#closed
    this.#closed = (async () => {
      await this.channel.context.lib.clearSubscription(this.#evid)
      this.channel.context.removeEventHandler(this.#usr)
      this.channel.removeMonitor(this)
    })()
    return await this.#closed
  }
}

function checkType (pv: string, type: number): void {
  if (!isDbrType(type)) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `DBR type ${type} asked of ${pv} is not one of 0..34`, { details: { pv, type } })
  }
}
