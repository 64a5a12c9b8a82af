/**
 * Reading numbers and names the way the PandA server does (server/parse.c): `strtoul`/`strtol` with base 0 (so
 * `0x10` is hex and `010` octal), `strtod`, names of letters, digits and `_`. Each reader takes the text and a start
 * index and returns the value and where it stopped, or throws a ParseError carrying the server's message.
 */

/** A command the server refuses: `message` is what follows `ERR ` on the wire. */
export class ParseError extends Error {}

export function fail (message: string): never {
  throw new ParseError(message)
}

export interface Parsed<T> {
  readonly value: T
  readonly end: number
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9'
const isAlpha = (c: string | undefined): boolean => c !== undefined && /[A-Za-z_]/.test(c)
const isAlnum = (c: string | undefined): boolean => c !== undefined && /[A-Za-z0-9_]/.test(c)

/** C's isspace (strto* skip these first). */
function skipSpace (s: string, i: number): number {
  while (i < s.length && ' \t\n\v\f\r'.includes(s[i] as string)) i++
  return i
}

/** Integer text with base 0: optional sign, `0x` hex, leading `0` octal, else decimal. */
function parseInteger (s: string, start: number): Parsed<number> & { negative: boolean } {
  let i = skipSpace(s, start)
  let negative = false
  if (s[i] === '+' || s[i] === '-') { negative = s[i] === '-'; i++ }
  let base = 10
  if (s[i] === '0' && (s[i + 1] === 'x' || s[i + 1] === 'X') && /[0-9a-fA-F]/.test(s[i + 2] ?? '')) {
    base = 16
    i += 2
  } else if (s[i] === '0') {
    base = 8
  }
  const digits = base === 16 ? /[0-9a-fA-F]/ : base === 8 ? /[0-7]/ : /[0-9]/
  const first = i
  let value = 0
  while (i < s.length && digits.test(s[i] as string)) {
    value = value * base + parseInt(s[i] as string, base)
    i++
  }
  if (i === first) fail('Number missing')
  return { value, end: i, negative }
}

/** `strtoul(s, &end, 0)` into 32 bits: a minus sign wraps (`-1` is 4294967295); above 2^32-1 is out of range. */
export function parseUint (s: string, start: number): Parsed<number> {
  const n = parseInteger(s, start)
  if (n.value > 0xffffffff) fail('Error converting number')
  return { value: n.negative ? (-n.value >>> 0) : n.value, end: n.end }
}

/** `strtol(s, &end, 0)` into a signed 32-bit int. */
export function parseInt32 (s: string, start: number): Parsed<number> {
  const n = parseInteger(s, start)
  const v = n.negative ? -n.value : n.value
  if (v < -0x80000000 || v > 0x7fffffff) fail('Error converting number')
  return { value: v, end: n.end }
}

/** `strtoull(s, &end, 0)`, exact up to 2^53. */
export function parseUint64 (s: string, start: number): Parsed<number> {
  const n = parseInteger(s, start)
  if (n.negative) return { value: Math.max(0, 2 ** 64 - n.value), end: n.end }
  return { value: n.value, end: n.end }
}

/** `strtod(s, &end)`: decimal floats, `inf`, `nan`. */
export function parseDouble (s: string, start: number): Parsed<number> {
  const i = skipSpace(s, start)
  const m = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)/i.exec(s.slice(i))
  if (m === null) fail('Number missing')
  const text = m[0].toLowerCase().replace('infinity', 'inf')
  const value = text.endsWith('inf') ? (text.startsWith('-') ? -Infinity : Infinity) : text.endsWith('nan') ? NaN : Number(text)
  return { value, end: i + m[0].length }
}

/** The rest must be empty. */
export function parseEos (s: string, i: number): void {
  if (i !== s.length) fail('Unexpected character after input')
}

/** A name of letters and `_` only (parse_name): system commands, attributes. */
export function parseName (s: string, start: number): Parsed<string> {
  let i = start
  while (i < s.length && isAlpha(s[i])) i++
  if (i === start) fail('No name found')
  if (i - start >= 32) fail('Name too long')
  return { value: s.slice(start, i), end: i }
}

/** A name that starts with a letter or `_`, then letters, digits and `_` (parse_alphanum_name): fields. */
export function parseAlphanumName (s: string, start: number): Parsed<string> {
  if (!isAlpha(s[start])) fail('No name found')
  let i = start
  while (i < s.length && isAlnum(s[i])) i++
  if (i - start >= 32) fail('Name too long')
  return { value: s.slice(start, i), end: i }
}

/** A block name: an alphanumeric name with its trailing digits left for the instance number (parse_block_name). */
export function parseBlockName (s: string, start: number): Parsed<string> {
  const n = parseAlphanumName(s, start)
  let end = n.end
  while (end > start && isDigit(s[end - 1])) end--
  return { value: s.slice(start, end), end }
}

export function expectChar (s: string, i: number, c: string): number {
  if (s[i] !== c) fail(`Character '${c}' expected`)
  return i + 1
}

export { isDigit }
