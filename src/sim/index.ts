export { PandaReplayServer, type ReplayServerOptions, type ReplayConnection } from './panda-replay-server.js'
export {
  syntheticStream, syntheticStreamBytes, syntheticHeader, syntheticValue, rowBytesOf, XAS_FIELDS,
  type SyntheticField, type SyntheticStreamOptions
} from './panda-stream.js'
export * from './ioc/index.js'
