/**
 * The Channel Access message header (protocol 4.13): 16 bytes, big-endian, optionally extended to 24 bytes for
 * payloads of 0xFFFF bytes or more. Command numbers and field meanings follow the CA protocol specification
 * (docs/ca-protocol.md cites it).
 */
import { ErrorCode, FlyScanError } from '../../errors.js'

export const CaCommand = {
  VERSION: 0,
  EVENT_ADD: 1,
  EVENT_CANCEL: 2,
  READ: 3,
  WRITE: 4,
  SNAPSHOT: 5,
  SEARCH: 6,
  BUILD: 7,
  EVENTS_OFF: 8,
  EVENTS_ON: 9,
  READ_SYNC: 10,
  ERROR: 11,
  CLEAR_CHANNEL: 12,
  RSRV_IS_UP: 13,
  NOT_FOUND: 14,
  READ_NOTIFY: 15,
  READ_BUILD: 16,
  REPEATER_CONFIRM: 17,
  CREATE_CHAN: 18,
  WRITE_NOTIFY: 19,
  CLIENT_NAME: 20,
  HOST_NAME: 21,
  ACCESS_RIGHTS: 22,
  ECHO: 23,
  REPEATER_REGISTER: 24,
  SIGNAL: 25,
  CREATE_CH_FAIL: 26,
  SERVER_DISCONN: 27
} as const
export type CaCommand = typeof CaCommand[keyof typeof CaCommand]

const COMMAND_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(CaCommand).map(([name, n]) => [n, name]))

/** `READ_NOTIFY (15)`, or `unknown command 99` for numbers the protocol does not define. */
export function caCommandName (command: number): string {
  const name = COMMAND_NAMES.get(command)
  return name === undefined ? `unknown command ${command}` : `${name} (${command})`
}

/** The protocol minor version we speak (EPICS base 3.14 onwards). */
export const CA_MINOR_VERSION = 13
export const CA_DEFAULT_SERVER_PORT = 5064
export const CA_DEFAULT_REPEATER_PORT = 5065
export const HEADER_SIZE = 16
export const EXTENDED_HEADER_SIZE = 24

/** Event masks of EVENT_ADD (DBE_*). */
export const DbeMask = { VALUE: 1, LOG: 2, ALARM: 4, PROPERTY: 8 } as const

/** The reply flag of SEARCH (in data_type): whether a server that lacks the name answers NOT_FOUND. */
export const SearchReply = { DO_REPLY: 10, DONT_REPLY: 5 } as const

/** data_type of the VERSION message that starts a server's UDP datagram: parameter1 holds the client's sequence number. */
export const SEQUENCE_NO_IS_VALID = 1

/** Access rights bits of ACCESS_RIGHTS. */
export const AccessRights = { READ: 1, WRITE: 2 } as const

/**
 * ECA_ status codes the server sends (in WRITE_NOTIFY / READ_NOTIFY replies and ERROR messages). Each is
 * `(number << 3) | severity`, as EPICS base's caerr.h defines them.
 */
export const EcaStatus = {
  NORMAL: 1,
  /** ECA_TOLARGE: the request or its reply does not fit the server's limits */
  TOLARGE: 72,
  /** ECA_INTERNAL: the server could not make sense of a request (bad command, bad size) */
  INTERNAL: 142,
  /** ECA_BADMONID: EVENT_CANCEL of a subscription the server does not know */
  BADMONID: 242,
  /** ECA_NORDACCESS: read access denied */
  NORDACCESS: 368,
  /** ECA_BADTYPE */
  BADTYPE: 114,
  /** ECA_BADCOUNT */
  BADCOUNT: 176,
  /** ECA_NOWTACCESS: write access denied */
  NOWTACCESS: 376,
  /** ECA_PUTFAIL */
  PUTFAIL: 160,
  /** ECA_GETFAIL */
  GETFAIL: 152,
  /** ECA_BADCHID */
  BADCHID: 410
} as const

export interface CaHeader {
  readonly command: number
  readonly payloadSize: number
  readonly dataType: number
  readonly dataCount: number
  readonly parameter1: number
  readonly parameter2: number
}

/**
 * Bytes of the header that carries `h`: 24 unless both the payload size and the count are below 0xFFFF (the rule
 * of libca's comQueSend.cpp and rsrv's cas_copy_in_header; 0xFFFF itself marks the extended form).
 */
export function headerSize (h: Pick<CaHeader, 'payloadSize' | 'dataCount'>): number {
  return h.payloadSize >= 0xffff || h.dataCount >= 0xffff ? EXTENDED_HEADER_SIZE : HEADER_SIZE
}

/** Write `h` at `offset` of `out`; returns the header's size (16 or 24). */
export function encodeHeader (h: CaHeader, out: Uint8Array, offset: number): number {
  const view = new DataView(out.buffer, out.byteOffset + offset, out.byteLength - offset)
  view.setUint16(0, h.command)
  view.setUint16(4, h.dataType)
  view.setUint32(8, h.parameter1 >>> 0)
  view.setUint32(12, h.parameter2 >>> 0)
  if (headerSize(h) === HEADER_SIZE) {
    view.setUint16(2, h.payloadSize)
    view.setUint16(6, h.dataCount)
    return HEADER_SIZE
  }
  view.setUint16(2, 0xffff)
  view.setUint16(6, 0)
  view.setUint32(16, h.payloadSize)
  view.setUint32(20, h.dataCount)
  return EXTENDED_HEADER_SIZE
}

/** A new buffer holding `h` followed by `payload` (padded with zeros to `h.payloadSize`). */
export function encodeMessage (h: CaHeader, payload?: Uint8Array): Uint8Array {
  const size = headerSize(h)
  const out = new Uint8Array(size + h.payloadSize)
  encodeHeader(h, out, 0)
  if (payload !== undefined) out.set(payload.subarray(0, h.payloadSize), size)
  return out
}

/**
 * Read the header at `offset` of `bytes`: undefined when `bytes` does not yet hold all of it. A payload size of
 * 0xFFFF announces the extended header, whatever the 16-bit count says: libca (tcpiiu.cpp) and rsrv
 * (camessage.c) test only the payload size, although the specification also asks for a zero count.
 */
export function decodeHeader (bytes: Uint8Array, offset: number): { header: CaHeader, size: number } | undefined {
  if (bytes.length - offset < HEADER_SIZE) return undefined
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, bytes.byteLength - offset)
  const command = view.getUint16(0)
  const payload16 = view.getUint16(2)
  const dataType = view.getUint16(4)
  const count16 = view.getUint16(6)
  const parameter1 = view.getUint32(8)
  const parameter2 = view.getUint32(12)
  if (payload16 === 0xffff) {
    if (bytes.length - offset < EXTENDED_HEADER_SIZE) return undefined
    return {
      header: { command, payloadSize: view.getUint32(16), dataType, dataCount: view.getUint32(20), parameter1, parameter2 },
      size: EXTENDED_HEADER_SIZE
    }
  }
  return { header: { command, payloadSize: payload16, dataType, dataCount: count16, parameter1, parameter2 }, size: HEADER_SIZE }
}

/** `n` rounded up to a multiple of 8 (every CA payload is padded so). */
export function padTo8 (n: number): number {
  return (n + 7) & ~7
}

/** A NUL-terminated string padded to a multiple of 8 bytes (PV names, client and host names). */
export function encodePaddedString (s: string): Uint8Array {
  const encoded = new TextEncoder().encode(s)
  const out = new Uint8Array(padTo8(encoded.length + 1))
  out.set(encoded)
  return out
}

/** The string up to the first NUL of a payload. */
export function decodePaddedString (payload: Uint8Array): string {
  const end = payload.indexOf(0)
  return new TextDecoder().decode(end < 0 ? payload : payload.subarray(0, end))
}

export function caProtocolError (message: string, details: Record<string, string | number> = {}): FlyScanError {
  return new FlyScanError(ErrorCode.CA_PROTOCOL, message, { details })
}
