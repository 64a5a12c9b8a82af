/**
 * Text the PandA server prints, in its formats: C's `%.<p>g` (values `%.10g`, header scales `%.12g`), `%08x` words,
 * and ISO 8601 UTC timestamps with nanoseconds (PandABlocks-server server/prepare.c `format_timestamp_message`).
 */

/**
 * C's `printf("%.<precision>g", value)`: shortest of fixed and exponent form, trailing zeros removed, exponent with
 * at least two digits (`8e-09`). Ties round as JavaScript's toExponential does (half up on the decimal text), which
 * differs from glibc only for values whose decimal expansion ends exactly in 5 at the cut.
 */
export function formatG (value: number, precision: number): string {
  if (Number.isNaN(value)) return 'nan'
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf'
  if (value === 0) return Object.is(value, -0) ? '-0' : '0'
  const p = Math.max(1, precision)
  const [mantissa = '', exponent = '0'] = value.toExponential(p - 1).split('e')
  const x = Number(exponent)
  if (x < -4 || x >= p) {
    const ax = Math.abs(x)
    return `${trimZeros(mantissa)}e${x < 0 ? '-' : '+'}${ax < 10 ? '0' : ''}${ax}`
  }
  return trimZeros(value.toFixed(p - 1 - x))
}

function trimZeros (text: string): string {
  return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text
}

/** `%.10g`, as the server formats doubles (format_double) and ASCII data rows. */
export function formatDouble (value: number): string {
  return formatG(value, 10)
}

/** `0x%08x` of a 32-bit word, as RAW ASCII rows print each word. */
export function hexWord (word: number): string {
  return '0x' + (word >>> 0).toString(16).padStart(8, '0')
}

/** `YYYY-MM-DDTHH:mm:ss.nnnnnnnnnZ` for a time in milliseconds since the epoch (fractions of a ms kept). */
export function isoNs (ms: number): string {
  const whole = Math.floor(ms / 1000) * 1000
  const ns = Math.min(999_999_999, Math.round((ms - whole) * 1e6))
  return new Date(whole).toISOString().slice(0, 19) + '.' + String(ns).padStart(9, '0') + 'Z'
}

/** `YYYY-MM-DDTHH:mm:ss.mmmZ`, as `*WHO?` prints connection times. */
export function isoMs (ms: number): string {
  return new Date(Math.floor(ms)).toISOString()
}
