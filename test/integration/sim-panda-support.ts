/**
 * Helpers for the simulated PandA's tests: a data-port reader that parses what arrives with our parser, a wait
 * that fails loudly, and decoding rows to columns.
 */
import net from 'node:net'
import {
  ColumnDecoder, PandaDataParser, type DataRecord, type EndData, type FrameData, type StartData
} from '../../src/parsers/index.js'

export interface Acquisition {
  readonly start: StartData
  /** One array per row, one number per header field (scaled as our ColumnDecoder scales). */
  readonly rows: number[][]
  end: EndData | undefined
}

/** A data-port client: sends the options line, keeps every byte, and parses XML streams as they come. */
export class DataReader {
  readonly socket: net.Socket
  readonly chunks: Buffer[] = []
  readonly acquisitions: Acquisition[] = []
  readonly records: DataRecord[] = []
  readonly parser: PandaDataParser | undefined
  parseError: Error | undefined
  closed = false
  #decoder: ColumnDecoder | undefined

  private constructor (socket: net.Socket, options: string) {
    this.socket = socket
    const words = new Set(options.split(/\s+/))
    this.parser = words.has('XML') && !words.has('NO_HEADER') && !words.has('BARE')
      ? new PandaDataParser({ xml: true, noStatus: words.has('NO_STATUS') })
      : undefined
    socket.on('data', (b: Buffer) => this.#onData(b))
    socket.on('error', () => {})
    socket.on('close', () => {
      this.closed = true
      if (this.parser === undefined || this.parseError !== undefined) return
      // As the capture worker does when the socket closes: a capture cut short ends as Early disconnect.
      try {
        for (const r of this.parser.close()) this.#record(r)
      } catch (err) {
        this.parseError = err as Error
      }
    })
  }

  static async connect (port: number, options: string): Promise<DataReader> {
    const socket = net.connect(port, '127.0.0.1')
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    socket.setNoDelay(true)
    const r = new DataReader(socket, options)
    socket.write(options + '\n')
    return r
  }

  get bytes (): Buffer {
    return Buffer.concat(this.chunks)
  }

  get text (): string {
    return this.bytes.toString('latin1')
  }

  #onData (b: Buffer): void {
    this.chunks.push(b)
    if (this.parser === undefined || this.parseError !== undefined) return
    try {
      for (const r of this.parser.push(b)) this.#record(r)
    } catch (err) {
      this.parseError = err as Error
    }
  }

  #record (r: DataRecord): void {
    this.records.push(r)
    if (r.kind === 'start') {
      this.#decoder = new ColumnDecoder(r.start)
      this.acquisitions.push({ start: r.start, rows: [], end: undefined })
    } else if (r.kind === 'frame') {
      const acq = this.acquisitions[this.acquisitions.length - 1]
      if (acq !== undefined && this.#decoder !== undefined) acq.rows.push(...decodeRows(this.#decoder, r.frame))
    } else if (r.kind === 'end') {
      const acq = this.acquisitions[this.acquisitions.length - 1]
      if (acq !== undefined) acq.end = r.end
    }
  }

  /** Waits until `n` acquisitions have ended. */
  async ended (n = 1, timeoutMs = 3000): Promise<Acquisition[]> {
    await waitFor(() => this.acquisitions.filter((a) => a.end !== undefined).length >= n || this.parseError !== undefined,
      timeoutMs, () => `${n} acquisition(s) to end (have ${this.acquisitions.length}, ${this.bytes.length} bytes)`)
    if (this.parseError !== undefined) throw this.parseError
    return this.acquisitions
  }

  close (): void {
    this.socket.destroy()
  }
}

export function decodeRows (decoder: ColumnDecoder, frame: FrameData): number[][] {
  const cols = decoder.allocate(frame.rows)
  decoder.decode(frame, cols)
  const rows: number[][] = []
  for (let i = 0; i < frame.rows; i++) rows.push(cols.map((c) => c[i] as number))
  return rows
}

/** Polls `pred` every 2 ms; rejects naming `what` after `timeoutMs`. */
export async function waitFor (pred: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!pred()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

/** Lets socket I/O happen (a few turns of the event loop). */
export async function settle (ms = 20): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

/** The column index of `NAME.Capture` in an acquisition's header. */
export function col (start: StartData, name: string, capture: string): number {
  const i = start.fields.findIndex((f) => f.name === name && f.capture === capture)
  if (i < 0) throw new Error(`no field ${name} ${capture} in ${start.fields.map((f) => `${f.name}.${f.capture}`).join(', ')}`)
  return i
}
