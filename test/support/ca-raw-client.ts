/**
 * A bare Channel Access client over a raw TCP socket, for byte-level tests of the simulated IOC's server: send any
 * bytes (well-formed or garbage), collect every message the server sends, wait for the one you expect.
 */
import net from 'node:net'
import dgram from 'node:dgram'
import { CaFramer, encodeMessage, encodePaddedString, parseDatagram, type CaHeader } from '../../src/parsers/index.js'

export interface Received {
  readonly header: CaHeader
  readonly headerSize: number
  /** A copy. */
  readonly payload: Uint8Array
}

export function msg (command: number, dataType: number, dataCount: number, parameter1: number, parameter2: number, payload?: Uint8Array): Uint8Array {
  const payloadSize = payload === undefined ? 0 : (payload.length + 7) & ~7
  return encodeMessage({ command, payloadSize, dataType, dataCount, parameter1, parameter2 }, payload)
}

/** EVENT_ADD's 16-byte payload: low, high, to (0), mask, pad. */
export function eventAddPayload (mask: number): Uint8Array {
  const p = new Uint8Array(16)
  new DataView(p.buffer).setUint16(12, mask)
  return p
}

export class RawCaClient {
  readonly socket: net.Socket
  readonly received: Received[] = []
  readonly closed: Promise<void>
  #framer = new CaFramer()
  #waiters: Array<() => void> = []
  #isClosed = false

  private constructor (socket: net.Socket) {
    this.socket = socket
    socket.on('data', (chunk: Buffer) => {
      for (const m of this.#framer.push(chunk)) this.received.push({ header: m.header, headerSize: m.headerSize, payload: m.payload.slice() })
      this.#wake()
    })
    socket.on('error', () => {})
    this.closed = new Promise((resolve) => socket.on('close', () => {
      this.#isClosed = true
      this.#wake()
      resolve()
    }))
  }

  static async connect (port: number, host = '127.0.0.1'): Promise<RawCaClient> {
    const socket = net.connect(port, host)
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    return new RawCaClient(socket)
  }

  /** `host:port` of our end, as the server sees it. */
  get localName (): string {
    return `${this.socket.localAddress ?? '?'}:${this.socket.localPort ?? '?'}`
  }

  get isClosed (): boolean {
    return this.#isClosed
  }

  send (...parts: Uint8Array[]): void {
    for (const p of parts) this.socket.write(p)
  }

  /** VERSION, CREATE_CHAN for `name` with `cid`; resolves with the sid (rejects on CREATE_CH_FAIL). */
  async createChannel (name: string, cid: number): Promise<{ sid: number, dataType: number, dataCount: number }> {
    this.send(msg(0, 0, 13, 0, 0), msg(18, 0, 0, cid, 13, encodePaddedString(name)))
    const reply = await this.next((m) => (m.header.command === 18 || m.header.command === 26) && m.header.parameter1 === cid)
    if (reply.header.command === 26) throw new Error(`CREATE_CH_FAIL for ${name}`)
    return { sid: reply.header.parameter2, dataType: reply.header.dataType, dataCount: reply.header.dataCount }
  }

  /** The first message received from `from` on that matches, waiting up to `timeoutMs`. */
  async next (match: (m: Received) => boolean, timeoutMs = 5000, from = 0): Promise<Received> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = this.received.slice(from).find(match)
      if (found !== undefined) return found
      if (this.#isClosed) throw new Error('connection closed before the expected message arrived')
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no matching message within ${timeoutMs} ms; got commands ${this.received.map((m) => m.header.command).join(',')}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  #wake (): void {
    const w = this.#waiters
    this.#waiters = []
    for (const f of w) f()
  }

  close (): void {
    this.socket.destroy()
  }
}

/** Send one datagram to the server's search port; resolves with the messages of each reply within `waitMs`. */
export async function udpExchange (port: number, datagram: Uint8Array, waitMs = 300): Promise<Array<Array<{ header: CaHeader, payload: Uint8Array }>>> {
  const socket = dgram.createSocket('udp4')
  const replies: Array<Array<{ header: CaHeader, payload: Uint8Array }>> = []
  socket.on('message', (bytes) => {
    replies.push(parseDatagram(bytes).map((m) => ({ header: m.header, payload: m.payload.slice() })))
  })
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  socket.send(datagram, port, '127.0.0.1')
  await new Promise((resolve) => setTimeout(resolve, waitMs))
  await new Promise<void>((resolve) => socket.close(() => resolve()))
  return replies
}
