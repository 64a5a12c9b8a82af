/**
 * Commands for the PandA control port: what to send, and how to read the reply. Each function returns a
 * ControlCommand; PandaControlConnection.send() turns it into bytes. Inputs are checked here, before anything is
 * sent, because a stray newline would make the box see two commands and answer twice, and a line longer than the
 * box's buffer makes it drop the connection (PandABlocks-server server/buffered_file.c `read_line`, "Line overrun").
 * ../../../docs/panda-control-port.md has the grammar and its sources.
 */
import { ErrorCode, FlyScanError } from '../../errors.js'
import type {
  BlockFieldListing, ChangeGroup, ControlChanges, ControlCommand, PandaIdentification, PcapStatus, SuccessReply,
  TableWriteOptions
} from './types.js'

/**
 * Longest line the box accepts, without its newline: server/config_server.h MAX_LINE_LENGTH is 1024 bytes with the
 * terminating NUL, and read_line() needs line length + 1 < 1024.
 */
export const MAX_COMMAND_LINE_BYTES = 1022

/** Words per base64 data line: 48 bytes, 64 characters, as the server writes a table's `B` attribute. */
export const TABLE_BASE64_LINE_WORDS = 12

/** Block, field and attribute names: letters, digits and underscores, starting with a letter (`SEQ1`, `CAPTURE_WORD`). */
const NAME_RE = /^[A-Za-z][A-Za-z0-9_]*$/
/** A table subfield as *DESC and *ENUMS name it: `TABLE[].REPEATS` is field `TABLE[]`. */
const SUBFIELD_NAME_RE = /^[A-Za-z][A-Za-z0-9_]*\[\]$/
const CHANGE_GROUPS: ReadonlySet<string> = new Set(['CONFIG', 'BITS', 'POSN', 'READ', 'ATTR', 'TABLE', 'METADATA'])
const utf8 = new TextEncoder()

function badInput (message: string, details: Record<string, string | number> = {}): FlyScanError {
  return new FlyScanError(ErrorCode.BAD_INPUT, message, { details })
}

/** Thrown by a decoder; the connection adds the peer, offset and command. */
function badReply (expected: string, got: string): FlyScanError {
  return new FlyScanError(ErrorCode.PANDA_PROTOCOL, `expected ${expected}, got ${got}`, { details: { expected, got } })
}

function quote (s: string): string {
  return JSON.stringify(s.length > 80 ? s.slice(0, 80) + '...' : s)
}

function checkName (name: string, what: string): void {
  if (!NAME_RE.test(name)) {
    throw badInput(`PandA ${what} name ${quote(name)}: expected letters, digits and '_', starting with a letter`, { name })
  }
}

/**
 * A target as the box reads it: `[*]NAME{.NAME}`. Letters, digits, `_`, `.`, `*`, `[` and `]` only: a space, `?`,
 * `=` or `<` would end the target early, and a newline would end the command.
 */
function checkTarget (target: string): void {
  if (!/^\*?[A-Za-z0-9_[\]]+(\.[A-Za-z0-9_*[\]]+)*$/.test(target)) {
    throw badInput(`PandA control target ${quote(target)}: expected names of letters, digits and '_' joined by '.' ` +
      "(optionally '*' first), with no spaces, '?', '=', '<' or newlines", { target })
  }
}

/** A value may hold anything but line ends and NUL (the box reads C strings). */
function checkValue (target: string, value: string): void {
  const bad = /[\n\r\0]/.exec(value)
  if (bad !== null) {
    throw badInput(`PandA value for ${target}: it holds a ${bad[0] === '\0' ? 'NUL' : 'line end'} at character ${bad.index}, ` +
      'which would split the command', { target, index: bad.index })
  }
}

function checkLine (line: string): void {
  const n = utf8.encode(line).length
  if (n > MAX_COMMAND_LINE_BYTES) {
    throw badInput(`PandA control command ${quote(line)} is ${n} bytes long: the box accepts at most ${MAX_COMMAND_LINE_BYTES} ` +
      'bytes per line and drops the connection on a longer one', { bytes: n, limit: MAX_COMMAND_LINE_BYTES })
  }
}

/** `BLOCK.FIELD` or `BLOCK.FIELD.ATTR`, names checked. */
export function fieldTarget (block: string, field: string, attr?: string): string {
  checkName(block, 'block')
  checkName(field, 'field')
  if (attr === undefined) return `${block}.${field}`
  checkName(attr, 'attribute')
  return `${block}.${field}.${attr}`
}

/** Text of a value: strings as they are, numbers in JavaScript's shortest round-trip form (the box uses strtod). */
export function valueText (target: string, value: string | number): string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw badInput(`PandA value for ${target}: ${value} is not a finite number`, { target })
    return String(value)
  }
  checkValue(target, value)
  return value
}

// ---------------------------------------------------------------------------------------------------------------
// Reply readers

function expectValue (reply: SuccessReply): string {
  if (reply.kind !== 'value') throw badReply("a single value ('OK =value')", reply.kind)
  return reply.value
}

function expectLines (reply: SuccessReply): readonly string[] {
  if (reply.kind !== 'multi') throw badReply("a multi-value reply ('!item' lines then '.')", reply.kind)
  return reply.lines
}

function lineCommand<T> (line: string, label: string, expect: ControlCommand<T>['expect'], decode: ControlCommand<T>['decode']): ControlCommand<T> {
  checkLine(line)
  return { lines: [line], label, expect, decode }
}

function okCommand (line: string): ControlCommand<undefined> {
  return lineCommand(line, line, 'ok', () => undefined)
}

function valueCommand<T> (line: string, decode: (value: string) => T): ControlCommand<T> {
  return lineCommand(line, line, 'value', (reply) => decode(expectValue(reply)))
}

function multiCommand<T> (line: string, decode: (lines: readonly string[]) => T): ControlCommand<T> {
  return lineCommand(line, line, 'multi', (reply) => decode(expectLines(reply)))
}

// ---------------------------------------------------------------------------------------------------------------
// Generic queries and assignments

/** `TARGET?` answered by `OK =value`: a field, an attribute or a `*` query with one value. */
export function getCommand (target: string): ControlCommand<string> {
  checkTarget(target)
  return valueCommand(`${target}?`, (v) => v)
}

/** `TARGET?` answered by a multi-value list (a table, `BLOCK.*`, `*ENUMS...`). */
export function getMultilineCommand (target: string): ControlCommand<string[]> {
  checkTarget(target)
  return multiCommand(`${target}?`, (lines) => [...lines])
}

/** `TARGET?` when the form of the answer is not known: a string for `OK =value`, a list for a multi-value reply. */
export function queryCommand (target: string): ControlCommand<string | string[]> {
  checkTarget(target)
  const line = `${target}?`
  return lineCommand(line, line, 'value-or-multi', (reply) => reply.kind === 'multi' ? [...reply.lines] : expectValue(reply))
}

/** `TARGET=value` answered by `OK`. The value may be empty (`*PCAP.ARM=`, `PULSE1.FORCE_RESET=`). */
export function putCommand (target: string, value: string | number = ''): ControlCommand<undefined> {
  checkTarget(target)
  return okCommand(`${target}=${valueText(target, value)}`)
}

// ---------------------------------------------------------------------------------------------------------------
// Tables

function tableWords (target: string, words: ArrayLike<number>): Uint32Array {
  if (words instanceof Uint32Array) return words
  const out = new Uint32Array(words.length)
  for (let k = 0; k < words.length; k++) {
    const w = words[k] as number
    if (!Number.isInteger(w) || w < -0x80000000 || w > 0xffffffff) {
      throw badInput(`PandA table ${target}: word ${k} is ${w}; a table word is an integer from -2147483648 ` +
        '(int32, sent as its two\'s complement) to 4294967295 (uint32)', { target, index: k })
    }
    out[k] = w >>> 0
  }
  return out
}

/**
 * A table write: `TARGET<` (fixed), `TARGET<<` (append a streaming chunk) or `TARGET<<|` (the last chunk), with `B`
 * for base64 data, then the data lines, then an empty line; answered by `OK`. `words` are 32-bit table words
 * (ROW_WORDS per row; a SEQ row is 4). An empty fixed write clears the table; an empty append is refused here
 * because the box refuses it ("Streaming table must have data").
 */
export function tableWriteCommand (target: string, words: ArrayLike<number>, options: TableWriteOptions = {}): ControlCommand<undefined> {
  checkTarget(target)
  const mode = options.mode ?? 'fixed'
  const encoding = options.encoding ?? 'decimal'
  const data = tableWords(target, words)
  if (mode !== 'fixed' && data.length === 0) {
    throw badInput(`PandA table ${target}: an ${mode} write needs at least one word (the box refuses an empty streaming chunk)`, { target })
  }
  const header = `${target}<${mode === 'fixed' ? '' : mode === 'append' ? '<' : '<|'}${encoding === 'base64' ? 'B' : ''}`
  checkLine(header)
  const lines = [header]
  if (encoding === 'base64') {
    const bytes = new Uint8Array(data.length * 4)
    const view = new DataView(bytes.buffer)
    for (let k = 0; k < data.length; k++) view.setUint32(k * 4, data[k] as number, true)
    const step = TABLE_BASE64_LINE_WORDS * 4
    for (let k = 0; k < bytes.length; k += step) lines.push(Buffer.from(bytes.buffer, k, Math.min(step, bytes.length - k)).toString('base64'))
  } else {
    const per = options.wordsPerLine ?? 4
    if (!Number.isInteger(per) || per < 1 || per > 64) {
      throw badInput(`PandA table ${target}: wordsPerLine is ${per}; expected an integer from 1 to 64`, { target })
    }
    for (let k = 0; k < data.length; k += per) lines.push(Array.from(data.subarray(k, k + per)).join(' '))
  }
  lines.push('')
  return { lines, label: `${header} (${data.length} words)`, expect: 'ok', decode: () => undefined }
}

function decimalWord (line: string, k: number): number {
  if (!/^[0-9]{1,10}$/.test(line) || Number(line) > 0xffffffff) throw badReply(`a decimal uint32 table word on line ${k}`, quote(line))
  return Number(line)
}

/** `TARGET?` of a table: one decimal word per line. */
export function readTableCommand (target: string): ControlCommand<Uint32Array> {
  checkTarget(target)
  return multiCommand(`${target}?`, (lines) => Uint32Array.from(lines, decimalWord))
}

/** `TARGET.B?` of a table: base64 lines of the little-endian words (48 bytes per line). */
export function readTableBase64Command (target: string): ControlCommand<Uint32Array> {
  checkTarget(target)
  return multiCommand(`${target}.B?`, (lines) => {
    const chunks: Uint8Array[] = []
    let total = 0
    lines.forEach((line, k) => {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(line) || line.length % 4 !== 0) throw badReply(`base64 text on line ${k}`, quote(line))
      const bytes = Buffer.from(line, 'base64')
      chunks.push(bytes)
      total += bytes.length
    })
    if (total % 4 !== 0) throw badReply('a whole number of 4-byte words', `${total} bytes`)
    const out = new Uint32Array(total / 4)
    const all = new Uint8Array(total)
    let at = 0
    for (const c of chunks) { all.set(c, at); at += c.length }
    const view = new DataView(all.buffer)
    for (let k = 0; k < out.length; k++) out[k] = view.getUint32(k * 4, true)
    return out
  })
}

// ---------------------------------------------------------------------------------------------------------------
// Position capture

/** `*PCAP.ARM=`: start a capture. The box answers ERR if one is running or nothing is set to capture. */
export function armCommand (): ControlCommand<undefined> {
  return okCommand('*PCAP.ARM=')
}

/** `*PCAP.DISARM=`: stop the running capture (the data port ends it with `Disarmed`). */
export function disarmCommand (): ControlCommand<undefined> {
  return okCommand('*PCAP.DISARM=')
}

/** Reads `Busy 1 1` / `Idle 1 0` (server/data_server.c: state, readers connected, readers taking data). */
export function parsePcapStatus (value: string): PcapStatus {
  const m = /^(Busy|Idle) ([0-9]+) ([0-9]+)$/.exec(value)
  if (m === null) throw badReply("'Busy|Idle <readers> <taking data>'", quote(value))
  return { state: m[1] as 'Busy' | 'Idle', readers: Number(m[2]), takingData: Number(m[3]) }
}

export function pcapStatusCommand (): ControlCommand<PcapStatus> {
  return valueCommand('*PCAP.STATUS?', parsePcapStatus)
}

/** `*PCAP.CAPTURED?`: rows captured in the current or last capture. */
export function pcapCapturedCommand (): ControlCommand<number> {
  return valueCommand('*PCAP.CAPTURED?', (v) => {
    if (!/^[0-9]+$/.test(v)) throw badReply('a row count', quote(v))
    return Number(v)
  })
}

/** `*PCAP.COMPLETION?`: `Busy`, `Ok`, `Disarmed`, `Framing error`, `DMA data error` or `Driver data overrun`. */
export function pcapCompletionCommand (): ControlCommand<string> {
  return valueCommand('*PCAP.COMPLETION?', (v) => v)
}

// ---------------------------------------------------------------------------------------------------------------
// Changes

/**
 * Reads the lines of a `*CHANGES?` reply (server/fields.c `report_changed_value`, `report_changed_table`,
 * server/metadata.c): `NAME=value`, `NAME<` (a table or multi-line metadata changed) or `NAME (error)`. A name never
 * holds `=`, so a line with `=` is a value, even if the value ends in `<` or ` (error)`.
 */
export function parseChanges (lines: readonly string[]): ControlChanges {
  const changes: ControlChanges = { changed: new Map(), multiline: [], errors: [] }
  lines.forEach((line, k) => {
    const eq = line.indexOf('=')
    if (eq > 0) {
      changes.changed.set(line.slice(0, eq), line.slice(eq + 1))
    } else if (eq < 0 && line.length > 1 && line.endsWith('<')) {
      changes.multiline.push(line.slice(0, -1))
    } else if (eq < 0 && line.length > 8 && line.endsWith(' (error)')) {
      changes.errors.push(line.slice(0, -8))
    } else {
      throw badReply(`'NAME=value', 'NAME<' or 'NAME (error)' on line ${k}`, quote(line))
    }
  })
  return changes
}

/** `*CHANGES?` or `*CHANGES.<group>?`: what changed since this connection last asked (everything, the first time). */
export function changesCommand (group?: ChangeGroup): ControlCommand<ControlChanges> {
  if (group !== undefined && !CHANGE_GROUPS.has(group)) {
    throw badInput(`PandA *CHANGES group ${quote(group)}: expected one of ${[...CHANGE_GROUPS].join(', ')}`, { group })
  }
  return multiCommand(`*CHANGES${group === undefined ? '' : '.' + group}?`, parseChanges)
}

/** `*CHANGES=` (report only changes from now on) or `*CHANGES=S` (report everything again next time). */
export function resetChangesCommand (group?: ChangeGroup, from: 'now' | 'start' = 'now'): ControlCommand<undefined> {
  if (group !== undefined && !CHANGE_GROUPS.has(group)) {
    throw badInput(`PandA *CHANGES group ${quote(group)}: expected one of ${[...CHANGE_GROUPS].join(', ')}`, { group })
  }
  return okCommand(`*CHANGES${group === undefined ? '' : '.' + group}=${from === 'start' ? 'S' : ''}`)
}

// ---------------------------------------------------------------------------------------------------------------
// Introspection

/** Reads `*BLOCKS?` lines `NAME count` (server/fields.c `block_list_get`). */
export function parseBlocks (lines: readonly string[]): Map<string, number> {
  const blocks = new Map<string, number>()
  lines.forEach((line, k) => {
    const m = /^([A-Za-z][A-Za-z0-9_]*) ([0-9]+)$/.exec(line)
    if (m === null) throw badReply(`'NAME count' on line ${k}`, quote(line))
    blocks.set(m[1] as string, Number(m[2]))
  })
  return blocks
}

/** `*BLOCKS?`: every block and how many instances it has (`SEQ` → 4). */
export function blocksCommand (): ControlCommand<Map<string, number>> {
  return multiCommand('*BLOCKS?', parseBlocks)
}

/** Reads `BLOCK.*?` lines `NAME index type [subtype]` (server/fields.c `field_list_get`). */
export function parseFieldList (lines: readonly string[]): BlockFieldListing[] {
  return lines.map((line, k) => {
    const m = /^([A-Za-z][A-Za-z0-9_]*) ([0-9]+) ([a-z_]+)(?: (.+))?$/.exec(line)
    if (m === null) throw badReply(`'NAME index type [subtype]' on line ${k}`, quote(line))
    return { name: m[1] as string, index: Number(m[2]), type: m[3] as string, subtype: m[4] }
  })
}

/** `BLOCK.*?`: the block's fields (the instance number is ignored by the box). */
export function fieldListCommand (block: string): ControlCommand<BlockFieldListing[]> {
  checkName(block, 'block')
  return multiCommand(`${block}.*?`, parseFieldList)
}

/** `BLOCK.FIELD.*?`: the field's attribute names. */
export function attributeListCommand (block: string, field: string): ControlCommand<string[]> {
  return multiCommand(`${fieldTarget(block, field)}.*?`, (lines) => [...lines])
}

function descTarget (block: string, field?: string, attr?: string): string {
  checkName(block, 'block')
  if (field === undefined) return block
  if (!NAME_RE.test(field) && !SUBFIELD_NAME_RE.test(field)) checkName(field, 'field')
  if (attr === undefined) return `${block}.${field}`
  checkName(attr, 'attribute')
  return `${block}.${field}.${attr}`
}

/** `*DESC.BLOCK?`, `*DESC.BLOCK.FIELD?`, `*DESC.BLOCK.FIELD.ATTR?` or `*DESC.BLOCK.TABLE[].SUBFIELD?`. */
export function descCommand (block: string, field?: string, attr?: string): ControlCommand<string> {
  return valueCommand(`*DESC.${descTarget(block, field, attr)}?`, (v) => v)
}

/** `*ENUMS.BLOCK.FIELD?` (also `.ATTR` and `TABLE[].SUBFIELD`): the allowed strings. */
export function enumsCommand (block: string, field: string, attr?: string): ControlCommand<string[]> {
  return multiCommand(`*ENUMS.${descTarget(block, field, attr)}?`, (lines) => [...lines])
}

/** Reads `*IDN?`: `<name> SW: <sw> FPGA: <fpga...> rootfs: <text>` (`rootfs:` only from server 1.1). */
export function parseIdentification (value: string): PandaIdentification {
  const m = /^(\S+) SW: (.*?) FPGA: (.*?)(?: rootfs: (.*))?$/.exec(value)
  if (m === null) throw badReply("'<name> SW: <version> FPGA: <version> ... [rootfs: <text>]'", quote(value))
  return { name: m[1] as string, software: m[2] as string, fpga: m[3] as string, rootfs: m[4], text: value }
}

export function idnCommand (): ControlCommand<PandaIdentification> {
  return valueCommand('*IDN?', parseIdentification)
}

/** `*ECHO text?` answered by `OK =text` (a ping). The text may not hold `?`, `=`, `<` or line ends. */
export function echoCommand (text: string): ControlCommand<string> {
  if (/[?=<\n\r\0]/.test(text)) throw badInput(`PandA *ECHO text ${quote(text)}: it may not hold '?', '=', '<' or line ends`)
  return valueCommand(`*ECHO ${text}?`, (v) => v)
}
