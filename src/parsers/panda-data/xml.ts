/**
 * A minimal XML reader for the PandA data header (PandABlocks-server `server/prepare.c`, `send_data_header`):
 * elements, attributes quoted with `"` or `'`, self-closing tags, the five predefined entities plus numeric
 * character references, and whitespace between elements. Nothing else (no text content, comments, CDATA,
 * processing instructions or DOCTYPE). Works on bytes so that every error names the absolute byte offset.
 */
import { ErrorCode, FlyScanError } from '../../errors.js'
import { describeBytes } from '../text.js'

export interface XmlElement {
  readonly name: string
  /** Attribute values with entities decoded, in document order. */
  readonly attributes: Readonly<Record<string, string>>
  /** Absolute byte offset of each attribute's value (the byte after the opening quote). */
  readonly attributeOffsets: Readonly<Record<string, number>>
  readonly children: readonly XmlElement[]
  /** Absolute byte offset of the element's `<`. */
  readonly offset: number
  /** Absolute byte offset just past the element's end (after `/>` or the end tag's `>`). */
  readonly endOffset: number
}

interface MutableElement {
  name: string
  attributes: Record<string, string>
  attributeOffsets: Record<string, number>
  children: MutableElement[]
  offset: number
  endOffset: number
}

const MAX_DEPTH = 8
const utf8 = new TextDecoder('utf-8', { fatal: true })

export function protocolError (offset: number, expected: string, got: string): FlyScanError {
  return new FlyScanError(ErrorCode.PANDA_PROTOCOL, `PandA data port, offset ${offset}: expected ${expected}, got ${got}`, {
    details: { offset, expected, got }
  })
}

function isSpace (b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09
}

function isNameStart (b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x5f || b === 0x3a
}

function isNameChar (b: number): boolean {
  return isNameStart(b) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2e
}

const ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }

/**
 * Parses `bytes` (a whole document with exactly one root element) and returns the root. `base` is the absolute
 * stream offset of `bytes[0]`; every error is a PANDA_PROTOCOL FlyScanError naming the absolute offset.
 */
export function parseXml (bytes: Uint8Array, base: number): XmlElement {
  const len = bytes.length
  let p = 0
  const fail = (at: number, expected: string): never => {
    throw protocolError(base + at, expected, describeBytes(bytes, at, len))
  }
  const skipSpace = (): void => {
    while (p < len && isSpace(bytes[p] as number)) p++
  }
  const readName = (what: string): string => {
    const start = p
    if (p >= len || !isNameStart(bytes[p] as number)) fail(p, what)
    while (p < len && isNameChar(bytes[p] as number)) p++
    return String.fromCharCode(...bytes.subarray(start, p))
  }
  const readValue = (): string => {
    const quote = bytes[p]
    if (quote !== 0x22 && quote !== 0x27) return fail(p, 'a quoted attribute value')
    p++
    let out = ''
    let runStart = p
    const flushRun = (end: number): void => {
      if (end > runStart) {
        try {
          out += utf8.decode(bytes.subarray(runStart, end))
        } catch {
          fail(runStart, 'UTF-8 text in the attribute value')
        }
      }
    }
    for (;;) {
      if (p >= len) return fail(p, `the closing ${String.fromCharCode(quote)} of the attribute value`)
      const b = bytes[p] as number
      if (b === quote) {
        flushRun(p)
        p++
        return out
      }
      if (b === 0x3c) return fail(p, "an attribute value character ('<' must be written &lt;)")
      if (b === 0x26) {
        flushRun(p)
        const semi = bytes.indexOf(0x3b, p)
        if (semi < 0 || semi - p > 12) return fail(p, 'an entity such as &amp; ending with ;')
        const ref = String.fromCharCode(...bytes.subarray(p + 1, semi))
        const named = ENTITIES[ref]
        if (named !== undefined) {
          out += named
        } else if (/^#[0-9]{1,7}$/.test(ref) || /^#x[0-9a-fA-F]{1,6}$/.test(ref)) {
          const code = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10)
          if (code > 0x10ffff || code === 0) return fail(p, 'a valid character reference')
          out += String.fromCodePoint(code)
        } else {
          return fail(p, 'one of &amp; &lt; &gt; &quot; &apos; or a character reference')
        }
        p = semi + 1
        runStart = p
        continue
      }
      p++
    }
  }

  const stack: MutableElement[] = []
  let root: MutableElement | undefined
  skipSpace()
  for (;;) {
    if (p >= len) {
      if (stack.length > 0) {
        const open = stack[stack.length - 1] as MutableElement
        return fail(p, `</${open.name}>`)
      }
      return fail(p, 'a root element')
    }
    if (bytes[p] !== 0x3c) return fail(p, "'<' (no text content is allowed in the header)")
    const tagStart = p
    p++
    if (bytes[p] === 0x2f) {
      // End tag.
      p++
      const name = readName('an element name after </')
      skipSpace()
      if (bytes[p] !== 0x3e) fail(p, `'>' closing </${name}`)
      p++
      const open = stack.pop()
      if (open === undefined || open.name !== name) {
        fail(tagStart, open === undefined ? 'no end tag (nothing is open)' : `</${open.name}>`)
      } else {
        open.endOffset = base + p
        if (stack.length === 0) break
      }
    } else {
      if (root !== undefined && stack.length === 0) fail(tagStart, 'end of the header (one root element only)')
      const name = readName("an element name after '<'")
      const el: MutableElement = {
        name, attributes: {}, attributeOffsets: {}, children: [], offset: base + tagStart, endOffset: -1
      }
      for (;;) {
        const before = p
        skipSpace()
        const b = bytes[p]
        if (b === 0x2f) {
          if (bytes[p + 1] !== 0x3e) fail(p + 1, "'>' after '/'")
          p += 2
          el.endOffset = base + p
          break
        }
        if (b === 0x3e) {
          p++
          break
        }
        if (p === before) fail(p, "whitespace, an attribute, '/>' or '>'")
        const attrName = readName("an attribute name, '/>' or '>'")
        if (Object.hasOwn(el.attributes, attrName)) fail(p - attrName.length, `a new attribute (${attrName} is repeated)`)
        skipSpace()
        if (bytes[p] !== 0x3d) fail(p, `'=' after attribute ${attrName}`)
        p++
        skipSpace()
        el.attributeOffsets[attrName] = base + p + 1
        el.attributes[attrName] = readValue()
      }
      const parent = stack[stack.length - 1]
      if (parent !== undefined) parent.children.push(el)
      else root = el
      if (el.endOffset < 0) {
        if (stack.length >= MAX_DEPTH) fail(tagStart, `at most ${MAX_DEPTH} nested elements`)
        stack.push(el)
      } else if (stack.length === 0) {
        break
      }
    }
    skipSpace()
  }
  skipSpace()
  if (p < len) fail(p, 'end of the header after the root element')
  return root as XmlElement
}
