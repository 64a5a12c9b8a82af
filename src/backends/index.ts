/** Signal backends: the interface devices see, and the in-memory (soft and mock) implementations. */
export { defaultValueFor, makeDatakey, type SignalBackend, type SignalMetadata, type ReadingCallback } from './types.js'
export * from './mock/index.js'
export * from './ca/index.js'
