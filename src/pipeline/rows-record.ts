/**
 * The layout of a ROWS record in the PandA ring. The capture worker decodes packed rows into columns (one per
 * dataset, already scaled: ../parsers/panda-data/columns.ts) straight into the ring, so that decoding runs on the
 * capture thread and the writer thread only copies columns into its blocks and writes them. That splits the CPU
 * work of a fast stream across the two threads.
 *
 *   f64 commit time (ns) | u32 rows | u32 reserved | column 0 (rows x elementBytes, padded to 8) | column 1 | ...
 *
 * Columns come in `columnsFor(start)` order, every one 8-byte aligned (the ring aligns payloads to 8).
 */
import type { ColumnArray, ColumnSpec } from '../parsers/index.js'

export const ROWS_HEADER_BYTES = 16

export interface RowsRecordLayout {
  /** Byte offset of each column from the payload's start. */
  readonly offsets: readonly number[]
  readonly payloadBytes: number
}

const align8 = (n: number): number => (n + 7) & ~7

export function rowsRecordLayout (columns: readonly ColumnSpec[], rows: number): RowsRecordLayout {
  const offsets: number[] = []
  let at = ROWS_HEADER_BYTES
  for (const c of columns) {
    offsets.push(at)
    at += align8(rows * c.elementBytes)
  }
  return { offsets, payloadBytes: at }
}

/** Bytes a ROWS record of `rows` rows takes (the largest `rows` that fits a budget is found with this). */
export function rowsForBudget (columns: readonly ColumnSpec[], budgetBytes: number): number {
  const perRow = columns.reduce((n, c) => n + c.elementBytes, 0)
  // Padding costs at most 7 bytes per column.
  return Math.max(1, Math.floor((budgetBytes - ROWS_HEADER_BYTES - 7 * columns.length) / Math.max(1, perRow)))
}

/** Typed-array views of each column of a ROWS payload (which must start 8-byte aligned in its buffer). */
export function columnViews (columns: readonly ColumnSpec[], payload: Uint8Array, rows: number,
  layout: RowsRecordLayout = rowsRecordLayout(columns, rows)): ColumnArray[] {
  const { offsets } = layout
  return columns.map((c, i) => {
    const at = payload.byteOffset + (offsets[i] as number)
    return c.dtype === 'float64' ? new Float64Array(payload.buffer, at, rows) : new Uint32Array(payload.buffer, at, rows)
  })
}

export function writeRowsHeader (payload: Uint8Array, commitNs: number, rows: number): void {
  const v = new DataView(payload.buffer, payload.byteOffset, ROWS_HEADER_BYTES)
  v.setFloat64(0, commitNs, true)
  v.setUint32(8, rows, true)
}

export function readRowsHeader (payload: Uint8Array): { commitNs: number, rows: number } {
  const v = new DataView(payload.buffer, payload.byteOffset, ROWS_HEADER_BYTES)
  return { commitNs: v.getFloat64(0, true), rows: v.getUint32(8, true) }
}
