/**
 * EPICS Channel Access DBR types: the value structures a get, put or monitor carries, for both ends of the wire.
 *
 * One codec serves two byte orders. On the wire (the simulated IOC) every field is big-endian; libca hands the client
 * the same C structures in host order (little-endian here). The layouts are those of EPICS base's `db_access.h`
 * (dbr_sts_*, dbr_time_*, dbr_gr_*, dbr_ctrl_*), C padding included; docs/ca-protocol.md has the table with sources.
 */
import { ErrorCode, FlyScanError } from '../../errors.js'

/** The seven native value types (the DBR_ type number of the plain form). */
export const DbrBase = { STRING: 0, SHORT: 1, FLOAT: 2, ENUM: 3, CHAR: 4, LONG: 5, DOUBLE: 6 } as const
export type DbrBase = typeof DbrBase[keyof typeof DbrBase]

/** Plain value, then status+severity, then +timestamp, then +graphic metadata, then +control limits. */
export const DbrClass = { PLAIN: 0, STS: 1, TIME: 2, GR: 3, CTRL: 4 } as const
export type DbrClass = typeof DbrClass[keyof typeof DbrClass]

export const MAX_STRING_SIZE = 40
export const MAX_UNITS_SIZE = 8
export const MAX_ENUM_STRING_SIZE = 26
export const MAX_ENUM_STATES = 16
/** Seconds from the POSIX epoch (1970) to the EPICS epoch (1990-01-01 UTC). */
export const EPICS_EPOCH_OFFSET_S = 631152000

const BASE_NAMES = ['STRING', 'SHORT', 'FLOAT', 'ENUM', 'CHAR', 'LONG', 'DOUBLE'] as const
const CLASS_PREFIX = ['DBR_', 'DBR_STS_', 'DBR_TIME_', 'DBR_GR_', 'DBR_CTRL_'] as const
const ELEMENT_SIZE = [MAX_STRING_SIZE, 2, 4, 2, 1, 4, 8] as const

/** Where the first value element sits, per class then base (C struct padding included). */
const VALUE_OFFSET: readonly (readonly number[])[] = [
  [0, 0, 0, 0, 0, 0, 0],
  [4, 4, 4, 4, 5, 4, 8],
  [12, 14, 12, 14, 15, 12, 16],
  [4, 24, 40, 422, 19, 36, 64],
  [4, 28, 48, 422, 21, 44, 80]
]

export type DbrValue = string[] | Int16Array | Float32Array | Uint16Array | Uint8Array | Int32Array | Float64Array

/** An EPICS timestamp: seconds since 1990-01-01 UTC and nanoseconds. */
export interface EpicsTime {
  readonly secPastEpoch: number
  readonly nsec: number
}

/** The metadata of the GR and CTRL classes; which fields a type carries depends on its base. */
export interface DbrMetadata {
  readonly units?: string
  readonly precision?: number
  readonly upperDispLimit?: number
  readonly lowerDispLimit?: number
  readonly upperAlarmLimit?: number
  readonly upperWarningLimit?: number
  readonly lowerWarningLimit?: number
  readonly lowerAlarmLimit?: number
  readonly upperCtrlLimit?: number
  readonly lowerCtrlLimit?: number
  readonly enumStrings?: readonly string[]
}

/** A decoded (or to-be-encoded) DBR structure. status/severity are 0 in the plain class. */
export interface DbrPayload {
  readonly value: DbrValue
  readonly status: number
  readonly severity: number
  readonly stamp?: EpicsTime
  readonly metadata?: DbrMetadata
}

export function dbrType (base: DbrBase, cls: DbrClass): number {
  return base + 7 * cls
}

export function isDbrType (type: number): boolean {
  return Number.isInteger(type) && type >= 0 && type <= 34
}

/** Split a DBR type number (0..34) into base and class; anything else is a CA_PROTOCOL error. */
export function splitDbrType (type: number): { base: DbrBase, cls: DbrClass } {
  if (!isDbrType(type)) {
    throw new FlyScanError(ErrorCode.CA_PROTOCOL, `DBR type ${type} is not one of the value types 0..34`, { details: { dbrType: type } })
  }
  return { base: (type % 7) as DbrBase, cls: Math.floor(type / 7) as DbrClass }
}

/** `DBR_TIME_DOUBLE` and so on. */
export function dbrTypeName (type: number): string {
  if (!isDbrType(type)) return `DBR_type_${type}`
  const { base, cls } = splitDbrType(type)
  return `${CLASS_PREFIX[cls]}${BASE_NAMES[base]}`
}

export function elementSize (base: DbrBase): number {
  return ELEMENT_SIZE[base]
}

/** Bytes of a `type` structure holding `count` elements (dbr_size_n), before padding to 8 on the wire. */
export function dbrSize (type: number, count: number): number {
  const { base, cls } = splitDbrType(type)
  return valueOffset(base, cls) + Math.max(count, 1) * ELEMENT_SIZE[base]
}

export function valueOffset (base: DbrBase, cls: DbrClass): number {
  return (VALUE_OFFSET[cls] as readonly number[])[base] as number
}

/** An empty value of `base` with `count` elements. */
export function emptyValue (base: DbrBase, count: number): DbrValue {
  if (base === DbrBase.STRING) return new Array<string>(count).fill('')
  return numericValueOn(base, new ArrayBuffer(count * ELEMENT_SIZE[base]))
}

/** The typed array of numeric `base` over the whole of `buffer` (e.g. one the caller allocated without zeroing). */
export function numericValueOn (base: Exclude<DbrBase, typeof DbrBase.STRING>, buffer: ArrayBuffer): Exclude<DbrValue, string[]> {
  switch (base) {
    case DbrBase.SHORT: return new Int16Array(buffer)
    case DbrBase.FLOAT: return new Float32Array(buffer)
    case DbrBase.ENUM: return new Uint16Array(buffer)
    case DbrBase.CHAR: return new Uint8Array(buffer)
    case DbrBase.LONG: return new Int32Array(buffer)
    case DbrBase.DOUBLE: return new Float64Array(buffer)
  }
}

/** The base a value array belongs to. */
export function baseOfValue (value: DbrValue): DbrBase {
  if (Array.isArray(value)) return DbrBase.STRING
  if (value instanceof Int16Array) return DbrBase.SHORT
  if (value instanceof Float32Array) return DbrBase.FLOAT
  if (value instanceof Uint16Array) return DbrBase.ENUM
  if (value instanceof Uint8Array) return DbrBase.CHAR
  if (value instanceof Int32Array) return DbrBase.LONG
  return DbrBase.DOUBLE
}

const utf8Decoder = new TextDecoder('utf-8')
const utf8Encoder = new TextEncoder()

function readCString (bytes: Uint8Array, offset: number, max: number): string {
  let end = offset
  const limit = Math.min(offset + max, bytes.length)
  while (end < limit && bytes[end] !== 0) end++
  return utf8Decoder.decode(bytes.subarray(offset, end))
}

/** Write `s` as a NUL-terminated string in a field of `max` bytes (truncated to max-1 bytes; the rest zeroed). */
function writeCString (bytes: Uint8Array, offset: number, max: number, s: string): void {
  bytes.fill(0, offset, offset + max)
  const encoded = utf8Encoder.encode(s)
  bytes.set(encoded.subarray(0, max - 1), offset)
}

/** Numbers of `base` at `offset`, read as the C type. */
function readNumber (view: DataView, base: DbrBase, offset: number, le: boolean): number {
  switch (base) {
    case DbrBase.SHORT: return view.getInt16(offset, le)
    case DbrBase.FLOAT: return view.getFloat32(offset, le)
    case DbrBase.ENUM: return view.getUint16(offset, le)
    case DbrBase.CHAR: return view.getUint8(offset)
    case DbrBase.LONG: return view.getInt32(offset, le)
    default: return view.getFloat64(offset, le)
  }
}

function writeNumber (view: DataView, base: DbrBase, offset: number, v: number, le: boolean): void {
  switch (base) {
    case DbrBase.SHORT: view.setInt16(offset, v, le); return
    case DbrBase.FLOAT: view.setFloat32(offset, v, le); return
    case DbrBase.ENUM: view.setUint16(offset, v, le); return
    case DbrBase.CHAR: view.setUint8(offset, v & 0xff); return
    case DbrBase.LONG: view.setInt32(offset, v, le); return
    default: view.setFloat64(offset, v, le)
  }
}

const LIMIT_KEYS = [
  'upperDispLimit', 'lowerDispLimit', 'upperAlarmLimit', 'upperWarningLimit', 'lowerWarningLimit', 'lowerAlarmLimit',
  'upperCtrlLimit', 'lowerCtrlLimit'
] as const

/** Offset of the units field in GR/CTRL structures of numeric bases (float and double carry precision first). */
function unitsOffset (base: DbrBase): number {
  return base === DbrBase.FLOAT || base === DbrBase.DOUBLE ? 8 : 4
}

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/**
 * Reverse the bytes of each `size`-byte element of `bytes`, in place. Buffer's swap16/32/64 run natively (all but
 * runs under 128 bytes) and accept any alignment: an 8 MiB DBR_SHORT array encodes big-endian in about 2 ms, where
 * converting element by element through a DataView took about 40 ms.
 */
function swapElements (bytes: Uint8Array, size: number): void {
  if (size === 1 || bytes.length === 0) return
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (size === 2) view.swap16()
  else if (size === 4) view.swap32()
  else view.swap64()
}

/**
 * Read `count` elements of `base` starting at `offset` into a new array (a copy: `bytes` may be reused). Numbers are
 * one bulk copy, then a bulk byte swap when `le` is not the host's order; the source may have any alignment.
 */
function readValues (bytes: Uint8Array, base: DbrBase, offset: number, count: number, le: boolean): DbrValue {
  if (base === DbrBase.STRING) {
    const out: string[] = []
    for (let i = 0; i < count; i++) out.push(readCString(bytes, offset + i * MAX_STRING_SIZE, MAX_STRING_SIZE))
    return out
  }
  const size = ELEMENT_SIZE[base]
  if (base === DbrBase.CHAR) return bytes.slice(offset, offset + count)
  const out = emptyValue(base, count) as Exclude<DbrValue, string[]>
  const outBytes = new Uint8Array(out.buffer, out.byteOffset, count * size)
  outBytes.set(bytes.subarray(offset, offset + count * size))
  if (le !== HOST_LITTLE_ENDIAN) swapElements(outBytes, size)
  return out
}

/**
 * Write `count` elements of `value` at `offset` (zeros after a shorter value). A value of the base's own array type
 * is one bulk copy, then a bulk byte swap of the copy when `le` is not the host's order (the value itself is not
 * touched); only a value of another type goes element by element, each cast as C would.
 */
function writeValues (bytes: Uint8Array, view: DataView, base: DbrBase, offset: number, value: DbrValue, count: number, le: boolean): void {
  if (base === DbrBase.STRING) {
    const strings = value as string[]
    for (let i = 0; i < count; i++) writeCString(bytes, offset + i * MAX_STRING_SIZE, MAX_STRING_SIZE, strings[i] ?? '')
    return
  }
  const numbers = value as Exclude<DbrValue, string[]>
  const n = Math.min(count, numbers.length)
  const size = ELEMENT_SIZE[base]
  if (baseOfValue(numbers) === base) {
    const dst = bytes.subarray(offset, offset + n * size)
    dst.set(new Uint8Array(numbers.buffer, numbers.byteOffset, n * size))
    if (le !== HOST_LITTLE_ENDIAN) swapElements(dst, size)
  } else {
    for (let i = 0; i < n; i++) writeNumber(view, base, offset + i * size, numbers[i] as number, le)
  }
  bytes.fill(0, offset + n * size, offset + count * size)
}

/**
 * Decode a `type` structure of `count` elements from `bytes` (starting at 0). `littleEndian` is false for wire
 * bytes and true for libca's host-order buffers. The value is always a copy.
 */
export function decodeDbr (type: number, count: number, bytes: Uint8Array, littleEndian: boolean): DbrPayload {
  const { base, cls } = splitDbrType(type)
  const need = dbrSize(type, count)
  if (bytes.length < need) {
    throw new FlyScanError(ErrorCode.CA_PROTOCOL,
      `${dbrTypeName(type)} with ${count} element(s) needs ${need} bytes, got ${bytes.length}`,
      { details: { dbrType: type, count, need, got: bytes.length } })
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const le = littleEndian
  const value = readValues(bytes, base, valueOffset(base, cls), count, le)
  if (cls === DbrClass.PLAIN) return { value, status: 0, severity: 0 }
  const status = view.getInt16(0, le)
  const severity = view.getInt16(2, le)
  if (cls === DbrClass.STS) return { value, status, severity }
  if (cls === DbrClass.TIME) {
    return { value, status, severity, stamp: { secPastEpoch: view.getUint32(4, le), nsec: view.getUint32(8, le) } }
  }
  if (base === DbrBase.STRING) return { value, status, severity, metadata: {} }
  if (base === DbrBase.ENUM) {
    const n = Math.min(Math.max(view.getInt16(4, le), 0), MAX_ENUM_STATES)
    const enumStrings: string[] = []
    for (let i = 0; i < n; i++) enumStrings.push(readCString(bytes, 6 + i * MAX_ENUM_STRING_SIZE, MAX_ENUM_STRING_SIZE))
    return { value, status, severity, metadata: { enumStrings } }
  }
  const uOff = unitsOffset(base)
  const meta: Record<string, number | string> = { units: readCString(bytes, uOff, MAX_UNITS_SIZE) }
  if (uOff === 8) meta.precision = view.getInt16(4, le)
  const nLimits = cls === DbrClass.CTRL ? 8 : 6
  const size = ELEMENT_SIZE[base]
  for (let i = 0; i < nLimits; i++) meta[LIMIT_KEYS[i] as string] = readNumber(view, base, uOff + MAX_UNITS_SIZE + i * size, le)
  return { value, status, severity, metadata: meta as DbrMetadata }
}

/**
 * Encode `payload` as a `type` structure of `count` elements into `out` at `offset`; returns the bytes written
 * (`dbrSize(type, count)`, unpadded). Values are converted to the type's base as C would cast them; a shorter value
 * is zero-filled up to `count`.
 */
export function encodeDbr (type: number, count: number, payload: DbrPayload, out: Uint8Array, offset: number, littleEndian: boolean): number {
  const { base, cls } = splitDbrType(type)
  const size = dbrSize(type, count)
  if (out.length - offset < size) {
    throw new FlyScanError(ErrorCode.CA_PROTOCOL, `no room to encode ${dbrTypeName(type)}: ${size} bytes needed`, { details: { need: size } })
  }
  const bytes = out.subarray(offset, offset + size)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const le = littleEndian
  const vOff = valueOffset(base, cls)
  bytes.fill(0, 0, vOff)
  const value = baseOfValue(payload.value) === base ? payload.value : convertValue(payload.value, base, payload.metadata?.enumStrings)
  writeValues(bytes, view, base, vOff, value, Math.max(count, 1), le)
  if (cls === DbrClass.PLAIN) return size
  view.setInt16(0, payload.status, le)
  view.setInt16(2, payload.severity, le)
  if (cls === DbrClass.TIME) {
    view.setUint32(4, payload.stamp?.secPastEpoch ?? 0, le)
    view.setUint32(8, payload.stamp?.nsec ?? 0, le)
    return size
  }
  if (cls === DbrClass.STS || base === DbrBase.STRING) return size
  const meta = payload.metadata ?? {}
  if (base === DbrBase.ENUM) {
    const strings = (meta.enumStrings ?? []).slice(0, MAX_ENUM_STATES)
    view.setInt16(4, strings.length, le)
    strings.forEach((s, i) => writeCString(bytes, 6 + i * MAX_ENUM_STRING_SIZE, MAX_ENUM_STRING_SIZE, s))
    return size
  }
  const uOff = unitsOffset(base)
  writeCString(bytes, uOff, MAX_UNITS_SIZE, meta.units ?? '')
  if (uOff === 8) view.setInt16(4, meta.precision ?? 0, le)
  const nLimits = cls === DbrClass.CTRL ? 8 : 6
  const elSize = ELEMENT_SIZE[base]
  for (let i = 0; i < nLimits; i++) {
    writeNumber(view, base, uOff + MAX_UNITS_SIZE + i * elSize, meta[LIMIT_KEYS[i] as keyof DbrMetadata] as number | undefined ?? 0, le)
  }
  return size
}

/**
 * A number as a DBR_STRING: integers in decimal, doubles in their shortest round-trip form, floats in the shortest
 * form that reads back to the same float32 (0.1 rather than 0.10000000149011612).
 */
function formatNumber (v: number, from: DbrBase): string {
  if (from !== DbrBase.FLOAT || !Number.isFinite(v) || Number.isInteger(v)) return String(v)
  for (let digits = 1; digits <= 9; digits++) {
    const shorter = Number(v.toPrecision(digits))
    if (Math.fround(shorter) === v) return String(shorter)
  }
  return String(v)
}

/**
 * A DBR_STRING read as a number, strictly: the whole string (spaces around it aside) must be a number. An empty
 * string is 0 and `nan`/`inf` are accepted, as EPICS base's string conversions do; anything else is BAD_INPUT.
 */
function parseNumber (s: string, to: DbrBase): number {
  const t = s.trim()
  if (t === '') return 0
  const special = /^([+-]?)(nan|inf|infinity)$/i.exec(t)
  if (special !== null) {
    if ((special[2] as string).toLowerCase() === 'nan') return Number.NaN
    return special[1] === '-' ? -Infinity : Infinity
  }
  const v = Number(t)
  if (Number.isNaN(v)) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `cannot convert "${s}" to ${BASE_NAMES[to]}: not a number`, {
      details: { value: s, to: BASE_NAMES[to] }
    })
  }
  return v
}

/**
 * Convert a value to another base, as a server answering a request for a type other than the native one does:
 * numbers cast as C casts them (doubles to integers truncate toward zero; integers wrap to the width of the
 * target), enums to and from their state strings, numbers to decimal strings, strings to numbers strictly (a
 * string that is not a number is a BAD_INPUT error naming it).
 */
export function convertValue (value: DbrValue, to: DbrBase, enumStrings?: readonly string[]): DbrValue {
  const from = baseOfValue(value)
  if (from === to) return value
  const n = value.length
  if (to === DbrBase.STRING) {
    const out: string[] = []
    for (let i = 0; i < n; i++) {
      const v = value[i] as number
      if (from === DbrBase.ENUM && enumStrings !== undefined && enumStrings[v] !== undefined) out.push(enumStrings[v])
      else out.push(formatNumber(v, from))
    }
    return out
  }
  const out = emptyValue(to, n) as Exclude<DbrValue, string[]>
  if (!Array.isArray(value)) {
    // Typed array to typed array: set() stores each element as an assignment would (integers truncated toward zero,
    // then wrapped to the target's width; NaN and infinities to 0 in integers), natively.
    out.set(value)
    return out
  }
  const integer = to !== DbrBase.FLOAT && to !== DbrBase.DOUBLE
  for (let i = 0; i < n; i++) {
    const v = value[i] as number | string
    let num: number
    if (typeof v === 'string') {
      const state = to === DbrBase.ENUM && enumStrings !== undefined ? enumStrings.indexOf(v) : -1
      num = state >= 0 ? state : parseNumber(v, to)
    } else {
      num = v
    }
    out[i] = integer ? Math.trunc(num) : num
  }
  return out
}

/** An EPICS timestamp from milliseconds since the POSIX epoch (plus optional extra nanoseconds). */
export function epicsTimeFromMs (ms: number): EpicsTime {
  const totalS = Math.floor(ms / 1000)
  const nsec = Math.round((ms - totalS * 1000) * 1e6)
  return { secPastEpoch: Math.max(totalS - EPICS_EPOCH_OFFSET_S, 0), nsec: Math.min(nsec, 999_999_999) }
}

/** Seconds since the POSIX epoch of an EPICS timestamp (the event-model unit). */
export function epicsTimeToPosixSeconds (t: EpicsTime): number {
  return t.secPastEpoch + EPICS_EPOCH_OFFSET_S + t.nsec / 1e9
}
