/**
 * Recovery of a PandA file whose writer died without closing it (SIGKILL, worker terminated, crash).
 *
 * A file written with SWMR (superblock version 2/3) carries "file consistency flags" in its superblock while a
 * writer has it open. A writer that dies leaves them set, and then every reader that does not ask for SWMR (h5dump,
 * h5py without swmr=True) refuses the file with "file is already open for write". The data up to the last flush is
 * intact: clearing the flags (what `h5clear -s` does) makes it readable by everyone again. This module does that
 * itself, so recovery needs no HDF5 tools installed: it rewrites byte 11 of the superblock and its checksum.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs'
import { ErrorCode, FlyScanError } from '../errors.js'

const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]
const FLAGS_AT = 11

function rot (x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0
}

/** Bob Jenkins' lookup3 `hashlittle`, byte-at-a-time, as HDF5 uses for metadata checksums (initval 0). */
export function lookup3 (k: Uint8Array, initval = 0): number {
  let length = k.length
  let a = (0xdeadbeef + length + initval) >>> 0
  let b = a
  let c = a
  let i = 0
  const at = (n: number): number => k[i + n] ?? 0
  while (length > 12) {
    a = (a + at(0) + (at(1) << 8) + (at(2) << 16) + (at(3) << 24)) >>> 0
    b = (b + at(4) + (at(5) << 8) + (at(6) << 16) + (at(7) << 24)) >>> 0
    c = (c + at(8) + (at(9) << 8) + (at(10) << 16) + (at(11) << 24)) >>> 0
    a = (a - c) >>> 0; a = (a ^ rot(c, 4)) >>> 0; c = (c + b) >>> 0
    b = (b - a) >>> 0; b = (b ^ rot(a, 6)) >>> 0; a = (a + c) >>> 0
    c = (c - b) >>> 0; c = (c ^ rot(b, 8)) >>> 0; b = (b + a) >>> 0
    a = (a - c) >>> 0; a = (a ^ rot(c, 16)) >>> 0; c = (c + b) >>> 0
    b = (b - a) >>> 0; b = (b ^ rot(a, 19)) >>> 0; a = (a + c) >>> 0
    c = (c - b) >>> 0; c = (c ^ rot(b, 4)) >>> 0; b = (b + a) >>> 0
    length -= 12
    i += 12
  }
  if (length === 0) return c
  // The tail: bytes beyond `length` read as 0, so adding them all is the C switch fall-through.
  const tail = (n: number): number => (n < length ? at(n) : 0)
  c = (c + tail(8) + (tail(9) << 8) + (tail(10) << 16) + (tail(11) << 24)) >>> 0
  b = (b + tail(4) + (tail(5) << 8) + (tail(6) << 16) + (tail(7) << 24)) >>> 0
  a = (a + tail(0) + (tail(1) << 8) + (tail(2) << 16) + (tail(3) << 24)) >>> 0
  c = (c ^ b) >>> 0; c = (c - rot(b, 14)) >>> 0
  a = (a ^ c) >>> 0; a = (a - rot(c, 11)) >>> 0
  b = (b ^ a) >>> 0; b = (b - rot(a, 25)) >>> 0
  c = (c ^ b) >>> 0; c = (c - rot(b, 16)) >>> 0
  a = (a ^ c) >>> 0; a = (a - rot(c, 4)) >>> 0
  b = (b ^ a) >>> 0; b = (b - rot(a, 14)) >>> 0
  c = (c ^ b) >>> 0; c = (c - rot(b, 24)) >>> 0
  return c
}

function bad (path: string, message: string): FlyScanError {
  return new FlyScanError(ErrorCode.BAD_FILE, `HDF5 file ${path}: ${message}`, { details: { file: path } })
}

/**
 * Clear the superblock's writer flags of an HDF5 file left open by a writer that died (like `h5clear -s`).
 * Returns true if flags were set and are now cleared, false if the file was already clean. Only for a file no
 * process is writing any more. Throws FLY_ERR_BAD_FILE if the file is not an HDF5 file with a version 2/3
 * superblock at offset 0, or its checksum does not match.
 */
export function clearWriterFlags (path: string): boolean {
  let fd: number
  try {
    fd = openSync(path, 'r+')
  } catch (err) {
    throw new FlyScanError(ErrorCode.BAD_FILE, `HDF5 file ${path}: cannot open for recovery: ${(err as Error).message}`,
      { details: { file: path }, cause: err })
  }
  try {
    const head = new Uint8Array(12)
    if (readSync(fd, head, 0, 12, 0) !== 12 || SIGNATURE.some((byte, i) => head[i] !== byte)) {
      throw bad(path, 'no HDF5 signature at offset 0')
    }
    const version = head[8] ?? 0
    const sizeOfOffsets = head[9] ?? 0
    if (version < 2) throw bad(path, `superblock version ${version} has no writer flags to clear`)
    const checksumAt = 12 + 4 * sizeOfOffsets
    const sb = new Uint8Array(checksumAt + 4)
    if (readSync(fd, sb, 0, sb.length, 0) !== sb.length) throw bad(path, 'superblock is truncated')
    const view = new DataView(sb.buffer)
    const stored = view.getUint32(checksumAt, true)
    const computed = lookup3(sb.subarray(0, checksumAt))
    if (stored !== computed) {
      throw bad(path, `superblock checksum 0x${stored.toString(16)} does not match 0x${computed.toString(16)}`)
    }
    if (sb[FLAGS_AT] === 0) return false
    sb[FLAGS_AT] = 0
    view.setUint32(checksumAt, lookup3(sb.subarray(0, checksumAt)), true)
    writeSync(fd, sb, 0, sb.length, 0)
    return true
  } finally {
    closeSync(fd)
  }
}
