/**
 * The HDF5 layout of a camera file, as data: where the frames and their per-frame attributes go, and the pixel
 * types tst-fly writes. Pure (no h5wasm): the frame writer creates exactly this, and document code
 * (StreamResource parameters, data keys) reads it without opening a file. ../../docs/camera-pipeline.md describes it.
 *
 * The groups follow ADCore's NDFileHDF5 default layout (NDFileHDF5LayoutXML.cpp): the frames live in
 * /entry/instrument/detector/data with a hard link at /entry/data/data, the per-frame NDArray attributes in
 * /entry/instrument/NDAttributes, each group with its NX_class attribute.
 */

/** ADCore's NDDataType_t, in its order (the index is DataType_RBV's value). */
export const ND_DATA_TYPES = ['Int8', 'UInt8', 'Int16', 'UInt16', 'Int32', 'UInt32', 'Int64', 'UInt64', 'Float32', 'Float64'] as const
export type NdDataType = typeof ND_DATA_TYPES[number]

/** A pixel type tst-fly writes: its NDDataType code, bytes, the h5wasm dtype and the numpy dtype string. */
export interface FrameDtype {
  readonly name: NdDataType
  /** Index in ND_DATA_TYPES (DataType_RBV's value; carried in the frame ring's meta words). */
  readonly code: number
  readonly bytes: number
  /** h5wasm dtype string ('<B' uint8, '<H' uint16, ...). */
  readonly h5: string
  /** numpy dtype string for event-model data keys ('|u1', '<u2', ...). */
  readonly numpy: string
  /** Integer pixels (false: IEEE float). */
  readonly integer: boolean
  readonly signed: boolean
}

const FRAME_DTYPES: Readonly<Partial<Record<NdDataType, Omit<FrameDtype, 'name' | 'code'>>>> = {
  Int8: { bytes: 1, h5: '<b', numpy: '|i1', integer: true, signed: true },
  UInt8: { bytes: 1, h5: '<B', numpy: '|u1', integer: true, signed: false },
  Int16: { bytes: 2, h5: '<h', numpy: '<i2', integer: true, signed: true },
  UInt16: { bytes: 2, h5: '<H', numpy: '<u2', integer: true, signed: false },
  Int32: { bytes: 4, h5: '<i', numpy: '<i4', integer: true, signed: true },
  UInt32: { bytes: 4, h5: '<I', numpy: '<u4', integer: true, signed: false },
  Float32: { bytes: 4, h5: '<f', numpy: '<f4', integer: false, signed: true },
  Float64: { bytes: 8, h5: '<d', numpy: '<f8', integer: false, signed: true }
}

/** The pixel types tst-fly writes (Int64/UInt64 are refused: no CA type carries them). */
export const FRAME_DTYPE_NAMES: readonly NdDataType[] = ND_DATA_TYPES.filter((n) => FRAME_DTYPES[n] !== undefined)

/** The FrameDtype of an NDDataType name, or undefined for one tst-fly does not write. */
export function frameDtype (name: string): FrameDtype | undefined {
  const code = (ND_DATA_TYPES as readonly string[]).indexOf(name)
  const d = FRAME_DTYPES[name as NdDataType]
  return code < 0 || d === undefined ? undefined : { ...d, name: name as NdDataType, code }
}

/** The FrameDtype of an NDDataType code (DataType_RBV's value), or undefined. */
export function frameDtypeOfCode (code: number): FrameDtype | undefined {
  const name = ND_DATA_TYPES[code]
  return name === undefined ? undefined : frameDtype(name)
}

/** A camera's frame shape: what sizes the slots and the dataset. */
export interface FrameShape {
  readonly width: number
  readonly height: number
  readonly dtype: NdDataType
}

/** Bytes of one frame of `shape`. */
export function frameBytes (shape: FrameShape): number {
  const d = frameDtype(shape.dtype)
  return d === undefined ? 0 : shape.width * shape.height * d.bytes
}

/** One per-frame attribute dataset under /entry/instrument/NDAttributes (or tst-fly's own group). */
export interface FrameAttributeLayout {
  readonly path: string
  /** h5wasm dtype string. */
  readonly h5: string
  readonly description: string
}

export interface FrameFileLayout {
  /** Groups to create, parents first, with their NX_class. */
  readonly groups: ReadonlyArray<{ readonly path: string, readonly nxClass: string }>
  /** The frames: shape (0, H, W) growing along axis 0, maxshape (null, H, W), chunks (1, H, W). */
  readonly data: {
    readonly path: string
    readonly shape: readonly [number, number, number]
    readonly maxshape: readonly [null, number, number]
    readonly chunks: readonly [number, number, number]
    readonly dtype: FrameDtype
  }
  /** Hard links to the frames (NXdata's `data`): /entry/data/data. */
  readonly links: ReadonlyArray<{ readonly path: string, readonly target: string }>
  /** Per-frame values, one element per frame, written in step with the frames. */
  readonly attributes: {
    readonly uniqueId: FrameAttributeLayout
    readonly timeStamp: FrameAttributeLayout
    readonly epicsTsSec: FrameAttributeLayout
    readonly epicsTsNsec: FrameAttributeLayout
    readonly arrivalNs: FrameAttributeLayout
  }
}

/** The dataset event-model documents point at (the NXdata link, as ophyd-async's ADHDFWriter names it). */
export const FRAME_DATASET = '/entry/data/data'

/** The layout of a camera file for frames of `shape`. Throws nothing: callers check the dtype first. */
export function frameFileLayout (shape: FrameShape): FrameFileLayout {
  const dtype = frameDtype(shape.dtype)
  if (dtype === undefined) throw new RangeError(`frameFileLayout: no frame dtype ${shape.dtype}`)
  const nd = '/entry/instrument/NDAttributes'
  return {
    groups: [
      { path: '/entry', nxClass: 'NXentry' },
      { path: '/entry/instrument', nxClass: 'NXinstrument' },
      { path: '/entry/instrument/detector', nxClass: 'NXdetector' },
      { path: nd, nxClass: 'NXcollection' },
      { path: '/entry/instrument/performance', nxClass: 'NXcollection' },
      { path: '/entry/data', nxClass: 'NXdata' }
    ],
    data: {
      path: '/entry/instrument/detector/data',
      shape: [0, shape.height, shape.width],
      maxshape: [null, shape.height, shape.width],
      chunks: [1, shape.height, shape.width],
      dtype
    },
    links: [{ path: FRAME_DATASET, target: '/entry/instrument/detector/data' }],
    attributes: {
      uniqueId: { path: `${nd}/NDArrayUniqueId`, h5: '<i', description: "the frame's UniqueId (image plugin UniqueId_RBV)" },
      timeStamp: { path: `${nd}/NDArrayTimeStamp`, h5: '<d', description: 'EPICS timestamp of the frame, seconds since 1990-01-01 UTC' },
      epicsTsSec: { path: `${nd}/NDArrayEpicsTSSec`, h5: '<I', description: 'EPICS timestamp, seconds past the EPICS epoch' },
      epicsTsNsec: { path: `${nd}/NDArrayEpicsTSnSec`, h5: '<I', description: 'EPICS timestamp, nanoseconds' },
      arrivalNs: {
        path: '/entry/instrument/performance/arrival_ns',
        h5: '<d',
        description: "tst-fly: when the frame's monitor update reached the camera worker, ns on the process's monotonic clock"
      }
    }
  }
}
