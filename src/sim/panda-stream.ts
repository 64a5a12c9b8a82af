/**
 * Synthetic PandA data-port streams, byte for byte as a PandABox sends them after `XML FRAMED SCALED` (or RAW):
 * the `OK` line, the XML header, rows in `BIN` frames, and the END line. Used by the replay benchmark and by tests
 * that need streams larger than the recordings. Row values are a pure function of the row index, so a reader can
 * check every value (`syntheticValue`). The header and block framing are the simulated PandA's (panda/wire.ts).
 */
import { frameHeader, headerText } from './panda/wire.js'

export interface SyntheticField {
  readonly name: string
  readonly capture: string
  readonly type: 'uint32' | 'double' | 'int32' | 'int64'
  readonly scale?: number
  readonly offset?: number
  readonly units?: string
}

/** A TST XAS-like row: bits, the encoder mean, two ADC means and the trigger timestamp (SCALED). */
export const XAS_FIELDS: readonly SyntheticField[] = [
  { name: 'PCAP.BITS1', capture: 'Value', type: 'uint32' },
  { name: 'CALC1.OUT', capture: 'Mean', type: 'double', scale: 1, offset: 0, units: '' },
  { name: 'FMC_IN.VAL1', capture: 'Mean', type: 'double', scale: 4.65661287e-09, offset: 0, units: 'V' },
  { name: 'FMC_IN.VAL2', capture: 'Mean', type: 'double', scale: 4.65661287e-09, offset: 0, units: 'V' },
  { name: 'PCAP.TS_TRIG', capture: 'Value', type: 'double', scale: 8e-09, offset: 0, units: 's' }
]

export interface SyntheticStreamOptions {
  readonly rows: number
  readonly fields?: readonly SyntheticField[]
  /**
   * Largest payload of a BIN frame; frames hold whole rows only, as the PandA server sends them (PandABlocks-server
   * server/data_server.c keeps a partial row for the next block). Default 65536 - 8.
   */
  readonly framePayloadBytes?: number
  readonly endReason?: string
  /** Omit the END line (a socket that closes without one). */
  readonly noEnd?: boolean
  /** Omit the leading `OK` line (for a second acquisition on the same connection). */
  readonly noOk?: boolean
  readonly process?: 'Scaled' | 'Raw'
}

const SIZE: Readonly<Record<SyntheticField['type'], number>> = { uint32: 4, int32: 4, int64: 8, double: 8 }

/** The value field `f` of row `i` holds (an integer, exactly representable in every field type). */
export function syntheticValue (i: number, f: number): number {
  return f === 0 ? (i & 0xff) : i * (f + 1) + f
}

export function rowBytesOf (fields: readonly SyntheticField[]): number {
  return fields.reduce((n, f) => n + SIZE[f.type], 0)
}

export function syntheticHeader (fields: readonly SyntheticField[], process: 'Scaled' | 'Raw' = 'Scaled'): string {
  return headerText({ missed: 0, process, format: 'Framed', sampleBytes: rowBytesOf(fields) }, fields, true)
}

/** Packs rows [first, first + n) into `out` at `at`; returns bytes written. */
function packRows (fields: readonly SyntheticField[], first: number, n: number, out: DataView, at: number): number {
  let p = at
  for (let i = first; i < first + n; i++) {
    for (let f = 0; f < fields.length; f++) {
      const v = syntheticValue(i, f)
      switch ((fields[f] as SyntheticField).type) {
        case 'uint32': out.setUint32(p, v, true); p += 4; break
        case 'int32': out.setInt32(p, v, true); p += 4; break
        case 'int64': out.setBigInt64(p, BigInt(v), true); p += 8; break
        case 'double': out.setFloat64(p, v, true); p += 8; break
      }
    }
  }
  return p - at
}

/**
 * Yields the stream in pieces (the header, then ~1 MiB of frames at a time, then END) so that streams of hundreds
 * of megabytes need not be held at once.
 */
export function * syntheticStream (opts: SyntheticStreamOptions): Generator<Uint8Array> {
  const fields = opts.fields ?? XAS_FIELDS
  const rowBytes = rowBytesOf(fields)
  const framePayload = Math.max(1, Math.floor((opts.framePayloadBytes ?? 65536 - 8) / rowBytes)) * rowBytes
  const enc = new TextEncoder()
  yield enc.encode((opts.noOk === true ? '' : 'OK\n') + syntheticHeader(fields, opts.process))
  const totalBytes = opts.rows * rowBytes
  // Pack rows into a rolling buffer, then cut it into frames.
  const piece = 1 << 20
  const rowsPerPiece = Math.max(1, Math.floor(piece / rowBytes))
  const rows = new Uint8Array(rowsPerPiece * rowBytes + framePayload)
  const view = new DataView(rows.buffer)
  let carry = 0
  let nextRow = 0
  let sent = 0
  while (sent < totalBytes) {
    const n = Math.min(rowsPerPiece, opts.rows - nextRow)
    carry += packRows(fields, nextRow, n, view, carry)
    nextRow += n
    const last = nextRow >= opts.rows
    const frames = last ? Math.ceil(carry / framePayload) : Math.floor(carry / framePayload)
    const out = new Uint8Array(frames * 8 + Math.min(carry, frames * framePayload))
    let o = 0
    let used = 0
    for (let k = 0; k < frames; k++) {
      const len = Math.min(framePayload, carry - used)
      out.set(frameHeader(len), o)
      out.set(rows.subarray(used, used + len), o + 8)
      o += 8 + len
      used += len
    }
    rows.copyWithin(0, used, carry)
    carry -= used
    sent += used
    if (out.length > 0) yield out
  }
  if (opts.noEnd !== true) yield enc.encode(`END ${opts.rows} ${opts.endReason ?? 'Disarmed'}\n`)
}

/** The whole stream as one buffer (for small streams). */
export function syntheticStreamBytes (opts: SyntheticStreamOptions): Uint8Array {
  const parts = [...syntheticStream(opts)]
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}
