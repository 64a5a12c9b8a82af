/** EPICS Channel Access client: libca through koffi (docs/channel-access.md, docs/decisions/0006-libca-through-koffi.md). */
export { CaContext, caEnvironment, destroyCaContext, type CaSetting, type CaSettingSource } from './context.js'
export {
  CaChannel, CaMonitor, type CaChannelOptions, type CaConnectionState, type CaGetOptions, type CaMonitorOptions, type CaRawUpdate,
  type CopyMonitorCallback, type MonitorCallback, type RawMonitorCallback
} from './channel.js'
export { CaSignalBackend, makeConverter, naturalDtype, type CaConverter, type CaSignalOptions } from './backend.js'
export { caSignalR, caSignalRW, caSignalW, caSignalX, type CaSignalFactoryOptions } from './signals.js'
export { CaRepeater, runCaRepeater, type CaRepeaterEnd, type CaRepeaterOptions, type CaRepeaterRun, type RunCaRepeaterOptions } from './repeater.js'
export { Dbe, Eca, LIBCA_DEBIAN_PATH, LIBCA_PATH_ENV, LIBCA_SONAME, libcaCandidates, loadLibca, type LibCa } from './libca.js'
