/**
 * Sans-IO parser for the PandA data port (TCP 8889): bytes in (`push`), typed records out, nothing else. The
 * protocol as implemented here is in ../../../docs/panda-data-port.md (from PandABlocks-server docs/capture.rst
 * and server/prepare.c).
 *
 * Every row format comes out as FrameData packed like FRAMED (header field order, little-endian, no padding).
 * FRAMED rows are not decoded: frame headers are stripped and whole-row byte runs are returned as views of the
 * pushed chunk (zero-copy) when they lie whole inside it; a row split across frames or chunks is joined in a
 * buffer of one row and emitted as a one-row copy.
 */
import { ErrorCode, FlyScanError } from '../../errors.js'
import type { DataOptions, DataRecord, EndData, FieldInfo, FieldType, StartData } from './types.js'
import { EndReason } from './types.js'
import { describeBytes, LineReader } from '../text.js'
import { parseXml, protocolError } from './xml.js'
import type { XmlElement } from './xml.js'

/** Where the parser is in the stream. */
export const State = {
  /** Waiting for the server's `OK` (or `ERR ...`) reply to the options line. */
  EXPECT_OK: 'expect-ok',
  /** Between acquisitions: waiting for the next `<header>` (the state right after `OK` too). */
  BETWEEN: 'between',
  /** Inside the XML header, or the empty line after it. */
  HEADER: 'header',
  /** Rows of an acquisition, until its `END` line. */
  DATA: 'data',
  /** `ONE_SHOT` and the one acquisition ended, or close() was called: nothing more may arrive. */
  DONE: 'done',
  /** Malformed input: every further push() throws the same error. */
  FAILED: 'failed'
} as const
export type State = typeof State[keyof typeof State]

/** Bounds that keep a malformed or hostile stream from making the parser buffer without limit. */
export interface ParserLimits {
  /** Largest XML header, `<header>` to `</header>` inclusive. */
  readonly maxHeaderBytes: number
  /** Longest text line (OK/ERR reply, END line, one ASCII row, one BASE64 line). */
  readonly maxLineBytes: number
  /** Largest FRAMED block length (the u32 after `BIN `, which includes its 8 header bytes). */
  readonly maxFrameBytes: number
}

export const DEFAULT_LIMITS: ParserLimits = {
  maxHeaderBytes: 1024 * 1024,
  maxLineBytes: 1024 * 1024,
  maxFrameBytes: 256 * 1024 * 1024
}

/** Counters since the parser was created. */
export interface ParserStats {
  /** Bytes pushed so far (the absolute offset of the next byte). */
  readonly bytes: number
  readonly acquisitions: number
  /** Whole rows delivered in FrameData, all acquisitions. */
  readonly rows: number
  /** FRAMED blocks (`BIN ` headers) seen. */
  readonly frames: number
  /** Bytes of incomplete rows discarded at an END line or at close(). */
  readonly droppedBytes: number
}

/** The options line to send first, e.g. `XML FRAMED SCALED\n`. */
export function optionsLine (opts: DataOptions): string {
  const words: string[] = []
  if (opts.xml) words.push('XML')
  words.push(opts.format, opts.process)
  if (opts.noHeader === true) words.push('NO_HEADER')
  if (opts.noStatus === true) words.push('NO_STATUS')
  if (opts.oneShot === true) words.push('ONE_SHOT')
  return words.join(' ') + '\n'
}

/** Bytes each wire type takes in a packed row. */
export const FIELD_TYPE_BYTES: Readonly<Record<FieldType, number>> = {
  uint32: 4, int32: 4, int64: 8, double: 8, int96: 12
}

const END_REASONS: ReadonlySet<string> = new Set(Object.values(EndReason))

type Step =
  | 'ok' // the OK / ERR line
  | 'header-open' // the `<header>` line
  | 'header-body' // header lines up to `</header>`
  | 'header-blank' // the empty line after the header
  | 'frame-head' // `BIN ` + length, or `END `
  | 'frame-body' // rows inside a block
  | 'end-line' // `END <n> <reason>`
  | 'unframed' // rows back to back, END at a row boundary
  | 'text' // ASCII or BASE64 lines
  | 'done'

type RowFormat = 'FRAMED' | 'UNFRAMED' | 'BASE64' | 'ASCII'

const FORMATS: Readonly<Record<string, RowFormat>> = {
  framed: 'FRAMED', unframed: 'UNFRAMED', base64: 'BASE64', ascii: 'ASCII'
}

const B64 = new Int16Array(256).fill(-1)
for (let k = 0; k < 64; k++) {
  B64['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(k)] = k
}

/** A known END reason, for a line such as `END 5 Disarmed` (text after `END <n> `). */
function asEndReason (text: string): EndReason | undefined {
  return END_REASONS.has(text) ? text as EndReason : undefined
}

function ascii (bytes: Uint8Array): string {
  let s = ''
  for (let k = 0; k < bytes.length; k += 4096) s += String.fromCharCode(...bytes.subarray(k, k + 4096))
  return s
}

/**
 * How a possible END line at `p` looks: 'no' (it is not one), 'partial' (could still be one: need more bytes) or
 * the index just past its `\n`. Shape: `END ` digits ` ` printable text `\n`, at most `max` bytes.
 */
function matchEndLine (b: Uint8Array, p: number, end: number, max: number): number | 'no' | 'partial' {
  const stop = Math.min(end, p + max)
  let k = p
  const word = [0x45, 0x4e, 0x44, 0x20]
  for (const w of word) {
    if (k >= stop) return stop === end ? 'partial' : 'no'
    if (b[k] !== w) return 'no'
    k++
  }
  let digits = 0
  while (k < stop && (b[k] as number) >= 0x30 && (b[k] as number) <= 0x39) { k++; digits++ }
  if (k >= stop) return stop === end ? 'partial' : 'no'
  if (digits === 0 || b[k] !== 0x20) return 'no'
  k++
  let text = 0
  for (; k < stop; k++) {
    const c = b[k] as number
    if (c === 0x0a) return text > 0 ? k + 1 : 'no'
    if ((c < 0x20 || c > 0x7e) && c !== 0x0d) return 'no'
    text++
  }
  return stop === end ? 'partial' : 'no'
}

export class PandaDataParser {
  readonly options: Partial<DataOptions>
  readonly limits: ParserLimits

  #state: State
  #step: Step
  #error: FlyScanError | undefined
  #salvage: DataRecord[] = []
  /** Absolute stream offset of the current chunk's first byte. */
  #base = 0
  #acquisitions = 0
  #rowsTotal = 0
  #frames = 0
  #droppedBytes = 0

  // Line assembly (text lines split across chunks).
  readonly #lines = new LineReader()
  // Header assembly.
  #headerBuf = new Uint8Array(0)
  #headerLen = 0
  #headerStart = 0

  // Current acquisition.
  #format: RowFormat = 'FRAMED'
  #raw = false
  #fields: readonly FieldInfo[] = []
  #sampleBytes = 0
  #rows = 0
  /** A row in progress (FRAMED, BASE64) or held bytes (UNFRAMED), bounded. */
  #partial = new Uint8Array(0)
  #partialLen = 0
  // FRAMED state.
  #frameHead = new Uint8Array(8)
  #frameHeadLen = 0
  #frameHeadStart = 0
  #frameLeft = 0
  // ASCII / BASE64 output of the current push.
  #textOut = new Uint8Array(0)
  #textLen = 0
  #textView = new DataView(this.#textOut.buffer)

  constructor (options: Partial<DataOptions> = {}, limits: Partial<ParserLimits> = {}) {
    this.options = options
    this.limits = { ...DEFAULT_LIMITS, ...limits }
    if (options.noHeader === true) {
      throw new FlyScanError(ErrorCode.BAD_INPUT, 'PandaDataParser needs the header: NO_HEADER is not supported')
    }
    if (options.xml === false) {
      throw new FlyScanError(ErrorCode.BAD_INPUT, 'PandaDataParser reads the XML header only: set xml: true')
    }
    const noStatus = options.noStatus === true
    this.#state = noStatus ? State.BETWEEN : State.EXPECT_OK
    this.#step = noStatus ? 'header-open' : 'ok'
  }

  get state (): State {
    return this.#state
  }

  /** The error that failed the parser, if it failed. */
  get error (): FlyScanError | undefined {
    return this.#error
  }

  /** Records completed by the push() that threw, before the malformed byte (rows received must reach disk). */
  get salvage (): readonly DataRecord[] {
    return this.#salvage
  }

  /** The current acquisition's fields (empty before the first header). */
  get fields (): readonly FieldInfo[] {
    return this.#fields
  }

  get stats (): ParserStats {
    return {
      bytes: this.#base,
      acquisitions: this.#acquisitions,
      rows: this.#rowsTotal,
      frames: this.#frames,
      droppedBytes: this.#droppedBytes
    }
  }

  /**
   * Parses the next bytes from the socket and returns the records they complete, in order. FrameData bytes may
   * be views of `chunk` or of the parser's buffers: use or copy them before the next push(). Throws a
   * FlyScanError (PANDA_PROTOCOL, or PANDA_REJECTED for an `ERR` reply) on malformed input; the parser then
   * stays failed and every later push() throws the same error.
   */
  push (chunk: Uint8Array): DataRecord[] {
    if (this.#error !== undefined) throw this.#error
    this.#salvage = []
    const out: DataRecord[] = []
    const len = chunk.length
    let i = 0
    try {
      while (i < len) {
        switch (this.#step) {
          case 'frame-body': i = this.#frameBody(chunk, i, out); break
          case 'frame-head': i = this.#frameHeadStep(chunk, i); break
          case 'unframed': i = this.#unframed(chunk, i, out); break
          case 'text': i = this.#textStep(chunk, i, out); break
          case 'end-line': i = this.#endLineStep(chunk, i, out); break
          case 'ok': i = this.#okStep(chunk, i, out); break
          case 'header-open': i = this.#headerOpenStep(chunk, i); break
          case 'header-body': i = this.#headerBodyStep(chunk, i, out); break
          case 'header-blank': i = this.#headerBlankStep(chunk, i); break
          case 'done': throw protocolError(this.#base + i, 'nothing after the one-shot acquisition ended or close()', describeBytes(chunk, i, len))
        }
      }
      if (this.#step === 'text') this.#flushText(out)
    } catch (err) {
      this.#base += i
      this.#salvage = out
      throw this.#fail(err)
    }
    this.#base += len
    return out
  }

  /**
   * The socket closed. Inside an acquisition this yields its `end` with reason `Early disconnect` and samples =
   * rows delivered; an incomplete row is dropped and counted (EndData.droppedBytes, stats.droppedBytes).
   * Idempotent; after it, push() throws.
   */
  close (): DataRecord[] {
    if (this.#error !== undefined || this.#state === State.DONE) {
      this.#step = 'done'
      if (this.#state !== State.FAILED) this.#state = State.DONE
      return []
    }
    const out: DataRecord[] = []
    if (this.#state === State.DATA) {
      if (this.#step === 'text') this.#flushText(out)
      // Row bytes held, plus for ASCII/BASE64 the text of an unfinished line (a line that was to be the END line
      // counts too: it cannot be told apart).
      const textFormat = this.#format === 'ASCII' || this.#format === 'BASE64'
      const dropped = this.#partialLen + (textFormat && this.#step === 'text' ? this.#lines.len : 0)
      this.#endAcquisition(out, { samples: this.#rows, reason: EndReason.EARLY_DISCONNECT }, dropped)
    }
    this.#state = State.DONE
    this.#step = 'done'
    return out
  }

  // ---------------------------------------------------------------------------------------------------------
  // Failure

  #fail (err: unknown): FlyScanError {
    this.#state = State.FAILED
    this.#step = 'done'
    const error = err instanceof FlyScanError
      ? err
      : new FlyScanError(ErrorCode.PANDA_PROTOCOL, `PandA data parser failed at offset ${this.#base}: ${String(err)}`, {
        details: { offset: this.#base }, cause: err
      })
    this.#error = error
    return error
  }

  // ---------------------------------------------------------------------------------------------------------
  // Lines

  /** One line starting at `i` (LineReader.read); `what` names the line in the error for an overlong one. */
  #readLine (chunk: Uint8Array, i: number, max: number, what: string): [Uint8Array | undefined, number] {
    return this.#lines.read(chunk, i, this.#base, max, (offset, from, to) =>
      protocolError(offset, `a newline ending ${what} within ${max} bytes`, describeBytes(chunk, Math.max(from, to - 8), to)))
  }

  #okStep (chunk: Uint8Array, i: number, out: DataRecord[]): number {
    const [line, next] = this.#readLine(chunk, i, 4096, "the 'OK' reply")
    if (line === undefined) return next
    const text = ascii(line)
    if (text === 'OK') {
      out.push({ kind: 'ready' })
      this.#state = State.BETWEEN
      this.#step = 'header-open'
      return next
    }
    if (text.startsWith('ERR')) {
      const message = text.slice(3).trim()
      throw new FlyScanError(ErrorCode.PANDA_REJECTED, `PandA data port, offset ${this.#lines.start}: the server rejected the options line: ERR ${message}`, {
        details: { offset: this.#lines.start, reply: text }
      })
    }
    throw protocolError(this.#lines.start, "'OK' or 'ERR <message>'", describeBytes(line, 0, line.length))
  }

  // ---------------------------------------------------------------------------------------------------------
  // Header

  #headerOpenStep (chunk: Uint8Array, i: number): number {
    const [line, next] = this.#readLine(chunk, i, 256, "the '<header>' line")
    if (line === undefined) return next
    if (ascii(line).trim() !== '<header>') {
      throw protocolError(this.#lines.start, "'<header>' (the XML header; tst-fly asks for XML)", describeBytes(line, 0, line.length))
    }
    this.#state = State.HEADER
    this.#headerStart = this.#lines.start
    this.#headerLen = 0
    this.#appendHeader(line, this.#lines.start)
    this.#step = 'header-body'
    return next
  }

  /** Copies a header line to its place in the header buffer (a stripped `\r` becomes a space: offsets stay exact). */
  #appendHeader (line: Uint8Array, abs: number): void {
    const pos = abs - this.#headerStart
    const need = pos + line.length + 1
    if (need > this.#headerBuf.length) {
      const grown = new Uint8Array(Math.max(need, Math.min(this.#headerBuf.length * 2 + 4096, this.limits.maxHeaderBytes + 2)))
      grown.set(this.#headerBuf.subarray(0, this.#headerLen))
      this.#headerBuf = grown
    }
    this.#headerBuf.fill(0x20, this.#headerLen, pos)
    this.#headerBuf.set(line, pos)
    this.#headerBuf[pos + line.length] = 0x0a
    this.#headerLen = need
  }

  #headerBodyStep (chunk: Uint8Array, i: number, out: DataRecord[]): number {
    const max = this.limits.maxHeaderBytes
    const room = max - (this.#lines.len === 0 ? this.#base + i - this.#headerStart : this.#lines.start - this.#headerStart)
    let line: Uint8Array | undefined
    let next: number
    try {
      if (room <= 0) throw new Error('header too long')
      ;[line, next] = this.#readLine(chunk, i, room, 'a header line')
    } catch {
      throw protocolError(this.#headerStart + max, `'</header>' within ${max} header bytes`, 'more header')
    }
    if (line === undefined) return next
    this.#appendHeader(line, this.#lines.start)
    if (ascii(line).trim() === '</header>') {
      const start = this.#parseHeader(this.#headerBuf.subarray(0, this.#headerLen), this.#headerStart)
      this.#beginAcquisition(start, out)
      this.#step = 'header-blank'
    }
    return next
  }

  #headerBlankStep (chunk: Uint8Array, i: number): number {
    const [line, next] = this.#readLine(chunk, i, 256, 'the empty line after the header')
    if (line === undefined) return next
    if (line.length !== 0) throw protocolError(this.#lines.start, 'an empty line after </header>', describeBytes(line, 0, line.length))
    this.#state = State.DATA
    this.#step = this.#format === 'FRAMED' ? 'frame-head' : this.#format === 'UNFRAMED' ? 'unframed' : 'text'
    return next
  }

  #parseHeader (bytes: Uint8Array, base: number): StartData {
    const root = parseXml(bytes, base)
    if (root.name !== 'header') throw protocolError(root.offset, 'the root element <header>', `<${root.name}>`)
    const data = root.children.filter((c) => c.name === 'data')
    const fieldsEls = root.children.filter((c) => c.name === 'fields')
    if (data.length !== 1) throw protocolError(data[1]?.offset ?? root.endOffset, 'exactly one <data> element in <header>', `${data.length}`)
    if (fieldsEls.length !== 1) throw protocolError(fieldsEls[1]?.offset ?? root.endOffset, 'exactly one <fields> element in <header>', `${fieldsEls.length}`)
    const d = data[0] as XmlElement
    const fieldsEl = fieldsEls[0] as XmlElement

    const fields: FieldInfo[] = []
    let byteOffset = 0
    for (const f of fieldsEl.children) {
      if (f.name !== 'field') throw protocolError(f.offset, 'only <field> elements inside <fields>', `<${f.name}>`)
      const name = required(f, 'name')
      const type = required(f, 'type')
      if (!Object.hasOwn(FIELD_TYPE_BYTES, type)) {
        throw protocolError(f.attributeOffsets.type ?? f.offset, 'a field type uint32, int32, int64, double or int96', `'${type}'`)
      }
      const byteLength = FIELD_TYPE_BYTES[type as FieldType]
      fields.push({
        name,
        type: type as FieldType,
        capture: required(f, 'capture'),
        scale: optionalNumber(f, 'scale'),
        offset: optionalNumber(f, 'offset'),
        units: f.attributes.units,
        byteOffset,
        byteLength
      })
      byteOffset += byteLength
    }
    if (fields.length === 0) throw protocolError(fieldsEl.offset, 'at least one <field> in <fields>', 'none')

    const format = required(d, 'format')
    const rowFormat = FORMATS[format.toLowerCase()]
    if (rowFormat === undefined) {
      throw protocolError(d.attributeOffsets.format ?? d.offset, 'format Framed, Unframed, Base64 or ASCII', `'${format}'`)
    }
    const process = required(d, 'process')
    const missed = integer(d, 'missed', false)
    const hwOffset = d.attributes.hw_time_offset_ns === undefined ? undefined : integer(d, 'hw_time_offset_ns', true)
    let sampleBytes = byteOffset
    if (d.attributes.sample_bytes !== undefined) {
      const declared = integer(d, 'sample_bytes', false)
      if (declared === byteOffset + 4) {
        // Servers before 2.1 send RAW rows with an anonymous sample count first but leave it out of the header
        // (PandABlocks-client connections.py does the same fix-up).
        fields.unshift({
          name: 'PCAP.SAMPLES',
          type: 'uint32',
          capture: 'Value',
          scale: undefined,
          offset: undefined,
          units: undefined,
          byteOffset: 0,
          byteLength: 4
        })
        for (let k = 1; k < fields.length; k++) {
          const g = fields[k] as FieldInfo
          fields[k] = { ...g, byteOffset: g.byteOffset + 4 }
        }
        sampleBytes = declared
      } else if (declared !== byteOffset) {
        throw protocolError(d.attributeOffsets.sample_bytes ?? d.offset,
          `sample_bytes = ${byteOffset}, the sum of the field sizes`, `${declared}`)
      }
    } else if (rowFormat !== 'ASCII') {
      throw protocolError(d.offset, `a sample_bytes attribute (format ${format})`, 'none')
    }
    this.#format = rowFormat
    this.#raw = process.toLowerCase() !== 'scaled'
    return {
      fields,
      missed,
      process,
      format,
      sampleBytes,
      armTime: d.attributes.arm_time,
      startTime: d.attributes.start_time,
      hwTimeOffsetNs: hwOffset,
      attributes: { ...d.attributes }
    }
  }

  #beginAcquisition (start: StartData, out: DataRecord[]): void {
    this.#fields = start.fields
    this.#sampleBytes = start.sampleBytes
    this.#rows = 0
    this.#partialLen = 0
    this.#frameHeadLen = 0
    this.#frameLeft = 0
    this.#textLen = 0
    // UNFRAMED holds a possible END line (up to 64 bytes) plus a row while deciding.
    const hold = this.#format === 'UNFRAMED' ? this.#sampleBytes + 128 : this.#sampleBytes
    if (this.#partial.length < hold) this.#partial = new Uint8Array(hold)
    this.#acquisitions++
    out.push({ kind: 'start', start })
  }

  #endAcquisition (out: DataRecord[], end: { samples: number, reason: EndReason }, dropped: number): void {
    this.#droppedBytes += dropped
    this.#partialLen = 0
    const data: EndData = { samples: end.samples, reason: end.reason, rowsReceived: this.#rows, droppedBytes: dropped }
    out.push({ kind: 'end', end: data })
  }

  #emit (out: DataRecord[], bytes: Uint8Array, rows: number): void {
    this.#rows += rows
    this.#rowsTotal += rows
    out.push({ kind: 'frame', frame: { rows, bytes } })
  }

  // ---------------------------------------------------------------------------------------------------------
  // END line

  #endLineStep (chunk: Uint8Array, i: number, out: DataRecord[]): number {
    const [line, next] = this.#readLine(chunk, i, 256, 'the END line')
    if (line === undefined) return next
    this.#finishEnd(line, this.#lines.start, out)
    return next
  }

  #finishEnd (line: Uint8Array, at: number, out: DataRecord[]): void {
    const text = ascii(line)
    const m = /^END (\d+) (.+)$/.exec(text)
    if (m === null) throw protocolError(at, "'END <rows> <reason>'", describeBytes(line, 0, line.length))
    const countText = m[1] as string
    const reasonText = m[2] as string
    const reason = asEndReason(reasonText)
    if (reason === undefined) {
      throw protocolError(at + 5 + countText.length,
        'an END reason (Ok, Disarmed, Early disconnect, Data overrun, Framing error, Driver data overrun, DMA data error)',
        `'${reasonText}'`)
    }
    if (this.#format === 'ASCII' || this.#format === 'BASE64') this.#flushText(out)
    this.#endAcquisition(out, { samples: Number(countText), reason }, this.#partialLen)
    if (this.options.oneShot === true) {
      this.#state = State.DONE
      this.#step = 'done'
    } else {
      this.#state = State.BETWEEN
      this.#step = 'header-open'
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // FRAMED

  #frameHeadStep (chunk: Uint8Array, i: number): number {
    const len = chunk.length
    const h = this.#frameHead
    if (this.#frameHeadLen === 0) {
      this.#frameHeadStart = this.#base + i
      if (i + 8 <= len && chunk[i] === 0x42 && chunk[i + 1] === 0x49 && chunk[i + 2] === 0x4e && chunk[i + 3] === 0x20) {
        const length = ((chunk[i + 4] as number) | ((chunk[i + 5] as number) << 8) | ((chunk[i + 6] as number) << 16) |
          ((chunk[i + 7] as number) << 24)) >>> 0
        this.#startFrame(length, chunk, i + 4)
        return i + 8
      }
    }
    while (i < len && this.#frameHeadLen < 8) {
      h[this.#frameHeadLen++] = chunk[i++] as number
      if (this.#frameHeadLen === 4) {
        if (h[0] === 0x42 && h[1] === 0x49 && h[2] === 0x4e && h[3] === 0x20) continue
        if (h[0] === 0x45 && h[1] === 0x4e && h[2] === 0x44 && h[3] === 0x20) {
          this.#frameHeadLen = 0
          this.#lines.buf.set(h.subarray(0, 4))
          this.#lines.len = 4
          this.#lines.start = this.#frameHeadStart
          this.#step = 'end-line'
          return i
        }
        throw protocolError(this.#frameHeadStart, "'BIN ' or 'END '", describeBytes(h, 0, 4))
      }
      if (this.#frameHeadLen < 4 && !this.#couldBeMarker()) {
        throw protocolError(this.#frameHeadStart, "'BIN ' or 'END '", describeBytes(h, 0, this.#frameHeadLen))
      }
    }
    if (this.#frameHeadLen === 8) {
      this.#frameHeadLen = 0
      const length = ((h[4] as number) | ((h[5] as number) << 8) | ((h[6] as number) << 16) | ((h[7] as number) << 24)) >>> 0
      this.#startFrame(length, h, 4)
    }
    return i
  }

  /** Whether the first frameHeadLen bytes are a prefix of 'BIN ' or 'END ' (fail early on garbage). */
  #couldBeMarker (): boolean {
    const h = this.#frameHead
    const bin = [0x42, 0x49, 0x4e, 0x20]
    const end = [0x45, 0x4e, 0x44, 0x20]
    let okBin = true
    let okEnd = true
    for (let k = 0; k < this.#frameHeadLen; k++) {
      if (h[k] !== bin[k]) okBin = false
      if (h[k] !== end[k]) okEnd = false
    }
    return okBin || okEnd
  }

  #startFrame (length: number, src: Uint8Array, at: number): void {
    if (length < 8 || length > this.limits.maxFrameBytes) {
      throw protocolError(this.#frameHeadStart + 4,
        `a BIN block length from 8 to ${this.limits.maxFrameBytes} (it includes the 8 header bytes)`,
        `${length} (${describeBytes(src, at, at + 4)})`)
    }
    this.#frames++
    this.#frameLeft = length - 8
    if (this.#frameLeft > 0) this.#step = 'frame-body'
  }

  #frameBody (chunk: Uint8Array, i: number, out: DataRecord[]): number {
    const sb = this.#sampleBytes
    const n = Math.min(this.#frameLeft, chunk.length - i)
    const stop = i + n
    let p = i
    if (this.#partialLen > 0) {
      const k = Math.min(sb - this.#partialLen, n)
      this.#partial.set(chunk.subarray(p, p + k), this.#partialLen)
      this.#partialLen += k
      p += k
      if (this.#partialLen === sb) {
        this.#partialLen = 0
        this.#emit(out, this.#partial.slice(0, sb), 1)
      }
    }
    const whole = Math.floor((stop - p) / sb)
    if (whole > 0) {
      this.#emit(out, chunk.subarray(p, p + whole * sb), whole)
      p += whole * sb
    }
    if (p < stop) {
      this.#partial.set(chunk.subarray(p, stop), this.#partialLen)
      this.#partialLen += stop - p
    }
    this.#frameLeft -= n
    if (this.#frameLeft === 0) this.#step = 'frame-head'
    return stop
  }

  // ---------------------------------------------------------------------------------------------------------
  // UNFRAMED: rows back to back; an END line is recognised only at a row boundary (see the docs: a row whose
  // bytes start like `END <digits> <text>\n` would be taken for the END line).

  #unframed (chunk: Uint8Array, i: number, out: DataRecord[]): number {
    const sb = this.#sampleBytes
    let buf: Uint8Array
    let bufBase: number
    if (this.#partialLen > 0) {
      // Join the held bytes with this chunk (one allocation per push while a row or an END candidate is held).
      buf = new Uint8Array(this.#partialLen + chunk.length - i)
      buf.set(this.#partial.subarray(0, this.#partialLen))
      buf.set(chunk.subarray(i), this.#partialLen)
      bufBase = this.#base + i - this.#partialLen
      this.#partialLen = 0
    } else {
      buf = chunk.subarray(i)
      bufBase = this.#base + i
    }
    const len = buf.length
    const runStart = 0
    let p = 0
    for (;;) {
      if (p < len && buf[p] === 0x45) {
        const m = matchEndLine(buf, p, len, 96)
        if (m === 'partial' || typeof m === 'number') {
          if (p > runStart) this.#emit(out, buf.subarray(runStart, p), (p - runStart) / sb)
          if (m === 'partial') {
            this.#partial.set(buf.subarray(p), 0)
            this.#partialLen = len - p
            return chunk.length
          }
          this.#finishEnd(trimCr(buf.subarray(p, m - 1)), bufBase + p, out)
          return chunk.length - (len - m)
        }
      }
      if (p + sb > len) break
      p += sb
    }
    if (p > runStart) this.#emit(out, buf.subarray(runStart, p), (p - runStart) / sb)
    if (p < len) {
      this.#partial.set(buf.subarray(p), 0)
      this.#partialLen = len - p
    }
    return chunk.length
  }

  // ---------------------------------------------------------------------------------------------------------
  // ASCII and BASE64: one text line at a time, packed into #textOut; whole rows are emitted once per push.

  #textStep (chunk: Uint8Array, i: number, out: DataRecord[]): number {
    const [line, next] = this.#readLine(chunk, i, this.limits.maxLineBytes, this.#format === 'ASCII' ? 'an ASCII row' : 'a BASE64 line')
    if (line === undefined) return next
    const at = this.#lines.start
    if (line[0] === 0x20) {
      if (this.#format === 'ASCII') this.#asciiRow(line, at)
      else this.#base64Line(line, at)
      return next
    }
    this.#flushText(out)
    this.#finishEnd(line, at, out)
    return next
  }

  #reserveText (extra: number): void {
    const need = this.#textLen + extra
    if (need <= this.#textOut.length) return
    const grown = new Uint8Array(Math.max(need, this.#textOut.length * 2, 4096))
    grown.set(this.#textOut.subarray(0, this.#textLen))
    this.#textOut = grown
    this.#textView = new DataView(grown.buffer)
  }

  #base64Line (line: Uint8Array, at: number): void {
    const n = line.length - 1
    if (n % 4 !== 0 || n === 0) {
      throw protocolError(at + 1, 'base64 text whose length is a non-zero multiple of 4', `${n} characters`)
    }
    this.#reserveText((n / 4) * 3)
    const o = this.#textOut
    let w = this.#textLen
    for (let k = 1; k <= n; k += 4) {
      const a = B64[line[k] as number] as number
      const b = B64[line[k + 1] as number] as number
      const c = B64[line[k + 2] as number] as number
      const d = B64[line[k + 3] as number] as number
      if ((a | b | c | d) >= 0) {
        const v = (a << 18) | (b << 12) | (c << 6) | d
        o[w++] = v >>> 16
        o[w++] = (v >>> 8) & 0xff
        o[w++] = v & 0xff
        continue
      }
      // Padding is allowed only in the last quantum of a line: `xx==` or `xxx=`.
      const last = k + 4 > n
      if (last && a >= 0 && b >= 0 && c < 0 && line[k + 2] === 0x3d && line[k + 3] === 0x3d) {
        o[w++] = ((a << 18) | (b << 12)) >>> 16
      } else if (last && a >= 0 && b >= 0 && c >= 0 && line[k + 3] === 0x3d) {
        const v = (a << 18) | (b << 12) | (c << 6)
        o[w++] = v >>> 16
        o[w++] = (v >>> 8) & 0xff
      } else {
        let bad = k
        while (bad < k + 4 && (B64[line[bad] as number] as number) >= 0) bad++
        throw protocolError(at + bad, 'a base64 character (A-Z a-z 0-9 + /, = only at the end of a line)',
          describeBytes(line, bad, Math.min(line.length, bad + 1)))
      }
    }
    this.#textLen = w
  }

  #asciiRow (line: Uint8Array, at: number): void {
    const tokens: Array<[string, number]> = []
    let k = 0
    while (k < line.length) {
      while (k < line.length && (line[k] === 0x20 || line[k] === 0x09)) k++
      if (k >= line.length) break
      const s = k
      while (k < line.length && line[k] !== 0x20 && line[k] !== 0x09) k++
      tokens.push([ascii(line.subarray(s, k)), at + s])
    }
    const sb = this.#sampleBytes
    this.#reserveText(sb)
    const v = this.#textView
    const row = this.#textLen
    const words = sb / 4
    if (this.#raw && tokens.length === words && tokens.every(([t]) => /^0x[0-9a-fA-F]{1,8}$/.test(t))) {
      // The server prints RAW rows as their 32-bit words, ` 0x%08x` each (server/capture.c send_raw_as_ascii).
      for (let w = 0; w < words; w++) v.setUint32(row + w * 4, parseInt((tokens[w] as [string, number])[0].slice(2), 16), true)
    } else if (tokens.length === this.#fields.length) {
      // One value per field (SCALED: uint32 as ` %u`, doubles as ` %.10g`).
      for (let f = 0; f < tokens.length; f++) {
        const [t, off] = tokens[f] as [string, number]
        const field = this.#fields[f] as FieldInfo
        writeAsciiValue(v, row + field.byteOffset, field.type, t, off)
      }
    } else {
      throw protocolError(at, `${this.#fields.length} values (one per field)${this.#raw ? ` or ${words} raw words` : ''}`,
        `${tokens.length} values`)
    }
    this.#textLen = row + sb
  }

  #flushText (out: DataRecord[]): void {
    const sb = this.#sampleBytes
    const rows = Math.floor(this.#textLen / sb)
    if (rows > 0) {
      this.#emit(out, this.#textOut.slice(0, rows * sb), rows)
      this.#textOut.copyWithin(0, rows * sb, this.#textLen)
      this.#textLen -= rows * sb
    }
    // BASE64 may leave part of a row: it counts as the partial row.
    this.#partialLen = this.#textLen
  }
}

function trimCr (line: Uint8Array): Uint8Array {
  return line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, line.length - 1) : line
}

function required (el: XmlElement, name: string): string {
  const v = el.attributes[name]
  if (v === undefined) throw protocolError(el.offset, `attribute ${name} on <${el.name}>`, 'none')
  return v
}

function optionalNumber (el: XmlElement, name: string): number | undefined {
  const v = el.attributes[name]
  if (v === undefined) return undefined
  const t = v.trim()
  const lower = t.toLowerCase()
  if (lower === 'nan' || lower === '-nan') return Number.NaN
  if (lower === 'inf' || lower === 'infinity') return Number.POSITIVE_INFINITY
  if (lower === '-inf' || lower === '-infinity') return Number.NEGATIVE_INFINITY
  const n = Number(t)
  if (t === '' || Number.isNaN(n)) throw protocolError(el.attributeOffsets[name] ?? el.offset, `a number for ${name}`, `'${v}'`)
  return n
}

function integer (el: XmlElement, name: string, signed: boolean): number {
  const v = required(el, name)
  if (!(signed ? /^-?[0-9]{1,19}$/ : /^[0-9]{1,19}$/).test(v)) {
    throw protocolError(el.attributeOffsets[name] ?? el.offset, `${signed ? 'an' : 'a non-negative'} integer for ${name}`, `'${v}'`)
  }
  return Number(v)
}

const INT_RE = /^[+-]?[0-9]+$/

function writeAsciiValue (v: DataView, at: number, type: FieldType, t: string, offset: number): void {
  const bad = (expected: string): never => { throw protocolError(offset, expected, `'${t}'`) }
  switch (type) {
    case 'double': {
      const lower = t.toLowerCase()
      let n: number
      if (lower === 'nan' || lower === '-nan') n = Number.NaN
      else if (lower === 'inf' || lower === '+inf') n = Number.POSITIVE_INFINITY
      else if (lower === '-inf') n = Number.NEGATIVE_INFINITY
      else {
        n = Number(t)
        if (Number.isNaN(n) || !/^[+-]?[0-9.]/.test(t)) bad('a decimal number (double field)')
      }
      v.setFloat64(at, n, true)
      return
    }
    case 'uint32': {
      const n = INT_RE.test(t) ? Number(t) : Number.NaN
      if (!(n >= 0 && n <= 0xffffffff)) bad('an integer 0..4294967295 (uint32 field)')
      v.setUint32(at, n, true)
      return
    }
    case 'int32': {
      const n = INT_RE.test(t) ? Number(t) : Number.NaN
      if (!(n >= -0x80000000 && n <= 0x7fffffff)) bad('an int32 integer')
      v.setInt32(at, n, true)
      return
    }
    case 'int64':
    case 'int96': {
      if (!INT_RE.test(t)) bad(`an ${type} integer`)
      const bits = type === 'int64' ? 64n : 96n
      const n = BigInt(t)
      if (n < -(1n << (bits - 1n)) || n >= (1n << (bits - 1n))) bad(`an ${type} integer in range`)
      const u = BigInt.asUintN(Number(bits), n)
      v.setBigUint64(at, BigInt.asUintN(64, u), true)
      if (type === 'int96') v.setUint32(at + 8, Number(u >> 64n), true)
    }
  }
}
