import t from 'tap'
import {
  DbrBase, DbrClass, convertValue, dbrSize, dbrType, dbrTypeName, decodeDbr, emptyValue, encodeDbr, splitDbrType,
  valueOffset, type DbrPayload, type DbrValue
} from '../../src/parsers/index.js'
import { ErrorCode, FlyScanError } from '../../src/errors.js'
import { DBR_FIXTURES, DBR_SIZE, VALUE_OFFSETS, hex, pack } from '../fixtures/ca/dbr-layouts.js'

const BASES = [DbrBase.STRING, DbrBase.SHORT, DbrBase.FLOAT, DbrBase.ENUM, DbrBase.CHAR, DbrBase.LONG, DbrBase.DOUBLE]
const CLASSES = [DbrClass.PLAIN, DbrClass.STS, DbrClass.TIME, DbrClass.GR, DbrClass.CTRL]
const ORDERS = [{ le: false, name: 'big-endian (wire)' }, { le: true, name: 'little-endian (libca host order)' }]

t.test('hand-derived layouts: encode gives exactly the bytes of db_access.h, decode gives back the values', async t => {
  for (const f of DBR_FIXTURES) {
    for (const { le, name } of ORDERS) {
      t.test(`${f.name}, ${name}`, async t => {
        const expected = pack(f.fields, le)
        t.equal(dbrSize(f.type, f.count), expected.length, 'dbrSize matches the struct size')
        if (f.beHex !== undefined && !le) t.equal(hex(expected), f.beHex, 'pack() agrees with the bytes typed by hand')
        // Encode into a dirty buffer at an offset: every byte of the structure must be written.
        const out = new Uint8Array(expected.length + 8).fill(0xa5)
        const written = encodeDbr(f.type, f.count, f.decoded as DbrPayload, out, 3, le)
        t.equal(written, expected.length)
        t.equal(hex(out.subarray(3, 3 + written)), hex(expected))
        t.equal(out[2], 0xa5, 'nothing written before the offset')
        t.equal(out[3 + written], 0xa5, 'nothing written after the structure')
        const decoded = decodeDbr(f.type, f.count, expected, le)
        t.same(decoded, f.decoded)
        t.equal(decoded.value.constructor, f.decoded.value.constructor, 'value array of the base\'s type')
      })
    }
  }
})

t.test('value offsets and sizes of all 35 types follow db_access.h', async t => {
  for (const cls of CLASSES) {
    for (const base of BASES) {
      const type = dbrType(base, cls)
      t.equal(valueOffset(base, cls), VALUE_OFFSETS[cls]?.[base], `${dbrTypeName(type)} value offset`)
      t.equal(dbrSize(type, 1), DBR_SIZE[type], `${dbrTypeName(type)} size of one element`)
      t.equal(dbrSize(type, 5) - dbrSize(type, 1), 4 * (DBR_SIZE[type]! - valueOffset(base, cls)), `${dbrTypeName(type)} array size`)
    }
  }
  t.equal(dbrTypeName(20), 'DBR_TIME_DOUBLE')
  t.equal(dbrTypeName(31), 'DBR_CTRL_ENUM')
  t.equal(dbrTypeName(35), 'DBR_type_35')
  t.same(splitDbrType(32), { base: DbrBase.CHAR, cls: DbrClass.CTRL })
  t.throws(() => splitDbrType(35), { code: ErrorCode.CA_PROTOCOL, message: /DBR type 35/ })
})

/** A value of `base` with two distinct elements. */
function sample (base: DbrBase): DbrValue {
  switch (base) {
    case DbrBase.STRING: return ['alpha', 'beta']
    case DbrBase.SHORT: return new Int16Array([-300, 301])
    case DbrBase.FLOAT: return new Float32Array([1.5, -2.25])
    case DbrBase.ENUM: return new Uint16Array([1, 0])
    case DbrBase.CHAR: return new Uint8Array([7, 250])
    case DbrBase.LONG: return new Int32Array([-70000, 70001])
    case DbrBase.DOUBLE: return new Float64Array([Math.E, -1e-300])
  }
}

t.test('every class x base round-trips in both byte orders, and the two orders are mirror images field by field', async t => {
  const metadata = {
    units: 'mm',
    precision: 4,
    upperDispLimit: 100,
    lowerDispLimit: 1,
    upperAlarmLimit: 90,
    upperWarningLimit: 80,
    lowerWarningLimit: 3,
    lowerAlarmLimit: 2,
    upperCtrlLimit: 70,
    lowerCtrlLimit: 4,
    enumStrings: ['Zero', 'One']
  }
  for (const cls of CLASSES) {
    for (const base of BASES) {
      const type = dbrType(base, cls)
      const payload: DbrPayload = { value: sample(base), status: 5, severity: 2, stamp: { secPastEpoch: 123, nsec: 456 }, metadata }
      const be = new Uint8Array(dbrSize(type, 2))
      const le = new Uint8Array(dbrSize(type, 2))
      encodeDbr(type, 2, payload, be, 0, false)
      encodeDbr(type, 2, payload, le, 0, true)
      const fromBe = decodeDbr(type, 2, be, false)
      const fromLe = decodeDbr(type, 2, le, true)
      t.same(fromBe, fromLe, `${dbrTypeName(type)}: both orders decode alike`)
      t.same(fromBe.value, payload.value, `${dbrTypeName(type)}: value`)
      if (cls !== DbrClass.PLAIN) t.same([fromBe.status, fromBe.severity], [5, 2], `${dbrTypeName(type)}: alarm`)
      if (cls === DbrClass.TIME) t.same(fromBe.stamp, payload.stamp, `${dbrTypeName(type)}: stamp`)
      if ((cls === DbrClass.GR || cls === DbrClass.CTRL) && base !== DbrBase.STRING && base !== DbrBase.ENUM) {
        t.equal(fromBe.metadata?.units, 'mm')
        t.equal(fromBe.metadata?.lowerAlarmLimit, 2)
        t.equal(fromBe.metadata?.upperCtrlLimit, cls === DbrClass.CTRL ? 70 : undefined)
      }
      if ((cls === DbrClass.GR || cls === DbrClass.CTRL) && base === DbrBase.ENUM) t.same(fromBe.metadata?.enumStrings, ['Zero', 'One'])
      // status (i16) and severity (i16) lead every non-plain structure: mirror images of each other.
      if (cls !== DbrClass.PLAIN) t.same([...be.subarray(0, 4)], [le[1], le[0], le[3], le[2]], `${dbrTypeName(type)}: header fields swapped`)
    }
  }
})

t.test('arrays: shorter values are zero-filled to the count, longer ones cut, the value is a copy', async t => {
  const out = new Uint8Array(dbrSize(6, 4))
  encodeDbr(6, 4, { value: new Float64Array([1, 2]), status: 0, severity: 0 }, out, 0, false)
  t.same(decodeDbr(6, 4, out, false).value, new Float64Array([1, 2, 0, 0]))
  const cut = new Uint8Array(dbrSize(5, 1))
  encodeDbr(5, 1, { value: new Int32Array([9, 8, 7]), status: 0, severity: 0 }, cut, 0, true)
  t.same(decodeDbr(5, 1, cut, true).value, new Int32Array([9]))
  const bytes = pack([['u8', 1], ['u8', 2], ['u8', 3]], false)
  const v = decodeDbr(4, 3, bytes, false).value as Uint8Array
  bytes[0] = 99
  t.equal(v[0], 1, 'decoded value does not alias the input')
  const big = new Float64Array(100_000).map((_, i) => i * 0.5)
  const wire = new Uint8Array(dbrSize(20, big.length))
  encodeDbr(20, big.length, { value: big, status: 0, severity: 0, stamp: { secPastEpoch: 1, nsec: 2 } }, wire, 0, false)
  t.equal(new DataView(wire.buffer).getFloat64(16 + 8 * 99_999, false), 99_999 * 0.5, 'last element of a 100,000-element DBR_TIME_DOUBLE')
  t.same(decodeDbr(20, big.length, wire, false).value, big)
})

t.test('encodeDbr converts a value of another base; errors name what was wrong', async t => {
  const out = new Uint8Array(dbrSize(0, 1))
  encodeDbr(0, 1, { value: new Uint16Array([1]), status: 0, severity: 0, metadata: { enumStrings: ['Off', 'On'] } }, out, 0, false)
  t.same(decodeDbr(0, 1, out, false).value, ['On'], 'enum as DBR_STRING gives its state string')
  t.throws(() => decodeDbr(20, 2, new Uint8Array(20), false), { code: ErrorCode.CA_PROTOCOL, message: /DBR_TIME_DOUBLE with 2 element\(s\) needs 32 bytes, got 20/ })
  t.throws(() => encodeDbr(34, 1, { value: new Float64Array(1), status: 0, severity: 0 }, new Uint8Array(10), 0, false), { code: ErrorCode.CA_PROTOCOL, message: /88 bytes needed/ })
  t.same(emptyValue(DbrBase.STRING, 2), ['', ''])
})

t.test('conversions', async t => {
  const states = ['Off', 'On', 'Fault']
  t.same(convertValue(new Uint16Array([2, 0]), DbrBase.STRING, states), ['Fault', 'Off'], 'enum -> string by state')
  t.same(convertValue(new Uint16Array([5]), DbrBase.STRING, states), ['5'], 'an enum beyond its states -> its number')
  t.same(convertValue(['On', 'Fault'], DbrBase.ENUM, states), new Uint16Array([1, 2]), 'string -> enum by state')
  t.same(convertValue(['2'], DbrBase.ENUM, states), new Uint16Array([2]), 'string -> enum by number')
  t.throws(() => convertValue(['Maybe'], DbrBase.ENUM, states), { code: ErrorCode.BAD_INPUT, message: /cannot convert "Maybe" to ENUM/ })
  t.same(convertValue(new Float64Array([1.9, -1.9, 2.5, -0.5]), DbrBase.LONG), new Int32Array([1, -1, 2, 0]), 'double -> long truncates toward zero')
  t.same(convertValue(new Float64Array([70000.7]), DbrBase.SHORT), new Int16Array([4464]), 'double -> short wraps to 16 bits after truncation')
  t.same(convertValue(new Float64Array([-1]), DbrBase.CHAR), new Uint8Array([255]), 'double -> char wraps to 8 bits')
  t.same(convertValue(new Int32Array([3]), DbrBase.DOUBLE), new Float64Array([3]))
  t.same(convertValue(new Uint8Array([200]), DbrBase.FLOAT), new Float32Array([200]))
  t.same(convertValue([' 12.5 ', '1e3', '-4', ''], DbrBase.DOUBLE), new Float64Array([12.5, 1000, -4, 0]), 'strings -> double, whole string, empty is 0')
  t.same(convertValue(['12.9'], DbrBase.LONG), new Int32Array([12]), 'string -> long truncates')
  const special = convertValue(['nan', '-Inf', 'infinity'], DbrBase.DOUBLE) as Float64Array
  t.ok(Number.isNaN(special[0]))
  t.same([special[1], special[2]], [-Infinity, Infinity])
  for (const bad of ['abc', '12abc', '1.2.3', '0x']) {
    t.throws(() => convertValue([bad], DbrBase.DOUBLE), { code: ErrorCode.BAD_INPUT, message: new RegExp(`"${bad.replace('.', '\\.')}"`) }, `"${bad}" raises`)
  }
  t.same(convertValue(new Float64Array([0.1, 3, -2.5e-7]), DbrBase.STRING), ['0.1', '3', '-2.5e-7'], 'double -> string, shortest round trip')
  t.same(convertValue(new Float32Array([0.1, 1.5]), DbrBase.STRING), ['0.1', '1.5'], 'float -> string, shortest float32 form')
  t.same(convertValue(new Int16Array([-42]), DbrBase.STRING), ['-42'])
  const same = new Float64Array([1])
  t.equal(convertValue(same, DbrBase.DOUBLE), same, 'same base: the value itself')
  const err = t.throws(() => convertValue(['x'], DbrBase.LONG)) as unknown
  t.ok(err instanceof FlyScanError)
})

const NUMERIC_BASES = [DbrBase.SHORT, DbrBase.FLOAT, DbrBase.ENUM, DbrBase.CHAR, DbrBase.LONG, DbrBase.DOUBLE]
const ELEMENT_BYTES: Readonly<Record<number, number>> = { [DbrBase.SHORT]: 2, [DbrBase.FLOAT]: 4, [DbrBase.ENUM]: 2, [DbrBase.CHAR]: 1, [DbrBase.LONG]: 4, [DbrBase.DOUBLE]: 8 }

/** Element `i` written with a DataView, one at a time: the reference the bulk copy-and-swap must match. */
function setElement (view: DataView, base: DbrBase, at: number, v: number, le: boolean): void {
  switch (base) {
    case DbrBase.SHORT: view.setInt16(at, v, le); return
    case DbrBase.FLOAT: view.setFloat32(at, v, le); return
    case DbrBase.ENUM: view.setUint16(at, v, le); return
    case DbrBase.CHAR: view.setUint8(at, v); return
    case DbrBase.LONG: view.setInt32(at, v, le); return
    default: view.setFloat64(at, v, le)
  }
}

function getElement (view: DataView, base: DbrBase, at: number, le: boolean): number {
  switch (base) {
    case DbrBase.SHORT: return view.getInt16(at, le)
    case DbrBase.FLOAT: return view.getFloat32(at, le)
    case DbrBase.ENUM: return view.getUint16(at, le)
    case DbrBase.CHAR: return view.getUint8(at)
    case DbrBase.LONG: return view.getInt32(at, le)
    default: return view.getFloat64(at, le)
  }
}

/**
 * `n` elements of `base` with every byte position varying, and the edge values of the type (extremes, -0, NaN,
 * infinities), as a view that starts one element into a larger array (a non-zero byteOffset).
 */
function awkwardValues (base: DbrBase, n: number): Exclude<DbrValue, string[]> {
  const host = emptyValue(base, n + 2) as Exclude<DbrValue, string[]>
  const edges: Record<number, number[]> = {
    [DbrBase.SHORT]: [-32768, 32767, -1, 0x1234],
    [DbrBase.FLOAT]: [-0, Number.NaN, Infinity, -Infinity, 3.4028234663852886e38, 1.401298464324817e-45],
    [DbrBase.ENUM]: [0, 65535, 0x1234],
    [DbrBase.CHAR]: [0, 255, 0x12],
    [DbrBase.LONG]: [-2147483648, 2147483647, -1, 0x12345678],
    [DbrBase.DOUBLE]: [-0, Number.NaN, Infinity, -Infinity, Number.MAX_VALUE, Number.MIN_VALUE, Math.PI]
  }
  const edge = edges[base] ?? []
  for (let i = 0; i < n; i++) {
    const e = edge[i]
    host[i + 1] = e ?? ((i * 2654435761) % 65521) * (i % 3 === 0 ? -1.000123 : 1.5)
  }
  host[0] = 99
  host[n + 1] = 99
  return host.subarray(1, n + 1)
}

/** The bytes of a DBR structure whose value part is written element by element (header bytes as encodeDbr left them). */
function perElementBytes (encoded: Uint8Array, base: DbrBase, vOff: number, value: Exclude<DbrValue, string[]>, le: boolean): Uint8Array {
  const expected = encoded.slice()
  const view = new DataView(expected.buffer, expected.byteOffset, expected.byteLength)
  for (let i = 0; i < value.length; i++) setElement(view, base, vOff + i * (ELEMENT_BYTES[base] as number), value[i] as number, le)
  return expected
}

t.test('bulk copy-and-swap of numeric arrays equals element-by-element DataView encoding and decoding', async t => {
  // Lengths around Buffer's native swap threshold (128 bytes) and odd ones; offsets that misalign the value.
  const lengths = [1, 2, 3, 7, 15, 16, 17, 63, 64, 65, 127, 129, 1001]
  const offsets = [0, 1, 3, 6, 7]
  let cases = 0
  for (const base of NUMERIC_BASES) {
    for (const cls of CLASSES) {
      const type = dbrType(base, cls)
      const vOff = valueOffset(base, cls)
      const elementBytes = ELEMENT_BYTES[base] as number
      const problems: string[] = []
      for (const n of lengths) {
        const value = awkwardValues(base, n)
        const before = hex(new Uint8Array(value.buffer))
        for (const { le } of ORDERS) {
          for (const at of offsets) {
            const where = `x${n} at offset ${at}, ${le ? 'LE' : 'BE'}`
            const size = dbrSize(type, n)
            const out = new Uint8Array(at + size + 3).fill(0xa5)
            encodeDbr(type, n, { value, status: 3, severity: 1, stamp: { secPastEpoch: 7, nsec: 8 } }, out, at, le)
            const got = out.subarray(at, at + size)
            const want = perElementBytes(got, base, vOff, value, le)
            if (hex(got) !== hex(want)) problems.push(`${where}: encoded bytes differ from the per-element reference`)
            // Decode the reference from an odd offset of a larger buffer (an unaligned source).
            const shifted = new Uint8Array(size + at + 5)
            shifted.set(want, at + 1)
            const src = shifted.subarray(at + 1, at + 1 + size)
            const decoded = decodeDbr(type, n, src, le).value as Exclude<DbrValue, string[]>
            const view = new DataView(src.buffer, src.byteOffset, src.byteLength)
            for (let i = 0; i < n; i++) {
              const ref = getElement(view, base, vOff + i * elementBytes, le)
              if (!Object.is(decoded[i], ref) || !Object.is(decoded[i], value[i])) {
                problems.push(`${where}: element ${i} decoded as ${String(decoded[i])}, per-element read ${ref}, sent ${String(value[i])}`)
                break
              }
            }
            if (decoded.length !== n) problems.push(`${where}: decoded ${decoded.length} elements`)
            if (hex(src) !== hex(want)) problems.push(`${where}: decoding changed its input`)
            cases++
          }
        }
        if (hex(new Uint8Array(value.buffer)) !== before) problems.push(`x${n}: encoding changed the value array`)
      }
      t.same(problems, [], `${dbrTypeName(type)}: every length, offset and byte order`)
    }
  }
  t.equal(cases, NUMERIC_BASES.length * CLASSES.length * lengths.length * ORDERS.length * offsets.length)
})

t.test('a value of another base is cast as C would, then encoded', async t => {
  const out = new Uint8Array(dbrSize(DbrBase.SHORT, 3))
  encodeDbr(DbrBase.SHORT, 3, { value: new Float64Array([1.9, -70000.7, 32768]), status: 0, severity: 0 }, out, 0, false)
  t.same([...out], [0, 1, 0xee, 0x90, 0x80, 0], 'doubles truncated, then wrapped to 16 bits, big-endian')
})

t.test('numeric conversions between bases match element-by-element C casts', async t => {
  const edge = [0, -0, 1.9, -1.9, 2.5, -0.5, 255.7, 256, -129, 32767.9, 32768, -32769, 65535, 65536, 70000.7,
    2147483647, 2147483648, -2147483649, 1e20, -1e20, Number.NaN, Infinity, -Infinity, 3.4e38, 1e-45]
  const sources: Array<Exclude<DbrValue, string[]>> = [
    new Float64Array(edge), new Float32Array(edge), new Int32Array(edge), new Int16Array(edge), new Uint16Array(edge), new Uint8Array(edge)
  ]
  for (const src of sources) {
    for (const to of NUMERIC_BASES) {
      const got = convertValue(src, to) as Exclude<DbrValue, string[]>
      const want = emptyValue(to, src.length) as Exclude<DbrValue, string[]>
      const integer = to !== DbrBase.FLOAT && to !== DbrBase.DOUBLE
      for (let i = 0; i < src.length; i++) want[i] = integer ? Math.trunc(src[i] as number) : src[i] as number
      t.same([...got].map(String), [...want].map(String), `${src.constructor.name} -> ${dbrTypeName(to)}`)
      t.equal(got.constructor, want.constructor)
    }
  }
})
