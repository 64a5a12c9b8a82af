/**
 * The simulated PandA's data port (TCP 8889), after PandABlocks-server (commit dd1b8e0) server/data_server.c and
 * buffer.c: each client sends one options line and gets `OK` (or `ERR ...` and the socket closes); from then on
 * its input is ignored. Each capture (one `*PCAP.ARM=`) is a `CaptureRun` holding the raw rows in a bounded buffer
 * (the box's circular buffer); every client connected when it starts, or joining while it runs, reads the rows at
 * its own pace, converted to its own options, and gets `END <rows> <reason>`.
 *
 * - A client whose unread rows exceed `bufferBytes` (it stopped reading: its socket backed up and the buffer moved
 *   on without it) gets `END <rows> Data overrun`.
 * - A client that joins after the buffer has moved on starts ¾ of a buffer behind the newest row, and its header
 *   says how many rows it `missed` (one joining earlier gets every row, as on the box).
 * - A client that disconnects in the middle is counted out (`Early disconnect`, in `records`).
 * - FRAMED blocks hold whole rows: the server keeps a partial row back for the next block.
 */
import net from 'node:net'
import { isoMs, isoNs } from './format.js'
import type { Completion } from './pcap.js'
import {
  base64Block, captureHeader, frameHeader, frames, parseWireOptions, type CaptureLayout, type WireOptions
} from './wire.js'
import { listenTcp, listeningPort } from '../listen.js'

export interface DataServerOptions {
  readonly host: string
  readonly port: number
  /** Raw bytes of a capture kept for clients that fall behind or join late (default 32 MiB). */
  readonly bufferBytes?: number
  /** Bytes waiting on a client's socket before the server stops handing it rows (default 256 KiB). */
  readonly socketHighWater?: number
  /** Milliseconds now, on the simulation's clock (for `*WHO?`). */
  readonly nowMs: () => number
}

/** How one data connection went, for tests and `*WHO?`. */
export interface DataClientRecord {
  readonly peer: string
  readonly connectedMs: number
  /** The options line, once received. */
  optionsLine: string | undefined
  /** Each capture it took part in: rows sent, rows missed, and how it ended. */
  readonly captures: Array<{ rows: number, missed: number, reason: string }>
  closed: boolean
}

interface Chunk {
  /** Byte offset of the chunk in the run's raw stream. */
  readonly at: number
  readonly bytes: Uint8Array
  /** The same bytes object recurs (rate mode blocks): keep its encodings. */
  readonly reusable: boolean
}

/** Most raw bytes handed to one client in one write. */
const MAX_PIECE_BYTES = 1 << 20
/** Binary bytes per output buffer in processed modes (data_server.c NET_BUF_SIZE). */
const NET_BUF_SIZE = 65536

/** One capture's rows, as the data port serves them. */
export class CaptureRun {
  readonly armTime: string
  startTime: string | undefined
  started = false
  ended = false
  completion: Completion = 'Ok'
  /** Rows produced. */
  rows = 0
  readonly clients = new Set<DataClient>()
  readonly #chunks: Chunk[] = []
  #head = 0
  /** Raw bytes produced, and the first byte still held. */
  total = 0
  retainedFrom = 0
  readonly #encodings = new WeakMap<Uint8Array, Map<string, Uint8Array>>()

  constructor (readonly layout: CaptureLayout, armMs: number, readonly server: DataServer) {
    this.armTime = isoNs(armMs)
  }

  /** The capture started (PCAP enabled): headers may go out. */
  start (startMs: number): void {
    if (this.started) return
    this.started = true
    this.startTime = isoNs(startMs)
    this.server.pumpAll(this)
  }

  /** Whole raw rows. `reusable`: the same bytes object will be appended again (rate mode). */
  append (bytes: Uint8Array, rows: number, reusable = false): void {
    if (this.ended || rows === 0) return
    this.#chunks.push({ at: this.total, bytes, reusable })
    this.total += bytes.length
    this.rows += rows
    const keep = this.server.bufferBytes
    if (this.total - this.retainedFrom > keep) {
      this.retainedFrom = this.total - keep
      while (this.#head < this.#chunks.length) {
        const c = this.#chunks[this.#head] as Chunk
        if (c.at + c.bytes.length > this.retainedFrom) break
        this.#head++
      }
      if (this.#head > 1024 && this.#head * 2 > this.#chunks.length) {
        this.#chunks.splice(0, this.#head)
        this.#head = 0
      }
      for (const c of this.clients) if (c.pos < this.retainedFrom) c.overrun()
    }
    this.server.pumpAll(this)
  }

  end (reason: Completion, endMs: number): void {
    if (this.ended) return
    if (!this.started) this.start(endMs)
    this.ended = true
    this.completion = reason
    this.server.pumpAll(this)
    this.server.runSettled(this)
  }

  /** The next run of whole rows at `pos`, at most MAX_PIECE_BYTES. */
  piece (pos: number): { bytes: Uint8Array, chunk: Chunk, whole: boolean } | undefined {
    if (pos >= this.total) return undefined
    let lo = this.#head
    let hi = this.#chunks.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if ((this.#chunks[mid] as Chunk).at <= pos) lo = mid
      else hi = mid - 1
    }
    const chunk = this.#chunks[lo] as Chunk
    const rb = this.layout.rawBytes
    const from = pos - chunk.at
    let to = chunk.bytes.length
    if (to - from > MAX_PIECE_BYTES) to = from + Math.max(rb, Math.floor(MAX_PIECE_BYTES / rb) * rb)
    return { bytes: chunk.bytes.subarray(from, to), chunk, whole: from === 0 && to === chunk.bytes.length }
  }

  /** The encoding of a whole reusable chunk, made once per client option set. */
  encoded (chunk: Chunk, key: string, encode: () => Uint8Array): Uint8Array {
    if (!chunk.reusable) return encode()
    let m = this.#encodings.get(chunk.bytes)
    if (m === undefined) {
      m = new Map()
      this.#encodings.set(chunk.bytes, m)
    }
    let e = m.get(key)
    if (e === undefined) {
      e = encode()
      m.set(key, e)
    }
    return e
  }

  /** Drops the rows once nobody needs them. */
  release (): void {
    this.#chunks.length = 0
    this.#head = 0
  }
}

/** One data port connection. */
export class DataClient {
  options: WireOptions | undefined
  run: CaptureRun | undefined
  /** Raw byte offset of the next row to send. */
  pos = 0
  sentRows = 0
  missed = 0
  headerSent = false
  closed = false
  #line = ''

  constructor (readonly socket: net.Socket, readonly server: DataServer, readonly record: DataClientRecord) {
    socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    socket.on('drain', () => this.pump())
    socket.on('error', () => {})
    socket.on('close', () => this.#onClose())
  }

  #onData (chunk: Buffer): void {
    if (this.options !== undefined || this.closed) return
    this.#line += chunk.toString('latin1')
    const nl = this.#line.indexOf('\n')
    if (nl < 0) {
      if (this.#line.length >= 1023) this.socket.destroy()
      return
    }
    const line = this.#line.slice(0, nl)
    this.#line = ''
    this.record.optionsLine = line
    const parsed = parseWireOptions(line)
    if ('error' in parsed) {
      this.socket.end(`ERR ${parsed.error}\n`)
      this.closed = true
      return
    }
    this.options = parsed
    if (!parsed.noStatus) this.socket.write('OK\n')
    this.server.joinCurrent(this)
  }

  #onClose (): void {
    this.closed = true
    this.record.closed = true
    const run = this.run
    if (run !== undefined) {
      this.record.captures.push({ rows: this.sentRows, missed: this.missed, reason: 'Early disconnect' })
      this.run = undefined
      run.clients.delete(this)
      this.server.runSettled(run)
    }
    this.server.forget(this)
  }

  /** Starts taking part in a run, `pos` bytes in (rows before it are missed). */
  join (run: CaptureRun, pos: number): void {
    this.run = run
    this.pos = pos
    this.missed = pos / run.layout.rawBytes
    this.sentRows = 0
    this.headerSent = false
    run.clients.add(this)
    this.pump()
  }

  /** Sends what it can: the header once the capture has started, rows while the socket keeps up, END at the end. */
  pump (): void {
    const run = this.run
    const options = this.options
    if (run === undefined || options === undefined || this.closed) return
    if (!this.headerSent) {
      if (!run.started) return
      if (!options.noHeader) {
        this.socket.write(captureHeader(run.layout, options, { armTime: run.armTime, startTime: run.startTime ?? run.armTime }, this.missed))
      }
      this.headerSent = true
    }
    const high = this.server.socketHighWater
    while (this.socket.writableLength < high && this.run === run) {
      const p = run.piece(this.pos)
      if (p === undefined) break
      const rows = p.bytes.length / run.layout.rawBytes
      const out = p.whole ? run.encoded(p.chunk, optionsKey(options), () => encode(run.layout, options, p.bytes, rows)) : encode(run.layout, options, p.bytes, rows)
      this.socket.write(out)
      this.pos += p.bytes.length
      this.sentRows += rows
    }
    if (this.run === run && run.ended && this.pos >= run.total) this.#finish(run.completion)
  }

  /**
   * A network fault in the middle of a block: the header of a block of one row and half of that row, then the
   * connection drops (no END line).
   */
  cut (): void {
    const run = this.run
    const options = this.options
    if (run === undefined || options === undefined || this.closed) return
    const rowBytes = run.layout.binaryRowBytes(options.process)
    if (this.headerSent && options.format === 'FRAMED') this.socket.write(frameHeader(rowBytes))
    if (this.headerSent) this.socket.write(new Uint8Array(Math.max(1, rowBytes >> 1)))
    this.socket.destroySoon()
  }

  /** The buffer moved past this client's next row. */
  overrun (): void {
    if (this.run !== undefined) this.#finish('Data overrun')
  }

  #finish (reason: string): void {
    const run = this.run as CaptureRun
    const options = this.options as WireOptions
    if (!this.headerSent && !options.noHeader) {
      this.socket.write(captureHeader(run.layout, options, { armTime: run.armTime, startTime: run.startTime ?? run.armTime }, this.missed))
    }
    if (!options.noStatus) this.socket.write(`END ${this.sentRows} ${reason}\n`)
    this.record.captures.push({ rows: this.sentRows, missed: this.missed, reason })
    this.run = undefined
    run.clients.delete(this)
    if (options.oneShot) {
      this.closed = true
      this.socket.end()
    }
    this.server.runSettled(run)
  }
}

function optionsKey (o: WireOptions): string {
  return `${o.format} ${o.process}`
}

/** Rows in the client's format: FRAMED blocks, UNFRAMED bytes, BASE64 or ASCII lines. */
function encode (layout: CaptureLayout, o: WireOptions, raw: Uint8Array, rows: number): Uint8Array {
  if (o.format === 'ASCII') return Buffer.from(layout.toAscii(raw, rows, o.process), 'latin1')
  const binary = o.process === 'RAW' ? raw : layout.toScaled(raw, rows)
  const rowBytes = layout.binaryRowBytes(o.process)
  switch (o.format) {
    case 'UNFRAMED': return binary
    case 'FRAMED':
      // FRAMED RAW passes the driver's blocks through whole; processed modes fill 64 KiB output buffers.
      return frames(binary, rowBytes, o.process === 'RAW' ? binary.length : NET_BUF_SIZE - 8)
    case 'BASE64': {
      const per = Math.max(1, Math.floor(NET_BUF_SIZE / rowBytes)) * rowBytes
      let text = ''
      for (let at = 0; at < binary.length; at += per) text += base64Block(binary.subarray(at, at + per))
      return Buffer.from(text, 'latin1')
    }
  }
}

export class DataServer {
  readonly #server: net.Server
  readonly #clients = new Set<DataClient>()
  readonly records: DataClientRecord[] = []
  readonly bufferBytes: number
  readonly socketHighWater: number
  readonly #options: DataServerOptions
  run: CaptureRun | undefined

  private constructor (options: DataServerOptions) {
    this.#options = options
    this.bufferBytes = options.bufferBytes ?? 32 * 1024 * 1024
    this.socketHighWater = options.socketHighWater ?? 256 * 1024
    this.#server = net.createServer((socket) => this.#accept(socket))
  }

  static async start (options: DataServerOptions): Promise<DataServer> {
    const s = new DataServer(options)
    await listenTcp(s.#server, options.port, options.host)
    return s
  }

  get port (): number {
    return listeningPort(this.#server)
  }

  #accept (socket: net.Socket): void {
    socket.setNoDelay(true)
    const record: DataClientRecord = {
      peer: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`,
      connectedMs: this.#options.nowMs(),
      optionsLine: undefined,
      captures: [],
      closed: false
    }
    this.records.push(record)
    this.#clients.add(new DataClient(socket, this, record))
  }

  forget (client: DataClient): void {
    this.#clients.delete(client)
  }

  /** Why a new capture cannot start now, or undefined. */
  armError (): string | undefined {
    const run = this.run
    if (run === undefined) return undefined
    if (!run.ended) return 'Data capture already in progress'
    if (run.clients.size > 0) return 'Data clients still taking data'
    return undefined
  }

  /** A new capture: every connected client that has sent its options takes part. */
  startRun (layout: CaptureLayout, armMs: number): CaptureRun {
    this.run?.release()
    const run = new CaptureRun(layout, armMs, this)
    this.run = run
    for (const c of this.#clients) if (c.options !== undefined && c.run === undefined && !c.closed) c.join(run, 0)
    return run
  }

  /** A client that has just sent its options joins the capture in progress, if any. */
  joinCurrent (client: DataClient): void {
    const run = this.run
    if (run === undefined || (run.ended && run.clients.size === 0)) return
    const keepBehind = Math.floor(this.bufferBytes * 3 / 4)
    const rb = run.layout.rawBytes
    const start = run.total > keepBehind ? Math.ceil((run.total - keepBehind) / rb) * rb : 0
    client.join(run, Math.max(start, Math.ceil(run.retainedFrom / rb) * rb))
  }

  /** Every client taking data from the current capture loses its connection in the middle of a block. */
  cutAll (): void {
    for (const c of [...(this.run?.clients ?? [])]) c.cut()
  }

  /** Every client taking data from the current capture gets `END <rows sent> Data overrun` now, as if it fell behind. */
  overrunAll (): void {
    for (const c of [...(this.run?.clients ?? [])]) c.overrun()
  }

  pumpAll (run: CaptureRun): void {
    for (const c of [...run.clients]) c.pump()
  }

  /** A client left a run; once the run has ended and nobody is reading it, its rows go. */
  runSettled (run: CaptureRun): void {
    if (run.ended && run.clients.size === 0) run.release()
  }

  /** `*PCAP.STATUS?`: busy, data clients connected (past their options line), clients taking data. */
  status (): { busy: boolean, readers: number, active: number } {
    const run = this.run
    let readers = 0
    for (const c of this.#clients) if (c.options !== undefined && !c.closed) readers++
    const active = run === undefined ? 0 : run.clients.size
    return { busy: run !== undefined && (!run.ended || active > 0), readers, active }
  }

  /** `*WHO?` lines for the data connections. */
  who (): string[] {
    return this.records.filter((r) => !r.closed).map((r) => `${isoMs(r.connectedMs)} data ${r.peer} `)
  }

  async close (): Promise<void> {
    for (const c of this.#clients) c.socket.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}
