/**
 * The event-model document types, as tst-fly composes them. Field names are event-model's (snake_case) because these
 * objects are the documents themselves: they are written to JSONL as they are and validate against the schemas in
 * ./schemas/.
 */

export type DocumentName = 'start' | 'descriptor' | 'event' | 'event_page' | 'stream_resource' | 'stream_datum' | 'stop'

/** The broad JSON type of a data key's values. */
export type Dtype = 'string' | 'number' | 'array' | 'boolean' | 'integer'

/** One entry of a descriptor's `data_keys`: what a column of the stream holds and where it comes from. */
export interface DataKey {
  readonly dtype: Dtype
  /** Empty for scalars; per-point shape otherwise (a PandA column is [], a camera frame is [544, 728]). */
  readonly shape: number[]
  /** Where the value comes from, e.g. `PV:XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr.RBV` or `panda1:pcap`. */
  readonly source: string
  /** `'STREAM:'` when the values live in an external file announced by stream_resource / stream_datum. */
  readonly external?: 'STREAM:'
  /** A numpy dtype string, e.g. `<f8`, `<u4`. */
  readonly dtype_numpy?: string
  readonly units?: string | null
  readonly precision?: number | null
  readonly object_name?: string
  readonly dims?: string[]
  readonly choices?: string[]
  readonly limits?: Record<string, unknown>
  readonly [extra: string]: unknown
}

/** Start-level hints; `dimensions` lists the independent axes, slow to fast, as [[fields], stream] pairs. */
export interface RunStartHints {
  readonly dimensions?: Array<[string[], string]>
  readonly [extra: string]: unknown
}

export interface RunStart {
  readonly uid: string
  /** Seconds since the epoch (float). */
  readonly time: number
  readonly scan_id?: number
  readonly plan_name?: string
  readonly plan_type?: string
  readonly plan_args?: Record<string, unknown>
  readonly hints?: RunStartHints
  readonly beamline_id?: string
  readonly cycle?: string
  readonly data_session?: string
  /** Any other metadata the caller gave (keys without '.' or '/'). */
  readonly [key: string]: unknown
}

/** A configuration reading of one object, carried in the descriptor. */
export interface ConfigurationReading {
  readonly data: Record<string, unknown>
  readonly timestamps: Record<string, number>
  readonly data_keys: Record<string, DataKey>
}

export interface EventDescriptor {
  readonly uid: string
  readonly time: number
  readonly run_start: string
  /** The stream name, e.g. 'primary', 'baseline'. */
  readonly name: string
  readonly data_keys: Record<string, DataKey>
  /** Device name → the data keys it produces. */
  readonly object_keys: Record<string, string[]>
  readonly configuration: Record<string, ConfigurationReading>
  readonly hints: Record<string, unknown>
}

export interface Event {
  readonly uid: string
  readonly time: number
  readonly descriptor: string
  /** Position in the descriptor's stream, from 1. */
  readonly seq_num: number
  readonly data: Record<string, unknown>
  readonly timestamps: Record<string, number>
  readonly filled: Record<string, boolean | string>
}

/** The columnar form of several events of one descriptor: every field is an array with one entry per event. */
export interface EventPage {
  readonly descriptor: string
  readonly uid: string[]
  readonly time: number[]
  readonly seq_num: number[]
  readonly data: Record<string, unknown[]>
  readonly timestamps: Record<string, number[]>
  readonly filled: Record<string, Array<boolean | string>>
}

export interface StreamResource {
  readonly uid: string
  readonly run_start: string
  /** The descriptor data key whose values the resource holds. */
  readonly data_key: string
  /** e.g. `application/x-hdf5`. */
  readonly mimetype: string
  /** Where the file is, e.g. `file://localhost/nsls2/.../x.h5`. */
  readonly uri: string
  /** What a reader needs, e.g. `{ dataset: '/entry/data/x', chunk_shape: [1024] }`. */
  readonly parameters: Record<string, unknown>
}

/** A half-open range of integers: start ≤ n < stop. */
export interface StreamRange {
  readonly start: number
  readonly stop: number
}

export interface StreamDatum {
  /** `<stream_resource uid>/<n>`, n counting from 0 per resource. */
  readonly uid: string
  readonly stream_resource: string
  readonly descriptor: string
  /** Rows of the external dataset that this datum adds. */
  readonly indices: StreamRange
  /** The event seq_nums these rows are. */
  readonly seq_nums: StreamRange
}

export type ExitStatus = 'success' | 'abort' | 'fail'

export interface RunStop {
  readonly uid: string
  readonly time: number
  readonly run_start: string
  readonly exit_status: ExitStatus
  readonly reason: string
  /** Stream name → number of events in that stream. */
  readonly num_events: Record<string, number>
  /** Keys devices added (HasRunStopInfo), e.g. `timing`: event-model allows keys without '.' or '/'. */
  readonly [extra: string]: unknown
}

export interface DocumentMap {
  start: RunStart
  descriptor: EventDescriptor
  event: Event
  event_page: EventPage
  stream_resource: StreamResource
  stream_datum: StreamDatum
  stop: RunStop
}

/** Maps a document name to its document type. */
export type DocumentOf<N extends DocumentName> = DocumentMap[N]

/** Any document. */
export type Document = DocumentMap[DocumentName]

/** A (name, document) pair whose parts agree: narrowing `name` narrows the document. */
export type NamedDocument = { [N in DocumentName]: [name: N, doc: DocumentOf<N>] }[DocumentName]

/**
 * A document subscriber, called with a name and the document of that name. Generic so that any of
 * `(name) => ...`, `(name, doc) => ...` and `(name: DocumentName, doc: Document) => ...` is one; inside, narrow
 * the document with `isDocument('event', name, doc)`.
 */
export type DocumentCallback = <N extends DocumentName>(name: N, doc: DocumentOf<N>) => void

/** Narrows `doc` to the document type of `want` when `name` is `want`. */
export function isDocument<N extends DocumentName> (want: N, name: DocumentName, doc: Document): doc is DocumentOf<N> {
  return name === want && typeof doc === 'object' && doc !== null
}

export const DOCUMENT_NAMES: readonly DocumentName[] = ['start', 'descriptor', 'event', 'event_page', 'stream_resource', 'stream_datum', 'stop']

/** The schema file (in ./schemas/) of each document kind. */
export const SCHEMA_FILES: Readonly<Record<DocumentName, string>> = {
  start: 'run_start.json',
  descriptor: 'event_descriptor.json',
  event: 'event.json',
  event_page: 'event_page.json',
  stream_resource: 'stream_resource.json',
  stream_datum: 'stream_datum.json',
  stop: 'run_stop.json'
}
