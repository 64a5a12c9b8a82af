/**
 * What the control port sees of the simulated PandA: every block instance's fields and attributes, read and written
 * as PandABlocks-server (commit dd1b8e0) reads and writes them, with its reply texts: server/config_command.c
 * (targets), fields.c and attributes.c (lookup, listing, *CHANGES), types.c, time.c, bit_out.c, pos_mux.c,
 * pos_out.c, ext_out.c (values and attributes), table.c (tables). Live values (bits, positions, read registers)
 * come from the simulation through `ModelHooks`; writes are reported back through it.
 *
 * Errors are thrown as ParseError with the server's message; the control server sends them as `ERR <message>`.
 */
import { ErrorCode, FlyScanError } from '../../errors.js'
import { formatDouble } from './format.js'
import {
  BLOCKS, CAPTURE_ENUMS, CAPTURE_OPTIONS, CLOCK_HZ, MAX_BIT_MUX_DELAY, MAX_PARAM_TIME_TICKS, MAX_TIME_TICKS,
  TIME_UNITS, type BlockSpec, type CaptureOption, type FieldSpec, type TableSpec, type TableSubfield
} from './definitions.js'
import {
  ParseError, expectChar, fail, isDigit, parseAlphanumName, parseBlockName, parseDouble, parseEos, parseInt32,
  parseName, parseUint, parseUint64
} from './cparse.js'

/** Bit mux values for the constant inputs (the server's BIT_BUS_ZERO and BIT_BUS_ONE). */
export const BIT_ZERO = 128
export const BIT_ONE = 129
/** Pos mux value for the constant 0 input. */
export const POS_ZERO = 32

/** Live values the model reads from the simulation, and how it reports writes. */
export interface ModelHooks {
  /** Current level of bit bus entry `index` (0..127). */
  bit: (index: number) => boolean
  /** How many times bit bus entry `index` has changed (so *CHANGES.BITS sees a pulse that came and went). */
  bitChanges: (index: number) => number
  /** Current value of pos bus entry `index`. */
  position: (index: number) => number
  /** Current raw value of a `read` field. */
  read: (field: FieldState) => number
  /** A param, time, mux, write or table field (or an attribute that changes behaviour) was just written. */
  written: (field: FieldState, attr?: string) => void
}

/** The change groups of `*CHANGES.<group>?`, in the server's bit order. */
export const CHANGE_GROUPS = ['CONFIG', 'BITS', 'POSN', 'READ', 'ATTR', 'TABLE', 'METADATA'] as const
export type ChangeGroup = typeof CHANGE_GROUPS[number]
const G = { CONFIG: 0, BITS: 1, POSN: 2, READ: 3, ATTR: 4, TABLE: 5, METADATA: 6 } as const
export const ALL_CHANGES = 0x7f

/** Per-connection `*CHANGES` bookkeeping: the change index each group was last reported at. */
export class ChangeContext {
  readonly reported = [0, 0, 0, 0, 0, 0, 0]
}

export type TableMode = 'INIT' | 'FIXED' | 'STREAMING' | 'STREAMING_LAST'

/** A table field's contents (table.c `table_block`). */
export class TableState {
  /** The words a FIXED table holds (what `?` and `.B?` return). */
  words: number[] = []
  mode: TableMode = 'INIT'
  /** Rows written in STREAMING mode that the block has not consumed yet (flat words). */
  queued: number[] = []
  /** Set while a table write is in progress on some connection. */
  writing = false
  constructor (readonly spec: TableSpec) {}
}

/** One field of one block instance. */
export class FieldState {
  /** Raw register value: ticks for time fields, the bus index for muxes, the word for params. */
  value: number
  /** Index into TIME_UNITS of a time field (default `s`). */
  timeUnits = 1
  /** Change index of the last write (config values, tables) or of the last change seen by a poll. */
  updateIndex = 1
  /** Change indices of the attributes that are in the ATTR change set. */
  readonly attrIndex = new Map<string, number>()
  /** Bit bus or pos bus index of a bit_out or pos_out; -1 otherwise. */
  bus = -1
  // pos_out
  scale: number
  offset: number
  units: string
  /** Bit i set: CAPTURE_OPTIONS[i] is captured. */
  captureMask = 0
  // ext_out
  capture = false
  // bit_mux
  delay = 0
  readonly table: TableState | undefined
  /** Last value a poll saw (read, bit_out, pos_out). */
  polled: number | undefined

  constructor (readonly block: BlockSpec, readonly spec: FieldSpec, readonly number: number) {
    this.value = spec.initial ?? (spec.cls === 'bit_mux' ? BIT_ZERO : spec.cls === 'pos_mux' ? POS_ZERO : 0)
    this.scale = spec.scale ?? 1
    this.offset = spec.offset ?? 0
    this.units = spec.units ?? ''
    this.table = spec.table === undefined ? undefined : new TableState(spec.table)
    for (const a of attributesOf(spec)) if (a.inChangeSet === true) this.attrIndex.set(a.name, 1)
  }

  /** `PCAP.TRIG` for a one-instance block, `SEQ1.TABLE` otherwise (fields.c format_field_name). */
  get name (): string {
    return this.block.count === 1 ? `${this.block.name}.${this.spec.name}` : `${this.block.name}${this.number}.${this.spec.name}`
  }

  /** Signed view of the raw value (int params). */
  get int (): number {
    return this.value | 0
  }
}

interface AttrSpec {
  readonly name: string
  readonly inChangeSet?: boolean
  readonly many?: boolean
}

/** A field's attributes, in the order `BLOCK.FIELD.*?` lists them. */
export function attributesOf (spec: FieldSpec): AttrSpec[] {
  switch (spec.cls) {
    case 'param': case 'read': case 'write':
      if (spec.type === 'uint') return [{ name: 'MAX' }]
      if (spec.type === 'time') return [{ name: 'RAW' }, { name: 'UNITS', inChangeSet: true }]
      return []
    case 'time': return [{ name: 'RAW' }, { name: 'UNITS', inChangeSet: true }]
    case 'bit_out': return [{ name: 'CAPTURE_WORD' }, { name: 'OFFSET' }]
    case 'pos_out': return [{ name: 'SCALED' }, { name: 'SCALE', inChangeSet: true }, { name: 'OFFSET', inChangeSet: true },
      { name: 'UNITS', inChangeSet: true }, { name: 'CAPTURE', inChangeSet: true }]
    case 'ext_out': return spec.ext === 'bits' ? [{ name: 'CAPTURE', inChangeSet: true }, { name: 'BITS', many: true }] : [{ name: 'CAPTURE', inChangeSet: true }]
    case 'bit_mux': return [{ name: 'DELAY', inChangeSet: true }, { name: 'MAX_DELAY' }]
    case 'pos_mux': return []
    case 'table': return [{ name: 'LENGTH' }, { name: 'MAX_LENGTH' }, { name: 'FIELDS', many: true }, { name: 'B', many: true },
      { name: 'ROW_WORDS' }, { name: 'QUEUED_LINES' }, { name: 'MODE' }]
  }
}

/** What a command's answer is: one value (`OK =x`) or a list (`!x` lines then `.`). */
export type Reply = { readonly kind: 'one', readonly value: string } | { readonly kind: 'many', readonly lines: string[] }
const one = (value: string): Reply => {
  if (Buffer.byteLength(value) >= 256) fail('Result too long')
  return { kind: 'one', value }
}
const many = (lines: string[]): Reply => ({ kind: 'many', lines })

/** A parsed `BLOCK[n][.FIELD[.ATTR]]` or `BLOCK.*` / `BLOCK.FIELD.*` (config_command.c parse_block_entity). */
export interface Entity {
  readonly block: BlockSpec
  /** 0-based instance. */
  readonly index: number
  readonly field: FieldSpec | undefined
  readonly attr: string | undefined
  readonly star: boolean
  /** Where parsing stopped. */
  readonly end: number
}

/** One field/attribute line of a multi-line metadata value, or a single-line one. */
interface Metadata {
  readonly multiline: boolean
  value: string[]
  updateIndex: number
}

/** Writes a table through one connection: lines, then close (table.c start/write/complete). */
export interface TableWriter {
  write: (line: string) => void
  close: () => void
}

const TIME_UNIT_NAMES = TIME_UNITS.map(([u]) => u)

export class Model {
  readonly instances = new Map<string, FieldState[][]>()
  /** Every field instance in *CHANGES order: block, field, instance. */
  readonly ordered: FieldState[] = []
  /** bit_mux choices by value: bus index → `CLOCK1.OUT`. */
  readonly bitNames: string[] = []
  /** pos_mux choices by value: pos bus index → `INENC1.VAL`. */
  readonly posNames: string[] = []
  readonly bitOuts: FieldState[] = []
  readonly posOuts: FieldState[] = []
  /** pos_out and ext_out fields in registration order (the capture order within a group). */
  readonly outputs: FieldState[] = []
  readonly metadata = new Map<string, Metadata>([
    ['DESIGN', { multiline: false, value: [''], updateIndex: 1 }],
    ['LAYOUT', { multiline: true, value: [], updateIndex: 1 }]
  ])

  #changeIndex = 1
  #hooks: ModelHooks

  constructor (hooks: ModelHooks, readonly blocks: readonly BlockSpec[] = BLOCKS) {
    this.#hooks = hooks
    for (const block of blocks) {
      const perField: FieldState[][] = []
      for (const spec of block.fields) {
        const list: FieldState[] = []
        for (let n = 1; n <= block.count; n++) {
          const fs = new FieldState(block, spec, n)
          list.push(fs)
          this.ordered.push(fs)
          if (spec.cls === 'bit_out') {
            fs.bus = this.bitOuts.length
            this.bitOuts.push(fs)
            this.bitNames[fs.bus] = fs.name
          } else if (spec.cls === 'pos_out') {
            fs.bus = this.posOuts.length
            this.posOuts.push(fs)
            this.posNames[fs.bus] = fs.name
          }
          if (spec.cls === 'pos_out' || spec.cls === 'ext_out') this.outputs.push(fs)
        }
        perField.push(list)
      }
      this.instances.set(block.name, perField)
    }
    if (this.bitOuts.length > 128 || this.posOuts.length > 32) {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `simulated PandA blocks: ${this.bitOuts.length} bit outputs (bus of 128) and ` +
        `${this.posOuts.length} position outputs (bus of 32)`, { details: { bits: this.bitOuts.length, positions: this.posOuts.length } })
    }
  }

  /** A fresh change index (config_server.c get_change_index). */
  nextChangeIndex (): number {
    return ++this.#changeIndex
  }

  /** The FieldState of `BLOCK<n>.FIELD` (n 1-based). Throws if there is none: a programming error. */
  field (block: string, field: string, number = 1): FieldState {
    const b = this.blocks.find((x) => x.name === block)
    const i = b?.fields.findIndex((x) => x.name === field) ?? -1
    const fs = i < 0 ? undefined : this.instances.get(block)?.[i]?.[number - 1]
    if (fs === undefined) throw new FlyScanError(ErrorCode.BAD_INPUT, `simulated PandA has no field ${block}${number}.${field}`)
    return fs
  }

  /** All instances of a field. */
  fieldAll (block: string, field: string): FieldState[] {
    const b = this.blocks.find((x) => x.name === block)
    const i = b?.fields.findIndex((x) => x.name === field) ?? -1
    const list = i < 0 ? undefined : this.instances.get(block)?.[i]
    if (list === undefined) throw new FlyScanError(ErrorCode.BAD_INPUT, `simulated PandA has no field ${block}.${field}`)
    return list
  }

  #state (entity: Entity): FieldState {
    const spec = entity.field as FieldSpec
    const fi = entity.block.fields.indexOf(spec)
    return (this.instances.get(entity.block.name) as FieldState[][])[fi]?.[entity.index] as FieldState
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Targets

  /**
   * `block [number] ["." ("*" | field ["." ("*" | attr)])]`. `checkNumber`: a multi-instance block needs its
   * number when a field follows (not for `*DESC`/`*ENUMS`).
   */
  parseEntity (s: string, start: number, opts: { star: boolean, checkNumber: boolean }): Entity {
    const b = parseBlockName(s, start)
    const block = this.blocks.find((x) => x.name === b.value)
    if (block === undefined) fail('No such block')
    let i = b.end
    let index = 0
    let numberPresent = false
    if (isDigit(s[i])) {
      const n = parseUint(s, i)
      if (n.value < 1 || n.value > block.count) fail('Invalid block number')
      index = n.value - 1
      numberPresent = true
      i = n.end
    }
    const checkNumber = (): void => {
      if (opts.checkNumber && !numberPresent && block.count !== 1) fail('Missing block number')
    }
    let field: FieldSpec | undefined
    let attr: string | undefined
    let star = false
    if (s[i] === '.') {
      i++
      if (opts.star && s[i] === '*') {
        star = true
        i++
      } else {
        const fname = parseAlphanumName(s, i)
        field = block.fields.find((x) => x.name === fname.value)
        if (field === undefined) fail('No such field')
        i = fname.end
        if (s[i] === '.') {
          i++
          if (opts.star && s[i] === '*') {
            star = true
            i++
          } else {
            checkNumber()
            const a = parseName(s, i)
            if (!attributesOf(field).some((x) => x.name === a.value)) fail('No such attribute')
            attr = a.value
            i = a.end
          }
        } else {
          checkNumber()
        }
      }
    }
    return { block, index, field, attr, star, end: i }
  }

  /** An entity command target (`X?`, `X=`, `X<`): exactly one of the four forms, nothing after it. */
  #target (name: string): Entity {
    const e = this.parseEntity(name, 0, { star: true, checkNumber: true })
    parseEos(name, e.end)
    if (!e.star && e.field === undefined) fail('Missing field name')
    return e
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Entity commands

  get (name: string): Reply {
    const e = this.#target(name)
    if (e.star) return e.field === undefined ? this.#fieldList(e.block) : many(attributesOf(e.field).map((a) => a.name))
    const fs = this.#state(e)
    return e.attr === undefined ? this.#getField(fs) : this.#getAttr(fs, e.attr)
  }

  put (name: string, value: string): void {
    const e = this.#target(name)
    if (e.star) fail('Field not writeable')
    const fs = this.#state(e)
    if (e.attr === undefined) this.#putField(fs, value)
    else this.#putAttr(fs, e.attr, value)
  }

  /** Starts a table write (`X<`, `X<<`, `X<<|`, optional `B`); throws if the target is not a table. */
  putTable (name: string, streaming: boolean, last: boolean, binary: boolean): TableWriter {
    const e = this.#target(name)
    if (e.star || e.attr !== undefined) fail('Field not a table')
    const fs = this.#state(e)
    const table = fs.table
    if (table === undefined) fail('Field is not a table')
    if (table.writing) fail('Table currently being written')
    table.writing = true
    const data: number[] = []
    return {
      write: (line) => {
        const room = table.spec.maxWords - data.length
        if (binary) {
          const bytes = decodeBase64Line(line, room * 4)
          if (bytes.length % 4 !== 0) fail('Invalid data length')
          const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length)
          for (let k = 0; k < bytes.length; k += 4) data.push(view.getUint32(k, true))
        } else {
          let i = 0
          while (i < line.length) {
            if (data.length >= table.spec.maxWords) fail('Too many points for table')
            const n = parseUint(line, i)
            data.push(n.value)
            i = n.end
          }
        }
      },
      close: () => {
        table.writing = false
        if (data.length % table.spec.rowWords !== 0) fail('Table write is not a whole number of rows')
        this.#commitTable(fs, table, data, streaming, last)
      }
    }
  }

  /** Ends a table write that failed: the data lines were read and dropped. */
  abortTable (name: string): void {
    try {
      const e = this.#target(name)
      if (e.field !== undefined && !e.star && e.attr === undefined) {
        const t = this.#state(e).table
        if (t !== undefined) t.writing = false
      }
    } catch {}
  }

  #commitTable (fs: FieldState, table: TableState, data: number[], streaming: boolean, last: boolean): void {
    if (data.length === 0) {
      if (streaming) fail('Streaming table must have data')
      table.mode = 'INIT'
      table.words = []
      table.queued = []
    } else {
      switch (table.mode) {
        case 'INIT':
          table.mode = streaming ? (last ? 'STREAMING_LAST' : 'STREAMING') : 'FIXED'
          table.queued = []
          break
        case 'FIXED':
          table.queued = []
          if (streaming) table.mode = last ? 'STREAMING_LAST' : 'STREAMING'
          break
        case 'STREAMING':
          if (!streaming) fail('Table is in streaming mode')
          if (last) table.mode = 'STREAMING_LAST'
          break
        case 'STREAMING_LAST':
          fail('Last streaming table was sent')
      }
      if (table.mode === 'FIXED') table.words = data
      else {
        table.words = []
        table.queued.push(...data)
      }
    }
    fs.updateIndex = this.nextChangeIndex()
    this.#hooks.written(fs)
  }

  #fieldList (block: BlockSpec): Reply {
    return many(block.fields.map((spec, i) => `${spec.name} ${i} ${describe(spec)}`))
  }

  #getField (fs: FieldState): Reply {
    const spec = fs.spec
    switch (spec.cls) {
      case 'param':
      case 'read':
        return one(this.#formatValue(fs, spec.cls === 'read' ? this.#hooks.read(fs) : fs.value))
      case 'write': return fail('Field not readable')
      case 'time': return one(formatTime(fs.value, fs.timeUnits))
      case 'bit_out': return one(this.#hooks.bit(fs.bus) ? '1' : '0')
      case 'pos_out': return one(String(this.#hooks.position(fs.bus) | 0))
      case 'ext_out': return fail('Field not readable')
      case 'bit_mux': return one(this.bitMuxName(fs.value))
      case 'pos_mux': return one(this.posMuxName(fs.value))
      case 'table': return many((fs.table as TableState).words.map((w) => String(w >>> 0)))
    }
  }

  #formatValue (fs: FieldState, raw: number): string {
    switch (fs.spec.type ?? 'uint') {
      case 'uint': return String(raw >>> 0)
      case 'int': return String(raw | 0)
      case 'bit': return raw !== 0 ? '1' : '0'
      case 'time': return formatTime(raw, fs.timeUnits)
      case 'enum': {
        const label = fs.spec.labels?.[raw]
        if (label === undefined) fail('No label for value')
        return label
      }
      case 'action': return fail('Cannot read action value')
    }
  }

  bitMuxName (value: number): string {
    if (value === BIT_ZERO) return 'ZERO'
    if (value === BIT_ONE) return 'ONE'
    return this.bitNames[value] ?? 'ZERO'
  }

  posMuxName (value: number): string {
    return value === POS_ZERO ? 'ZERO' : this.posNames[value] ?? 'ZERO'
  }

  #putField (fs: FieldState, text: string): void {
    const spec = fs.spec
    switch (spec.cls) {
      case 'param':
      case 'write': {
        fs.value = this.#parseValue(fs, text)
        break
      }
      case 'time': {
        const d = parseDouble(text, 0)
        fs.value = ticksOf(d.value, fs.timeUnits, MAX_TIME_TICKS)
        parseEos(text, d.end)
        break
      }
      case 'bit_mux': {
        const v = this.bitMuxValue(text)
        if (v === undefined) fail('Invalid bit bus selection')
        fs.value = v
        break
      }
      case 'pos_mux': {
        const v = this.posMuxValue(text)
        if (v === undefined) fail('Invalid position selection')
        fs.value = v
        break
      }
      default:
        fail('Field not writeable')
    }
    fs.updateIndex = this.nextChangeIndex()
    this.#hooks.written(fs)
  }

  #parseValue (fs: FieldState, text: string): number {
    const type = fs.spec.type ?? 'uint'
    let value: number
    let end: number
    switch (type) {
      case 'uint': {
        const n = parseUint(text, 0)
        if (n.value > (fs.spec.max ?? 0xffffffff)) fail('Number out of range')
        value = n.value
        end = n.end
        break
      }
      case 'int': {
        const n = parseInt32(text, 0)
        value = n.value
        end = n.end
        break
      }
      case 'bit':
        if (text[0] !== '0' && text[0] !== '1') fail('Invalid bit value')
        value = text[0] === '1' ? 1 : 0
        end = 1
        break
      case 'enum': {
        const i = fs.spec.labels?.indexOf(text) ?? -1
        if (i < 0) fail('Invalid enumeration value')
        value = i
        end = text.length
        break
      }
      case 'time': {
        const d = parseDouble(text, 0)
        value = ticksOf(d.value, fs.timeUnits, MAX_PARAM_TIME_TICKS)
        end = d.end
        break
      }
      case 'action':
        value = 0
        end = 0
        break
    }
    parseEos(text, end)
    return value
  }

  bitMuxValue (text: string): number | undefined {
    if (text === 'ZERO') return BIT_ZERO
    if (text === 'ONE') return BIT_ONE
    const i = this.bitNames.indexOf(text)
    return i < 0 ? undefined : i
  }

  posMuxValue (text: string): number | undefined {
    if (text === 'ZERO') return POS_ZERO
    const i = this.posNames.indexOf(text)
    return i < 0 ? undefined : i
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Attributes

  #getAttr (fs: FieldState, attr: string): Reply {
    const spec = fs.spec
    switch (attr) {
      case 'MAX': return one(String(spec.max ?? 0xffffffff))
      case 'RAW': return one(String(fs.value))
      case 'UNITS':
        return one(spec.cls === 'pos_out' ? fs.units : TIME_UNIT_NAMES[fs.timeUnits] as string)
      case 'CAPTURE_WORD': return one(`PCAP.BITS${Math.floor(fs.bus / 32)}`)
      case 'OFFSET': return one(spec.cls === 'bit_out' ? String(fs.bus % 32) : formatDouble(fs.offset))
      case 'SCALED': return one(formatDouble((this.#hooks.position(fs.bus) | 0) * fs.scale + fs.offset))
      case 'SCALE': return one(formatDouble(fs.scale))
      case 'CAPTURE':
        return one(spec.cls === 'ext_out' ? (fs.capture ? 'Value' : 'No') : captureText(fs.captureMask))
      case 'BITS': {
        const g = spec.group ?? 0
        return many(Array.from({ length: 32 }, (_, k) => this.bitNames[32 * g + k] ?? ''))
      }
      case 'DELAY': return one(String(fs.delay))
      case 'MAX_DELAY': return one(String(MAX_BIT_MUX_DELAY))
      case 'LENGTH': return one(String((fs.table as TableState).words.length))
      case 'MAX_LENGTH': return one(String((fs.table as TableState).spec.maxWords))
      case 'FIELDS': return many((fs.table as TableState).spec.fields.map((x) => `${x.left}:${x.right} ${x.name} ${x.subtype}`))
      case 'B': return many(base64Lines((fs.table as TableState).words))
      case 'ROW_WORDS': return one(String((fs.table as TableState).spec.rowWords))
      case 'QUEUED_LINES': {
        const t = fs.table as TableState
        return one(String(Math.floor(t.queued.length / t.spec.rowWords)))
      }
      case 'MODE': return one((fs.table as TableState).mode)
    }
    fail('Attribute not readable')
  }

  #putAttr (fs: FieldState, attr: string, text: string): void {
    const spec = fs.spec
    switch (attr) {
      case 'RAW': {
        if (spec.cls === 'time') {
          const n = parseUint64(text, 0)
          parseEos(text, n.end)
          if (n.value > MAX_TIME_TICKS) fail('Number out of range')
          fs.value = n.value
        } else {
          const n = parseUint(text, 0)
          parseEos(text, n.end)
          fs.value = n.value
        }
        fs.updateIndex = this.nextChangeIndex()
        this.#hooks.written(fs)
        return
      }
      case 'UNITS':
        if (spec.cls === 'pos_out') {
          fs.units = text
        } else {
          const i = TIME_UNIT_NAMES.indexOf(text)
          if (i < 0) fail('Invalid time units')
          fs.timeUnits = i
          // Changing units changes how the value reads, so the value is reported as changed too (time.c).
          fs.updateIndex = this.nextChangeIndex()
        }
        break
      case 'SCALE':
      case 'OFFSET': {
        const d = parseDouble(text, 0)
        parseEos(text, d.end)
        if (attr === 'SCALE') fs.scale = d.value
        else fs.offset = d.value
        break
      }
      case 'CAPTURE':
        if (spec.cls === 'ext_out') {
          if (text !== 'No' && text !== 'Value') fail('Invalid capture option')
          fs.capture = text === 'Value'
        } else {
          fs.captureMask = parseCapture(text)
        }
        break
      case 'DELAY': {
        const n = parseUint(text, 0)
        parseEos(text, n.end)
        if (n.value > MAX_BIT_MUX_DELAY) fail('Delay too long')
        fs.delay = n.value
        break
      }
      default:
        fail('Attribute not writeable')
    }
    if (fs.attrIndex.has(attr)) fs.attrIndex.set(attr, this.nextChangeIndex())
    this.#hooks.written(fs, attr)
  }

  // ---------------------------------------------------------------------------------------------------------------
  // *DESC, *ENUMS, *CAPTURE

  /** `*DESC.block[.field[.attr | [].sub]]?` without the `DESC.` prefix. */
  desc (s: string): Reply {
    const e = this.parseEntity(s, 0, { star: false, checkNumber: false })
    const sub = this.#subfield(s, e)
    parseEos(s, sub.end)
    if (e.attr !== undefined) return one(attrDescription(e.attr))
    if (sub.field !== undefined) return one(sub.field.desc)
    if (e.field !== undefined) return one(e.field.desc)
    return one(e.block.desc)
  }

  /** `*ENUMS.block.field[.attr | [].sub]?` without the `ENUMS.` prefix. */
  enums (s: string): Reply {
    const e = this.parseEntity(s, 0, { star: false, checkNumber: false })
    const sub = this.#subfield(s, e)
    parseEos(s, sub.end)
    const field = e.field
    if (field === undefined) fail('Missing field name')
    if (e.attr !== undefined) {
      if (e.attr === 'UNITS' && field.cls !== 'pos_out') return many([...TIME_UNIT_NAMES])
      if (e.attr === 'CAPTURE') return many(field.cls === 'ext_out' ? ['No', 'Value'] : [...CAPTURE_ENUMS])
      fail('Attribute is not an enumeration')
    }
    if (sub.field !== undefined) {
      if (sub.field.labels === undefined) fail('Table sub-field is not an enumeration')
      return many([...sub.field.labels])
    }
    if (field.labels !== undefined && field.type === 'enum') return many([...field.labels])
    if (field.cls === 'bit_mux') return many(['ZERO', 'ONE', ...this.bitNames])
    if (field.cls === 'pos_mux') return many(['ZERO', ...this.posNames])
    fail('Field is not an enumeration')
  }

  #subfield (s: string, e: Entity): { field: TableSubfield | undefined, end: number } {
    if (e.field === undefined || e.attr !== undefined || s[e.end] !== '[') return { field: undefined, end: e.end }
    let i = expectChar(s, e.end, '[')
    i = expectChar(s, i, ']')
    i = expectChar(s, i, '.')
    const name = parseAlphanumName(s, i)
    const table = e.field.table
    if (table === undefined) fail('Field is not a table')
    const field = table.fields.find((x) => x.name === name.value)
    if (field === undefined) fail('Table sub-field not found')
    return { field, end: name.end }
  }

  /** What is captured, in registration order: `!INENC1.VAL Min Max`, `!PCAP.TS_TRIG Value`. */
  captureList (): string[] {
    const out: string[] = []
    for (const fs of this.outputs) {
      if (fs.spec.cls === 'ext_out') {
        if (fs.capture) out.push(`${fs.name} Value`)
      } else if (fs.captureMask !== 0) {
        out.push(`${fs.name} ${captureText(fs.captureMask)}`)
      }
    }
    return out
  }

  /** `*CAPTURE=`: capture nothing. */
  resetCapture (): void {
    for (const fs of this.outputs) {
      const was = fs.spec.cls === 'ext_out' ? fs.capture : fs.captureMask !== 0
      fs.capture = false
      fs.captureMask = 0
      if (was) fs.attrIndex.set('CAPTURE', this.nextChangeIndex())
    }
  }

  /** The options captured for one output, in option order. */
  captured (fs: FieldState): CaptureOption[] {
    if (fs.spec.cls === 'ext_out') return fs.capture ? ['Value'] : []
    return CAPTURE_OPTIONS.filter((_, i) => (fs.captureMask & (1 << i)) !== 0)
  }

  // ---------------------------------------------------------------------------------------------------------------
  // *CHANGES

  /** `*CHANGES[.group]?`: every change since this connection last asked, then the report point moves on. */
  changes (ctx: ChangeContext, mask: number): string[] {
    const report = this.#refresh(ctx, mask)
    const lines: string[] = []
    for (const fs of this.ordered) {
      const spec = fs.spec
      const group = changeGroupOf(spec)
      if (group !== undefined && group !== G.TABLE && (mask & (1 << group)) !== 0 && fs.updateIndex > (report[group] as number)) {
        lines.push(this.#changedValue(fs))
      }
      if (group === G.TABLE && (mask & (1 << G.TABLE)) !== 0 && fs.updateIndex > (report[G.TABLE] as number)) {
        lines.push(`${fs.name}<`)
      }
      if ((mask & (1 << G.ATTR)) !== 0) {
        for (const [attr, index] of fs.attrIndex) {
          if (index > (report[G.ATTR] as number)) {
            let text: string
            try {
              const r = this.#getAttr(fs, attr)
              text = `${fs.name}.${attr}=${r.kind === 'one' ? r.value : ''}`
            } catch {
              text = `${fs.name}.${attr} (error)`
            }
            lines.push(text)
          }
        }
      }
    }
    if ((mask & (1 << G.METADATA)) !== 0) {
      for (const [key, md] of this.metadata) {
        if (md.updateIndex > (report[G.METADATA] as number)) {
          lines.push(md.multiline ? `*METADATA.${key}<` : `*METADATA.${key}=${md.value[0] ?? ''}`)
        }
      }
    }
    return lines
  }

  #changedValue (fs: FieldState): string {
    try {
      const r = this.#getField(fs)
      return `${fs.name}=${r.kind === 'one' ? r.value : ''}`
    } catch (err) {
      if (err instanceof ParseError) return `${fs.name} (error)`
      throw err
    }
  }

  /** `*CHANGES=` (report from now on) or `*CHANGES=S` (report everything again). */
  resetChanges (ctx: ChangeContext, mask: number, fromStart: boolean): void {
    if (fromStart) {
      for (let g = 0; g < 7; g++) if ((mask & (1 << g)) !== 0) ctx.reported[g] = 0
    } else {
      this.#refresh(ctx, mask)
    }
  }

  /** Takes a fresh index for the groups asked, polls bits, positions and read registers, returns what was reported. */
  #refresh (ctx: ChangeContext, mask: number): number[] {
    const index = this.nextChangeIndex()
    const report: number[] = []
    for (let g = 0; g < 7; g++) {
      if ((mask & (1 << g)) !== 0) {
        report[g] = ctx.reported[g] as number
        ctx.reported[g] = index
      } else {
        report[g] = Infinity
      }
    }
    if ((mask & (1 << G.BITS)) !== 0) this.pollBits(index)
    if ((mask & (1 << G.POSN)) !== 0) this.pollPositions(index)
    if ((mask & (1 << G.READ)) !== 0) this.#pollReads(index)
    return report
  }

  pollBits (index = this.nextChangeIndex()): void {
    for (const fs of this.bitOuts) {
      const n = this.#hooks.bitChanges(fs.bus)
      if (fs.polled !== n) {
        fs.polled = n
        if (index > fs.updateIndex) fs.updateIndex = index
      }
    }
  }

  pollPositions (index = this.nextChangeIndex()): void {
    for (const fs of this.posOuts) {
      const v = this.#hooks.position(fs.bus) | 0
      if (fs.polled !== v) {
        fs.polled = v
        if (index > fs.updateIndex) fs.updateIndex = index
      }
    }
  }

  #pollReads (index: number): void {
    for (const fs of this.ordered) {
      if (fs.spec.cls !== 'read') continue
      const v = this.#hooks.read(fs)
      if (fs.polled !== v) {
        fs.polled = v
        if (index > fs.updateIndex) fs.updateIndex = index
      }
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // *METADATA

  getMetadata (key: string): Reply {
    const md = this.metadata.get(key)
    if (md === undefined) fail(`Metadata key ${key} not found`)
    return md.multiline ? many([...md.value]) : one(md.value[0] ?? '')
  }

  putMetadata (key: string, value: string): void {
    const md = this.metadata.get(key)
    if (md === undefined) fail(`Metadata key ${key} not found`)
    if (md.multiline) fail('Cannot write to this field')
    md.value = [value]
    md.updateIndex = this.nextChangeIndex()
  }

  putMetadataTable (key: string): TableWriter {
    const md = this.metadata.get(key)
    if (md === undefined) fail(`Metadata key ${key} not found`)
    if (!md.multiline) fail('Not a multi-line field')
    const lines: string[] = []
    return {
      write: (line) => { lines.push(line) },
      close: () => {
        md.value = lines
        md.updateIndex = this.nextChangeIndex()
      }
    }
  }
}

/** Which change group reports a field's value (undefined: none). */
function changeGroupOf (spec: FieldSpec): number | undefined {
  switch (spec.cls) {
    case 'param': case 'time': case 'bit_mux': case 'pos_mux': return G.CONFIG
    case 'bit_out': return G.BITS
    case 'pos_out': return G.POSN
    case 'read': return G.READ
    case 'table': return G.TABLE
    default: return undefined
  }
}

/** The class and type words of a `BLOCK.*?` line. */
function describe (spec: FieldSpec): string {
  switch (spec.cls) {
    case 'param': case 'read': case 'write': return `${spec.cls} ${spec.type ?? 'uint'}`
    case 'ext_out': return `ext_out ${spec.ext ?? 'timestamp'}`
    default: return spec.cls
  }
}

function attrDescription (attr: string): string {
  const text: Record<string, string> = {
    MAX: 'Maximum valid value for this field',
    RAW: 'Time in ticks',
    UNITS: 'Units',
    CAPTURE_WORD: 'Name of field containing this bit',
    OFFSET: 'Offset',
    SCALED: 'Value with scaling applied',
    SCALE: 'Scale factor',
    CAPTURE: 'Capture options',
    BITS: 'Enumerate bits captured in this word',
    DELAY: 'Clock delay on input',
    MAX_DELAY: 'Maximum valid input delay',
    LENGTH: 'Number of entries in table',
    MAX_LENGTH: 'Maximum number of entries in table',
    FIELDS: 'List of sub-fields for this table',
    B: 'Table in base-64 representation',
    ROW_WORDS: 'Number of words per table row',
    QUEUED_LINES: 'Number of lines scheduled',
    MODE: 'Current table mode'
  }
  return text[attr] ?? attr
}

/** `Min Max Mean`, or `No`. */
export function captureText (mask: number): string {
  const words = CAPTURE_OPTIONS.filter((_, i) => (mask & (1 << i)) !== 0)
  return words.length === 0 ? 'No' : words.join(' ')
}

/** A pos_out CAPTURE value: `No`, or capture option names separated by spaces, in any order. */
function parseCapture (text: string): number {
  if (text === 'No') return 0
  let mask = 0
  let i = 0
  while (i < text.length) {
    const n = parseName(text, i)
    i = n.end
    while (text[i] === ' ' || text[i] === '\t') i++
    const k = CAPTURE_OPTIONS.indexOf(n.value as CaptureOption)
    if (k < 0) fail(`Unknown capture option "${n.value}"`)
    mask |= 1 << k
  }
  return mask
}

/** A time value as the server prints it: seconds in the field's units, `%.10g`. */
function formatTime (ticks: number, units: number): string {
  return formatDouble(ticks / (TIME_UNITS[units]?.[1] ?? 1) / CLOCK_HZ)
}

/** A time written in `units` as ticks (time.c time_class_parse: range checked before rounding). */
function ticksOf (value: number, units: number, max: number): number {
  const ticks = value * (TIME_UNITS[units]?.[1] ?? 1) * CLOCK_HZ
  if (!(ticks >= 0 && ticks <= max)) fail('Time setting out of range')
  return Math.round(ticks)
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
const B64_DECODE = new Map([...B64].map((c, i) => [c, i]))

/** One base64 line of a table write, as server/base64.c decodes it. */
function decodeBase64Line (line: string, maxBytes: number): Uint8Array {
  let n = line.length
  if (n % 4 === 0 && n > 0) {
    if (line[n - 1] === '=') n--
    if (line[n - 1] === '=') n--
  }
  let bytes = 3 * Math.floor(n / 4)
  if (n % 4 > 0) bytes += n % 4 - 1
  if (bytes > maxBytes) fail('Input string too long for output buffer')
  if (n % 4 === 1) fail('Malformed base64 string')
  for (let i = 0; i < n; i++) if (!B64_DECODE.has(line[i] as string)) fail('Malformed base64 string')
  return Buffer.from(line.slice(0, n), 'base64')
}

/** A table's words as base64 lines of 48 bytes (table.c write_base_64). */
function base64Lines (words: readonly number[]): string[] {
  const bytes = Buffer.alloc(words.length * 4)
  words.forEach((w, i) => bytes.writeUInt32LE(w >>> 0, i * 4))
  const lines: string[] = []
  for (let o = 0; o < bytes.length; o += 48) lines.push(bytes.subarray(o, o + 48).toString('base64'))
  return lines
}
