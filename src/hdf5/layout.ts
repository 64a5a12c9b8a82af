/**
 * The HDF5 layout of a PandA acquisition file, as data: which datasets, dtypes, chunking and file attributes.
 * Pure (no h5wasm): the writer creates exactly this, and document code (StreamResource parameters) can read it
 * without opening a file. ../../docs/hdf5-layout.md describes it.
 */
import { columnsFor } from '../parsers/index.js'
import type { ColumnSpec, StartData } from '../parsers/index.js'

/** Rows buffered per dataset before one resize + write_slice (h5wasm costs ~0.12 ms per call). */
export const DEFAULT_BLOCK_ROWS = 10_000

export interface PandaDatasetLayout {
  /** Absolute path in the file, `/<FIELD>.<Capture>`. */
  readonly path: string
  /** Dataset name without the leading slash, as the reference client names it. */
  readonly name: string
  readonly dtype: ColumnSpec['dtype']
  /** Always [0] at creation: the dataset grows along its only axis. */
  readonly shape: readonly [number]
  /** [null]: unlimited. */
  readonly maxshape: readonly [null]
  readonly chunks: readonly [number]
  /** The header's `units`, when it has them (written as a dataset attribute `units`). */
  readonly units: string | undefined
  readonly column: ColumnSpec
}

export interface PandaFileLayout {
  readonly datasets: readonly PandaDatasetLayout[]
  /** File attributes known at creation (from the header). */
  readonly attributes: Readonly<{ arm_time?: string, start_time?: string, hw_time_offset_ns?: number }>
  readonly chunkRows: number
}

export interface PandaLayoutOptions {
  /** HDF5 chunk length in rows (default: DEFAULT_BLOCK_ROWS). */
  readonly chunkRows?: number
}

export function pandaFileLayout (start: StartData, options: PandaLayoutOptions = {}): PandaFileLayout {
  const chunkRows = options.chunkRows ?? DEFAULT_BLOCK_ROWS
  const datasets = columnsFor(start).map((column): PandaDatasetLayout => ({
    path: `/${column.name}`,
    name: column.name,
    dtype: column.dtype,
    shape: [0],
    maxshape: [null],
    chunks: [chunkRows],
    units: column.field.units === undefined || column.field.units === '' ? undefined : column.field.units,
    column
  }))
  const attributes: { arm_time?: string, start_time?: string, hw_time_offset_ns?: number } = {}
  if (start.armTime !== undefined) attributes.arm_time = start.armTime
  if (start.startTime !== undefined) attributes.start_time = start.startTime
  if (start.hwTimeOffsetNs !== undefined) attributes.hw_time_offset_ns = start.hwTimeOffsetNs
  return { datasets, attributes, chunkRows }
}
