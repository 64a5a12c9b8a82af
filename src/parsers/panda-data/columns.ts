/**
 * PandA rows → one column per captured field, as the reference client's HDF pipeline lays them out
 * (PandABlocks-client FrameProcessor + HDFWriter): one 1-D dataset per field named `<FIELD>.<Capture>`.
 *
 * Pure: no I/O. `columnsFor(start)` says which datasets an acquisition has; `ColumnDecoder.decode()` turns packed
 * rows (FrameData.bytes) into per-column typed arrays. ../../../docs/hdf5-layout.md states the rules.
 */
import { ErrorCode, FlyScanError } from '../../errors.js'
import type { FieldInfo, FrameData, StartData } from './types.js'

/** Element type of an output column. */
export type ColumnDtype = 'float64' | 'uint32'
/** The typed array that holds a column of that dtype. */
export type ColumnArray = Float64Array | Uint32Array

/** How a column's values are computed from the packed row. */
export type ColumnConversion =
  /** the uint32 as sent */
  | 'copy-uint32'
  /** the double as sent (SCALED mode) */
  | 'copy-double'
  /** raw integer * scale + offset (RAW mode; also used with scale 1, offset 0) */
  | 'scale'
  /** raw int64 sum * scale / divisor + offset (RAW `Mean`) */
  | 'mean'

export interface ColumnSpec {
  /** Dataset name, `<FIELD>.<Capture>`, e.g. `COUNTER1.OUT.Max`. */
  readonly name: string
  /** The header field it comes from. */
  readonly field: FieldInfo
  readonly dtype: ColumnDtype
  readonly conversion: ColumnConversion
  /** For `mean`: the field whose raw value divides the sum (`PCAP.GATE_DURATION` or `PCAP.SAMPLES`). */
  readonly divisor: FieldInfo | undefined
  /** Bytes per element in the output column (8 or 4). */
  readonly elementBytes: number
}

const GATE_DURATION = 'PCAP.GATE_DURATION'
const SAMPLES = 'PCAP.SAMPLES'
const TWO_POW_32 = 4294967296

function isRaw (start: StartData): boolean {
  return start.process.toLowerCase() === 'raw'
}

function fail (message: string, details: Record<string, string | number>): never {
  throw new FlyScanError(ErrorCode.PANDA_PROTOCOL, message, { details })
}

/** The output columns of an acquisition, in header order. Throws FLY_ERR_PANDA_PROTOCOL for layouts it cannot decode. */
export function columnsFor (start: StartData): ColumnSpec[] {
  const raw = isRaw(start)
  const names = new Set<string>()
  const gate = start.fields.find(f => f.name === GATE_DURATION && f.capture === 'Value')
  const samples = start.fields.find(f => f.name === SAMPLES)
  const columns: ColumnSpec[] = []
  for (const field of start.fields) {
    const name = `${field.name}.${field.capture}`
    if (names.has(name)) fail(`PandA header lists ${name} twice`, { dataset: name })
    names.add(name)
    const expectedBytes = field.type === 'int96' ? 12 : field.type === 'uint32' || field.type === 'int32' ? 4 : 8
    if (field.byteLength !== expectedBytes) {
      fail(`PandA field ${name} of type ${field.type} has byteLength ${field.byteLength}, expected ${expectedBytes}`,
        { dataset: name, byteLength: field.byteLength })
    }
    if (field.byteOffset < 0 || field.byteOffset + field.byteLength > start.sampleBytes) {
      fail(`PandA field ${name} (bytes ${field.byteOffset}..${field.byteOffset + field.byteLength}) does not fit in ` +
        `sample_bytes=${start.sampleBytes}`, { dataset: name, byteOffset: field.byteOffset, sampleBytes: start.sampleBytes })
    }
    const hasScale = field.scale !== undefined && field.offset !== undefined
    if (field.type === 'int96') {
      fail(`PandA field ${name} is a RAW int96 StdDev, which tst-fly does not decode: capture StdDev with SCALED ` +
        'processing (the server then sends it as a double)', { dataset: name, type: field.type })
    }
    let dtype: ColumnDtype
    let conversion: ColumnConversion
    let divisor: FieldInfo | undefined
    if (field.type === 'uint32' && !(raw && hasScale)) {
      dtype = 'uint32'
      conversion = 'copy-uint32'
    } else if (field.type === 'double') {
      dtype = 'float64'
      conversion = 'copy-double'
    } else if (raw && field.capture === 'Mean') {
      divisor = gate ?? samples
      if (divisor === undefined) {
        fail(`PandA RAW field ${name} is a sum, but neither ${GATE_DURATION} nor ${SAMPLES} is captured to divide it by`,
          { dataset: name })
      }
      dtype = 'float64'
      conversion = 'mean'
    } else {
      // RAW int32/int64 (and uint32 with a scale): raw * scale + offset; without a scale, the integer as a double.
      dtype = 'float64'
      conversion = 'scale'
    }
    columns.push({ name, field, dtype, conversion, divisor, elementBytes: dtype === 'uint32' ? 4 : 8 })
  }
  return columns
}

/** Allocate one typed array per column, each `rows` long. */
export function allocateColumns (columns: readonly ColumnSpec[], rows: number): ColumnArray[] {
  return columns.map(c => c.dtype === 'uint32' ? new Uint32Array(rows) : new Float64Array(rows))
}

/** Reads a field's raw value as a double, whatever its integer type. */
function readNumber (view: DataView, at: number, type: FieldInfo['type']): number {
  switch (type) {
    case 'uint32': return view.getUint32(at, true)
    case 'int32': return view.getInt32(at, true)
    case 'double': return view.getFloat64(at, true)
    default: return view.getUint32(at, true) + view.getInt32(at + 4, true) * TWO_POW_32
  }
}

/**
 * Turns packed rows into columns. Holds no per-call state: `decode` writes into arrays the caller owns, so a writer
 * can fill a block buffer frame by frame without allocating.
 */
export class ColumnDecoder {
  readonly columns: readonly ColumnSpec[]
  readonly sampleBytes: number

  constructor (start: StartData) {
    this.columns = columnsFor(start)
    this.sampleBytes = start.sampleBytes
  }

  /** Bytes one row takes in the output columns (sum of element sizes). */
  get rowBytes (): number {
    let n = 0
    for (const c of this.columns) n += c.elementBytes
    return n
  }

  allocate (rows: number): ColumnArray[] {
    return allocateColumns(this.columns, rows)
  }

  /**
   * Decode `count` rows of `frame`, starting at its row `firstRow`, into `out[i][at ..]` (one array per column, as
   * `allocate` makes them). Throws FLY_ERR_PANDA_PROTOCOL when the frame's byte count is not rows * sampleBytes.
   */
  decode (frame: FrameData, out: readonly ColumnArray[], at = 0, firstRow = 0, count = frame.rows - firstRow): void {
    const sb = this.sampleBytes
    if (frame.bytes.byteLength !== frame.rows * sb) {
      fail(`PandA frame has ${frame.bytes.byteLength} bytes for ${frame.rows} rows of ${sb} bytes`,
        { bytes: frame.bytes.byteLength, rows: frame.rows, sampleBytes: sb })
    }
    if (firstRow < 0 || count < 0 || firstRow + count > frame.rows) {
      fail(`PandA frame rows ${firstRow}..${firstRow + count} out of range (frame has ${frame.rows})`,
        { firstRow, count, rows: frame.rows })
    }
    if (count === 0) return
    const view = new DataView(frame.bytes.buffer, frame.bytes.byteOffset + firstRow * sb, count * sb)
    const columns = this.columns
    for (let c = 0; c < columns.length; c++) {
      const spec = columns[c] as ColumnSpec
      const dst = out[c]
      if (dst === undefined || dst.length < at + count) {
        fail(`column buffer for ${spec.name} holds ${dst?.length ?? 0} values, needs ${at + count}`,
          { dataset: spec.name, length: dst?.length ?? 0, needed: at + count })
      }
      const field = spec.field
      let p = field.byteOffset
      switch (spec.conversion) {
        case 'copy-uint32': {
          const d = dst as Uint32Array
          for (let i = 0; i < count; i++, p += sb) d[at + i] = view.getUint32(p, true)
          break
        }
        case 'copy-double': {
          const d = dst as Float64Array
          for (let i = 0; i < count; i++, p += sb) d[at + i] = view.getFloat64(p, true)
          break
        }
        case 'scale': {
          const d = dst as Float64Array
          const scale = field.scale ?? 1
          const offset = field.offset ?? 0
          const type = field.type
          if (type === 'int32') {
            for (let i = 0; i < count; i++, p += sb) d[at + i] = view.getInt32(p, true) * scale + offset
          } else if (type === 'int64') {
            for (let i = 0; i < count; i++, p += sb) {
              d[at + i] = (view.getUint32(p, true) + view.getInt32(p + 4, true) * TWO_POW_32) * scale + offset
            }
          } else {
            for (let i = 0; i < count; i++, p += sb) d[at + i] = readNumber(view, p, type) * scale + offset
          }
          break
        }
        case 'mean': {
          const d = dst as Float64Array
          const scale = field.scale ?? 1
          const offset = field.offset ?? 0
          const div = spec.divisor as FieldInfo
          let q = div.byteOffset
          const dtype = div.type
          for (let i = 0; i < count; i++, p += sb, q += sb) {
            const sum = readNumber(view, p, field.type)
            // Same operation order as the reference: sum * scale / divisor + offset.
            d[at + i] = sum * scale / readNumber(view, q, dtype) + offset
          }
          break
        }
      }
    }
  }
}
