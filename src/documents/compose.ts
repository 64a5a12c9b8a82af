/**
 * Composing a run's documents, in the manner of event-model's compose_run: a RunBundle made from the start document
 * composes the descriptors, stream resources and the stop document; a DescriptorBundle composes the events and event
 * pages of one stream; a StreamResourceBundle composes the stream datums of one resource. The bundles keep the
 * per-run state (seq_num counters, num_events, datum counters) so callers never number anything themselves.
 *
 * Inputs that would produce a schema-invalid or inconsistent document are refused with FlyScanError BAD_INPUT naming
 * the key, the value and the rule, so a bad document never reaches a subscriber.
 */
import { randomUUID } from 'node:crypto'
import { ErrorCode, FlyScanError } from '../errors.js'
import type {
  ConfigurationReading, DataKey, Dtype, Event, EventDescriptor, EventPage, ExitStatus, RunStart, RunStop, StreamDatum,
  StreamRange, StreamResource
} from './types.js'

/** A new uid (uuid4). */
export function newUid (): string {
  return randomUUID()
}

/** Seconds since the epoch as a float, with sub-millisecond resolution. */
export function nowSeconds (): number {
  return (performance.timeOrigin + performance.now()) / 1000
}

export interface ComposeRunOptions {
  /** Everything else the start document says: scan_id, plan_name, plan_args, hints, beamline_id, cycle, ... */
  readonly metadata?: Record<string, unknown>
  readonly uid?: string
  readonly time?: number
  /** The clock for documents composed without an explicit time (default nowSeconds); inject one for virtual time. */
  readonly now?: () => number
}

export interface ComposeDescriptorOptions {
  /** The stream name, e.g. 'primary'. */
  readonly name: string
  readonly dataKeys: Record<string, DataKey>
  readonly objectKeys?: Record<string, string[]>
  readonly configuration?: Record<string, ConfigurationReading>
  readonly hints?: Record<string, unknown>
  readonly time?: number
  readonly uid?: string
}

export interface ComposeEventOptions {
  readonly data: Record<string, unknown>
  readonly timestamps: Record<string, number>
  /** Default: the stream's next seq_num. */
  readonly seqNum?: number
  readonly time?: number
  readonly filled?: Record<string, boolean>
  readonly uid?: string
}

export interface ComposeEventPageOptions {
  readonly data: Record<string, unknown[]>
  readonly timestamps: Record<string, number[]>
  /** Default: the stream's next seq_nums. */
  readonly seqNum?: number[]
  /** Default: now, for every row. */
  readonly time?: number[]
  readonly filled?: Record<string, boolean[]>
  readonly uid?: string[]
}

export interface ComposeStreamResourceOptions {
  readonly dataKey: string
  readonly mimetype: string
  readonly uri: string
  readonly parameters: Record<string, unknown>
  readonly uid?: string
}

export interface ComposeStreamDatumOptions {
  /** The uid of the descriptor whose data key the resource holds. */
  readonly descriptor: string
  /** Rows of the external dataset, start ≤ row < stop. */
  readonly indices: StreamRange
  /** Default: the stream's next seq_nums, as many as indices. */
  readonly seqNums?: StreamRange
}

export interface ComposeStopOptions {
  readonly exitStatus: ExitStatus
  readonly reason?: string
  readonly time?: number
  /** Keys added to the document (event-model allows keys without '.' or '/'; run_stop's own fields are refused). */
  readonly extra?: Readonly<Record<string, unknown>>
}

export interface RunBundle {
  readonly startDoc: RunStart
  composeDescriptor (opts: ComposeDescriptorOptions): DescriptorBundle
  composeStreamResource (opts: ComposeStreamResourceOptions): StreamResourceBundle
  /** The stop document; num_events counts, per stream name, the events, page rows and stream-datum seq_nums composed. */
  composeStop (opts: ComposeStopOptions): RunStop
}

export interface DescriptorBundle {
  readonly descriptorDoc: EventDescriptor
  composeEvent (opts: ComposeEventOptions): Event
  composeEventPage (opts: ComposeEventPageOptions): EventPage
}

export interface StreamResourceBundle {
  readonly streamResourceDoc: StreamResource
  composeStreamDatum (opts: ComposeStreamDatumOptions): StreamDatum
}

const DTYPES: ReadonlySet<string> = new Set<Dtype>(['string', 'number', 'array', 'boolean', 'integer'])
const EXIT_STATUSES: ReadonlySet<string> = new Set<ExitStatus>(['success', 'abort', 'fail'])
/** event-model forbids '.' and '/' in the keys of start, descriptor and stop documents (and of objects in them). */
const BAD_KEY = /[./]/
/** run_stop's own fields: extra keys may not replace them. */
const STOP_FIELDS: ReadonlySet<string> = new Set(['uid', 'time', 'run_start', 'exit_status', 'reason', 'num_events', 'data_type'])

function badInput (message: string, details: Record<string, string | number | boolean | null> = {}): FlyScanError {
  return new FlyScanError(ErrorCode.BAD_INPUT, message, { details })
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value)
}

function checkTime (time: number, what: string): number {
  if (typeof time !== 'number' || !Number.isFinite(time)) throw badInput(`${what}: time ${String(time)} is not a finite number of seconds`, { what })
  return time
}

function checkUid (uid: string, what: string): string {
  if (typeof uid !== 'string' || uid.length === 0) throw badInput(`${what}: uid ${JSON.stringify(uid)} must be a non-empty string`, { what })
  return uid
}

/** Keys (at any depth of plain objects) must not contain '.' or '/'. */
function checkKeys (value: unknown, path: string, depth = 0): void {
  if (depth > 32 || !isPlainObject(value)) {
    if (Array.isArray(value) && depth <= 32) value.forEach((v, i) => { checkKeys(v, `${path}[${i}]`, depth + 1) })
    return
  }
  for (const [key, v] of Object.entries(value)) {
    if (BAD_KEY.test(key)) throw badInput(`${path}: key ${JSON.stringify(key)} contains '.' or '/', which event-model forbids`, { path, key })
    checkKeys(v, `${path}.${key}`, depth + 1)
  }
}

function checkDataKey (name: string, key: DataKey, where: string): void {
  if (!isPlainObject(key)) throw badInput(`${where}: data key ${JSON.stringify(name)} is not an object`, { key: name })
  if (!DTYPES.has(key.dtype)) throw badInput(`${where}: data key ${JSON.stringify(name)} has dtype ${JSON.stringify(key.dtype)}; expected one of ${[...DTYPES].join(', ')}`, { key: name })
  if (!Array.isArray(key.shape) || !key.shape.every(n => Number.isInteger(n) && n >= 0)) {
    throw badInput(`${where}: data key ${JSON.stringify(name)} has shape ${JSON.stringify(key.shape)}; expected an array of non-negative integers`, { key: name })
  }
  if (typeof key.source !== 'string') throw badInput(`${where}: data key ${JSON.stringify(name)} has no source string`, { key: name })
  if (key.external !== undefined && key.external !== 'STREAM:') {
    throw badInput(`${where}: data key ${JSON.stringify(name)} has external ${JSON.stringify(key.external)}; only "STREAM:" is supported`, { key: name })
  }
  if (key.dtype_numpy !== undefined && (typeof key.dtype_numpy !== 'string' || !/[|<>][tbiufcmMOSUV][0-9]+/.test(key.dtype_numpy))) {
    throw badInput(`${where}: data key ${JSON.stringify(name)} has dtype_numpy ${JSON.stringify(key.dtype_numpy)}; expected a numpy dtype string such as "<f8"`, { key: name })
  }
  if (key.precision !== undefined && key.precision !== null && !Number.isInteger(key.precision)) {
    throw badInput(`${where}: data key ${JSON.stringify(name)} has precision ${String(key.precision)}; expected an integer`, { key: name })
  }
}

function checkDataKeys (dataKeys: Record<string, DataKey>, where: string): void {
  if (!isPlainObject(dataKeys)) throw badInput(`${where}: data_keys must be an object`)
  for (const [name, key] of Object.entries(dataKeys)) checkDataKey(name, key, where)
}

/** The keys of `given` must be exactly `expected`; names the first extra or missing key. */
function checkSameKeys (given: Record<string, unknown>, expected: ReadonlySet<string>, what: string, stream: string): void {
  if (!isPlainObject(given)) throw badInput(`stream ${JSON.stringify(stream)}: ${what} must be an object`, { stream })
  for (const key of Object.keys(given)) {
    if (!expected.has(key)) throw badInput(`stream ${JSON.stringify(stream)}: ${what} key ${JSON.stringify(key)} is not a data key of the descriptor (${[...expected].join(', ')})`, { stream, key })
  }
  for (const key of expected) {
    if (!Object.hasOwn(given, key)) throw badInput(`stream ${JSON.stringify(stream)}: ${what} is missing data key ${JSON.stringify(key)}`, { stream, key })
  }
}

function checkRange (range: StreamRange, what: string): void {
  if (!isPlainObject(range) || !Number.isInteger(range.start) || !Number.isInteger(range.stop)) {
    throw badInput(`${what} ${JSON.stringify(range)} must be {start, stop} integers`, { what })
  }
  if (range.start < 0) throw badInput(`${what}.start ${range.start} is negative`, { what, start: range.start })
  if (range.stop < range.start) throw badInput(`${what}.stop ${range.stop} is less than ${what}.start ${range.start}`, { what, start: range.start, stop: range.stop })
}

function checkSeqNum (seqNum: number, stream: string): void {
  if (!Number.isInteger(seqNum) || seqNum < 1) throw badInput(`stream ${JSON.stringify(stream)}: seq_num ${seqNum} must be an integer ≥ 1`, { stream, seqNum })
}

/** State shared by the bundles of one run. */
interface RunState {
  readonly runStart: string
  readonly now: () => number
  stopped: boolean
  /** Descriptor uid → its stream. */
  readonly descriptors: Map<string, StreamState>
  /** Stream name → data key names of its first descriptor. */
  readonly streamKeys: Map<string, ReadonlySet<string>>
  /** Stream name → events counted. */
  readonly numEvents: Map<string, number>
}

interface StreamState {
  readonly doc: EventDescriptor
  readonly keys: ReadonlySet<string>
  /** The last seq_num issued in this descriptor's stream. */
  lastSeqNum: number
}

function assertOpen (run: RunState, what: string): void {
  if (run.stopped) throw badInput(`${what}: run ${run.runStart} is already stopped`, { runStart: run.runStart })
}

function count (run: RunState, stream: string, n: number): void {
  run.numEvents.set(stream, (run.numEvents.get(stream) ?? 0) + n)
}

/** Compose a run: its start document now, and the bundles that compose the rest. */
export function composeRun (options: ComposeRunOptions = {}): RunBundle {
  const now = options.now ?? nowSeconds
  const metadata = options.metadata ?? {}
  if (!isPlainObject(metadata)) throw badInput('run_start: metadata must be an object')
  for (const reserved of ['uid', 'time']) {
    if (Object.hasOwn(metadata, reserved)) throw badInput(`run_start: metadata must not set ${JSON.stringify(reserved)}; pass it as the ${reserved} option`, { key: reserved })
  }
  checkKeys(metadata, 'run_start')
  const scanId = metadata.scan_id
  if (scanId !== undefined && !Number.isInteger(scanId)) throw badInput(`run_start: scan_id ${JSON.stringify(scanId)} must be an integer`, { key: 'scan_id' })
  for (const key of ['data_session', 'cycle', 'beamline_id', 'plan_name', 'plan_type']) {
    const value = metadata[key]
    if (value !== undefined && typeof value !== 'string') throw badInput(`run_start: ${key} ${JSON.stringify(value)} must be a string`, { key })
  }
  for (const key of ['hints', 'plan_args']) {
    const value = metadata[key]
    if (value !== undefined && !isPlainObject(value)) throw badInput(`run_start: ${key} must be an object`, { key })
  }
  const startDoc: RunStart = {
    ...metadata,
    uid: checkUid(options.uid ?? newUid(), 'run_start'),
    time: checkTime(options.time ?? now(), 'run_start')
  }
  const run: RunState = {
    runStart: startDoc.uid,
    now,
    stopped: false,
    descriptors: new Map(),
    streamKeys: new Map(),
    numEvents: new Map()
  }

  return {
    startDoc,
    composeDescriptor: (opts) => composeDescriptor(run, opts),
    composeStreamResource: (opts) => composeStreamResource(run, opts),
    composeStop: (opts) => {
      assertOpen(run, 'run_stop')
      if (!EXIT_STATUSES.has(opts.exitStatus)) throw badInput(`run_stop: exit_status ${JSON.stringify(opts.exitStatus)} must be one of success, abort, fail`, { exitStatus: String(opts.exitStatus) })
      if (opts.reason !== undefined && typeof opts.reason !== 'string') throw badInput('run_stop: reason must be a string')
      const extra = opts.extra ?? {}
      for (const key of Object.keys(extra)) {
        if (BAD_KEY.test(key) || key === '' || STOP_FIELDS.has(key)) {
          throw badInput(`run_stop: extra key ${JSON.stringify(key)} is not allowed (no '.' or '/', not one of ${[...STOP_FIELDS].join(', ')})`, { key })
        }
      }
      const doc: RunStop = {
        ...extra,
        uid: newUid(),
        time: checkTime(opts.time ?? now(), 'run_stop'),
        run_start: run.runStart,
        exit_status: opts.exitStatus,
        reason: opts.reason ?? '',
        num_events: Object.fromEntries(run.numEvents)
      }
      run.stopped = true
      return doc
    }
  }
}

function composeDescriptor (run: RunState, opts: ComposeDescriptorOptions): DescriptorBundle {
  const name = opts.name
  if (typeof name !== 'string' || name.length === 0) throw badInput(`descriptor: stream name ${JSON.stringify(name)} must be a non-empty string`)
  const where = `descriptor ${JSON.stringify(name)}`
  assertOpen(run, where)
  checkDataKeys(opts.dataKeys, where)
  checkKeys(opts.dataKeys, where)
  const keys: ReadonlySet<string> = new Set(Object.keys(opts.dataKeys))
  const previous = run.streamKeys.get(name)
  if (previous !== undefined && (previous.size !== keys.size || [...keys].some(k => !previous.has(k)))) {
    throw badInput(`${where}: a descriptor of this stream already has data keys ${[...previous].join(', ')}; a new descriptor of the same stream must have the same keys, not ${[...keys].join(', ')}`, { stream: name })
  }
  const objectKeys = opts.objectKeys ?? {}
  for (const [object, names] of Object.entries(objectKeys)) {
    if (!Array.isArray(names)) throw badInput(`${where}: object_keys[${JSON.stringify(object)}] must be an array of data key names`, { object })
    for (const key of names) {
      if (!keys.has(key)) throw badInput(`${where}: object_keys[${JSON.stringify(object)}] names ${JSON.stringify(key)}, which is not a data key`, { object, key })
    }
  }
  const configuration = opts.configuration ?? {}
  for (const [object, reading] of Object.entries(configuration)) {
    const cwhere = `${where} configuration ${JSON.stringify(object)}`
    if (!isPlainObject(reading)) throw badInput(`${cwhere} must be {data, timestamps, data_keys}`, { object })
    checkDataKeys(reading.data_keys, cwhere)
    const ckeys = new Set(Object.keys(reading.data_keys))
    for (const part of ['data', 'timestamps'] as const) {
      if (!isPlainObject(reading[part])) throw badInput(`${cwhere}: ${part} must be an object`, { object })
      for (const key of Object.keys(reading[part])) {
        if (!ckeys.has(key)) throw badInput(`${cwhere}: ${part} key ${JSON.stringify(key)} is not in its data_keys`, { object, key })
      }
    }
    checkKeys(reading, cwhere)
  }
  const hints = opts.hints ?? {}
  if (!isPlainObject(hints)) throw badInput(`${where}: hints must be an object`)
  checkKeys(hints, where)

  const descriptorDoc: EventDescriptor = {
    uid: checkUid(opts.uid ?? newUid(), where),
    time: checkTime(opts.time ?? run.now(), where),
    run_start: run.runStart,
    name,
    data_keys: opts.dataKeys,
    object_keys: objectKeys,
    configuration,
    hints
  }
  if (run.descriptors.has(descriptorDoc.uid)) throw badInput(`${where}: descriptor uid ${descriptorDoc.uid} is already used`, { uid: descriptorDoc.uid })
  const stream: StreamState = { doc: descriptorDoc, keys, lastSeqNum: 0 }
  run.descriptors.set(descriptorDoc.uid, stream)
  if (previous === undefined) run.streamKeys.set(name, keys)
  if (!run.numEvents.has(name)) run.numEvents.set(name, 0)

  return {
    descriptorDoc,
    composeEvent: (e) => {
      const ewhere = `event of stream ${JSON.stringify(name)}`
      assertOpen(run, ewhere)
      checkSameKeys(e.data, keys, 'event data', name)
      checkSameKeys(e.timestamps, keys, 'event timestamps', name)
      for (const [key, ts] of Object.entries(e.timestamps)) {
        if (typeof ts !== 'number' || !Number.isFinite(ts)) throw badInput(`${ewhere}: timestamp of ${JSON.stringify(key)} is ${String(ts)}, not a finite number`, { stream: name, key })
      }
      const filled = e.filled ?? {}
      for (const key of Object.keys(filled)) {
        if (!keys.has(key)) throw badInput(`${ewhere}: filled key ${JSON.stringify(key)} is not a data key of the descriptor`, { stream: name, key })
      }
      const seqNum = e.seqNum ?? stream.lastSeqNum + 1
      checkSeqNum(seqNum, name)
      const event: Event = {
        uid: checkUid(e.uid ?? newUid(), ewhere),
        time: checkTime(e.time ?? run.now(), ewhere),
        descriptor: descriptorDoc.uid,
        seq_num: seqNum,
        data: e.data,
        timestamps: e.timestamps,
        filled
      }
      stream.lastSeqNum = Math.max(stream.lastSeqNum, seqNum)
      count(run, name, 1)
      return event
    },
    composeEventPage: (p) => {
      const pwhere = `event_page of stream ${JSON.stringify(name)}`
      assertOpen(run, pwhere)
      checkSameKeys(p.data, keys, 'event_page data', name)
      checkSameKeys(p.timestamps, keys, 'event_page timestamps', name)
      const columns: Array<[string, unknown]> = [...Object.entries(p.data).map(([k, v]): [string, unknown] => [`data.${k}`, v]),
        ...Object.entries(p.timestamps).map(([k, v]): [string, unknown] => [`timestamps.${k}`, v]),
        ...Object.entries(p.filled ?? {}).map(([k, v]): [string, unknown] => [`filled.${k}`, v])]
      if (p.seqNum !== undefined) columns.push(['seq_num', p.seqNum])
      if (p.time !== undefined) columns.push(['time', p.time])
      if (p.uid !== undefined) columns.push(['uid', p.uid])
      let rows: number | undefined
      for (const [column, values] of columns) {
        if (!Array.isArray(values)) throw badInput(`${pwhere}: column ${column} must be an array`, { stream: name, column })
        rows ??= values.length
        if (values.length !== rows) throw badInput(`${pwhere}: column ${column} has ${values.length} rows, expected ${rows}`, { stream: name, column, rows: values.length, expected: rows })
      }
      if (rows === undefined || rows === 0) throw badInput(`${pwhere}: a page needs at least one row`, { stream: name })
      for (const key of Object.keys(p.filled ?? {})) {
        if (!keys.has(key)) throw badInput(`${pwhere}: filled key ${JSON.stringify(key)} is not a data key of the descriptor`, { stream: name, key })
      }
      for (const [key, column] of Object.entries(p.timestamps)) {
        if (!column.every(ts => typeof ts === 'number' && Number.isFinite(ts))) throw badInput(`${pwhere}: timestamps of ${JSON.stringify(key)} must be finite numbers`, { stream: name, key })
      }
      const first = stream.lastSeqNum + 1
      const seqNums = p.seqNum ?? Array.from({ length: rows }, (_, i) => first + i)
      for (const s of seqNums) checkSeqNum(s, name)
      const nowTime = p.time === undefined ? checkTime(run.now(), pwhere) : 0
      const times = p.time ?? new Array<number>(rows).fill(nowTime)
      for (const t of times) checkTime(t, pwhere)
      const uids = p.uid ?? Array.from({ length: rows }, () => newUid())
      for (const u of uids) checkUid(u, pwhere)
      const page: EventPage = {
        descriptor: descriptorDoc.uid,
        uid: uids,
        time: times,
        seq_num: seqNums,
        data: p.data,
        timestamps: p.timestamps,
        filled: p.filled ?? {}
      }
      for (const s of seqNums) if (s > stream.lastSeqNum) stream.lastSeqNum = s
      count(run, name, rows)
      return page
    }
  }
}

function composeStreamResource (run: RunState, opts: ComposeStreamResourceOptions): StreamResourceBundle {
  const where = `stream_resource for data key ${JSON.stringify(opts.dataKey)}`
  assertOpen(run, where)
  if (typeof opts.dataKey !== 'string' || opts.dataKey.length === 0) throw badInput(`stream_resource: data_key ${JSON.stringify(opts.dataKey)} must be a non-empty string`)
  if (typeof opts.mimetype !== 'string' || opts.mimetype.length === 0) throw badInput(`${where}: mimetype ${JSON.stringify(opts.mimetype)} must be a non-empty string`, { dataKey: opts.dataKey })
  if (typeof opts.uri !== 'string' || opts.uri.length === 0) throw badInput(`${where}: uri ${JSON.stringify(opts.uri)} must be a non-empty string`, { dataKey: opts.dataKey })
  if (!isPlainObject(opts.parameters)) throw badInput(`${where}: parameters must be an object`, { dataKey: opts.dataKey })
  const streamResourceDoc: StreamResource = {
    uid: checkUid(opts.uid ?? newUid(), where),
    run_start: run.runStart,
    data_key: opts.dataKey,
    mimetype: opts.mimetype,
    uri: opts.uri,
    parameters: opts.parameters
  }
  let next = 0
  // Default seq_nums continue this resource's own numbering per descriptor, starting after the events the stream
  // had when the resource was composed: resources of several keys of one stream then describe the same events, and
  // a resource opened mid-run (a new file) continues the stream.
  const base = new Map<string, number>()
  for (const [uid, stream] of run.descriptors) base.set(uid, stream.lastSeqNum)
  const last = new Map<string, number>()
  return {
    streamResourceDoc,
    composeStreamDatum: (d) => {
      const dwhere = `stream_datum of resource ${streamResourceDoc.uid} (data key ${JSON.stringify(opts.dataKey)})`
      assertOpen(run, dwhere)
      const stream = run.descriptors.get(d.descriptor)
      if (stream === undefined) throw badInput(`${dwhere}: descriptor ${JSON.stringify(d.descriptor)} is not a descriptor of run ${run.runStart}`, { descriptor: String(d.descriptor) })
      const key = stream.doc.data_keys[opts.dataKey]
      if (key === undefined) throw badInput(`${dwhere}: descriptor of stream ${JSON.stringify(stream.doc.name)} has no data key ${JSON.stringify(opts.dataKey)}`, { key: opts.dataKey })
      if (key.external !== 'STREAM:') throw badInput(`${dwhere}: data key ${JSON.stringify(opts.dataKey)} of stream ${JSON.stringify(stream.doc.name)} is not external "STREAM:"`, { key: opts.dataKey })
      checkRange(d.indices, 'indices')
      const length = d.indices.stop - d.indices.start
      const from = (last.get(d.descriptor) ?? base.get(d.descriptor) ?? 0) + 1
      const seqNums = d.seqNums ?? { start: from, stop: from + length }
      checkRange(seqNums, 'seq_nums')
      if (seqNums.start < 1) throw badInput(`${dwhere}: seq_nums.start ${seqNums.start} must be ≥ 1`, { start: seqNums.start })
      if (seqNums.stop - seqNums.start !== length) {
        throw badInput(`${dwhere}: seq_nums ${seqNums.start}..${seqNums.stop} cover ${seqNums.stop - seqNums.start} events but indices ${d.indices.start}..${d.indices.stop} cover ${length} rows`, { key: opts.dataKey })
      }
      const datum: StreamDatum = {
        uid: `${streamResourceDoc.uid}/${next}`,
        stream_resource: streamResourceDoc.uid,
        descriptor: d.descriptor,
        indices: { start: d.indices.start, stop: d.indices.stop },
        seq_nums: { start: seqNums.start, stop: seqNums.stop }
      }
      next++
      last.set(d.descriptor, seqNums.stop - 1)
      // Several resources (one per STREAM: key) describe the same events: count each seq_num once per stream.
      if (seqNums.stop - 1 > stream.lastSeqNum) {
        count(run, stream.doc.name, seqNums.stop - 1 - Math.max(stream.lastSeqNum, seqNums.start - 1))
        stream.lastSeqNum = seqNums.stop - 1
      }
      return datum
    }
  }
}
