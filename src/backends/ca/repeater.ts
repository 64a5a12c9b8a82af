/**
 * A CA repeater, for hosts without EPICS base's caRepeater (Debian ships libca without it). libca clients register
 * with the repeater on EPICS_CA_REPEATER_PORT (default 5065) and get server beacons only through it; the beacons of
 * a new or restarted server are what make them search again at once instead of after their search back-off.
 *
 * As caRepeater does (modules/ca/src/client/repeater.cpp, R7.0.3.1):
 * - an empty datagram (what libca sends) or one starting with REPEATER_REGISTER registers its sender, if it is on
 *   this host; it gets REPEATER_CONFIRM (parameter 2: the client's address), and the REPEATER_REGISTER header is
 *   stripped from the datagram;
 * - every other datagram goes to the registered clients but its sender, a beacon with a zero address getting the
 *   address it came from;
 * - a client is alive while its UDP port is taken: every `checkIntervalMs` the repeater tries to bind each client's
 *   port and forgets the clients whose port it could bind (a UDP send to a closed port does not fail on loopback).
 *   Clients beyond `maxClients` are forgotten oldest first.
 *
 * Unlike caRepeater, it can close itself once no client has been registered for `idleCloseMs` (runCaRepeater, the
 * program libca starts, does).
 */
import dgram from 'node:dgram'
import { networkInterfaces } from 'node:os'
import { CA_DEFAULT_REPEATER_PORT, CaCommand, HEADER_SIZE, encodeMessage } from '../../parsers/index.js'
import { defaults } from '../../../config/index.js'

export interface CaRepeaterOptions {
  /** Default 127.0.0.1 (a private repeater, as tests use); caRepeater and runCaRepeater bind 0.0.0.0. */
  readonly host?: string
  /** Default 5065 (libca's EPICS_CA_REPEATER_PORT); 0 picks a free port. */
  readonly port?: number
  readonly maxClients?: number
  /** Close by itself once no client has been registered for this long; default: never. */
  readonly idleCloseMs?: number
  /** ...but not sooner than this after start. Default defaults.ca.repeaterStartGraceMs. */
  readonly startGraceMs?: number
  /** Period of the client check (and of the idle check). Default defaults.ca.repeaterCheckIntervalMs. */
  readonly checkIntervalMs?: number
  readonly log?: (line: string) => void
}

/** Why a repeater closed: close() was called, or it was idle for idleCloseMs. */
export type CaRepeaterEnd = 'closed' | 'idle'

interface Client {
  readonly address: string
  readonly port: number
}

function ipv4ToU32 (address: string): number {
  const parts = address.split('.').map(Number)
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return 0
  return parts.reduce((n, p) => n * 256 + p, 0) >>> 0
}

/** Loopback or one of this host's IPv4 addresses: only local clients may register (they are checked by port). */
function isLocalAddress (address: string): boolean {
  if (address.startsWith('127.')) return true
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.family === 'IPv4' && i.address === address) === true)
}

/**
 * Whether something on this host may hold UDP `port`, as caRepeater checks: binding it fails (EADDRINUSE, or any
 * other failure: a client that may be alive is kept).
 */
async function portInUse (port: number): Promise<boolean> {
  const probe = dgram.createSocket('udp4')
  return await new Promise<boolean>((resolve) => {
    probe.once('error', () => { probe.close(() => { resolve(true) }) })
    probe.bind(port, '0.0.0.0', () => { probe.close(() => { resolve(false) }) })
  })
}

export class CaRepeater {
  readonly #socket: dgram.Socket
  readonly #clients = new Map<string, Client>()
  readonly #maxClients: number
  readonly #log: (line: string) => void
  readonly #idleCloseMs: number | undefined
  readonly #startedAt = Date.now()
  readonly #startGraceMs: number
  readonly #timer: NodeJS.Timeout
  #lastClientAt = Date.now()
  #checking = false
  #closing: Promise<void> | undefined
  #end: CaRepeaterEnd = 'closed'
  #resolveEnded!: (end: CaRepeaterEnd) => void
  /** Resolves once the repeater has closed, with why. */
  readonly ended = new Promise<CaRepeaterEnd>((resolve) => { this.#resolveEnded = resolve })

  private constructor (socket: dgram.Socket, opts: CaRepeaterOptions) {
    this.#socket = socket
    this.#maxClients = opts.maxClients ?? 1024
    this.#log = opts.log ?? ((line) => process.stderr.write(`${line}\n`))
    this.#idleCloseMs = opts.idleCloseMs
    this.#startGraceMs = opts.startGraceMs ?? defaults.ca.repeaterStartGraceMs
    socket.on('message', (bytes, from) => { this.#onMessage(bytes, from) })
    socket.on('error', (err) => { this.#log(`ca-repeater: ${err.message}`) })
    this.#timer = setInterval(() => {
      this.#check().catch((err: unknown) => { this.#log(`ca-repeater: client check failed: ${err instanceof Error ? err.message : String(err)}`) })
    }, opts.checkIntervalMs ?? defaults.ca.repeaterCheckIntervalMs)
    // The socket keeps the process alive while the repeater is open; the check alone never does.
    this.#timer.unref()
  }

  /** Bind `host:port` (EADDRINUSE when another repeater holds it) and start repeating. */
  static async start (opts: CaRepeaterOptions = {}): Promise<CaRepeater> {
    const socket = dgram.createSocket('udp4')
    await new Promise<void>((resolve, reject) => {
      socket.once('error', (err) => {
        socket.close()
        reject(err)
      })
      socket.bind(opts.port ?? CA_DEFAULT_REPEATER_PORT, opts.host ?? '127.0.0.1', () => {
        socket.removeAllListeners('error')
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

  /** Stop repeating and close the socket. Idempotent. */
  async close (): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      clearInterval(this.#timer)
      this.#socket.close(() => {
        this.#resolveEnded(this.#end)
        resolve()
      })
    })
    return await this.#closing
  }

  /** Forget clients whose port is free again; close if idle for idleCloseMs. */
  async #check (): Promise<void> {
    if (this.#checking || this.#closing !== undefined) return
    this.#checking = true
    try {
      for (const [key, c] of [...this.#clients]) {
        if (!await portInUse(c.port)) this.#clients.delete(key)
      }
      const now = Date.now()
      if (this.#clients.size > 0) this.#lastClientAt = now
      else if (this.#idleCloseMs !== undefined && now - this.#startedAt >= this.#startGraceMs && now - this.#lastClientAt >= this.#idleCloseMs) {
        this.#end = 'idle'
        await this.close()
      }
    } finally {
      this.#checking = false
    }
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
    if (!isLocalAddress(from.address)) return
    const key = `${from.address}:${from.port}`
    this.#clients.delete(key)
    this.#clients.set(key, { address: from.address, port: from.port })
    this.#lastClientAt = Date.now()
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

export interface RunCaRepeaterOptions {
  /** Default: EPICS_CA_REPEATER_PORT, else 5065. */
  readonly port?: number
  /** Default 0.0.0.0, as caRepeater: beacons broadcast by IOCs on the subnet must reach it. */
  readonly host?: string
  /** Exit after this long without a client; 0: never. Default defaults.ca.repeaterIdleExitMs. */
  readonly idleExitMs?: number
  /** Resolves when the process is asked to stop. */
  readonly stopped?: Promise<void>
  readonly log?: (line: string) => void
}

/** How a repeater run ended: `busy` when another repeater already held the port (as caRepeater, not an error). */
export type CaRepeaterRun = CaRepeaterEnd | 'busy' | 'stopped'

/**
 * The caRepeater program: repeat on `host:port` until stopped or idle. When another repeater holds the port it
 * returns 'busy' at once, as caRepeater exits quietly then (two clients may start one each at the same time).
 */
export async function runCaRepeater (opts: RunCaRepeaterOptions = {}): Promise<CaRepeaterRun> {
  const port = opts.port ?? CA_DEFAULT_REPEATER_PORT
  const host = opts.host ?? '0.0.0.0'
  const log = opts.log ?? (() => {})
  const idleExitMs = opts.idleExitMs ?? defaults.ca.repeaterIdleExitMs
  let repeater: CaRepeater
  try {
    repeater = await CaRepeater.start({ host, port, idleCloseMs: idleExitMs > 0 ? idleExitMs : undefined, log })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      log(`ca-repeater: ${host}:${port} is in use (a CA repeater already runs there): exiting`)
      return 'busy'
    }
    throw err
  }
  log(`ca-repeater: listening on ${host}:${repeater.port}` +
    (idleExitMs > 0 ? `; exits after ${idleExitMs / 1000} s without a client` : ''))
  const end = await Promise.race([repeater.ended, (opts.stopped ?? new Promise<never>(() => {})).then(() => 'stopped' as const)])
  await repeater.close()
  log(`ca-repeater: ${end === 'idle' ? 'no client for a while' : 'stopped'}: exiting`)
  return end
}
