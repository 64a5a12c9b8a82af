/**
 * Text pieces the PandA parsers share (the data port's header and END lines, the control port's replies): a bounded
 * line reader that works across chunk boundaries, and the printable rendering of bytes for error messages.
 */

/** Printable rendering of up to `max` bytes, for error messages: `0x48 0x49 ('HI')`; `empty` when there are none. */
export function describeBytes (bytes: Uint8Array, start: number, end: number, max = 8, empty = 'end of input'): string {
  if (start >= end) return empty
  const stop = Math.min(end, start + max)
  const hex: string[] = []
  let text = ''
  for (let k = start; k < stop; k++) {
    const b = bytes[k] as number
    hex.push('0x' + b.toString(16).padStart(2, '0'))
    text += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.'
  }
  return `${hex.join(' ')} ('${text}'${stop < end ? '...' : ''})`
}

/**
 * Reads `\n`-ended lines out of successive chunks, holding a partial line between chunks, never more than `max`
 * bytes of it. The parser owning it keeps the absolute offset of each chunk; `start` is that of the line being read.
 */
export class LineReader {
  /** The partial line held between chunks (its first `len` bytes). */
  buf = new Uint8Array(256)
  len = 0
  /** Absolute stream offset of the line being read. */
  start = 0

  /**
   * One line (without `\n` and a trailing `\r`) starting at `chunk[i]`, `base` being the absolute offset of
   * `chunk[0]`. Returns [line, next index]; line is undefined when the chunk ended first (the bytes are kept). The
   * line may be a view of `chunk` or of `buf`: use it before reading the next line. A line longer than `max` calls
   * `overlong(offset, tailStart, tailEnd)` (the offset where the newline was due, the last bytes seen) and throws
   * what it returns.
   */
  read (chunk: Uint8Array, i: number, base: number, max: number,
    overlong: (offset: number, tailStart: number, tailEnd: number) => Error): [Uint8Array | undefined, number] {
    if (this.len === 0) this.start = base + i
    // Look for the newline no further than the limit allows (a line of exactly max bytes has its \n at max).
    const searchEnd = Math.min(chunk.length, i + (max - this.len) + 1)
    let nl = chunk.indexOf(0x0a, i)
    if (nl >= searchEnd) nl = -1
    const end = nl >= 0 ? nl : searchEnd
    if (nl < 0 && this.len + (end - i) > max) throw overlong(this.start + max, i, end)
    let line: Uint8Array
    if (this.len === 0 && nl >= 0) {
      line = chunk.subarray(i, nl)
    } else {
      const need = this.len + (end - i)
      if (need > this.buf.length) {
        const grown = new Uint8Array(Math.min(Math.max(need, this.buf.length * 2), max + 1))
        grown.set(this.buf.subarray(0, this.len))
        this.buf = grown
      }
      this.buf.set(chunk.subarray(i, end), this.len)
      this.len = need
      if (nl < 0) return [undefined, end]
      line = this.buf.subarray(0, this.len)
      this.len = 0
    }
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1)
    return [line, nl + 1]
  }
}
