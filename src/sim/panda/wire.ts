/**
 * What goes out of the PandA data port, as PandABlocks-server (commit dd1b8e0) writes it: the options line
 * (server/prepare.c parse_data_options), the header in text or XML form with the server's field order, types and
 * sample_bytes (prepare.c send_data_header, capture.c gather_data_capture), and rows as FRAMED blocks, UNFRAMED
 * bytes, BASE64 lines or ASCII lines (data_server.c, capture.c). Raw rows come from the simulated PCAP in the FPGA's
 * layout: an anonymous sample count if needed, then the unscaled, 32-bit scaled, 64-bit scaled and averaged groups.
 * src/sim/panda-stream.ts builds its synthetic recordings with the same header writer.
 */
import { formatDouble, formatG, hexWord } from './format.js'

export type WireFormat = 'ASCII' | 'BASE64' | 'FRAMED' | 'UNFRAMED'
export type WireProcess = 'SCALED' | 'RAW'

/** A data client's options (one line: `XML FRAMED RAW`). */
export interface WireOptions {
  readonly format: WireFormat
  readonly process: WireProcess
  readonly xml: boolean
  readonly noHeader: boolean
  readonly noStatus: boolean
  readonly oneShot: boolean
}

export const DEFAULT_WIRE_OPTIONS: WireOptions = Object.freeze({
  format: 'ASCII', process: 'SCALED', xml: false, noHeader: false, noStatus: false, oneShot: false
})

/** Parses an options line (without its newline); returns the server's error message for a bad one. */
export function parseWireOptions (line: string): WireOptions | { error: string } {
  let o: { -readonly [K in keyof WireOptions]: WireOptions[K] } = { ...DEFAULT_WIRE_OPTIONS }
  let i = 0
  while (i < line.length) {
    while (line[i] === ' ' || line[i] === '\t') i++
    if (i >= line.length) break
    if (line[i] === '\r') return { error: 'Cannot process CR character' }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(line.slice(i))
    if (m === null) return { error: 'No name found' }
    if (m[0].length >= 32) return { error: 'Name too long' }
    i += m[0].length
    switch (m[0]) {
      case 'ASCII': case 'BASE64': case 'FRAMED': case 'UNFRAMED': o.format = m[0]; break
      case 'SCALED': case 'RAW': o.process = m[0]; break
      case 'NO_HEADER': o.noHeader = true; break
      case 'NO_STATUS': o.noStatus = true; break
      case 'ONE_SHOT': o.oneShot = true; break
      case 'XML': o.xml = true; break
      case 'BARE': o = { format: 'UNFRAMED', process: 'RAW', xml: false, noHeader: true, noStatus: true, oneShot: true }; break
      case 'DEFAULT': o = { ...DEFAULT_WIRE_OPTIONS }; break
      default: return { error: 'Invalid data capture option' }
    }
  }
  return o
}

/** How a captured value is processed: the server's capture groups. */
export type CaptureGroup = 'samples' | 'unscaled' | 'scaled32' | 'scaled64' | 'averaged'

/** What the simulated PCAP puts in one raw field. */
export type RawKind = 'bits' | 'value' | 'diff' | 'min' | 'max' | 'sum' | 'mean' | 'samples' | 'ts_start' | 'ts_end' | 'ts_trig'

/** One captured value as the header describes it and the raw row holds it. */
export interface CaptureField {
  /** `INENC1.VAL`, `PCAP.TS_TRIG`. */
  readonly name: string
  /** `Value`, `Min`, `Mean`... */
  readonly capture: string
  readonly group: CaptureGroup
  readonly kind: RawKind
  /** Pos bus index (pos_out) or bit bus quarter (`bits`). */
  readonly source: number
  readonly scale: number
  readonly offset: number
  readonly units: string
}

/** A field placed in the raw row. */
export interface RawField extends CaptureField {
  /** First 32-bit word in the raw row. */
  readonly word: number
  readonly words: 1 | 2
}

const GROUP_ORDER: readonly CaptureGroup[] = ['unscaled', 'scaled32', 'scaled64', 'averaged']

/**
 * The row layout of one capture (capture.c gather_data_capture): the fields grouped, groups in the server's order,
 * fields within a group in registration order; the sample count first, anonymous, when something is averaged and
 * GATE_DURATION is not captured.
 */
export class CaptureLayout {
  /** Raw row order. */
  readonly fields: readonly RawField[]
  readonly rawWords: number
  /** Word of the sample count that divides averaged sums, when something is averaged. */
  readonly sampleWord: number | undefined
  readonly anonymousSamples: boolean

  /** `captured` in registration order; `samples` describes the sample count field (PCAP.GATE_DURATION). */
  constructor (captured: readonly CaptureField[], samples: CaptureField) {
    const fields: RawField[] = []
    let word = 0
    const place = (f: CaptureField): RawField => {
      const words = f.group === 'scaled64' || f.group === 'averaged' ? 2 : 1
      const r = { ...f, word, words } as RawField
      word += words
      return r
    }
    const averaged = captured.some((f) => f.group === 'averaged')
    const gate = captured.find((f) => f.kind === 'samples')
    this.anonymousSamples = averaged && gate === undefined
    if (this.anonymousSamples) fields.push(place({ ...samples, group: 'samples' }))
    for (const g of GROUP_ORDER) for (const f of captured) if (f.group === g) fields.push(place(f))
    this.fields = fields
    this.rawWords = word
    const sampleField = fields.find((f) => f.kind === 'samples')
    this.sampleWord = averaged ? sampleField?.word : undefined
  }

  /** Bytes of one raw row (RAW mode rows). */
  get rawBytes (): number {
    return this.rawWords * 4
  }

  /** The fields a client with this processing receives, in order, with their wire types. */
  outputFields (process: WireProcess): Array<RawField & { type: 'uint32' | 'int32' | 'int64' | 'double' }> {
    const raw = process === 'RAW'
    return this.fields
      .filter((f) => raw || f.group !== 'samples')
      .map((f) => ({ ...f, type: f.group === 'unscaled' ? 'uint32' : !raw ? 'double' : f.words === 2 ? 'int64' : 'int32' }))
  }

  /** Bytes of one binary row for this processing (sample_bytes). */
  binaryRowBytes (process: WireProcess): number {
    if (process === 'RAW') return this.rawBytes
    let n = 0
    for (const f of this.fields) if (f.group !== 'samples') n += f.group === 'unscaled' ? 4 : 8
    return n
  }

  /** Converts raw rows to SCALED binary rows (capture.c convert_scaled_data). RAW rows are the raw bytes. */
  toScaled (raw: Uint8Array, rows: number): Uint8Array {
    const inView = new DataView(raw.buffer, raw.byteOffset, raw.byteLength)
    const outBytes = this.binaryRowBytes('SCALED')
    const out = new Uint8Array(rows * outBytes)
    const view = new DataView(out.buffer)
    const rb = this.rawBytes
    let o = 0
    for (let r = 0; r < rows; r++) {
      const base = r * rb
      const samples = this.sampleWord === undefined ? 0 : inView.getUint32(base + this.sampleWord * 4, true)
      for (const f of this.fields) {
        const at = base + f.word * 4
        switch (f.group) {
          case 'samples': break
          case 'unscaled': view.setUint32(o, inView.getUint32(at, true), true); o += 4; break
          case 'scaled32': view.setFloat64(o, f.scale * inView.getInt32(at, true) + f.offset, true); o += 8; break
          case 'scaled64': view.setFloat64(o, f.scale * int64At(inView, at) + f.offset, true); o += 8; break
          case 'averaged':
            view.setFloat64(o, samples === 0 ? NaN : f.scale * int64At(inView, at) / samples + f.offset, true)
            o += 8
            break
        }
      }
    }
    return out
  }

  /** ASCII rows (capture.c send_binary_as_ascii): SCALED ` %u` and ` %.10g`, RAW ` 0x%08x` per raw word. */
  toAscii (raw: Uint8Array, rows: number, process: WireProcess): string {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength)
    const lines: string[] = []
    if (process === 'RAW') {
      for (let r = 0; r < rows; r++) {
        let line = ''
        for (let w = 0; w < this.rawWords; w++) line += ' ' + hexWord(view.getUint32((r * this.rawWords + w) * 4, true))
        lines.push(line + '\n')
      }
      return lines.join('')
    }
    const scaled = this.toScaled(raw, rows)
    const sv = new DataView(scaled.buffer)
    const fields = this.outputFields('SCALED')
    let o = 0
    for (let r = 0; r < rows; r++) {
      let line = ''
      for (const f of fields) {
        if (f.type === 'uint32') { line += ' ' + String(sv.getUint32(o, true)); o += 4 } else { line += ' ' + formatDouble(sv.getFloat64(o, true)); o += 8 }
      }
      lines.push(line + '\n')
    }
    return lines.join('')
  }
}

function int64At (view: DataView, at: number): number {
  return view.getUint32(at, true) + view.getInt32(at + 4, true) * 4294967296
}

/** The `<data>` element's facts. */
export interface HeaderData {
  readonly armTime?: string
  readonly startTime?: string
  readonly hwTimeOffsetNs?: number
  readonly missed: number
  readonly process: 'Scaled' | 'Raw'
  readonly format: 'ASCII' | 'Base64' | 'Framed' | 'Unframed'
  /** Absent for ASCII. */
  readonly sampleBytes?: number
}

/** A header field. `scale`/`offset`/`units` are written for every type but uint32. */
export interface HeaderField {
  readonly name: string
  readonly type: string
  readonly capture: string
  readonly scale?: number
  readonly offset?: number
  readonly units?: string
}

const XML_ESCAPES: Readonly<Record<string, string>> = { '<': '&lt;', '&': '&amp;', '>': '&gt;', '"': '&quot;', "'": '&apos;' }

/**
 * The header and the empty line after it (prepare.c send_data_header): XML elements one per line, or the text form
 * (`missed: 0`, `fields:`, ` NAME type capture scale: x offset: y units: z`).
 */
export function headerText (data: HeaderData, fields: readonly HeaderField[], xml: boolean): string {
  const attrs: Array<[string, string]> = []
  if (data.armTime !== undefined) attrs.push(['arm_time', data.armTime])
  if (data.startTime !== undefined) attrs.push(['start_time', data.startTime])
  if (data.hwTimeOffsetNs !== undefined) attrs.push(['hw_time_offset_ns', String(data.hwTimeOffsetNs)])
  attrs.push(['missed', String(data.missed)], ['process', data.process], ['format', data.format])
  if (data.sampleBytes !== undefined) attrs.push(['sample_bytes', String(data.sampleBytes)])
  const scaled = (f: HeaderField): boolean => f.type !== 'uint32'
  if (xml) {
    const lines = ['<header>', `<data${attrs.map(([k, v]) => ` ${k}="${v}"`).join('')} />`, '<fields>']
    for (const f of fields) {
      let line = `<field name="${f.name}" type="${f.type}" capture="${f.capture}"`
      if (scaled(f)) {
        const units = (f.units ?? '').replace(/[<&>"']/g, (c) => XML_ESCAPES[c] ?? c)
        line += ` scale="${formatG(f.scale ?? 1, 12)}" offset="${formatG(f.offset ?? 0, 12)}" units="${units}"`
      }
      lines.push(line + ' />')
    }
    lines.push('</fields>', '</header>', '', '')
    return lines.join('\n')
  }
  const lines = attrs.map(([k, v]) => `${k}: ${v}`)
  lines.push('fields:')
  for (const f of fields) {
    let line = ` ${f.name} ${f.type} ${f.capture}`
    if (scaled(f)) line += ` scale: ${formatG(f.scale ?? 1, 12)} offset: ${formatG(f.offset ?? 0, 12)} units: ${f.units ?? ''}`
    lines.push(line)
  }
  lines.push('', '')
  return lines.join('\n')
}

/** The header of a capture for one client. */
export function captureHeader (layout: CaptureLayout, options: WireOptions, times: { armTime: string, startTime: string }, missed: number): string {
  const format = ({ ASCII: 'ASCII', BASE64: 'Base64', FRAMED: 'Framed', UNFRAMED: 'Unframed' } as const)[options.format]
  const fields = layout.outputFields(options.process)
  return headerText({
    ...times,
    missed,
    process: options.process === 'RAW' ? 'Raw' : 'Scaled',
    format,
    sampleBytes: options.format === 'ASCII' ? undefined : layout.binaryRowBytes(options.process)
  }, fields.map((f) => ({ name: f.name, type: f.type, capture: f.capture, scale: f.scale, offset: f.offset, units: f.units })), options.xml)
}

/** `BIN ` + the u32 length including these 8 bytes + payload. */
export function frameHeader (payloadBytes: number): Uint8Array {
  const h = new Uint8Array(8)
  h.set([0x42, 0x49, 0x4e, 0x20])
  new DataView(h.buffer).setUint32(4, payloadBytes + 8, true)
  return h
}

/** Payload bytes of rows as one or more BIN blocks of whole rows, each at most `maxPayload` bytes of rows. */
export function frames (rows: Uint8Array, rowBytes: number, maxPayload: number): Uint8Array {
  const per = Math.max(1, Math.floor(maxPayload / rowBytes)) * rowBytes
  const count = Math.ceil(rows.length / per)
  const out = new Uint8Array(rows.length + 8 * count)
  let o = 0
  for (let at = 0; at < rows.length; at += per) {
    const piece = rows.subarray(at, Math.min(rows.length, at + per))
    out.set(frameHeader(piece.length), o)
    out.set(piece, o + 8)
    o += 8 + piece.length
  }
  return out
}

/** BASE64 lines: a space, base64 of up to 57 bytes, newline (data_server.c write_block_base64). */
export function base64Block (bytes: Uint8Array): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let out = ''
  for (let at = 0; at < b.length; at += 57) out += ' ' + b.subarray(at, at + 57).toString('base64') + '\n'
  return out
}
