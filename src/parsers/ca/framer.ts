/**
 * Sans-IO framing of Channel Access messages: bytes in (`push`), whole messages out (header + payload), nothing
 * else. A TCP circuit is a byte stream that may split a message anywhere, the extended header included; a UDP
 * datagram carries several whole messages back to back (`parseDatagram`).
 *
 * Payloads are views, never copies. A message that lies whole inside the pushed chunk is a view of that chunk
 * (zero-copy); one that spans chunks is assembled in a buffer of its own size. Either way a payload is valid
 * until the next push(): copy what you keep longer.
 *
 * Limits are checked on the header, before anything is buffered: a payload above `maxPayloadBytes` (or, when
 * asked, one whose size is not a multiple of 8) fails the stream with a CA_PROTOCOL error naming the absolute
 * stream offset and the command. After a failure every push() throws the same error.
 */
import type { FlyScanError } from '../../errors.js'
import {
  EXTENDED_HEADER_SIZE, HEADER_SIZE, caCommandName, caProtocolError, decodeHeader, type CaHeader
} from './header.js'

/** Large enough for an 8 MB camera frame and a 1,000,000-element DBR_CTRL_DOUBLE waveform, with room to spare. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 128 * 1024 * 1024

export interface CaFramerOptions {
  /** Largest payload accepted (bytes after the header). Default DEFAULT_MAX_PAYLOAD_BYTES. */
  readonly maxPayloadBytes?: number
  /** Reject payload sizes that are not a multiple of 8, as rsrv does (libca always pads). Default false. */
  readonly requirePadding?: boolean
  /** Names the stream in error messages, e.g. `client 127.0.0.1:40312`. Default `CA stream`. */
  readonly source?: string
}

export interface CaMessage {
  readonly header: CaHeader
  /** Bytes of the header: 16, or 24 for the extended form. */
  readonly headerSize: number
  /** `header.payloadSize` bytes after the header; a view valid until the next push(). */
  readonly payload: Uint8Array
  /** Absolute offset of the header's first byte in the stream (in the datagram for parseDatagram). */
  readonly offset: number
}

interface Limits {
  readonly maxPayloadBytes: number
  readonly requirePadding: boolean
  readonly source: string
}

function limitsOf (opts: CaFramerOptions): Limits {
  return {
    maxPayloadBytes: opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
    requirePadding: opts.requirePadding ?? false,
    source: opts.source ?? 'CA stream'
  }
}

/** The CA_PROTOCOL error for a header that breaks a limit, or undefined when it is acceptable. */
function checkHeader (h: CaHeader, offset: number, limits: Limits): FlyScanError | undefined {
  const details = { offset, command: h.command, payloadSize: h.payloadSize, source: limits.source }
  if (h.payloadSize > limits.maxPayloadBytes) {
    return caProtocolError(
      `${limits.source}, stream offset ${offset}: ${caCommandName(h.command)} declares a payload of ` +
      `${h.payloadSize} bytes, above the limit of ${limits.maxPayloadBytes}`,
      { ...details, maxPayloadBytes: limits.maxPayloadBytes })
  }
  if (limits.requirePadding && h.payloadSize % 8 !== 0) {
    return caProtocolError(
      `${limits.source}, stream offset ${offset}: ${caCommandName(h.command)} declares a payload of ` +
      `${h.payloadSize} bytes, not padded to a multiple of 8`, details)
  }
  return undefined
}

const Stage = {
  /** Between messages. */
  IDLE: 0,
  /** Part of a header is held in `scratch`. */
  HEADER: 1,
  /** The header is known and part of its payload is held in `body`. */
  BODY: 2,
  /** A limit was broken: every push() throws `error`. */
  FAILED: 3
} as const
type Stage = typeof Stage[keyof typeof Stage]

export class CaFramer {
  readonly #limits: Limits
  #stage: Stage = Stage.IDLE
  /** Absolute offset of the first byte of the next push(). */
  #pushed = 0
  /** Absolute offset of the message being assembled. */
  #messageOffset = 0
  readonly #scratch = new Uint8Array(EXTENDED_HEADER_SIZE)
  #scratchLength = 0
  #body: Uint8Array | undefined
  #bodyLength = 0
  #header: CaHeader | undefined
  #headerSize = 0
  #error: FlyScanError | undefined

  constructor (opts: CaFramerOptions = {}) {
    this.#limits = limitsOf(opts)
  }

  /** Bytes pushed so far: the absolute stream offset of the next byte. */
  get bytesPushed (): number {
    return this.#pushed
  }

  /** Bytes of an incomplete message held until more arrive. */
  get bufferedBytes (): number {
    if (this.#stage === Stage.HEADER) return this.#scratchLength
    if (this.#stage === Stage.BODY) return this.#bodyLength
    return 0
  }

  /** The error that failed the stream, if one did. */
  get error (): FlyScanError | undefined {
    return this.#error
  }

  /** Feed the next bytes of the stream; returns the messages they complete, in order. */
  push (chunk: Uint8Array): CaMessage[] {
    if (this.#error !== undefined) throw this.#error
    const out: CaMessage[] = []
    const base = this.#pushed
    this.#pushed += chunk.length
    let pos = 0
    while (pos < chunk.length) {
      if (this.#stage === Stage.IDLE) {
        pos = this.#fromChunk(chunk, pos, base, out)
      } else if (this.#stage === Stage.HEADER) {
        pos = this.#fillHeader(chunk, pos, out)
      } else {
        pos = this.#fillBody(chunk, pos, out)
      }
    }
    return out
  }

  /** Messages that lie whole in `chunk` from `pos`; the start of a split one goes to the scratch or body buffer. */
  #fromChunk (chunk: Uint8Array, pos: number, base: number, out: CaMessage[]): number {
    for (;;) {
      const remaining = chunk.length - pos
      if (remaining === 0) return pos
      const decoded = decodeHeader(chunk, pos)
      this.#messageOffset = base + pos
      if (decoded === undefined) {
        this.#scratch.set(chunk.subarray(pos), 0)
        this.#scratchLength = remaining
        this.#stage = Stage.HEADER
        return chunk.length
      }
      const { header, size } = decoded
      this.#check(header)
      const total = size + header.payloadSize
      if (total <= remaining) {
        out.push({ header, headerSize: size, payload: chunk.subarray(pos + size, pos + total), offset: base + pos })
        pos += total
        continue
      }
      this.#startBody(header, size)
      this.#body?.set(chunk.subarray(pos + size), size)
      this.#bodyLength = remaining
      return chunk.length
    }
  }

  /** Complete a header split across pushes (and emit the message if it has no payload). */
  #fillHeader (chunk: Uint8Array, pos: number, out: CaMessage[]): number {
    let need = this.#scratchLength < HEADER_SIZE ? HEADER_SIZE : EXTENDED_HEADER_SIZE
    let take = Math.min(need - this.#scratchLength, chunk.length - pos)
    this.#scratch.set(chunk.subarray(pos, pos + take), this.#scratchLength)
    this.#scratchLength += take
    pos += take
    if (this.#scratchLength < HEADER_SIZE) return pos
    let decoded = decodeHeader(this.#scratch.subarray(0, this.#scratchLength), 0)
    if (decoded === undefined) {
      // An extended header: 8 more bytes.
      need = EXTENDED_HEADER_SIZE
      take = Math.min(need - this.#scratchLength, chunk.length - pos)
      this.#scratch.set(chunk.subarray(pos, pos + take), this.#scratchLength)
      this.#scratchLength += take
      pos += take
      if (this.#scratchLength < need) return pos
      decoded = decodeHeader(this.#scratch, 0)
      if (decoded === undefined) throw new Error('unreachable: a full extended header did not decode')
    }
    const { header, size } = decoded
    this.#check(header)
    this.#startBody(header, size)
    this.#body?.set(this.#scratch.subarray(0, size), 0)
    this.#bodyLength = size
    this.#scratchLength = 0
    if (header.payloadSize === 0) this.#emitBody(out)
    return pos
  }

  /** Copy payload bytes into the body buffer; emit the message once whole. */
  #fillBody (chunk: Uint8Array, pos: number, out: CaMessage[]): number {
    const body = this.#body as Uint8Array
    const take = Math.min(body.length - this.#bodyLength, chunk.length - pos)
    body.set(chunk.subarray(pos, pos + take), this.#bodyLength)
    this.#bodyLength += take
    pos += take
    if (this.#bodyLength === body.length) this.#emitBody(out)
    return pos
  }

  #startBody (header: CaHeader, size: number): void {
    this.#header = header
    this.#headerSize = size
    this.#body = new Uint8Array(size + header.payloadSize)
    this.#bodyLength = 0
    this.#stage = Stage.BODY
  }

  #emitBody (out: CaMessage[]): void {
    const body = this.#body as Uint8Array
    out.push({
      header: this.#header as CaHeader,
      headerSize: this.#headerSize,
      payload: body.subarray(this.#headerSize),
      offset: this.#messageOffset
    })
    // The buffer now belongs to the message handed out; the next split message gets a new one.
    this.#body = undefined
    this.#header = undefined
    this.#bodyLength = 0
    this.#stage = Stage.IDLE
  }

  #check (header: CaHeader): void {
    const err = checkHeader(header, this.#messageOffset, this.#limits)
    if (err === undefined) return
    this.#error = err
    this.#stage = Stage.FAILED
    this.#body = undefined
    throw err
  }
}

/**
 * The messages of one UDP datagram, as views of `bytes`. A datagram that ends inside a message, or a message that
 * breaks a limit, is a CA_PROTOCOL error naming the offset in the datagram.
 */
export function parseDatagram (bytes: Uint8Array, opts: CaFramerOptions = {}): CaMessage[] {
  const limits = limitsOf({ ...opts, source: opts.source ?? 'CA datagram' })
  const out: CaMessage[] = []
  let pos = 0
  while (pos < bytes.length) {
    const decoded = decodeHeader(bytes, pos)
    if (decoded === undefined) {
      throw caProtocolError(
        `${limits.source} of ${bytes.length} bytes ends inside a message header at offset ${pos}`,
        { offset: pos, datagramBytes: bytes.length, source: limits.source })
    }
    const { header, size } = decoded
    const err = checkHeader(header, pos, limits)
    if (err !== undefined) throw err
    const end = pos + size + header.payloadSize
    if (end > bytes.length) {
      throw caProtocolError(
        `${limits.source} of ${bytes.length} bytes ends inside ${caCommandName(header.command)} at offset ${pos} ` +
        `(its payload needs ${header.payloadSize} bytes, ${bytes.length - pos - size} present)`,
        { offset: pos, command: header.command, payloadSize: header.payloadSize, datagramBytes: bytes.length, source: limits.source })
    }
    out.push({ header, headerSize: size, payload: bytes.subarray(pos + size, end), offset: pos })
    pos = end
  }
  return out
}
