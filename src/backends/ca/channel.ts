/**
 * One Channel Access channel: connection state, native type, get, put (with or without completion) and monitors,
 * over this thread's CaContext. Values arrive as libca's host-order DBR structures and are copied out of libca's
 * buffer inside the callback: the header is decoded by the one DBR codec (src/parsers/ca/dbr.ts) from a small
 * scratch copy, and an array value is copied (memcpy) straight into the typed array handed to the caller, so an
 * update allocates that array and nothing else of its size.
 *
 * libca reconnects by itself after a server restart (it searches again, then re-issues every subscription), so a
 * monitor made once keeps delivering across restarts; the channel reports `disconnected` then `connected`.
 */
import { ErrorCode, FlyScanError } from '../../errors.js'
import {
  DbrBase, DbrClass, type DbrPayload, type DbrValue, dbrSize, dbrType, dbrTypeName, decodeDbr, elementSize, encodeDbr,
  isDbrType, numericValueOn, splitDbrType, valueOffset
} from '../../parsers/index.js'
import { defaults } from '../../../config/index.js'
import { CaContext, type CaResource } from './context.js'
import { Dbe, Eca, type EventArgs, type LibCa } from './libca.js'

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
 * you keep). Each update wraps the buffer in a new ArrayBuffer; for large arrays prefer monitorCopy.
 */
export type RawMonitorCallback = (bytes: Uint8Array, type: number, count: number) => void

/**
 * One update still in libca's buffer, handed to a monitorCopy callback. It is usable only during the callback (the
 * same object is reused for the next update); copyTo and decode throw afterwards.
 */
export interface CaRawUpdate {
  /** The DBR type and element count delivered. */
  readonly type: number
  readonly count: number
  /** Bytes of the whole DBR structure: dbrSize(type, count). */
  readonly byteLength: number
  /** Where the value starts in the structure (after status, severity, timestamp... and C padding). */
  readonly valueOffset: number
  /** Bytes of the value: count x the element size. */
  readonly valueBytes: number
  /**
   * Copy `length` bytes of the structure from `srcOffset` into `dest`, from its first byte (memcpy: no allocation).
   * `srcOffset` defaults to `valueOffset`, `length` to the end of the value: `copyTo(slot)` copies the value alone,
   * `copyTo(buf, 0)` the header and the value. BAD_INPUT if the range leaves the structure or `dest` is shorter
   * than `length`.
   */
  copyTo: (dest: Uint8Array, srcOffset?: number, length?: number) => void
  /** The decoded structure, as CaChannel.monitor delivers it (allocates the value array). */
  decode: () => DbrPayload
}

export type CopyMonitorCallback = (update: CaRawUpdate) => void

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
    const [status, chid] = this.context.createChannel(pv, 0, options.priority ?? 0)
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
    }, (args) => decodeLibca(this.context.lib, this.#dbr(args), args.type, args.count))
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
      callback(decodeLibca(this.context.lib, this.#dbr(args), args.type, args.count))
    })
  }

  /**
   * ca_create_subscription handing each update to `callback` still in libca's buffer, to copy where it belongs (a
   * frame straight into a ring slot: `update.copyTo(slot)`), with no allocation per update.
   */
  monitorCopy (type: number, count: number, callback: CopyMonitorCallback, options: CaMonitorOptions = {}): CaMonitor {
    const update = new LibcaUpdate(this.context.lib, this.pv)
    return new CaMonitor(this, type, count, options, (args) => {
      update.open(this.#dbr(args), args.type, args.count)
      try {
        callback(update)
      } finally {
        update.close()
      }
    })
  }

  /**
   * ca_create_subscription delivering libca's buffer as a Uint8Array (a new ArrayBuffer per update, valid during the
   * callback only). monitorCopy does the same job without the allocation.
   */
  monitorRaw (type: number, count: number, callback: RawMonitorCallback, options: CaMonitorOptions = {}): CaMonitor {
    return new CaMonitor(this, type, count, options, (args) => {
      callback(this.context.lib.view(this.#dbr(args), dbrSize(args.type, args.count)), args.type, args.count)
    })
  }

  /**
   * The estimated beacon period of this channel's server, in ms; undefined until libca has received two of its
   * beacons, which reach a client only through a CA repeater (docs/channel-access.md).
   */
  get beaconPeriodMs (): number | undefined {
    if (this.#cleared !== undefined || this.#state !== 'connected') return undefined
    const s = this.context.lib.beaconPeriod(this.#chid)
    return s >= 0 ? s * 1000 : undefined
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

  #dbr (args: EventArgs): bigint {
    if (args.dbr === null) throw new FlyScanError(ErrorCode.CA, `libca delivered no data for ${this.pv}`, { details: { pv: this.pv } })
    return args.dbr
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

/**
 * The largest dbrSize(type, 1) (DBR_CTRL_ENUM and DBR_GR_ENUM: 424 bytes), rounded up: the scratch copy of a header
 * with one element.
 */
const SCRATCH_BYTES = 512
/** Per thread (module state is): headers are copied here, decoded, and forgotten. */
const scratch = new Uint8Array(SCRATCH_BYTES)

/**
 * Decode the `type` structure of `count` elements at `dbr` (libca's buffer, host order). Numeric arrays are copied
 * once, straight into the value array returned; everything else goes through a scratch copy (or, for a string array
 * too large for it, a temporary one) and the DBR codec. libca's buffer holds at least one element even for count 0.
 */
function decodeLibca (lib: LibCa, dbr: bigint, type: number, count: number): DbrPayload {
  const { base, cls } = splitDbrType(type)
  const oneElement = dbrSize(type, 1)
  if (count <= 1 || base === DbrBase.STRING) {
    const size = dbrSize(type, count)
    const bytes = size <= SCRATCH_BYTES ? scratch : new Uint8Array(size)
    lib.copy(bytes, dbr, 0, size)
    return decodeDbr(type, count, bytes, true)
  }
  const value = uninitializedArray(base, count)
  lib.copy(value, dbr, valueOffset(base, cls), count * elementSize(base))
  if (cls === DbrClass.PLAIN) return { value, status: 0, severity: 0 }
  lib.copy(scratch, dbr, 0, oneElement)
  return { ...decodeDbr(type, 1, scratch, true), value }
}

/**
 * A typed array of `count` elements of numeric `base` whose bytes are NOT zeroed (Buffer.allocUnsafeSlow: its own
 * ArrayBuffer, from malloc), for a value the caller overwrites entirely: zeroing first would be one more pass over
 * a frame.
 */
function uninitializedArray (base: Exclude<DbrBase, typeof DbrBase.STRING>, count: number): Exclude<DbrValue, string[]> {
  return numericValueOn(base, Buffer.allocUnsafeSlow(count * elementSize(base)).buffer as ArrayBuffer)
}

/** The CaRawUpdate of one monitor, pointed at each update's buffer in turn. */
class LibcaUpdate implements CaRawUpdate {
  readonly #lib: LibCa
  readonly #pv: string
  #dbr: bigint | null = null
  type = 0
  count = 0
  byteLength = 0
  valueOffset = 0
  valueBytes = 0

  constructor (lib: LibCa, pv: string) {
    this.#lib = lib
    this.#pv = pv
  }

  open (dbr: bigint, type: number, count: number): void {
    const { base, cls } = splitDbrType(type)
    this.#dbr = dbr
    this.type = type
    this.count = count
    this.byteLength = dbrSize(type, count)
    this.valueOffset = valueOffset(base, cls)
    this.valueBytes = count * elementSize(base)
  }

  close (): void {
    this.#dbr = null
  }

  copyTo (dest: Uint8Array, srcOffset = this.valueOffset, length = this.valueOffset + this.valueBytes - srcOffset): void {
    const dbr = this.#live('copyTo')
    if (!Number.isInteger(srcOffset) || !Number.isInteger(length) || srcOffset < 0 || length < 0 || srcOffset + length > this.byteLength) {
      throw new FlyScanError(ErrorCode.BAD_INPUT,
        `copy of bytes ${srcOffset}..${srcOffset + length} from a ${this.byteLength}-byte ${dbrTypeName(this.type)} update of ${this.#pv}: outside the structure`,
        { details: { pv: this.#pv, srcOffset, length, byteLength: this.byteLength } })
    }
    if (dest.byteLength < length) {
      throw new FlyScanError(ErrorCode.BAD_INPUT,
        `copy of ${length} bytes of ${this.#pv} into a ${dest.byteLength}-byte destination`,
        { details: { pv: this.#pv, length, destBytes: dest.byteLength } })
    }
    if (length > 0) this.#lib.copy(dest, dbr, srcOffset, length)
  }

  decode (): DbrPayload {
    return decodeLibca(this.#lib, this.#live('decode'), this.type, this.count)
  }

  #live (what: string): bigint {
    if (this.#dbr === null) {
      throw new FlyScanError(ErrorCode.BAD_INPUT,
        `${what} of a ${this.#pv} update after its callback returned: libca's buffer is valid only during the callback`,
        { details: { pv: this.#pv } })
    }
    return this.#dbr
  }
}

function checkType (pv: string, type: number): void {
  if (!isDbrType(type)) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `DBR type ${type} asked of ${pv} is not one of 0..34`, { details: { pv, type } })
  }
}
