/**
 * A loopback PandA data-port server that replays a recorded stream: it reads the client's options line, then sends
 * the recording's bytes (which begin with the box's `OK` reply) at full speed or at a given rate, and closes.
 * Recordings are byte-exact captures of what a PandA sent after the options line (test/fixtures/panda/).
 */
import net from 'node:net'
import { ErrorCode, FlyScanError } from '../errors.js'
import { listenTcp } from './listen.js'

export interface ReplayServerOptions {
  /** The recorded bytes, or a generator of chunks for streams too big to hold (the replay benchmark). */
  readonly source: Uint8Array | (() => Iterable<Uint8Array>)
  /** Bytes per second; undefined or 0 for full speed. */
  readonly rateBytesPerSec?: number
  readonly host?: string
  /** 0 (default) picks a free port. */
  readonly port?: number
  /** Longest options line accepted before the connection is dropped. */
  readonly maxOptionsLineBytes?: number
  /** Size of the writes at full speed. */
  readonly chunkBytes?: number
}

export interface ReplayConnection {
  readonly optionsLine: string
  readonly bytesSent: number
  /** process.hrtime (ns) when the options line arrived and sending began, and when the last byte was written. */
  readonly startedNs: number
  readonly finishedNs: number | undefined
}

export class PandaReplayServer {
  readonly #server: net.Server
  readonly #options: ReplayServerOptions
  readonly #sockets = new Set<net.Socket>()
  readonly connections: ReplayConnection[] = []
  #closed = false

  private constructor (options: ReplayServerOptions) {
    this.#options = options
    this.#server = net.createServer((socket) => this.#serve(socket))
  }

  static async start (options: ReplayServerOptions): Promise<PandaReplayServer> {
    const s = new PandaReplayServer(options)
    await listenTcp(s.#server, options.port ?? 0, options.host ?? '127.0.0.1')
    return s
  }

  get port (): number {
    const addr = this.#server.address()
    if (addr === null || typeof addr === 'string') throw new FlyScanError(ErrorCode.CONNECTION, 'replay server is not listening')
    return addr.port
  }

  get host (): string {
    return this.#options.host ?? '127.0.0.1'
  }

  #serve (socket: net.Socket): void {
    this.#sockets.add(socket)
    socket.on('close', () => this.#sockets.delete(socket))
    socket.on('error', () => {})
    socket.setNoDelay(true)
    const limit = this.#options.maxOptionsLineBytes ?? 4096
    let line = ''
    const onData = (chunk: Buffer): void => {
      line += chunk.toString('latin1')
      const nl = line.indexOf('\n')
      if (nl < 0) {
        if (line.length > limit) socket.destroy()
        return
      }
      socket.off('data', onData)
      // The box ignores anything the client sends after the options line; so do we.
      socket.on('data', () => {})
      const record = { optionsLine: line.slice(0, nl).replace(/\r$/, ''), bytesSent: 0, startedNs: Number(process.hrtime.bigint()), finishedNs: undefined as number | undefined }
      this.connections.push(record)
      this.#send(socket, record).catch(() => socket.destroy())
    }
    socket.on('data', onData)
  }

  async #send (socket: net.Socket, record: { bytesSent: number, finishedNs: number | undefined }): Promise<void> {
    const rate = this.#options.rateBytesPerSec ?? 0
    const chunkBytes = this.#options.chunkBytes ?? (rate > 0 ? Math.max(1, Math.min(65536, Math.floor(rate / 100))) : 1 << 20)
    const start = performance.now()
    const source = this.#options.source
    const chunks: Iterable<Uint8Array> = typeof source === 'function' ? source() : [source]
    try {
      for (const whole of chunks) {
        for (let off = 0; off < whole.length; off += chunkBytes) {
          if (socket.destroyed) return
          const piece = whole.subarray(off, Math.min(whole.length, off + chunkBytes))
          const ok = socket.write(piece)
          record.bytesSent += piece.length
          if (!ok) await waitDrainOrClose(socket)
          if (rate > 0) {
            const due = start + (record.bytesSent / rate) * 1000
            const wait = due - performance.now()
            if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait))
          }
        }
      }
      record.finishedNs = Number(process.hrtime.bigint())
      socket.end()
    } catch {
      socket.destroy()
    }
  }

  /** Stops listening and drops every connection. Idempotent. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const s of this.#sockets) s.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

function waitDrainOrClose (socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done)
      socket.off('close', done)
      resolve()
    }
    socket.once('drain', done)
    socket.once('close', done)
  })
}
