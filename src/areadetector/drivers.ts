/**
 * The areaDetector PVs tst-fly uses, as devices of Channel Access signals (ophyd-async's ADBaseIO, VimbaDriverIO and
 * NDPluginBaseIO). A setting with a readback is one SignalRW that writes `<name>` and reads `<name>_RBV`, so
 * `getValue()` after a write tells what the IOC took. Nothing touches Channel Access before connect().
 */
import type { CaConfig } from '../config/index.js'
import { Device, type Dtype, type SignalR, type SignalRW } from '../devices/index.js'
import { caSignalR, caSignalRW } from '../backends/index.js'

/** What every signal of one camera is built with. */
export interface AdSignalOptions {
  /** The config's `ca` section, used if this thread's Channel Access context does not exist yet. */
  readonly ca?: CaConfig
}

/** Builds signals under one record-name prefix (`<prefix><driver>`). */
class Pvs {
  constructor (readonly base: string, readonly options: AdSignalOptions) {}

  #opts (datatype?: Dtype): { config?: CaConfig, datatype?: Dtype } {
    return {
      ...(this.options.ca === undefined ? {} : { config: this.options.ca }),
      ...(datatype === undefined ? {} : { datatype })
    }
  }

  /** Writes `<suffix>`, reads `<suffix>_RBV`. */
  rwRbv<T> (suffix: string, datatype?: Dtype): SignalRW<T> {
    return caSignalRW<T>(`${this.base}${suffix}_RBV`, { ...this.#opts(datatype), writePv: `${this.base}${suffix}` })
  }

  rw<T> (suffix: string, datatype?: Dtype): SignalRW<T> {
    return caSignalRW<T>(`${this.base}${suffix}`, this.#opts(datatype))
  }

  r<T> (suffix: string, datatype?: Dtype): SignalR<T> {
    return caSignalR<T>(`${this.base}${suffix}`, this.#opts(datatype))
  }
}

/** NDArrayBase: the counters and identity every areaDetector port (driver or plugin) has. */
export class NDArrayBaseIO extends Device {
  /** The record-name prefix of this port, e.g. `XF:31ID1-ES{GigE-Cam:1}cam1:`. */
  readonly prefix: string
  /** ArrayCounter (write 0 to reset) / ArrayCounter_RBV: arrays this port produced or passed on. */
  readonly arrayCounter: SignalRW<number>
  readonly uniqueId: SignalR<number>
  readonly arraySizeX: SignalR<number>
  readonly arraySizeY: SignalR<number>
  readonly portName: SignalR<string>

  constructor (prefix: string, options: AdSignalOptions = {}) {
    super()
    this.prefix = prefix
    const pv = new Pvs(prefix, options)
    this.arrayCounter = pv.rwRbv<number>('ArrayCounter', 'integer')
    this.uniqueId = pv.r<number>('UniqueId_RBV', 'integer')
    this.arraySizeX = pv.r<number>('ArraySizeX_RBV', 'integer')
    this.arraySizeY = pv.r<number>('ArraySizeY_RBV', 'integer')
    this.portName = pv.r<string>('PortName_RBV', 'string')
  }
}

/** ADBase: the driver's acquisition and state PVs. */
export class ADBaseIO extends NDArrayBaseIO {
  /** Acquire (write true to start, false to stop) / Acquire_RBV (true while acquiring). */
  readonly acquire: SignalRW<boolean>
  /** Seconds. */
  readonly acquireTime: SignalRW<number>
  readonly acquirePeriod: SignalRW<number>
  readonly numImages: SignalRW<number>
  /** Single, Multiple, Continuous. */
  readonly imageMode: SignalRW<string>
  /** ADStatus: Idle, Acquire, Readout, Correct, Saving, Aborting, Error, Waiting, Initializing, Disconnected, Aborted. */
  readonly detectorState: SignalR<string>
  /** Enable / Disable: whether the driver hands arrays to the plugins. */
  readonly arrayCallbacks: SignalRW<string>
  readonly model: SignalR<string>
  readonly manufacturer: SignalR<string>

  constructor (prefix: string, options: AdSignalOptions = {}) {
    super(prefix, options)
    const pv = new Pvs(prefix, options)
    this.acquire = pv.rwRbv<boolean>('Acquire', 'boolean')
    this.acquireTime = pv.rwRbv<number>('AcquireTime')
    this.acquirePeriod = pv.rwRbv<number>('AcquirePeriod')
    this.numImages = pv.rwRbv<number>('NumImages', 'integer')
    this.imageMode = pv.rwRbv<string>('ImageMode', 'string')
    this.detectorState = pv.r<string>('DetectorState_RBV', 'string')
    this.arrayCallbacks = pv.rwRbv<string>('ArrayCallbacks', 'string')
    this.model = pv.r<string>('Model_RBV', 'string')
    this.manufacturer = pv.r<string>('Manufacturer_RBV', 'string')
  }

  /**
   * StatusMessage_RBV, the driver's last message. Not a child: an IOC without it (the simulated one) still connects;
   * ADVimba connects it on its own and uses it only to explain failures.
   */
  statusMessageSignal (options: AdSignalOptions = {}): SignalR<string> {
    return new Pvs(this.prefix, options).r<string>('StatusMessage_RBV', 'string')
  }
}

/** ADVimba's driver (`cam1:`): ADBase plus the GenICam trigger features of an Allied Vision camera. */
export class VimbaDriverIO extends ADBaseIO {
  /** Off, On. */
  readonly triggerMode: SignalRW<string>
  /** Freerun, Line1..Line4, FixedRate, Software. */
  readonly triggerSource: SignalRW<string>
  /** Off, ReadOut, PreviousFrame. */
  readonly triggerOverlap: SignalRW<string>
  /** Timed, TriggerWidth. */
  readonly exposureMode: SignalRW<string>

  constructor (prefix: string, options: AdSignalOptions = {}) {
    super(prefix, options)
    const pv = new Pvs(prefix, options)
    this.triggerMode = pv.rwRbv<string>('TriggerMode', 'string')
    this.triggerSource = pv.rwRbv<string>('TriggerSource', 'string')
    this.triggerOverlap = pv.rwRbv<string>('TriggerOverlap', 'string')
    this.exposureMode = pv.rwRbv<string>('ExposureMode', 'string')
  }
}

/** NDPluginBase (`image1:`, `HDF1:`, ...): the plugin's source, callbacks switch and array sizes. */
export class NDPluginBaseIO extends NDArrayBaseIO {
  /** Enable / Disable. */
  readonly enableCallbacks: SignalRW<string>
  /** The asyn port this plugin takes arrays from (e.g. VMB1). */
  readonly ndArrayPort: SignalRW<string>
  readonly arraySize0: SignalR<number>
  readonly arraySize1: SignalR<number>
  /** NDDataType of the last array (UInt8, UInt16, ...). */
  readonly dataType: SignalR<string>

  constructor (prefix: string, options: AdSignalOptions = {}) {
    super(prefix, options)
    const pv = new Pvs(prefix, options)
    this.enableCallbacks = pv.rwRbv<string>('EnableCallbacks', 'string')
    this.ndArrayPort = pv.rwRbv<string>('NDArrayPort', 'string')
    this.arraySize0 = pv.r<number>('ArraySize0_RBV', 'integer')
    this.arraySize1 = pv.r<number>('ArraySize1_RBV', 'integer')
    this.dataType = pv.r<string>('DataType_RBV', 'string')
  }
}
