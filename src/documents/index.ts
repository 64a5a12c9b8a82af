/**
 * Event-model documents: composing them (compose.ts), converting events ↔ pages (pages.ts), routing them to
 * subscribers (router.ts) and writing them to a JSONL file (jsonl-sink.ts). This is the folder's only public entry.
 * See docs/documents.md.
 */
export type {
  DocumentName, DocumentOf, Document, DocumentMap, NamedDocument, DocumentCallback, Dtype, DataKey, RunStartHints,
  RunStart, ConfigurationReading, EventDescriptor, Event, EventPage, StreamResource, StreamRange, StreamDatum,
  ExitStatus, RunStop
} from './types.js'
export { DOCUMENT_NAMES, SCHEMA_FILES, isDocument } from './types.js'
export type {
  ComposeRunOptions, RunBundle, ComposeDescriptorOptions, DescriptorBundle, ComposeEventOptions,
  ComposeEventPageOptions, ComposeStreamResourceOptions, StreamResourceBundle, ComposeStreamDatumOptions,
  ComposeStopOptions
} from './compose.js'
export { composeRun, newUid, nowSeconds } from './compose.js'
export { packEventPage, unpackEventPage } from './pages.js'
export type { SubscriberError, DocumentRouterOptions } from './router.js'
export { DocumentRouter } from './router.js'
export { JsonlSink, formatJsonlLine, parseJsonl } from './jsonl-sink.js'
