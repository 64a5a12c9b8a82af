/**
 * CaSignalBackend: a SignalBackend over one EPICS PV (two with a separate write PV), through libca
 * (ophyd-async's CaSignalBackend). At connect it reads DBR_CTRL_<native> once for units, precision, limits and enum
 * choices; readings are DBR_TIME_<native>; the monitor is one subscription per backend, kept by libca across IOC
 * restarts.
 *
 * The event-model dtype follows from the native type and element count (docs/channel-access.md):
 *   DOUBLE, FLOAT scalar → 'number'; SHORT, LONG, CHAR scalar → 'integer'; STRING → 'string';
 *   ENUM → 'string' (the choice, as ophyd-async does); element count > 1 → 'array' (a typed array, shape [count]).
 * A caller may force another reading of the same PV with `datatype`:
 *   'string'  of a CHAR array: a long string (areaDetector FilePath), NUL-terminated UTF-8 both ways;
 *   'boolean' of an ENUM or integer scalar: value !== 0 (a bo record), written as 0/1;
 *   'integer' or 'number' of an ENUM: the state index instead of the choice;
 *   'array'   of anything: the typed array even for one element.
 * Any other combination fails at connect with BAD_INPUT naming the PV and its native type.
 */
import { ErrorCode, FlyScanError } from '../../errors.js'
import type { DataKey, Dtype, Reading } from '../../devices/index.js'
import type { CaConfig } from '../../config/index.js'
import {
  DbrBase, DbrClass, type DbrMetadata, type DbrPayload, type DbrValue, dbrType, emptyValue,
  epicsTimeToPosixSeconds
} from '../../parsers/index.js'
import { makeDatakey, type ReadingCallback, type SignalBackend, type SignalMetadata } from '../types.js'
import { CaChannel, type CaConnectionState, type CaMonitor } from './channel.js'
import { CaContext } from './context.js'

export interface CaSignalOptions {
  /** Read the PV as this dtype instead of the one its native type gives (see the table above). */
  readonly datatype?: Dtype
  /** A separate PV to write (ophyd-async's write_pv); default the read PV. */
  readonly writePv?: string
  /** The context to use; default this thread's, created from `config`. */
  readonly context?: CaContext
  /** The `ca` section of the config, used if this thread's context does not exist yet. */
  readonly config?: CaConfig
}

const NUMPY: Record<DbrBase, string> = {
  [DbrBase.STRING]: '|S40',
  [DbrBase.SHORT]: '<i2',
  [DbrBase.FLOAT]: '<f4',
  [DbrBase.ENUM]: '<u2',
  [DbrBase.CHAR]: '|u1',
  [DbrBase.LONG]: '<i4',
  [DbrBase.DOUBLE]: '<f8'
}
const BASE_NAME = ['STRING', 'SHORT', 'FLOAT', 'ENUM', 'CHAR', 'LONG', 'DOUBLE'] as const

const utf8Decoder = new TextDecoder('utf-8')
const utf8Encoder = new TextEncoder()

/** How one PV's values map to and from JS values: decided once, at connect. */
export interface CaConverter {
  readonly dtype: Dtype
  readonly metadata: SignalMetadata
  fromDbr: (value: DbrValue) => unknown
  toDbr: (value: unknown) => DbrValue
}

function isIntegerBase (base: DbrBase): boolean {
  return base === DbrBase.SHORT || base === DbrBase.LONG || base === DbrBase.CHAR
}

function isNumericBase (base: DbrBase): boolean {
  return base !== DbrBase.STRING && base !== DbrBase.ENUM
}

/** event-model limits from CTRL metadata; NaN limits (none set) become null. */
function limitsOf (m: DbrMetadata): DataKey['limits'] {
  const n = (x: number | undefined): number | null => x === undefined || Number.isNaN(x) ? null : x
  return {
    control: { low: n(m.lowerCtrlLimit), high: n(m.upperCtrlLimit) },
    display: { low: n(m.lowerDispLimit), high: n(m.upperDispLimit) },
    warning: { low: n(m.lowerWarningLimit), high: n(m.upperWarningLimit) },
    alarm: { low: n(m.lowerAlarmLimit), high: n(m.upperAlarmLimit) }
  }
}

/** The dtype a PV gets when the caller does not force one. */
export function naturalDtype (base: DbrBase, count: number): Dtype {
  if (count > 1) return 'array'
  if (base === DbrBase.DOUBLE || base === DbrBase.FLOAT) return 'number'
  if (isIntegerBase(base)) return 'integer'
  return 'string'
}

function toNumber (pv: string, value: unknown): number {
  if (typeof value === 'number') return value
  if (typeof value === 'boolean') return value ? 1 : 0
  if (typeof value === 'bigint') return Number(value)
  throw new FlyScanError(ErrorCode.BAD_INPUT, `cannot write ${JSON.stringify(value)} to ${pv}: it takes a number`, { details: { pv } })
}

/**
 * The converter for a PV of native `base` with `count` elements, read as `datatype` (default: natural). CTRL
 * metadata `meta` gives units, precision, limits and enum choices. BAD_INPUT for a combination that makes no sense.
 */
export function makeConverter (pv: string, base: DbrBase, count: number, meta: DbrMetadata, datatype?: Dtype): CaConverter {
  const dtype = datatype ?? naturalDtype(base, count)
  const choices = base === DbrBase.ENUM ? [...(meta.enumStrings ?? [])] : undefined
  const incompatible = (): FlyScanError => new FlyScanError(ErrorCode.BAD_INPUT,
    `${pv} is DBR_${BASE_NAME[base]} with ${count} element(s): it cannot be read as '${dtype}'`,
    { details: { pv, nativeType: BASE_NAME[base], count, datatype: dtype } })
  const numeric: SignalMetadata = isNumericBase(base)
    ? {
        ...(meta.units === undefined ? {} : { units: meta.units }),
        ...(base === DbrBase.DOUBLE || base === DbrBase.FLOAT ? { precision: meta.precision ?? 0 } : {}),
        ...(meta.lowerCtrlLimit === undefined ? {} : { limits: limitsOf(meta) })
      }
    : {}
  const scalar = (dtypeNumpy: string, extra: SignalMetadata = {}): SignalMetadata => ({ shape: [], dtypeNumpy, ...extra })

  switch (dtype) {
    case 'array': {
      return {
        dtype,
        metadata: { shape: [count], dtypeNumpy: NUMPY[base], ...numeric, ...(choices === undefined ? {} : { choices }) },
        fromDbr: (value) => value,
        toDbr: (value) => arrayToDbr(pv, base, value)
      }
    }
    case 'string': {
      if (base === DbrBase.STRING && count === 1) {
        return { dtype, metadata: scalar('|S40'), fromDbr: (v) => (v as string[])[0] ?? '', toDbr: (v) => [String(v)] }
      }
      if (base === DbrBase.ENUM && count === 1 && choices !== undefined) {
        return {
          dtype,
          metadata: scalar('|S40', { choices }),
          fromDbr: (v) => { const i = (v as Uint16Array)[0] ?? 0; return choices[i] ?? String(i) },
          toDbr: (v) => new Uint16Array([enumIndex(pv, choices, v)])
        }
      }
      if (base === DbrBase.CHAR) {
        return {
          dtype,
          metadata: scalar('|S40'),
          fromDbr: (v) => { const b = v as Uint8Array; const end = b.indexOf(0); return utf8Decoder.decode(end < 0 ? b : b.subarray(0, end)) },
          toDbr: (v) => {
            const encoded = utf8Encoder.encode(String(v))
            const n = Math.min(encoded.length, Math.max(count - 1, 0))
            const out = new Uint8Array(n + 1)
            out.set(encoded.subarray(0, n))
            return out
          }
        }
      }
      throw incompatible()
    }
    case 'boolean': {
      if (count !== 1 || !(base === DbrBase.ENUM || isIntegerBase(base))) throw incompatible()
      return {
        dtype,
        metadata: scalar('|b1', choices === undefined ? {} : { choices }),
        fromDbr: (v) => ((v as Exclude<DbrValue, string[]>)[0] ?? 0) !== 0,
        toDbr: (v) => { const out = emptyValue(base, 1) as Exclude<DbrValue, string[]>; out[0] = v === true || (typeof v === 'number' && v !== 0) ? 1 : 0; return out }
      }
    }
    case 'integer':
    case 'number': {
      if (count !== 1 || base === DbrBase.STRING) throw incompatible()
      if (dtype === 'integer' && (base === DbrBase.DOUBLE || base === DbrBase.FLOAT)) throw incompatible()
      return {
        dtype,
        metadata: scalar(NUMPY[base], { ...numeric, ...(choices === undefined ? {} : { choices }) }),
        fromDbr: (v) => (v as Exclude<DbrValue, string[]>)[0] ?? 0,
        toDbr: (v) => {
          const out = emptyValue(base, 1) as Exclude<DbrValue, string[]>
          out[0] = base === DbrBase.ENUM && typeof v === 'string' && choices !== undefined ? enumIndex(pv, choices, v) : toNumber(pv, v)
          return out
        }
      }
    }
  }
}

function enumIndex (pv: string, choices: readonly string[], value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < Math.max(choices.length, 1)) return value
  if (typeof value === 'boolean') return value ? 1 : 0
  const i = typeof value === 'string' ? choices.indexOf(value) : -1
  if (i < 0) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `${JSON.stringify(value)} is not a choice of ${pv}: ${JSON.stringify(choices)}`,
      { details: { pv, value: String(value) } })
  }
  return i
}

function arrayToDbr (pv: string, base: DbrBase, value: unknown): DbrValue {
  if (ArrayBuffer.isView(value) && !(value instanceof DataView) && !(value instanceof BigInt64Array) && !(value instanceof BigUint64Array)) {
    const typed = value as Exclude<DbrValue, string[]>
    if (typed.constructor === emptyValue(base, 0).constructor) return typed
    const out = emptyValue(base, typed.length) as Exclude<DbrValue, string[]>
    for (let i = 0; i < typed.length; i++) out[i] = typed[i] as number
    return out
  }
  if (Array.isArray(value)) {
    if (base === DbrBase.STRING) return value.map(String)
    const out = emptyValue(base, value.length) as Exclude<DbrValue, string[]>
    for (let i = 0; i < value.length; i++) out[i] = toNumber(pv, value[i])
    return out
  }
  throw new FlyScanError(ErrorCode.BAD_INPUT, `cannot write ${typeof value} to ${pv}: it takes an array`, { details: { pv } })
}

/** The Reading of a DBR_TIME payload. */
function readingOf<T> (payload: DbrPayload, converter: CaConverter): Reading<T> {
  return {
    value: converter.fromDbr(payload.value) as T,
    timestamp: payload.stamp === undefined ? Date.now() / 1000 : epicsTimeToPosixSeconds(payload.stamp),
    alarmSeverity: payload.severity
  }
}

interface Connected {
  readonly read: CaChannel
  readonly write: CaChannel
  readonly converter: CaConverter
  /** The value at connect, written by put(undefined) (ophyd-async's SignalX behaviour); scalars only. */
  readonly initial: DbrValue
}

export class CaSignalBackend<T> implements SignalBackend<T> {
  readonly readPv: string
  readonly writePv: string
  readonly #options: CaSignalOptions
  #channels: { read: CaChannel, write: CaChannel } | undefined
  #connected: Connected | undefined
  #connecting: Promise<Connected> | undefined
  #monitor: CaMonitor | undefined
  #callback: ReadingCallback<T> | undefined

  constructor (readPv: string, options: CaSignalOptions = {}) {
    this.readPv = readPv
    this.writePv = options.writePv ?? readPv
    this.#options = options
  }

  /** The dtype: the forced one, else the natural one once connected ('number' before, for mock mode). */
  get dtype (): Dtype { return this.#connected?.converter.dtype ?? this.#options.datatype ?? 'number' }
  get metadata (): SignalMetadata { return this.#connected?.converter.metadata ?? {} }

  source (_name: string): string { return `ca://${this.readPv}` }

  /** The read channel, once connect() has started (for its connection state). */
  get channel (): CaChannel | undefined { return this.#connected?.read }

  async connect (timeoutMs: number): Promise<void> {
    if (this.#connected !== undefined) {
      await Promise.all([this.#connected.read.waitConnected(timeoutMs), this.#connected.write.waitConnected(timeoutMs)])
      return
    }
    this.#connecting ??= this.#connect(timeoutMs)
    try {
      this.#connected = await this.#connecting
    } finally {
      this.#connecting = undefined
    }
  }

  async #connect (timeoutMs: number): Promise<Connected> {
    const context = this.#options.context ?? CaContext.get(this.#options.config)
    if (this.#channels === undefined) {
      const read = new CaChannel(this.readPv, { context })
      const write = this.writePv === this.readPv ? read : new CaChannel(this.writePv, { context })
      this.#channels = { read, write }
    }
    const { read, write } = this.#channels
    await Promise.all([read.waitConnected(timeoutMs), write.waitConnected(timeoutMs)])
    const ctrl = await read.get({ type: dbrType(read.nativeType, DbrClass.CTRL), count: 1, timeoutMs })
    const converter = makeConverter(this.readPv, read.nativeType, read.elementCount, ctrl.metadata ?? {}, this.#options.datatype)
    return { read, write, converter, initial: ctrl.value }
  }

  #require (what: string): Connected {
    if (this.#connected === undefined) {
      throw new FlyScanError(ErrorCode.NOT_CONNECTED, `${what} ${this.readPv}: connect() first`, { details: { pv: this.readPv } })
    }
    return this.#connected
  }

  async put (value: T | undefined, wait: boolean): Promise<void> {
    const c = this.#require('writing')
    if (value === undefined && c.converter.dtype === 'array') {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `writing ${this.writePv}: an array PV needs a value`, { details: { pv: this.writePv } })
    }
    const dbr = value === undefined ? c.initial : c.converter.toDbr(value)
    await c.write.put(dbrType(c.write.nativeType, DbrClass.PLAIN), dbr, wait)
  }

  async getDatakey (source: string): Promise<DataKey> {
    const c = this.#require('describing')
    return makeDatakey(c.converter.dtype, c.converter.metadata, source, undefined)
  }

  async getReading (): Promise<Reading<T>> {
    const c = this.#require('reading')
    return readingOf<T>(await c.read.get(), c.converter)
  }

  async getValue (): Promise<T> { return (await this.getReading()).value }

  async getSetpoint (): Promise<T> {
    const c = this.#require('reading the setpoint of')
    return c.converter.fromDbr((await c.write.get()).value) as T
  }

  /** One monitor per backend: DBR_TIME_<native> at the server's current count, DBE_VALUE | DBE_ALARM. */
  setCallback (cb: ReadingCallback<T> | undefined): void {
    this.#callback = cb
    if (cb === undefined) {
      const monitor = this.#monitor
      this.#monitor = undefined
      monitor?.close().catch((err: unknown) => { process.emitWarning(err instanceof Error ? err : String(err)) })
      return
    }
    if (this.#monitor !== undefined) return
    const c = this.#require('monitoring')
    this.#monitor = c.read.monitor((payload) => {
      this.#callback?.(readingOf<T>(payload, c.converter))
    })
  }

  /** Follow the read channel's connection state. */
  onConnectionChange (cb: (state: CaConnectionState) => void): () => void {
    return this.#require('watching').read.onConnectionChange(cb)
  }

  /** Stop the monitor and clear the channels (the context's destroy() does it too). Safe to call twice. */
  async close (): Promise<void> {
    this.#callback = undefined
    const channels = this.#channels
    this.#monitor = undefined
    if (channels === undefined) return
    await Promise.all([channels.read.clear(), channels.write.clear()])
  }
}
