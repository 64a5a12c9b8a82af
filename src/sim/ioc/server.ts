/**
 * The simulated IOC's Channel Access server (protocol 4.13): UDP name resolution, TCP circuits, gets, puts and
 * monitors of the PVs a PvProvider serves, and beacons. What it implements, what it leaves out and the sources are
 * in docs/ca-protocol.md; behaviour follows EPICS base's rsrv wherever the specification leaves a choice.
 *
 * Flow control, per client: a monitor update is written at once while the socket's queue is below
 * `maxQueuedBytesPerClient`; above it (or between EVENTS_OFF and EVENTS_ON) only the newest update of each
 * subscription is kept, and pending updates go out as the queue drains. Requests are not read while the queue is
 * above the limit either, so neither replies nor updates buffer without bound, and nothing ever blocks the loop.
 *
 * Large messages (frames, long waveforms) are built in buffers the circuit reuses once their write has completed:
 * an update is then one copy of the value into memory already mapped, header and payload in one write, with no
 * allocation per update.
 */
import net from 'node:net'
import dgram from 'node:dgram'
import {
  AccessRights, CA_MINOR_VERSION, CaCommand, CaFramer, DEFAULT_MAX_PAYLOAD_BYTES, DbrClass, EcaStatus,
  HEADER_SIZE, MAX_STRING_SIZE, SEQUENCE_NO_IS_VALID, SearchReply, caCommandName, convertValue, decodeDbr, decodePaddedString,
  elementSize, emptyValue, encodeDbr, encodeHeader, headerSize, isDbrType, padTo8, parseDatagram, splitDbrType,
  valueOffset, DbrBase, type CaHeader, type CaMessage, type DbrMetadata, type DbrValue
} from '../../parsers/index.js'
import type { PvProvider, PvState, ServedPv } from './pv.js'
import { listenTcp } from '../listen.js'

export interface CaServerOptions {
  readonly provider: PvProvider
  /** Address of both sockets. Default 127.0.0.1. */
  readonly host?: string
  /** TCP port of the circuits; 0 (default) picks a free one. */
  readonly tcpPort?: number
  /** UDP port searches are answered on; 0 (default) picks a free one. Real IOCs use 5064. */
  readonly udpPort?: number
  /** UDP port beacons go to, on the host address (the CA repeater's, default 5065); 0 sends none. */
  readonly beaconPort?: number
  /** Longest interval between beacons: they start 20 ms apart and double up to this. Default 15000 (rsrv's). */
  readonly beaconMaxPeriodMs?: number
  /** One line per event worth a human's attention (a dropped client, a failed put). Default: stderr. */
  readonly log?: (line: string) => void
  /** Bytes queued on a client's socket above which monitor updates are coalesced. Default 16 MiB. */
  readonly maxQueuedBytesPerClient?: number
  /** Largest request payload a client may send before it is dropped. Default 128 MiB. */
  readonly maxRequestBytes?: number
}

/** Counters since start, for tests and benchmarks. */
export interface CaServerStats {
  readonly clientsAccepted: number
  readonly clientsDropped: number
  readonly searchesAnswered: number
  readonly updatesSent: number
  /** Monitor updates replaced by a newer one before they were sent (flow control or EVENTS_OFF). */
  readonly updatesCoalesced: number
  readonly beaconsSent: number
}

export const DEFAULT_MAX_QUEUED_BYTES_PER_CLIENT = 16 * 1024 * 1024
const DEFAULT_BEACON_MAX_PERIOD_MS = 15_000
const FIRST_BEACON_PERIOD_MS = 20
/** Largest datagram of search replies (rsrv's MAX_UDP_SEND). */
const MAX_UDP_SEND = 1024
/** How long a dropped client's socket may take to close after end() before it is destroyed. */
const DROP_GRACE_MS = 1000
/** The largest DBR request type of db_access.h (DBR_CLASS_NAME); 35..38 are valid requests this server refuses. */
const LAST_BUFFER_TYPE = 38
const MAX_PRIORITY = 99
/** Bytes of EVENT_ADD's payload: low, high, to (float32 each), mask (u16), pad (u16). */
const EVENT_ADD_PAYLOAD = 16
/**
 * Messages of at least this many bytes go in buffers a circuit reuses. A fresh buffer of a few hundred KB per frame
 * cost more than copying the frame into it: the pages are mapped anew and garbage collection runs often.
 */
const REUSED_BUFFER_MIN_BYTES = 64 * 1024

interface Stats {
  clientsAccepted: number
  clientsDropped: number
  searchesAnswered: number
  updatesSent: number
  updatesCoalesced: number
  beaconsSent: number
}

/** What a circuit needs from its server. */
interface ServerContext {
  readonly provider: PvProvider
  readonly tcpPort: number
  readonly maxQueuedBytes: number
  readonly maxRequestBytes: number
  readonly log: (line: string) => void
  readonly stats: Stats
  find: (name: string) => ServedPv | undefined
}

function defaultLog (line: string): void {
  process.stderr.write(`${line}\n`)
}

/** A header-only message (or one with a small payload, padded to 8). */
function message (command: number, dataType: number, dataCount: number, parameter1: number, parameter2: number, payload?: Uint8Array): Buffer {
  const payloadSize = payload === undefined ? 0 : padTo8(payload.length)
  const h: CaHeader = { command, payloadSize, dataType, dataCount, parameter1, parameter2 }
  const size = headerSize(h)
  const buf = Buffer.alloc(size + payloadSize)
  encodeHeader(h, buf, 0)
  if (payload !== undefined) buf.set(payload, size)
  return buf
}

/** The reply to a SEARCH for a name this server has (the same shape over UDP and TCP but for the payload). */
function searchReply (tcpPort: number, searchId: number, withVersion: boolean): Buffer {
  const minor = new Uint8Array(2)
  new DataView(minor.buffer).setUint16(0, CA_MINOR_VERSION)
  // parameter1 0xFFFFFFFF: "use the address this reply came from" (libca's udpiiu.cpp).
  return message(CaCommand.SEARCH, tcpPort, 0, 0xffffffff, searchId, withVersion ? minor : undefined)
}

/**
 * A subscription update that failed (conversion, bad type or count): the status in parameter1 and 8 zero bytes of
 * payload. libca ignores an EVENT_ADD without payload (cac.cpp takes it for an old-style cancel confirmation), so a
 * failure must carry some bytes to reach the client's exception handler; libca does not read them.
 */
function failedUpdate (type: number, count: number, status: number, subscriptionId: number): Buffer {
  return message(CaCommand.EVENT_ADD, type, count, status, subscriptionId, new Uint8Array(8))
}

/** Does a request of `type` (a DBR_ number) on `pv` need the PV's metadata to be encoded or converted? */
function needsMetadata (type: number, pv: ServedPv): boolean {
  const { base, cls } = splitDbrType(type)
  if (cls === DbrClass.GR || cls === DbrClass.CTRL) return true
  return (base === DbrBase.STRING && pv.base === DbrBase.ENUM) || (base === DbrBase.ENUM && pv.base === DbrBase.STRING)
}

/**
 * A GET or monitor reply carrying `state` as `type` with `count` elements (0: the current count), in a buffer from
 * `allocate`. For a value of the requested base that is one copy (byte-swapped in bulk to big-endian); the header
 * and payload share the buffer so that one socket.write sends both. Throws when the value does not convert (the
 * caller answers ECA_GETFAIL).
 */
function valueMessage (command: number, type: number, count: number, pv: ServedPv, state: PvState, parameter1: number, parameter2: number,
  allocate: (size: number) => Buffer): Buffer {
  const { base, cls } = splitDbrType(type)
  const n = count === 0 ? state.value.length : count
  const offset = valueOffset(base, cls)
  const dataBytes = offset + n * elementSize(base)
  const payloadSize = padTo8(dataBytes)
  const h: CaHeader = { command, payloadSize, dataType: type, dataCount: n, parameter1, parameter2 }
  const size = headerSize(h)
  const buf = allocate(size + payloadSize)
  encodeHeader(h, buf, 0)
  const metadata: DbrMetadata | undefined = needsMetadata(type, pv) ? pv.metadata() : undefined
  const payload = { value: state.value, status: state.status, severity: state.severity, stamp: state.stamp, metadata }
  if (n > 0) {
    encodeDbr(type, n, payload, buf, size, false)
  } else {
    // No elements: only the structure before the value (rsrv's dbr_size_n(type, 0)).
    const scratch = new Uint8Array(offset + elementSize(base))
    encodeDbr(type, 1, { ...payload, value: emptyValue(base, 1) }, scratch, 0, false)
    buf.set(scratch.subarray(0, offset), size)
  }
  buf.fill(0, size + dataBytes)
  return buf
}

interface Channel {
  readonly cid: number
  readonly sid: number
  readonly pv: ServedPv
  readonly subscriptions: Set<Subscription>
}

interface Subscription {
  readonly id: number
  readonly channel: Channel
  readonly type: number
  readonly count: number
  readonly mask: number
  stop: () => void
  cancelled: boolean
}

/** One TCP client. */
class Circuit {
  readonly #ctx: ServerContext
  readonly #socket: net.Socket
  readonly #framer: CaFramer
  readonly #peer: string
  readonly #onGone: (c: Circuit) => void
  readonly #channels = new Map<number, Channel>()
  readonly #subscriptions = new Map<number, Subscription>()
  /** Newest unsent update per subscription (Map order: oldest first). */
  readonly #pending = new Map<Subscription, PvState>()
  /** Requests parsed but not yet handled because the socket's queue was full. */
  #backlog: CaMessage[] = []
  #backlogAt = 0
  /** Chunks that arrived while the backlog was not empty. */
  readonly #held: Buffer[] = []
  /**
   * Buffers of large messages whose write completed, for the next ones. Up to maxQueuedBytes are queued, and the
   * writes the kernel took at once hand their buffers back only on the next tick, so up to twice that is kept.
   */
  readonly #spare: ArrayBuffer[] = []
  #spareBytes = 0
  readonly #allocate = (size: number): Buffer => this.#takeBuffer(size)
  #nextSid = 1
  #eventsOn = true
  #flushScheduled = false
  #gone = false
  #userName = ''
  #hostName = ''
  #dropTimer: NodeJS.Timeout | undefined

  constructor (ctx: ServerContext, socket: net.Socket, onGone: (c: Circuit) => void) {
    this.#ctx = ctx
    this.#socket = socket
    this.#onGone = onGone
    this.#peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`
    this.#framer = new CaFramer({ maxPayloadBytes: ctx.maxRequestBytes, requirePadding: true, source: `client ${this.#peer}` })
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    socket.on('drain', () => this.#onDrain())
    socket.on('error', () => {})
    // libca half-closes a circuit once its last channel is cleared. Close at once, as rsrv does, rather than first
    // sending what is still queued for channels it no longer has: until libca sees the circuit close, a search
    // reply for a new channel on this server binds that channel to the closing circuit (cac.cpp,
    // transferChanToVirtCircuit), and the channel then waits 10 s for libca's next search. A client that
    // half-closes with channels still open gets what is queued, then the close (Node's default).
    socket.on('end', () => { if (this.#channels.size === 0) this.destroy() })
    socket.on('close', () => this.#cleanup())
    // rsrv greets every circuit with its version before the client says anything.
    socket.write(message(CaCommand.VERSION, 0, CA_MINOR_VERSION, 0, 0))
  }

  /** `client 127.0.0.1:40312 (jdoe@xf31id1)` */
  get name (): string {
    const who = this.#userName !== '' || this.#hostName !== '' ? ` (${this.#userName}@${this.#hostName})` : ''
    return `client ${this.#peer}${who}`
  }

  destroy (): void {
    this.#socket.destroy()
    this.#cleanup()
  }

  #onData (chunk: Buffer): void {
    if (this.#gone) return
    if (this.#backlogAt < this.#backlog.length) {
      this.#held.push(chunk)
      return
    }
    this.#parse(chunk)
    this.#handleBacklog()
  }

  #parse (chunk: Buffer): void {
    try {
      this.#backlog = this.#framer.push(chunk)
      this.#backlogAt = 0
    } catch (err) {
      this.#drop((err as Error).message)
    }
  }

  /** Handle parsed requests while the socket's queue allows; pause reading when it does not. */
  #handleBacklog (): void {
    const socket = this.#socket
    socket.cork()
    try {
      for (;;) {
        while (this.#backlogAt < this.#backlog.length) {
          if (this.#gone) return
          if (socket.writableLength >= this.#ctx.maxQueuedBytes) {
            socket.pause()
            return
          }
          const msg = this.#backlog[this.#backlogAt++] as CaMessage
          this.#handle(msg)
        }
        const next = this.#held.shift()
        if (next === undefined || this.#gone) break
        this.#parse(next)
      }
      this.#backlog = []
      this.#backlogAt = 0
      if (socket.isPaused()) socket.resume()
    } finally {
      if (!socket.destroyed) socket.uncork()
    }
  }

  #onDrain (): void {
    if (this.#gone) return
    this.#handleBacklog()
    this.#flush()
  }

  #write (buf: Uint8Array): void {
    if (!this.#gone) this.#socket.write(buf)
  }

  /** Write a message from #takeBuffer; a reused buffer comes back to the circuit when the write has completed. */
  #writeTaken (buf: Buffer): void {
    if (this.#gone) return
    if (buf.length < REUSED_BUFFER_MIN_BYTES) {
      this.#socket.write(buf)
      return
    }
    const whole = buf.buffer as ArrayBuffer
    this.#socket.write(buf, (err) => { if (err === null || err === undefined) this.#giveBack(whole) })
  }

  /** A buffer of `size` bytes: a spare one of at most twice that size if there is one, else a new one. */
  #takeBuffer (size: number): Buffer {
    if (size < REUSED_BUFFER_MIN_BYTES) return Buffer.allocUnsafe(size)
    const spare = this.#spare
    for (let i = spare.length - 1; i >= 0; i--) {
      const ab = spare[i] as ArrayBuffer
      if (ab.byteLength >= size && ab.byteLength <= 2 * size) {
        spare[i] = spare[spare.length - 1] as ArrayBuffer
        spare.pop()
        this.#spareBytes -= ab.byteLength
        return Buffer.from(ab, 0, size)
      }
    }
    return Buffer.allocUnsafeSlow(size)
  }

  #giveBack (ab: ArrayBuffer): void {
    if (this.#gone || this.#spareBytes + ab.byteLength > 2 * this.#ctx.maxQueuedBytes) return
    this.#spare.push(ab)
    this.#spareBytes += ab.byteLength
  }

  #handle (msg: CaMessage): void {
    const h = msg.header
    switch (h.command) {
      case CaCommand.VERSION:
        if (h.dataType > MAX_PRIORITY) this.#drop(`VERSION at stream offset ${msg.offset} asks for priority ${h.dataType}, above ${MAX_PRIORITY}`, msg)
        return
      case CaCommand.EVENT_ADD: this.#eventAdd(msg); return
      case CaCommand.EVENT_CANCEL: this.#eventCancel(msg); return
      case CaCommand.READ:
      case CaCommand.READ_NOTIFY: this.#read(msg); return
      case CaCommand.WRITE:
      case CaCommand.WRITE_NOTIFY: this.#put(msg); return
      case CaCommand.SEARCH: this.#search(msg); return
      case CaCommand.EVENTS_OFF: this.#eventsOn = false; return
      case CaCommand.EVENTS_ON:
        this.#eventsOn = true
        this.#flush()
        return
      case CaCommand.READ_SYNC:
      case CaCommand.ECHO:
        this.#write(message(h.command, h.dataType, h.dataCount, h.parameter1, h.parameter2, h.command === CaCommand.ECHO && msg.payload.length > 0 ? msg.payload : undefined))
        return
      case CaCommand.CLEAR_CHANNEL: this.#clearChannel(msg); return
      case CaCommand.CREATE_CHAN: this.#createChannel(msg); return
      case CaCommand.CLIENT_NAME: this.#userName = decodePaddedString(msg.payload).slice(0, 256); return
      case CaCommand.HOST_NAME: this.#hostName = decodePaddedString(msg.payload).slice(0, 256); return
      default:
        this.#drop(`${caCommandName(h.command)} at stream offset ${msg.offset} is not a request a client may send`, msg)
    }
  }

  /** The channel a request names by its sid (parameter1), or undefined after an ERROR reply. */
  #channel (msg: CaMessage): Channel | undefined {
    const ch = this.#channels.get(msg.header.parameter1)
    if (ch === undefined) {
      this.#ctx.log(`ca-server: ${this.name}: ${caCommandName(msg.header.command)} at stream offset ${msg.offset} names unknown channel sid ${msg.header.parameter1}`)
      this.#sendError(msg, EcaStatus.BADCHID, 0xffffffff, `no channel with sid ${msg.header.parameter1}`)
    }
    return ch
  }

  /** Checks the DBR type of a request: true when usable; drops the client for a type that does not exist. */
  #typeOk (msg: CaMessage): boolean | 'refused' {
    const type = msg.header.dataType
    if (type > LAST_BUFFER_TYPE) {
      this.#drop(`${caCommandName(msg.header.command)} at stream offset ${msg.offset} names DBR type ${type}, which does not exist`, msg)
      return false
    }
    return isDbrType(type) ? true : 'refused'
  }

  #createChannel (msg: CaMessage): void {
    const h = msg.header
    const name = decodePaddedString(msg.payload)
    if (name === '') {
      this.#ctx.log(`ca-server: ${this.name}: CREATE_CHAN at stream offset ${msg.offset} with an empty name ignored`)
      return
    }
    const pv = this.#ctx.find(name)
    if (pv === undefined) {
      this.#write(message(CaCommand.CREATE_CH_FAIL, 0, 0, h.parameter1, 0))
      return
    }
    const sid = this.#nextSid++
    this.#channels.set(sid, { cid: h.parameter1, sid, pv, subscriptions: new Set() })
    const rights = AccessRights.READ | (pv.writable ? AccessRights.WRITE : 0)
    this.#write(message(CaCommand.ACCESS_RIGHTS, 0, 0, h.parameter1, rights))
    // The element count is the PV's capacity (NELM), as rsrv's dbChannelFinalElements; count-0 requests then get the current length.
    this.#write(message(CaCommand.CREATE_CHAN, pv.base, pv.maxCount, h.parameter1, sid))
  }

  #clearChannel (msg: CaMessage): void {
    const ch = this.#channel(msg)
    if (ch === undefined) return
    for (const sub of ch.subscriptions) this.#cancel(sub)
    this.#channels.delete(ch.sid)
    const h = msg.header
    this.#write(message(CaCommand.CLEAR_CHANNEL, h.dataType, h.dataCount, h.parameter1, h.parameter2))
  }

  #search (msg: CaMessage): void {
    const h = msg.header
    const name = decodePaddedString(msg.payload)
    if (h.dataCount < 4 || name === '') return
    if (this.#ctx.find(name) !== undefined) {
      this.#ctx.stats.searchesAnswered++
      this.#write(searchReply(this.#ctx.tcpPort, h.parameter2, false))
    } else if (h.dataType === SearchReply.DO_REPLY) {
      this.#write(message(CaCommand.NOT_FOUND, h.dataType, h.dataCount, h.parameter1, h.parameter2))
    }
  }

  /** READ_NOTIFY (status in parameter1) and the old READ (cid in parameter1, failures as ERROR messages). */
  #read (msg: CaMessage): void {
    const h = msg.header
    const notify = h.command === CaCommand.READ_NOTIFY
    const typeOk = this.#typeOk(msg)
    if (typeOk === false) return
    const ch = this.#channel(msg)
    if (ch === undefined) return
    const fail = (status: number, text: string): void => {
      if (notify) this.#write(message(h.command, h.dataType, h.dataCount, status, h.parameter2))
      else this.#sendError(msg, status, ch.cid, text)
    }
    if (typeOk === 'refused') { fail(EcaStatus.BADTYPE, `DBR type ${h.dataType} is not served`); return }
    if (h.dataCount > ch.pv.maxCount) { fail(EcaStatus.BADCOUNT, `${ch.pv.name} holds ${ch.pv.maxCount} elements, ${h.dataCount} asked`); return }
    let reply: Buffer
    try {
      reply = valueMessage(h.command, h.dataType, h.dataCount, ch.pv, ch.pv.get(), notify ? EcaStatus.NORMAL : ch.cid, h.parameter2, this.#allocate)
    } catch (err) {
      this.#ctx.log(`ca-server: ${this.name}: get of ${ch.pv.name} as DBR type ${h.dataType} failed: ${(err as Error).message}`)
      fail(EcaStatus.GETFAIL, (err as Error).message)
      return
    }
    this.#writeTaken(reply)
  }

  /** WRITE and WRITE_NOTIFY: convert to the PV's base, put(), and for WRITE_NOTIFY reply when put() settles. */
  #put (msg: CaMessage): void {
    const h = msg.header
    const notify = h.command === CaCommand.WRITE_NOTIFY
    const typeOk = this.#typeOk(msg)
    if (typeOk === false) return
    const ch = this.#channel(msg)
    if (ch === undefined) return
    const pv = ch.pv
    const reply = (status: number, text: string): void => {
      if (notify) {
        if (!this.#gone && this.#channels.get(ch.sid) === ch) this.#write(message(h.command, h.dataType, h.dataCount, status, h.parameter2))
      } else if (status !== EcaStatus.NORMAL) {
        this.#sendError(msg, status, ch.cid, text)
      }
    }
    if (typeOk === 'refused') { reply(EcaStatus.BADTYPE, `DBR type ${h.dataType} cannot be written`); return }
    if (!pv.writable) { reply(EcaStatus.NOWTACCESS, `${pv.name} is read-only`); return }
    const { base, cls } = splitDbrType(h.dataType)
    let payload = msg.payload
    if (h.dataType === DbrBase.STRING && h.dataCount === 1 && payload.length < MAX_STRING_SIZE) {
      // libca sends one DBR_STRING as its characters and NUL only, padded to 8, not as 40 bytes (comQueSend.cpp).
      payload = new Uint8Array(MAX_STRING_SIZE)
      payload.set(msg.payload)
    }
    const need = valueOffset(base, cls) + h.dataCount * elementSize(base)
    if (payload.length < need) {
      this.#drop(`${caCommandName(h.command)} at stream offset ${msg.offset} carries ${msg.payload.length} bytes, ` +
        `${need} needed for ${h.dataCount} element(s) of DBR type ${h.dataType}`, msg)
      return
    }
    // rsrv's dbPut stores at most NELM elements of a longer write.
    const n = Math.min(h.dataCount, pv.maxCount)
    let value: DbrValue
    try {
      const sent = n === 0 ? emptyValue(base, 0) : decodeDbr(h.dataType, n, payload, false).value
      value = convertValue(sent, pv.base, needsMetadata(h.dataType, pv) ? pv.metadata().enumStrings : undefined)
    } catch (err) {
      this.#ctx.log(`ca-server: ${this.name}: put to ${pv.name} failed: ${(err as Error).message}`)
      reply(EcaStatus.PUTFAIL, (err as Error).message)
      return
    }
    let done: Promise<void>
    try {
      done = pv.put(value)
    } catch (err) {
      done = Promise.reject(err)
    }
    done.then(() => reply(EcaStatus.NORMAL, ''), (err: unknown) => {
      const text = err instanceof Error ? err.message : String(err)
      this.#ctx.log(`ca-server: ${this.name}: put to ${pv.name} failed: ${text}`)
      reply(EcaStatus.PUTFAIL, text)
    })
  }

  #eventAdd (msg: CaMessage): void {
    const h = msg.header
    const typeOk = this.#typeOk(msg)
    if (typeOk === false) return
    if (msg.payload.length < EVENT_ADD_PAYLOAD) {
      this.#drop(`EVENT_ADD at stream offset ${msg.offset} carries ${msg.payload.length} bytes, ${EVENT_ADD_PAYLOAD} needed`, msg)
      return
    }
    const ch = this.#channel(msg)
    if (ch === undefined) return
    const refuse = (status: number): void => { this.#write(failedUpdate(h.dataType, h.dataCount, status, h.parameter2)) }
    if (typeOk === 'refused') { refuse(EcaStatus.BADTYPE); return }
    if (h.dataCount > ch.pv.maxCount) { refuse(EcaStatus.BADCOUNT); return }
    const mask = new DataView(msg.payload.buffer, msg.payload.byteOffset, EVENT_ADD_PAYLOAD).getUint16(12)
    const old = this.#subscriptions.get(h.parameter2)
    if (old !== undefined) this.#cancel(old)
    const sub: Subscription = { id: h.parameter2, channel: ch, type: h.dataType, count: h.dataCount, mask, stop: () => {}, cancelled: false }
    this.#subscriptions.set(sub.id, sub)
    ch.subscriptions.add(sub)
    try {
      sub.stop = ch.pv.subscribe((state, changed) => {
        if ((changed & sub.mask) !== 0) this.#queueUpdate(sub, state)
      })
      // Every subscription starts with the current value, whatever its mask.
      this.#queueUpdate(sub, ch.pv.get())
    } catch (err) {
      this.#ctx.log(`ca-server: ${this.name}: subscription to ${ch.pv.name} failed: ${(err as Error).message}`)
      this.#cancel(sub)
      refuse(EcaStatus.GETFAIL)
    }
  }

  #eventCancel (msg: CaMessage): void {
    const h = msg.header
    const ch = this.#channel(msg)
    if (ch === undefined) return
    const sub = this.#subscriptions.get(h.parameter2)
    if (sub === undefined || sub.channel !== ch) {
      this.#sendError(msg, EcaStatus.BADMONID, ch.cid, `no subscription ${h.parameter2} on ${ch.pv.name}`)
      return
    }
    this.#cancel(sub)
    // The final reply: EVENT_ADD with no payload and a count of 0.
    this.#write(message(CaCommand.EVENT_ADD, sub.type, 0, ch.sid, sub.id))
  }

  #cancel (sub: Subscription): void {
    if (sub.cancelled) return
    sub.cancelled = true
    try {
      sub.stop()
    } catch (err) {
      this.#ctx.log(`ca-server: ${this.name}: unsubscribing from ${sub.channel.pv.name} threw: ${(err as Error).message}`)
    }
    sub.channel.subscriptions.delete(sub)
    if (this.#subscriptions.get(sub.id) === sub) this.#subscriptions.delete(sub.id)
    this.#pending.delete(sub)
  }

  #queueUpdate (sub: Subscription, state: PvState): void {
    if (sub.cancelled || this.#gone) return
    if (!this.#eventsOn || this.#pending.size > 0 || this.#socket.writableLength >= this.#ctx.maxQueuedBytes) {
      if (this.#pending.has(sub)) this.#ctx.stats.updatesCoalesced++
      this.#pending.set(sub, state)
      this.#scheduleFlush()
      return
    }
    this.#sendUpdate(sub, state)
  }

  #sendUpdate (sub: Subscription, state: PvState): void {
    const pv = sub.channel.pv
    let buf: Buffer
    try {
      buf = valueMessage(CaCommand.EVENT_ADD, sub.type, sub.count, pv, state, EcaStatus.NORMAL, sub.id, this.#allocate)
    } catch (err) {
      this.#ctx.log(`ca-server: ${this.name}: update of ${pv.name} as DBR type ${sub.type} failed: ${(err as Error).message}`)
      buf = failedUpdate(sub.type, sub.count, EcaStatus.GETFAIL, sub.id)
    }
    this.#ctx.stats.updatesSent++
    this.#writeTaken(buf)
  }

  /** Send pending updates, oldest first, while the queue allows. */
  #flush (): void {
    if (this.#gone || !this.#eventsOn) return
    const limit = this.#ctx.maxQueuedBytes
    for (const [sub, state] of this.#pending) {
      if (this.#socket.writableLength >= limit) break
      this.#pending.delete(sub)
      this.#sendUpdate(sub, state)
    }
    this.#scheduleFlush()
  }

  /**
   * 'drain' flushes after a write that filled the socket. When the queue is over our limit but under the socket's
   * own high-water mark no 'drain' will come, so try again on the next turn of the loop.
   */
  #scheduleFlush (): void {
    if (this.#flushScheduled || this.#pending.size === 0 || !this.#eventsOn || this.#socket.writableNeedDrain) return
    this.#flushScheduled = true
    setImmediate(() => {
      this.#flushScheduled = false
      this.#flush()
    })
  }

  /** CA_PROTO_ERROR: the request's header, then a message, with the channel's cid and an ECA_ status. */
  #sendError (req: CaMessage, status: number, cid: number, text: string): void {
    const reqHeader = new Uint8Array(headerSize(req.header))
    encodeHeader(req.header, reqHeader, 0)
    const textBytes = new TextEncoder().encode(text.slice(0, 400))
    const payload = new Uint8Array(reqHeader.length + textBytes.length + 1)
    payload.set(reqHeader)
    payload.set(textBytes, reqHeader.length)
    this.#write(message(CaCommand.ERROR, 0, 0, cid, status, payload))
  }

  /** Log one line, tell the client why (when the request is known), close, and forget its channels now. */
  #drop (why: string, msg?: CaMessage): void {
    if (this.#gone) return
    this.#ctx.log(`ca-server: dropped ${this.name}: ${why}`)
    this.#ctx.stats.clientsDropped++
    if (msg !== undefined) this.#sendError(msg, EcaStatus.INTERNAL, 0xffffffff, why)
    this.#socket.end()
    this.#dropTimer = setTimeout(() => this.#socket.destroy(), DROP_GRACE_MS)
    this.#dropTimer.unref()
    this.#cleanup()
  }

  #cleanup (): void {
    if (this.#gone) return
    this.#gone = true
    for (const sub of [...this.#subscriptions.values()]) this.#cancel(sub)
    this.#channels.clear()
    this.#pending.clear()
    this.#spare.length = 0
    this.#spareBytes = 0
    this.#backlog = []
    this.#held.length = 0
    this.#socket.once('close', () => clearTimeout(this.#dropTimer))
    if (this.#socket.destroyed) clearTimeout(this.#dropTimer)
    this.#onGone(this)
  }
}

export class CaServer {
  readonly host: string
  readonly #tcp: net.Server
  readonly #udp: dgram.Socket
  readonly #beacon: dgram.Socket | undefined
  readonly #ctx: ServerContext
  readonly #circuits = new Set<Circuit>()
  readonly #beaconPort: number
  readonly #beaconMaxPeriodMs: number
  #beaconTimer: NodeJS.Timeout | undefined
  #beaconCounter = 0
  #beaconError = ''
  #closing: Promise<void> | undefined

  private constructor (opts: CaServerOptions, tcp: net.Server, udp: dgram.Socket, beacon: dgram.Socket | undefined) {
    this.host = opts.host ?? '127.0.0.1'
    this.#tcp = tcp
    this.#udp = udp
    this.#beacon = beacon
    this.#beaconPort = opts.beaconPort ?? 5065
    this.#beaconMaxPeriodMs = opts.beaconMaxPeriodMs ?? DEFAULT_BEACON_MAX_PERIOD_MS
    const log = opts.log ?? defaultLog
    const provider = opts.provider
    this.#ctx = {
      provider,
      tcpPort: (tcp.address() as net.AddressInfo).port,
      maxQueuedBytes: opts.maxQueuedBytesPerClient ?? DEFAULT_MAX_QUEUED_BYTES_PER_CLIENT,
      maxRequestBytes: opts.maxRequestBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
      log,
      stats: { clientsAccepted: 0, clientsDropped: 0, searchesAnswered: 0, updatesSent: 0, updatesCoalesced: 0, beaconsSent: 0 },
      find: (name) => {
        try {
          return provider.find(name)
        } catch (err) {
          log(`ca-server: looking up "${name}" threw: ${(err as Error).message}`)
          return undefined
        }
      }
    }
    tcp.on('connection', (socket) => this.#accept(socket))
    tcp.on('error', (err) => log(`ca-server: TCP server error: ${err.message}`))
    udp.on('message', (bytes, from) => this.#onDatagram(bytes, from))
    udp.on('error', (err) => log(`ca-server: UDP socket error: ${err.message}`))
  }

  /** Listen on TCP and UDP (and start beacons); resolves once both sockets are bound. */
  static async start (opts: CaServerOptions): Promise<CaServer> {
    const host = opts.host ?? '127.0.0.1'
    const tcp = net.createServer()
    await listenTcp(tcp, opts.tcpPort ?? 0, host)
    const sockets: dgram.Socket[] = []
    try {
      const udp = await bindUdp(host, opts.udpPort ?? 0)
      sockets.push(udp)
      const beacon = (opts.beaconPort ?? 5065) === 0 ? undefined : await bindUdp(host, 0)
      const server = new CaServer(opts, tcp, udp, beacon)
      server.#startBeacons()
      return server
    } catch (err) {
      for (const s of sockets) s.close()
      await new Promise<void>((resolve) => tcp.close(() => resolve()))
      throw err
    }
  }

  get tcpPort (): number {
    return this.#ctx.tcpPort
  }

  get udpPort (): number {
    return this.#udp.address().port
  }

  /** TCP clients connected now (dropped ones no longer count). */
  get clientCount (): number {
    return this.#circuits.size
  }

  get stats (): CaServerStats {
    return { ...this.#ctx.stats }
  }

  /** Stop beacons, close both sockets and every client. Idempotent; resolves when everything is closed. */
  async close (): Promise<void> {
    this.#closing ??= this.#close()
    return await this.#closing
  }

  async #close (): Promise<void> {
    clearTimeout(this.#beaconTimer)
    const closed = new Promise<void>((resolve) => this.#tcp.close(() => resolve()))
    for (const c of [...this.#circuits]) c.destroy()
    await Promise.all([
      closed,
      new Promise<void>((resolve) => this.#udp.close(() => resolve())),
      this.#beacon === undefined ? undefined : new Promise<void>((resolve) => this.#beacon?.close(() => resolve()))
    ])
  }

  #accept (socket: net.Socket): void {
    if (this.#closing !== undefined) {
      socket.destroy()
      return
    }
    this.#ctx.stats.clientsAccepted++
    const circuit = new Circuit(this.#ctx, socket, (c) => this.#circuits.delete(c))
    this.#circuits.add(circuit)
  }

  /** Answer the searches of one datagram: replies follow a VERSION message carrying the client's sequence number. */
  #onDatagram (bytes: Buffer, from: dgram.RemoteInfo): void {
    const source = `datagram from ${from.address}:${from.port}`
    let messages: CaMessage[]
    try {
      messages = parseDatagram(bytes, { source, maxPayloadBytes: 0xffff + 16 })
    } catch (err) {
      this.#ctx.log(`ca-server: ignored ${(err as Error).message}`)
      return
    }
    let minor = 0
    let sequence = 0
    const replies: Buffer[] = []
    for (const msg of messages) {
      const h = msg.header
      if (h.command === CaCommand.VERSION) {
        minor = h.dataCount
        sequence = h.parameter1
      } else if (h.command === CaCommand.SEARCH) {
        const name = decodePaddedString(msg.payload)
        // The count field carries the client's minor version; rsrv ignores clients before 4.4.
        if (h.dataCount < 4 || name === '') continue
        if (this.#ctx.find(name) !== undefined) {
          this.#ctx.stats.searchesAnswered++
          replies.push(searchReply(this.tcpPort, h.parameter2, true))
        } else if (h.dataType === SearchReply.DO_REPLY) {
          replies.push(message(CaCommand.NOT_FOUND, h.dataType, h.dataCount, h.parameter1, h.parameter2))
        }
      } else {
        this.#ctx.log(`ca-server: ignored the rest of a ${source}: ${caCommandName(h.command)} at offset ${msg.offset} is not a UDP request`)
        break
      }
    }
    if (replies.length === 0) return
    // Clients from 4.11 on match replies to requests by the sequence number in a leading VERSION message.
    const version = minor >= 11 ? message(CaCommand.VERSION, SEQUENCE_NO_IS_VALID, CA_MINOR_VERSION, sequence, 0) : undefined
    let datagram: Buffer[] = []
    let size = 0
    const send = (): void => {
      const parts = version === undefined ? datagram : [version, ...datagram]
      this.#udp.send(Buffer.concat(parts), from.port, from.address, (err) => {
        if (err !== null && err !== undefined) this.#ctx.log(`ca-server: search reply to ${from.address}:${from.port} failed: ${err.message}`)
      })
      datagram = []
      size = 0
    }
    for (const r of replies) {
      if (size > 0 && size + r.length + HEADER_SIZE > MAX_UDP_SEND) send()
      datagram.push(r)
      size += r.length
    }
    send()
  }

  /** RSRV_IS_UP to the repeater port every 20 ms at first, doubling to the maximum period; best effort. */
  #startBeacons (): void {
    const socket = this.#beacon
    if (socket === undefined) return
    socket.on('error', (err) => this.#beaconFailed(err))
    let period = FIRST_BEACON_PERIOD_MS
    const tick = (): void => {
      if (this.#closing !== undefined) return
      // data_type: our minor version; count: our TCP port; parameter1: beacon number; parameter2: 0 (the
      // receiver takes the address the datagram came from), as rsrv's online_notify.c.
      const beacon = message(CaCommand.RSRV_IS_UP, CA_MINOR_VERSION, this.tcpPort, this.#beaconCounter, 0)
      this.#beaconCounter = (this.#beaconCounter + 1) >>> 0
      try {
        socket.send(beacon, this.#beaconPort, this.host, (err) => {
          if (err !== null && err !== undefined) this.#beaconFailed(err)
          else this.#ctx.stats.beaconsSent++
        })
      } catch (err) {
        this.#beaconFailed(err as Error)
      }
      this.#beaconTimer = setTimeout(tick, period)
      this.#beaconTimer.unref()
      period = Math.min(period * 2, this.#beaconMaxPeriodMs)
    }
    tick()
  }

  /** Log a beacon failure once per distinct message. */
  #beaconFailed (err: Error): void {
    if (err.message === this.#beaconError) return
    this.#beaconError = err.message
    this.#ctx.log(`ca-server: beacon to ${this.host}:${this.#beaconPort} failed: ${err.message}`)
  }
}

async function bindUdp (host: string, port: number): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4')
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(port, host, () => {
      socket.off('error', reject)
      resolve()
    })
  })
  return socket
}
