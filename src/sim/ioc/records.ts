/**
 * Plain EPICS records for the simulated IOC: ai, ao, bi, bo, mbbi, mbbo, longin, longout, stringin, stringout and
 * waveform. A record serves its value as `NAME` and, unless built without fields, its fields as `NAME.FIELD`, each
 * with the native DBR type an EPICS 7 IOC gives it. The motor record and the camera build on the same pieces
 * (SimPv, SimRecord).
 *
 * Monitors follow the record support of EPICS base: a value change posts VALUE|LOG (a waveform posts on every
 * write, as its default MPST "Always" does), an alarm change posts ALARM, a change of a property field (EGU, PREC,
 * limits, state strings) posts PROPERTY on the value. Every post carries a fresh timestamp from the clock.
 */
import { ErrorCode, FlyScanError } from '../../errors.js'
import {
  DbeMask, DbrBase, MAX_ENUM_STATES, MAX_STRING_SIZE, baseOfValue, epicsTimeFromMs,
  type DbrMetadata, type DbrValue
} from '../../parsers/index.js'
import { AlarmStatus, Severity, type PvListener, type PvState, type ServedPv, type SimClock } from './pv.js'

/** menuAlarmSevr, in order. */
export const SEVERITY_NAMES = ['NO_ALARM', 'MINOR', 'MAJOR', 'INVALID'] as const
export type SeverityName = typeof SEVERITY_NAMES[number]

/** menuAlarmStat of EPICS 7, in order (CA carries the first 16 as enum strings). */
export const ALARM_STATUS_NAMES = [
  'NO_ALARM', 'READ', 'WRITE', 'HIHI', 'HIGH', 'LOLO', 'LOW', 'STATE', 'COS', 'COMM', 'TIMEOUT', 'HWLIMIT', 'CALC',
  'SCAN', 'LINK', 'SOFT', 'BAD_SUB', 'UDF', 'DISABLE', 'SIMM', 'READ_ACCESS', 'WRITE_ACCESS'
] as const

/** menuFtype of EPICS 7, in order: the element types a waveform can hold. */
export const FTVL_NAMES = ['STRING', 'CHAR', 'UCHAR', 'SHORT', 'USHORT', 'LONG', 'ULONG', 'INT64', 'UINT64', 'FLOAT', 'DOUBLE', 'ENUM'] as const
export type FtvlName = typeof FTVL_NAMES[number]

/** The DBR type a client sees for each FTVL (EPICS base's dbDBRnewToDBRold mapping). */
const FTVL_BASE: Readonly<Record<FtvlName, DbrBase>> = {
  STRING: DbrBase.STRING,
  CHAR: DbrBase.CHAR,
  UCHAR: DbrBase.CHAR,
  SHORT: DbrBase.SHORT,
  USHORT: DbrBase.LONG,
  LONG: DbrBase.LONG,
  ULONG: DbrBase.DOUBLE,
  INT64: DbrBase.DOUBLE,
  UINT64: DbrBase.DOUBLE,
  FLOAT: DbrBase.FLOAT,
  DOUBLE: DbrBase.DOUBLE,
  ENUM: DbrBase.ENUM
}

export const RECORD_TYPES = ['ai', 'ao', 'bi', 'bo', 'mbbi', 'mbbo', 'longin', 'longout', 'stringin', 'stringout', 'waveform'] as const
export type RecordType = typeof RECORD_TYPES[number]

/** The sixteen state-string fields of mbbi/mbbo, in order. */
export const MBB_STRING_FIELDS = ['ZRST', 'ONST', 'TWST', 'THST', 'FRST', 'FVST', 'SXST', 'SVST', 'EIST', 'NIST', 'TEST', 'ELST', 'TVST', 'TTST', 'FTST', 'FFST'] as const

/** Content to fill a waveform with at start: a ramp 0, 1, 2... or one period of a sine over NELM elements. */
export type WaveformPattern = 'ramp' | 'sine'

/** How a record is described: by the config's `ioc.records` and by the camera, which builds its PVs from records. */
export interface RecordOptions {
  readonly name: string
  readonly type: RecordType
  /** Initial value: a number, a state index or string (bi/bo/mbb*), a string, or an array (waveform). */
  readonly value?: number | string | readonly number[] | readonly string[]
  readonly desc?: string
  readonly egu?: string
  readonly prec?: number
  readonly hopr?: number
  readonly lopr?: number
  /** Drive limits of ao/longout: a put outside them is clamped, when DRVH > DRVL. */
  readonly drvh?: number
  readonly drvl?: number
  readonly hihi?: number
  readonly high?: number
  readonly low?: number
  readonly lolo?: number
  /** Severity of each alarm limit; when a limit is given without one: HIHI/LOLO MAJOR, HIGH/LOW MINOR. */
  readonly hhsv?: SeverityName
  readonly hsv?: SeverityName
  readonly lsv?: SeverityName
  readonly llsv?: SeverityName
  /** bi/bo state strings and the severity of each state. */
  readonly znam?: string
  readonly onam?: string
  readonly zsv?: SeverityName
  readonly osv?: SeverityName
  /** mbbi/mbbo state strings (ZRST, ONST, ...; at most 16) and optionally the severity of each state. */
  readonly states?: readonly string[]
  readonly stateSeverities?: readonly SeverityName[]
  /** waveform: most elements, element type, and optional initial content. */
  readonly nelm?: number
  readonly ftvl?: FtvlName
  readonly pattern?: WaveformPattern
  /** Refuse client writes to the value (readbacks such as `_RBV` records). */
  readonly readOnly?: boolean
  /** Serve `NAME.FIELD` PVs (default true); the camera's records serve their value only. */
  readonly fields?: boolean
}

/** What a client's write hands to a record's owner: called after the value is stored and posted. */
export type PutHandler = (record: SimRecord) => void | Promise<void>

const VALUE_LOG = DbeMask.VALUE | DbeMask.LOG

/** A one-element value of `base` from a number or string. */
export function scalarValue (base: DbrBase, v: number | string): DbrValue {
  switch (base) {
    case DbrBase.STRING: return [String(v)]
    case DbrBase.SHORT: return Int16Array.of(Number(v))
    case DbrBase.FLOAT: return Float32Array.of(Number(v))
    case DbrBase.ENUM: return Uint16Array.of(Number(v))
    case DbrBase.CHAR: return Uint8Array.of(Number(v))
    case DbrBase.LONG: return Int32Array.of(Number(v))
    case DbrBase.DOUBLE: return Float64Array.of(Number(v))
  }
}

/** The first element of a value as a number (0 when empty; a string is parsed, NaN when it is not a number). */
export function firstNumber (value: DbrValue): number {
  const v = value[0]
  if (v === undefined) return 0
  return typeof v === 'string' ? Number(v) : v
}

const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder('utf-8')

/** A string as an areaDetector long string: the UTF-8 bytes of a CHAR waveform with a NUL terminator, within `nelm`. */
export function charsFromString (s: string, nelm: number): Uint8Array {
  const bytes = utf8Encoder.encode(s)
  const n = Math.min(bytes.length, Math.max(nelm - 1, 0))
  const out = new Uint8Array(Math.min(n + 1, nelm))
  out.set(bytes.subarray(0, n))
  return out
}

/** A CHAR waveform read as a C string: the bytes up to the first NUL. */
export function stringFromChars (value: DbrValue): string {
  if (Array.isArray(value)) return value[0] ?? ''
  if (!(value instanceof Uint8Array)) return String(value[0] ?? '')
  const end = value.indexOf(0)
  return utf8Decoder.decode(end < 0 ? value : value.subarray(0, end))
}

/** At most MAX_STRING_SIZE - 1 bytes, as a DBR_STRING field holds (cut on a character boundary). */
function fitString (s: string): string {
  if (utf8Encoder.encode(s).length < MAX_STRING_SIZE) return s
  let out = s
  while (utf8Encoder.encode(out).length >= MAX_STRING_SIZE) out = out.slice(0, -1)
  return out
}

function sameValue (a: DbrValue, b: DbrValue): boolean {
  if (a === b) return true
  if (a.length !== b.length || baseOfValue(a) !== baseOfValue(b)) return false
  // Large arrays are not compared: they post on every write, as a waveform with MPST "Always" does.
  if (a.length > 64) return false
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false
  return true
}

export interface SimPvOptions {
  readonly name: string
  readonly base: DbrBase
  readonly value: DbrValue
  readonly maxCount?: number
  readonly writable?: boolean
  readonly metadata?: () => DbrMetadata
  /** Handles a client's write (the value already in `base`); default: post it. */
  readonly onPut?: (value: DbrValue) => void | Promise<void>
}

export interface PostOptions {
  readonly status?: number
  readonly severity?: number
  /** Time of the change (default: the clock's now). */
  readonly stampMs?: number
  /** Post VALUE|LOG even if the value did not change (waveforms, busy records). */
  readonly always?: boolean
}

/**
 * One served PV: a value with alarm and timestamp, metadata, listeners and a put handler. The value is held by
 * reference: `get().value` may be a view that its owner reuses after later changes (a camera's frame buffers are
 * reused every few frames), so a listener encodes it before returning.
 */
export class SimPv implements ServedPv {
  readonly name: string
  readonly base: DbrBase
  readonly maxCount: number
  readonly writable: boolean
  readonly #clock: SimClock
  readonly #metadata: () => DbrMetadata
  readonly #listeners = new Set<PvListener>()
  #state: PvState
  #onPut: ((value: DbrValue) => void | Promise<void>) | undefined

  constructor (options: SimPvOptions, clock: SimClock) {
    this.name = options.name
    this.base = options.base
    this.maxCount = options.maxCount ?? 1
    this.writable = options.writable ?? false
    this.#clock = clock
    const meta = Object.freeze({})
    this.#metadata = options.metadata ?? (() => meta)
    this.#onPut = options.onPut
    this.#state = { value: options.value, status: AlarmStatus.NO_ALARM, severity: Severity.NO_ALARM, stamp: epicsTimeFromMs(clock.nowMs()) }
  }

  get (): PvState {
    return this.#state
  }

  metadata (): DbrMetadata {
    return this.#metadata()
  }

  put (value: DbrValue): Promise<void> {
    if (!this.writable) {
      return Promise.reject(new FlyScanError(ErrorCode.BAD_INPUT, `${this.name} is read-only`, { details: { pv: this.name } }))
    }
    try {
      if (this.#onPut === undefined) {
        this.post(value)
        return Promise.resolve()
      }
      return Promise.resolve(this.#onPut(value))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  subscribe (listener: PvListener): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** Replace the put handler (the owner's processing). */
  setPutHandler (onPut: (value: DbrValue) => void | Promise<void>): void {
    this.#onPut = onPut
  }

  /** Store a value (and alarm) and tell listeners what changed; returns the mask posted, 0 when nothing changed. */
  post (value: DbrValue, options: PostOptions = {}): number {
    const old = this.#state
    const status = options.status ?? old.status
    const severity = options.severity ?? old.severity
    let mask = 0
    if (options.always === true || !sameValue(value, old.value)) mask |= VALUE_LOG
    if (status !== old.status || severity !== old.severity) mask |= DbeMask.ALARM
    if (mask === 0) return 0
    this.#state = { value, status, severity, stamp: epicsTimeFromMs(options.stampMs ?? this.#clock.nowMs()) }
    this.#emit(mask)
    return mask
  }

  /** Tell listeners the metadata changed (DBE_PROPERTY). */
  postProperty (): void {
    this.#emit(DbeMask.PROPERTY)
  }

  #emit (mask: number): void {
    const state = this.#state
    for (const listener of this.#listeners) listener(state, mask)
  }
}

type FieldKind = 'number' | 'string' | 'severity' | 'status' | 'menu'

interface FieldSpec {
  readonly field: string
  readonly base: DbrBase
  readonly kind: FieldKind
  /** Clients may not write it (NORD, NELM, FTVL, SEVR, STAT). */
  readonly readOnly?: boolean
  /** A change is a metadata change of the value (posts PROPERTY on it). */
  readonly prop?: boolean
  /** A change may change the alarm (the record is processed again). */
  readonly alarm?: boolean
  /** The field is in the record's units (limits), so it carries EGU and PREC as its metadata. */
  readonly inUnits?: boolean
  readonly menu?: readonly string[]
}

const IS_NUMERIC = new Set<RecordType>(['ai', 'ao', 'longin', 'longout'])
const IS_BINARY = new Set<RecordType>(['bi', 'bo'])
const IS_MBB = new Set<RecordType>(['mbbi', 'mbbo'])

/** The base of a record's value. */
function valueBase (type: RecordType, ftvl: FtvlName): DbrBase {
  switch (type) {
    case 'ai': case 'ao': return DbrBase.DOUBLE
    case 'longin': case 'longout': return DbrBase.LONG
    case 'bi': case 'bo': case 'mbbi': case 'mbbo': return DbrBase.ENUM
    case 'stringin': case 'stringout': return DbrBase.STRING
    case 'waveform': return FTVL_BASE[ftvl]
  }
}

/** The fields a record of `type` serves besides VAL, with their types (as in EPICS base's record .dbd files). */
function fieldSpecs (type: RecordType): FieldSpec[] {
  const limitBase = type === 'longin' || type === 'longout' ? DbrBase.LONG : DbrBase.DOUBLE
  const specs: FieldSpec[] = [
    { field: 'DESC', base: DbrBase.STRING, kind: 'string' },
    { field: 'SEVR', base: DbrBase.ENUM, kind: 'severity', readOnly: true, menu: SEVERITY_NAMES },
    { field: 'STAT', base: DbrBase.ENUM, kind: 'status', readOnly: true, menu: ALARM_STATUS_NAMES }
  ]
  const limit = (field: string, alarm = false): FieldSpec => ({ field, base: limitBase, kind: 'number', prop: true, alarm, inUnits: true })
  const severity = (field: string): FieldSpec => ({ field, base: DbrBase.ENUM, kind: 'menu', prop: true, alarm: true, menu: SEVERITY_NAMES })
  if (IS_NUMERIC.has(type) || type === 'waveform') specs.push({ field: 'EGU', base: DbrBase.STRING, kind: 'string', prop: true })
  if (type === 'ai' || type === 'ao' || type === 'waveform') specs.push({ field: 'PREC', base: DbrBase.SHORT, kind: 'number', prop: true })
  if (IS_NUMERIC.has(type) || type === 'waveform') specs.push(limit('HOPR'), limit('LOPR'))
  if (type === 'ao' || type === 'longout') specs.push(limit('DRVH'), limit('DRVL'))
  if (IS_NUMERIC.has(type)) {
    specs.push(limit('HIHI', true), limit('HIGH', true), limit('LOW', true), limit('LOLO', true))
    specs.push(severity('HHSV'), severity('HSV'), severity('LSV'), severity('LLSV'))
  }
  if (IS_BINARY.has(type)) {
    specs.push({ field: 'ZNAM', base: DbrBase.STRING, kind: 'string', prop: true }, { field: 'ONAM', base: DbrBase.STRING, kind: 'string', prop: true })
    specs.push(severity('ZSV'), severity('OSV'))
  }
  if (IS_MBB.has(type)) for (const f of MBB_STRING_FIELDS) specs.push({ field: f, base: DbrBase.STRING, kind: 'string', prop: true })
  if (type === 'waveform') {
    specs.push({ field: 'NELM', base: DbrBase.LONG, kind: 'number', readOnly: true })
    specs.push({ field: 'NORD', base: DbrBase.LONG, kind: 'number', readOnly: true })
    specs.push({ field: 'FTVL', base: DbrBase.ENUM, kind: 'menu', readOnly: true, menu: FTVL_NAMES })
  }
  return specs
}

/** The names of the fields a record of `type` serves besides VAL (for docs and listings). */
export function recordFieldNames (type: RecordType): string[] {
  return fieldSpecs(type).map((s) => s.field)
}

/** The alarm limits of ai/ao/longin/longout in checkAlarms order: limit field, severity field, status raised, upper? */
const LIMIT_CHECKS: ReadonlyArray<readonly [string, string, number, boolean]> = [
  ['HIHI', 'HHSV', AlarmStatus.HIHI, true],
  ['LOLO', 'LLSV', AlarmStatus.LOLO, false],
  ['HIGH', 'HSV', AlarmStatus.HIGH, true],
  ['LOW', 'LSV', AlarmStatus.LOW, false]
]
const NO_ALARM = [AlarmStatus.NO_ALARM, Severity.NO_ALARM] as const

function severityOf (name: SeverityName | undefined, fallback: number): number {
  return name === undefined ? fallback : SEVERITY_NAMES.indexOf(name)
}

/**
 * One EPICS record. Clients write its value through `pv` (the `NAME` PV) and its fields through `NAME.FIELD`;
 * in-process owners (the camera) read it with `number`/`text` and update it with `set`, as device support would.
 */
export class SimRecord {
  readonly name: string
  readonly type: RecordType
  readonly pv: SimPv
  readonly #fields = new Map<string, SimPv>()
  /** Field values by name (numbers for numeric and menu fields, strings for string fields). */
  readonly #f = new Map<string, number | string>()
  readonly #nelm: number
  readonly #ftvl: FtvlName
  readonly #base: DbrBase
  /** mbbi/mbbo: the severity of each state. */
  #stateSeverities: number[] = []
  #stateStrings: readonly string[] | undefined
  /** Called after a client's write to the value is stored; its promise is the write's completion. */
  onPut: PutHandler | undefined

  constructor (options: RecordOptions, clock: SimClock) {
    this.name = options.name
    this.type = options.type
    this.#ftvl = options.ftvl ?? 'DOUBLE'
    this.#nelm = options.type === 'waveform' ? (options.nelm ?? 1) : 1
    this.#base = valueBase(this.type, this.#ftvl)
    this.#initFields(options)

    this.pv = new SimPv({
      name: this.name,
      base: this.#base,
      value: this.#initialValue(options),
      maxCount: this.#nelm,
      writable: options.readOnly !== true,
      metadata: () => this.#metadata(),
      onPut: (value) => this.#clientPut(value)
    }, clock)
    this.#applyAlarm({})

    if (options.fields !== false) {
      for (const spec of fieldSpecs(this.type)) {
        const pv = new SimPv({
          name: `${this.name}.${spec.field}`,
          base: spec.base,
          value: this.#fieldValue(spec),
          writable: spec.readOnly !== true,
          metadata: () => this.#fieldMetadata(spec),
          onPut: (value) => { this.#putField(spec, value) }
        }, clock)
        this.#fields.set(spec.field, pv)
      }
    }
  }

  /** Every PV this record serves: the value first, then its fields. */
  pvs (): SimPv[] {
    return [this.pv, ...this.#fields.values()]
  }

  /** The PV of `NAME.FIELD`, if served. */
  field (field: string): SimPv | undefined {
    return this.#fields.get(field)
  }

  /** The value as a number (the state index of an enum; NaN for a string that is not a number). */
  get number (): number {
    return firstNumber(this.pv.get().value)
  }

  /** The value as text: the state string of an enum, the C string of a CHAR waveform, a number in decimal. */
  get text (): string {
    const value = this.pv.get().value
    if (IS_BINARY.has(this.type) || IS_MBB.has(this.type)) return this.#states()[this.number] ?? String(this.number)
    if (this.#base === DbrBase.CHAR && this.type === 'waveform') return stringFromChars(value)
    if (Array.isArray(value)) return value[0] ?? ''
    return String(value[0] ?? '')
  }

  /** The state strings of an enum record (bi/bo: ZNAM, ONAM; mbb: up to the last state defined). */
  get states (): readonly string[] {
    return this.#states()
  }

  /** Most elements (NELM); 1 for scalar records. */
  get nelm (): number {
    return this.#nelm
  }

  /** A field's value (numbers and menus as numbers, strings as strings). */
  fieldValue (field: string): number | string | undefined {
    return this.#f.get(field)
  }

  /**
   * Update the value from the owner's side (device support): alarms are evaluated, drive limits are not. A number
   * or string is converted to the record's type; a string names an enum state; an array is stored by reference.
   */
  set (value: number | string | DbrValue, options: { stampMs?: number, always?: boolean } = {}): void {
    // The same number again posts nothing (the alarm, kept current for the value, cannot change either): skip the
    // conversion and alarm check. A camera sets a dozen readbacks per frame, most of them unchanged.
    if (typeof value === 'number' && options.always !== true && this.type !== 'waveform') {
      const current = this.pv.get().value
      if (current.length === 1 && Object.is(current[0], value)) return
    }
    this.#store(this.#toValue(value), options)
  }

  /** Update a field from the owner's side, with the same effects as a client's write. */
  setField (field: string, value: number | string): void {
    const spec = fieldSpecs(this.type).find((s) => s.field === field)
    if (spec === undefined) throw new FlyScanError(ErrorCode.BAD_INPUT, `${this.name}: ${this.type} records have no field ${field}`, { details: { pv: this.name } })
    this.#assignField(spec, value)
  }

  #initFields (o: RecordOptions): void {
    const f = this.#f
    f.set('DESC', fitString(o.desc ?? ''))
    f.set('EGU', fitString(o.egu ?? ''))
    f.set('PREC', o.prec ?? 0)
    f.set('HOPR', o.hopr ?? 0)
    f.set('LOPR', o.lopr ?? 0)
    f.set('DRVH', o.drvh ?? 0)
    f.set('DRVL', o.drvl ?? 0)
    f.set('HIHI', o.hihi ?? 0)
    f.set('HIGH', o.high ?? 0)
    f.set('LOW', o.low ?? 0)
    f.set('LOLO', o.lolo ?? 0)
    f.set('HHSV', severityOf(o.hhsv, o.hihi === undefined ? Severity.NO_ALARM : Severity.MAJOR))
    f.set('HSV', severityOf(o.hsv, o.high === undefined ? Severity.NO_ALARM : Severity.MINOR))
    f.set('LSV', severityOf(o.lsv, o.low === undefined ? Severity.NO_ALARM : Severity.MINOR))
    f.set('LLSV', severityOf(o.llsv, o.lolo === undefined ? Severity.NO_ALARM : Severity.MAJOR))
    f.set('ZNAM', fitString(o.znam ?? ''))
    f.set('ONAM', fitString(o.onam ?? ''))
    f.set('ZSV', severityOf(o.zsv, Severity.NO_ALARM))
    f.set('OSV', severityOf(o.osv, Severity.NO_ALARM))
    MBB_STRING_FIELDS.forEach((name, i) => f.set(name, fitString(o.states?.[i] ?? '')))
    this.#stateSeverities = (o.stateSeverities ?? []).map((s) => severityOf(s, Severity.NO_ALARM))
    f.set('NELM', this.#nelm)
    f.set('NORD', 0)
    f.set('FTVL', FTVL_NAMES.indexOf(this.#ftvl))
  }

  #initialValue (o: RecordOptions): DbrValue {
    const base = this.#base
    if (this.type === 'waveform') {
      let value: DbrValue
      if (o.pattern !== undefined) value = patternValue(base, this.#nelm, o.pattern)
      else if (Array.isArray(o.value)) value = this.#arrayOf(base, o.value as ReadonlyArray<number | string>)
      else if (typeof o.value === 'string' && base === DbrBase.CHAR) value = charsFromString(o.value, this.#nelm)
      else if (o.value !== undefined) value = this.#arrayOf(base, [o.value as number | string])
      else value = this.#arrayOf(base, [])
      this.#f.set('NORD', value.length)
      return value
    }
    if (o.value === undefined) return scalarValue(base, base === DbrBase.STRING ? '' : 0)
    return this.#toValue(o.value as number | string)
  }

  #arrayOf (base: DbrBase, items: ReadonlyArray<number | string>): DbrValue {
    const n = Math.min(items.length, this.#nelm)
    if (base === DbrBase.STRING) return items.slice(0, n).map((s) => fitString(String(s)))
    const out = scalarValue(base, 0)
    const typed = new (out.constructor as new (n: number) => Exclude<DbrValue, string[]>)(n)
    for (let i = 0; i < n; i++) typed[i] = Number(items[i])
    return typed
  }

  /** A value of the record's type from a number, a string or an array (stored by reference). */
  #toValue (value: number | string | DbrValue | readonly number[] | readonly string[]): DbrValue {
    const base = this.#base
    if (typeof value !== 'number' && typeof value !== 'string') {
      if (!Array.isArray(value) && baseOfValue(value as DbrValue) === base) {
        const typed = value as Exclude<DbrValue, string[]>
        return typed.length > this.#nelm ? typed.subarray(0, this.#nelm) : typed
      }
      return this.#arrayOf(base, value as ReadonlyArray<number | string>)
    }
    if (base === DbrBase.ENUM && typeof value === 'string') {
      const state = this.#states().indexOf(value)
      if (state < 0) {
        throw new FlyScanError(ErrorCode.BAD_INPUT,
          `${this.name}: "${value}" is not one of its states (${this.#states().join(', ')})`, { details: { pv: this.name } })
      }
      return Uint16Array.of(state)
    }
    if (base === DbrBase.STRING) return [fitString(String(value))]
    if (this.type === 'waveform' && base === DbrBase.CHAR && typeof value === 'string') return charsFromString(value, this.#nelm)
    const n = Number(value)
    if (Number.isNaN(n) && typeof value === 'string') {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `${this.name}: "${value}" is not a number`, { details: { pv: this.name } })
    }
    return scalarValue(base, n)
  }

  /** The state strings, computed again only after a string field changed (text and enum sets read them often). */
  #states (): readonly string[] {
    this.#stateStrings ??= this.#computeStates()
    return this.#stateStrings
  }

  #computeStates (): readonly string[] {
    if (IS_BINARY.has(this.type)) return [this.#f.get('ZNAM') as string, this.#f.get('ONAM') as string]
    if (!IS_MBB.has(this.type)) return []
    const strings = MBB_STRING_FIELDS.map((f) => this.#f.get(f) as string)
    let n = 0
    strings.forEach((s, i) => { if (s !== '') n = i + 1 })
    return strings.slice(0, n)
  }

  /** A client's write to the value: checked, clamped to the drive limits, stored, then handed to the owner. */
  #clientPut (value: DbrValue): void | Promise<void> {
    let v = value
    if (IS_BINARY.has(this.type) || IS_MBB.has(this.type)) {
      const state = firstNumber(value)
      // An mbb record with no state strings takes any of the 16 states.
      const most = IS_BINARY.has(this.type) ? 2 : (this.#states().length || MAX_ENUM_STATES)
      if (!(state >= 0 && state < most)) {
        throw new FlyScanError(ErrorCode.BAD_INPUT,
          `${this.name}: state ${state} is out of range 0..${most - 1}`, { details: { pv: this.name, state } })
      }
    } else if (this.type === 'ao' || this.type === 'longout') {
      const drvh = this.#f.get('DRVH') as number
      const drvl = this.#f.get('DRVL') as number
      const n = firstNumber(value)
      if (drvh > drvl && (n > drvh || n < drvl)) v = scalarValue(this.pv.base, Math.min(Math.max(n, drvl), drvh))
    } else if (this.type === 'stringin' || this.type === 'stringout') {
      v = [fitString((value as string[])[0] ?? '')]
    }
    this.#store(this.type === 'waveform' ? this.#toValue(v) : v, { always: this.type === 'waveform' })
    return this.onPut?.(this)
  }

  #store (value: DbrValue, options: { stampMs?: number, always?: boolean }): void {
    if (this.type === 'waveform') {
      this.#f.set('NORD', value.length)
      this.#fields.get('NORD')?.post(Int32Array.of(value.length), { stampMs: options.stampMs })
    }
    this.#applyAlarm({ value, stampMs: options.stampMs, always: options.always ?? this.type === 'waveform' })
  }

  /** Evaluate the alarm for `value` (default: the current one) and post what changed. */
  #applyAlarm (options: { value?: DbrValue, stampMs?: number, always?: boolean }): void {
    const value = options.value ?? this.pv.get().value
    const [status, severity] = this.#alarmOf(value)
    const mask = this.pv.post(value, { status, severity, stampMs: options.stampMs, always: options.always })
    if ((mask & DbeMask.ALARM) !== 0) {
      this.#fields.get('SEVR')?.post(Uint16Array.of(severity), { stampMs: options.stampMs })
      this.#fields.get('STAT')?.post(Uint16Array.of(status), { stampMs: options.stampMs })
    }
  }

  /** EPICS checkAlarms order: HIHI, LOLO, HIGH, LOW; enum records raise STATE with the state's severity. */
  #alarmOf (value: DbrValue): readonly [number, number] {
    const f = this.#f
    if (IS_NUMERIC.has(this.type)) {
      const v = firstNumber(value)
      for (const [limit, sv, status, high] of LIMIT_CHECKS) {
        const severity = f.get(sv) as number
        if (severity === Severity.NO_ALARM) continue
        const lim = f.get(limit) as number
        if (high ? v >= lim : v <= lim) return [status, severity]
      }
      return NO_ALARM
    }
    if (IS_BINARY.has(this.type) || IS_MBB.has(this.type)) {
      const state = firstNumber(value)
      const severity = IS_BINARY.has(this.type)
        ? (f.get(state === 0 ? 'ZSV' : 'OSV') as number)
        : (this.#stateSeverities[state] ?? Severity.NO_ALARM)
      return severity === Severity.NO_ALARM ? NO_ALARM : [AlarmStatus.STATE, severity]
    }
    return NO_ALARM
  }

  #fieldValue (spec: FieldSpec): DbrValue {
    if (spec.kind === 'severity') return Uint16Array.of(this.pv.get().severity)
    if (spec.kind === 'status') return Uint16Array.of(this.pv.get().status)
    return scalarValue(spec.base, this.#f.get(spec.field) ?? 0)
  }

  #putField (spec: FieldSpec, value: DbrValue): void {
    const v = value[0] ?? (spec.kind === 'string' ? '' : 0)
    if (spec.kind === 'menu' && spec.menu !== undefined && !((v as number) >= 0 && (v as number) < spec.menu.length)) {
      throw new FlyScanError(ErrorCode.BAD_INPUT,
        `${this.name}.${spec.field}: state ${String(v)} is out of range 0..${spec.menu.length - 1}`, { details: { pv: `${this.name}.${spec.field}` } })
    }
    this.#assignField(spec, v)
  }

  #assignField (spec: FieldSpec, raw: number | string): void {
    const v = spec.kind === 'string' ? fitString(String(raw)) : firstNumber(scalarValue(spec.base, raw))
    this.#f.set(spec.field, v)
    if (spec.kind === 'string') this.#stateStrings = undefined
    this.#fields.get(spec.field)?.post(scalarValue(spec.base, v))
    if (spec.alarm === true) this.#applyAlarm({})
    if (spec.prop === true) this.pv.postProperty()
  }

  #metadata (): DbrMetadata {
    const f = this.#f
    if (IS_BINARY.has(this.type) || IS_MBB.has(this.type)) return { enumStrings: this.#states() }
    if (this.#base === DbrBase.STRING || this.#base === DbrBase.ENUM) return {}
    const units = f.get('EGU') as string
    const precision = f.get('PREC') as number
    const hopr = f.get('HOPR') as number
    const lopr = f.get('LOPR') as number
    if (!IS_NUMERIC.has(this.type)) {
      return { units, precision, upperDispLimit: hopr, lowerDispLimit: lopr, upperCtrlLimit: hopr, lowerCtrlLimit: lopr }
    }
    // An alarm limit whose severity is NO_ALARM is reported as NaN, as EPICS 7 record support does.
    const alarmLimit = (limit: string, sv: string): number => (f.get(sv) as number) === Severity.NO_ALARM ? Number.NaN : f.get(limit) as number
    const drvh = f.get('DRVH') as number
    const drvl = f.get('DRVL') as number
    const drive = (this.type === 'ao' || this.type === 'longout') && drvh > drvl
    return {
      units,
      precision: this.type === 'ai' || this.type === 'ao' ? precision : 0,
      upperDispLimit: hopr,
      lowerDispLimit: lopr,
      upperAlarmLimit: alarmLimit('HIHI', 'HHSV'),
      upperWarningLimit: alarmLimit('HIGH', 'HSV'),
      lowerWarningLimit: alarmLimit('LOW', 'LSV'),
      lowerAlarmLimit: alarmLimit('LOLO', 'LLSV'),
      upperCtrlLimit: drive ? drvh : hopr,
      lowerCtrlLimit: drive ? drvl : lopr
    }
  }

  #fieldMetadata (spec: FieldSpec): DbrMetadata {
    if (spec.menu !== undefined) return { enumStrings: spec.menu.slice(0, MAX_ENUM_STATES) }
    if (spec.inUnits === true) return { units: this.#f.get('EGU') as string, precision: this.#f.get('PREC') as number }
    return {}
  }
}

/** NELM elements of a ramp (0, 1, 2, ...) or one period of a sine of amplitude 1, in the waveform's type. */
function patternValue (base: DbrBase, nelm: number, pattern: WaveformPattern): DbrValue {
  if (base === DbrBase.STRING) return Array.from({ length: nelm }, (_, i) => String(i))
  const out = scalarValue(base, 0)
  const typed = new (out.constructor as new (n: number) => Exclude<DbrValue, string[]>)(nelm)
  for (let i = 0; i < nelm; i++) {
    typed[i] = pattern === 'ramp' ? i : Math.sin(2 * Math.PI * i / nelm) * (base === DbrBase.FLOAT || base === DbrBase.DOUBLE ? 1 : 100)
  }
  return typed
}
