export * from './messages.js'
export { WorkerHandle, type WorkerHandleOptions } from './worker-handle.js'
