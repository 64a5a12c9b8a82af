/**
 * A minimal CA repeater for hosts without EPICS base's caRepeater (Debian ships libca without it). libca clients
 * register with the repeater on EPICS_CA_REPEATER_PORT (default 5065) and get server beacons only through it; the
 * beacons of a restarted server are what make them search again at once instead of after their search back-off.
 *
 * As caRepeater (modules/ca/src/client/repeater.cpp): an empty datagram (what libca sends) or one starting with
 * REPEATER_REGISTER registers its sender, which gets REPEATER_CONFIRM (parameter 2: the client's address) and is stripped from the datagram; every
 * other datagram is fanned out to the registered clients but its sender, a beacon with a zero address getting the
 * address it came from. Clients are forgotten oldest first beyond `maxClients` (a UDP send to a client that went
 * away does not fail on loopback, so they cannot be verified).
 */
import dgram from 'node:dgram'
import { CaCommand, HEADER_SIZE, encodeMessage } from '../../parsers/index.js'

export interface CaRepeaterOptions {
  /** Default 127.0.0.1. */
  readonly host?: string
  /** Default 5065 (libca's EPICS_CA_REPEATER_PORT); 0 picks a free port. */
  readonly port?: number
  readonly maxClients?: number
  readonly log?: (line: string) => void
}

function ipv4ToU32 (address: string): number {
  const parts = address.split('.').map(Number)
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return 0
  return parts.reduce((n, p) => n * 256 + p, 0) >>> 0
}

export class CaRepeater {
  readonly #socket: dgram.Socket
  readonly #clients = new Map<string, { address: string, port: number }>()
  readonly #maxClients: number
  readonly #log: (line: string) => void
  #closing: Promise<void> | undefined

  private constructor (socket: dgram.Socket, opts: CaRepeaterOptions) {
    this.#socket = socket
    this.#maxClients = opts.maxClients ?? 1024
    this.#log = opts.log ?? ((line) => process.stderr.write(`${line}\n`))
    socket.on('message', (bytes, from) => this.#onMessage(bytes, from))
    socket.on('error', (err) => this.#log(`ca-repeater: ${err.message}`))
  }

  static async start (opts: CaRepeaterOptions = {}): Promise<CaRepeater> {
    const socket = dgram.createSocket('udp4')
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(opts.port ?? 5065, opts.host ?? '127.0.0.1', () => {
        socket.off('error', reject)
        resolve()
      })
    })
    return new CaRepeater(socket, opts)
  }

  get port (): number {
    return this.#socket.address().port
  }

  get clientCount (): number {
    return this.#clients.size
  }

  async close (): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => this.#socket.close(() => resolve()))
    return await this.#closing
  }

  #onMessage (bytes: Buffer, from: dgram.RemoteInfo): void {
    if (this.#closing !== undefined) return
    if (bytes.length === 0) {
      // libca registers with an empty datagram (udpiiu.cpp, caRepeaterRegistrationMessage).
      this.#register(from)
      return
    }
    if (bytes.length < HEADER_SIZE) return
    let rest = bytes
    if (bytes.readUInt16BE(0) === CaCommand.REPEATER_REGISTER) {
      this.#register(from)
      rest = bytes.subarray(HEADER_SIZE)
      if (rest.length === 0) return
    } else if (bytes.readUInt16BE(0) === CaCommand.RSRV_IS_UP && bytes.readUInt32BE(12) === 0) {
      rest = Buffer.from(bytes)
      rest.writeUInt32BE(ipv4ToU32(from.address), 12)
    }
    for (const [key, c] of this.#clients) {
      if (key === `${from.address}:${from.port}`) continue
      this.#socket.send(rest, c.port, c.address, () => {})
    }
  }

  #register (from: dgram.RemoteInfo): void {
    const key = `${from.address}:${from.port}`
    this.#clients.delete(key)
    this.#clients.set(key, { address: from.address, port: from.port })
    while (this.#clients.size > this.#maxClients) {
      const oldest = this.#clients.keys().next().value
      if (oldest === undefined) break
      this.#clients.delete(oldest)
    }
    const confirm = encodeMessage({
      command: CaCommand.REPEATER_CONFIRM, payloadSize: 0, dataType: 0, dataCount: 0, parameter1: 0, parameter2: ipv4ToU32(from.address)
    })
    this.#socket.send(confirm, from.port, from.address, () => {})
  }
}
