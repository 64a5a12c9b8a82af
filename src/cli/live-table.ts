/**
 * A live table of a run's events, in the manner of bluesky's BestEffortCallback: a document subscriber that prints
 * the run's ids at start, a header when the table's stream (default 'primary') gets its descriptor, one row per event
 * (event pages are unpacked into rows), and a closing border and a summary line at stop:
 *
 *   +-----------+------------+------------+------------+
 *   |   seq_num |       time |        rot |        det |
 *   +-----------+------------+------------+------------+
 *   |         1 | 22:13:20.0 |      0.000 |       1001 |
 *   +-----------+------------+------------+------------+
 *   generator count ['1f0e2a3b'] (scan num: 3)
 *
 * Columns: the fields named by the descriptor's hints (`{ <object>: { fields: [...] } }`) when it has any, else
 * every data key in the descriptor's order (or `options.fields`). Columns have fixed widths (seq_num 9, time 10, data keys max(10, name length)), values right-aligned. Numbers use
 * the data key's precision (default 3), integers are printed whole. Array-shaped and external (`STREAM:`) keys are
 * not tabulated; a stream with nothing else gets one line instead of a table. Lines go to an injectable writer, so the table is testable and can go anywhere.
 */
import {
  isDocument, unpackEventPage, type DataKey, type Document, type DocumentCallback, type DocumentName, type Event,
  type EventDescriptor, type RunStart, type RunStop
} from '../documents/index.js'

export interface LiveTableOptions {
  /** Gets every line, without its newline (default: process.stdout). */
  readonly write?: (line: string) => void
  /** The stream tabulated (default 'primary'). */
  readonly stream?: string
  /** Only these data keys, in this order (default: the descriptor's hinted fields, else every key in its order). */
  readonly fields?: readonly string[]
  /** Digits after the point for numbers whose data key gives no precision (default 3). */
  readonly defaultPrecision?: number
  /** Format times in UTC rather than local time (tests). */
  readonly utc?: boolean
}

interface Column {
  readonly key: string
  readonly width: number
  readonly dataKey: DataKey
}

const SEQ_WIDTH = 9
const TIME_WIDTH = 10
const MIN_WIDTH = 10

function two (n: number): string {
  return String(n).padStart(2, '0')
}

/** `HH:MM:SS.s` of a time in seconds since the epoch (the tenth truncated, as a clock shows it). */
export function formatClockTime (seconds: number, utc = false): string {
  const ms = Math.floor(seconds * 1000)
  const d = new Date(ms)
  const h = utc ? d.getUTCHours() : d.getHours()
  const m = utc ? d.getUTCMinutes() : d.getMinutes()
  const s = utc ? d.getUTCSeconds() : d.getSeconds()
  return `${two(h)}:${two(m)}:${two(s)}.${Math.floor((((ms % 1000) + 1000) % 1000) / 100)}`
}

/** `YYYY-MM-DD HH:MM:SS` of a time in seconds since the epoch. */
function formatDateTime (seconds: number, utc: boolean): string {
  const d = new Date(Math.floor(seconds * 1000))
  const date = utc
    ? `${d.getUTCFullYear()}-${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())}`
    : `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`
  return `${date} ${formatClockTime(seconds, utc).slice(0, 8)}`
}

/** One cell's text for `value` under `dataKey`, at most `width` characters where it can be. */
export function formatValue (value: unknown, dataKey: DataKey, width: number, defaultPrecision = 3): string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return String(value)
    if (dataKey.dtype === 'integer' && Number.isInteger(value)) return String(value)
    const precision = typeof dataKey.precision === 'number' && dataKey.precision >= 0 ? Math.min(dataKey.precision, 20) : defaultPrecision
    const fixed = value.toFixed(precision)
    return fixed.length <= width ? fixed : value.toExponential(Math.max(0, Math.min(precision, width - 7)))
  }
  if (value === undefined || value === null) return ''
  const text = String(value)
  return text.length <= width ? text : text.slice(0, width - 1) + '~'
}

function isTabulated (key: DataKey): boolean {
  return key.external === undefined && key.dtype !== 'array' && Array.isArray(key.shape) && key.shape.length === 0
}

/** The fields the descriptor's per-object hints name (`{ det: { fields: ['det'] } }`), or undefined when none do. */
function hintedFields (doc: EventDescriptor): string[] | undefined {
  let hinted = false
  const out: string[] = []
  for (const hint of Object.values(doc.hints)) {
    const fields: unknown = typeof hint === 'object' && hint !== null ? (hint as { fields?: unknown }).fields : undefined
    if (!Array.isArray(fields)) continue
    hinted = true
    for (const f of fields) if (typeof f === 'string' && !out.includes(f)) out.push(f)
  }
  return hinted ? out : undefined
}

export class LiveTable {
  readonly #write: (line: string) => void
  readonly #stream: string
  readonly #fields: readonly string[] | undefined
  readonly #precision: number
  readonly #utc: boolean
  #start: RunStart | null = null
  #descriptor: string | null = null
  #columns: Column[] = []
  #border = ''

  constructor (options: LiveTableOptions = {}) {
    this.#write = options.write ?? ((line) => { process.stdout.write(line + '\n') })
    this.#stream = options.stream ?? 'primary'
    this.#fields = options.fields
    this.#precision = options.defaultPrecision ?? 3
    this.#utc = options.utc ?? false
  }

  /** The document subscriber: `RE.subscribe(table.callback)`. */
  readonly callback: DocumentCallback = (name, doc) => { this.document(name, doc) }

  document (name: DocumentName, doc: Document): void {
    if (isDocument('start', name, doc)) this.#onStart(doc)
    else if (isDocument('descriptor', name, doc)) this.#onDescriptor(doc)
    else if (isDocument('event', name, doc)) this.#onEvent(doc)
    else if (isDocument('event_page', name, doc)) {
      if (doc.descriptor === this.#descriptor) for (const event of unpackEventPage(doc)) this.#onEvent(event)
    } else if (isDocument('stop', name, doc)) this.#onStop(doc)
  }

  #onStart (doc: RunStart): void {
    this.#start = doc
    this.#descriptor = null
    this.#columns = []
    this.#write('')
    this.#write(`Transient Scan ID: ${doc.scan_id ?? '?'}     Time: ${formatDateTime(doc.time, this.#utc)}`)
    this.#write(`Persistent Unique Scan ID: '${doc.uid}'`)
  }

  #onDescriptor (doc: EventDescriptor): void {
    if (doc.name !== this.#stream || this.#start === null || doc.run_start !== this.#start.uid) return
    this.#descriptor = doc.uid
    const keys = this.#fields ?? hintedFields(doc) ?? Object.keys(doc.data_keys)
    this.#columns = []
    for (const key of keys) {
      const dataKey = doc.data_keys[key]
      if (dataKey === undefined || !isTabulated(dataKey)) continue
      this.#columns.push({ key, width: Math.max(MIN_WIDTH, key.length), dataKey })
    }
    if (this.#columns.length === 0) {
      // Every value is external (a fly scan's STREAM: keys) or an array: there is nothing to tabulate.
      this.#write(`New stream: '${doc.name}' (${Object.keys(doc.data_keys).length} keys, all in files)`)
      return
    }
    const widths = [SEQ_WIDTH, TIME_WIDTH, ...this.#columns.map((c) => c.width)]
    this.#border = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+'
    this.#write(`New stream: '${doc.name}'`)
    this.#write(this.#border)
    this.#write(this.#row(['seq_num', 'time', ...this.#columns.map((c) => c.key)], widths))
    this.#write(this.#border)
  }

  #onEvent (doc: Event): void {
    if (doc.descriptor !== this.#descriptor) return
    const widths = [SEQ_WIDTH, TIME_WIDTH, ...this.#columns.map((c) => c.width)]
    const cells = [
      String(doc.seq_num),
      formatClockTime(doc.time, this.#utc),
      ...this.#columns.map((c) => formatValue(doc.data[c.key], c.dataKey, c.width, this.#precision))
    ]
    this.#write(this.#row(cells, widths))
  }

  #onStop (doc: RunStop): void {
    const start = this.#start
    if (start === null || doc.run_start !== start.uid) return
    if (this.#descriptor !== null) this.#write(this.#border)
    this.#write(`generator ${start.plan_name ?? '(unnamed)'} ['${start.uid.slice(0, 8)}'] (scan num: ${start.scan_id ?? '?'})`)
    if (doc.exit_status !== 'success') this.#write(`exit_status ${doc.exit_status}: ${doc.reason}`)
    this.#write('')
    this.#start = null
    this.#descriptor = null
  }

  #row (cells: readonly string[], widths: readonly number[]): string {
    return '|' + cells.map((c, i) => ` ${c.padStart(widths[i] as number)} `).join('|') + '|'
  }
}

/** A live table subscriber writing to `options.write` (default stdout). */
export function liveTable (options: LiveTableOptions = {}): DocumentCallback {
  return new LiveTable(options).callback
}
