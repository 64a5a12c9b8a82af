/**
 * What the PandA data port (TCP 8889) says, as typed records. Vocabulary follows PandABlocks-client
 * (StartData, FrameData, EndData, EndReason), camelCased. ../../../docs/panda-data-port.md has the protocol.
 */

/** Row encodings the client can ask for in the options line. */
export type DataFormat = 'ASCII' | 'BASE64' | 'FRAMED' | 'UNFRAMED'
/** SCALED: the server sends doubles (raw * scale + offset); RAW: the FPGA's integers. */
export type DataProcess = 'SCALED' | 'RAW'

/** The options line a client sends first, e.g. `XML FRAMED SCALED\n`. */
export interface DataOptions {
  readonly format: DataFormat
  readonly process: DataProcess
  /** Ask for the XML header (tst-fly always does; the text header is not supported). */
  readonly xml: boolean
  readonly noHeader?: boolean
  readonly noStatus?: boolean
  readonly oneShot?: boolean
}

/** A field's wire type as the header names it. `int96` exists only for RAW StdDev. */
export type FieldType = 'uint32' | 'int32' | 'int64' | 'double' | 'int96'

export interface FieldInfo {
  /** e.g. `COUNTER1.OUT`, `PCAP.BITS2`; the anonymous sample counter in RAW mode is `PCAP.SAMPLES`. */
  readonly name: string
  readonly type: FieldType
  /** e.g. `Value`, `Min`, `Max`, `Mean`, `Sum`, `Diff`, `StdDev`. */
  readonly capture: string
  /** Present for every field except uint32 ones. */
  readonly scale: number | undefined
  readonly offset: number | undefined
  readonly units: string | undefined
  /** Byte offset of this field inside a packed row. */
  readonly byteOffset: number
  /** Bytes this field takes in a packed row (4, 8 or 12). */
  readonly byteLength: number
}

/** The header of one acquisition (one arm). */
export interface StartData {
  readonly fields: readonly FieldInfo[]
  readonly missed: number
  /** `Scaled` or `Raw`, as the header says it. */
  readonly process: string
  /** `Framed`, `Unframed`, `Base64` or `ASCII`, as the header says it. */
  readonly format: string
  /** Bytes in one packed row; computed from the field types when the header has none (ASCII). */
  readonly sampleBytes: number
  readonly armTime: string | undefined
  readonly startTime: string | undefined
  readonly hwTimeOffsetNs: number | undefined
  /** Every attribute of the `<data>` element, verbatim, including ones this parser does not know. */
  readonly attributes: Readonly<Record<string, string>>
}

/**
 * A run of whole rows, packed exactly as the FRAMED binary form packs them (fields in header order, little-endian,
 * no padding), whatever the wire format was: ASCII and BASE64 rows are converted to the same packing.
 */
export interface FrameData {
  readonly rows: number
  /**
   * `rows * sampleBytes` bytes. May be a view of the pushed chunk (zero-copy) or of the parser's buffers: use or
   * copy it before the next push().
   */
  readonly bytes: Uint8Array
}

export const EndReason = {
  OK: 'Ok',
  DISARMED: 'Disarmed',
  EARLY_DISCONNECT: 'Early disconnect',
  DATA_OVERRUN: 'Data overrun',
  FRAMING_ERROR: 'Framing error',
  DRIVER_DATA_OVERRUN: 'Driver data overrun',
  DMA_DATA_ERROR: 'DMA data error'
} as const
export type EndReason = typeof EndReason[keyof typeof EndReason]

export interface EndData {
  /** The row count the server reported on the END line (or rows received, when the socket closed without one). */
  readonly samples: number
  readonly reason: EndReason
  /** Whole rows this parser delivered in FrameData for the acquisition (compare with `samples`). */
  readonly rowsReceived?: number
  /**
   * Bytes of an incomplete row discarded at the END line or at close() (for ASCII/BASE64 also the text of an
   * unfinished line). 0 when every received row byte was delivered.
   */
  readonly droppedBytes?: number
}

/** What the parser yields, in stream order. */
export type DataRecord =
  | { readonly kind: 'ready' }
  | { readonly kind: 'start', readonly start: StartData }
  | { readonly kind: 'frame', readonly frame: FrameData }
  | { readonly kind: 'end', readonly end: EndData }
