/**
 * ADVimba: an Allied Vision camera (TST's Manta G-125) through areaDetector's ADVimba driver, as a StandardDetector
 * (ophyd-async's VimbaDetector): VimbaController over the driver `cam1:` plus a DetectorWriter given by the caller
 * (tst-fly's frame writer from `image1:ArrayData`, or the IOC's `HDF1:` plugin). docs/devices.md, "ADVimba".
 */
import type { CaConfig } from '../config/index.js'
import { ErrorCode, FlyScanError } from '../errors.js'
import type {
  ConnectFailure, ConnectOptions, Configurable, DataKey, DetectorWriter, Clock, Reading, SignalR
} from '../devices/index.js'
import type { RoiSpec } from '../analysis/index.js'
import { NDPluginBaseIO, VimbaDriverIO } from './drivers.js'
import { RoiStream } from './roi-stream.js'
import { StandardDetector, type DetectorTimeouts } from './standard-detector.js'
import { VimbaController, type VimbaTimeouts } from './vimba-controller.js'
import { TRIGGER_LINES } from './vimba-trigger.js'

export const ADVIMBA_DEFAULTS = Object.freeze({ driver: 'cam1:', image: 'image1:', hdf: 'HDF1:', triggerLine: 1 })

export interface ADVimbaOptions {
  readonly name?: string
  /** Record-name parts after the prefix (defaults `cam1:`, `image1:`, `HDF1:`). */
  readonly driver?: string
  readonly image?: string
  readonly hdf?: string
  /** The camera model (default: Model_RBV, read at connect); picks the deadtime (DESIGN.md §7). */
  readonly model?: string
  /** Seconds of readout between frames; wins over the model's table entry. */
  readonly deadtime?: number
  /** External trigger input 1..4 (TriggerSource Line<n>; default 1). */
  readonly triggerLine?: number
  readonly writer?: DetectorWriter
  /** The config's `ca` section, used if this thread's Channel Access context does not exist yet. */
  readonly ca?: CaConfig
  readonly timeouts?: Partial<DetectorTimeouts & VimbaTimeouts>
  readonly clock?: Clock
  /** Regions whose statistics are published live as the stream `<name>_roi` (needs tst-fly's frame writer). */
  readonly rois?: readonly RoiSpec[]
}

export class ADVimba extends StandardDetector<VimbaController> implements Configurable {
  readonly prefix: string
  /** `<prefix><driver>`, `<prefix><image>`, `<prefix><hdf>`: the record-name prefixes of the parts. */
  readonly driverPrefix: string
  readonly imagePrefix: string
  readonly hdfPrefix: string
  readonly drv: VimbaDriverIO
  readonly image: NDPluginBaseIO
  /** The live ROI statistics of this camera (options.rois), fed by a TstFlyFrameWriter given `roi: roiStream`. */
  readonly roiStream: RoiStream | undefined
  /** StatusMessage_RBV: connected beside the others, but optional (an IOC without it still connects). */
  readonly #statusMessage: SignalR<string>
  #statusMessageConnected = false

  /** StatusMessage_RBV (a getter, so it is not a child that must connect). */
  get statusMessage (): SignalR<string> { return this.#statusMessage }

  /** Whether StatusMessage_RBV connected (the IOC has it). */
  get statusMessageConnected (): boolean { return this.#statusMessageConnected }

  constructor (prefix: string, options: ADVimbaOptions = {}) {
    if (typeof prefix !== 'string' || prefix === '') {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `ADVimba ${options.name ?? ''}: the prefix must be a non-empty string`)
    }
    const triggerLine = options.triggerLine ?? ADVIMBA_DEFAULTS.triggerLine
    if (!(TRIGGER_LINES as readonly number[]).includes(triggerLine)) {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `ADVimba ${options.name ?? prefix}: triggerLine ${triggerLine} must be one of ${TRIGGER_LINES.join(', ')}`,
        { details: { device: options.name ?? prefix, triggerLine } })
    }
    const signalOptions = options.ca === undefined ? {} : { ca: options.ca }
    const driverPrefix = `${prefix}${options.driver ?? ADVIMBA_DEFAULTS.driver}`
    const drv = new VimbaDriverIO(driverPrefix, signalOptions)
    const statusMessage = drv.statusMessageSignal(signalOptions)
    const ref: { device?: ADVimba } = {}
    const controller = new VimbaController(drv, {
      label: () => ref.device?.label ?? prefix,
      model: options.model,
      deadtime: options.deadtime,
      triggerLine,
      statusMessage: () => ref.device?.statusMessageConnected === true ? statusMessage : undefined,
      timeouts: options.timeouts
    })
    super(controller, {
      ...(options.writer === undefined ? {} : { writer: options.writer }),
      ...(options.timeouts === undefined ? {} : { timeouts: options.timeouts }),
      ...(options.clock === undefined ? {} : { clock: options.clock })
    })
    ref.device = this
    this.prefix = prefix
    this.driverPrefix = driverPrefix
    this.imagePrefix = `${prefix}${options.image ?? ADVIMBA_DEFAULTS.image}`
    this.hdfPrefix = `${prefix}${options.hdf ?? ADVIMBA_DEFAULTS.hdf}`
    this.drv = drv
    this.image = new NDPluginBaseIO(this.imagePrefix, signalOptions)
    this.#statusMessage = statusMessage
    this.roiStream = options.rois === undefined || options.rois.length === 0 ? undefined : new RoiStream(() => this.label, options.rois)
    this.setName(options.name ?? '')
  }

  override get label (): string { return this.name === '' ? this.prefix : this.name }

  override setName (name: string): void {
    super.setName(name)
    this.#statusMessage.setName(name === '' ? '' : `${name}-drv-statusMessage`)
  }

  /**
   * Connect every signal, then read Model_RBV for the deadtime. StatusMessage_RBV connects beside them but is not
   * waited for: an IOC without it would otherwise hold every connect for the whole connect timeout (the simulated
   * IOC has none); messages name it once it has connected.
   */
  override async connectParts (options: Required<ConnectOptions>): Promise<ConnectFailure[]> {
    this.#statusMessage.connectParts(options).then(
      (optional) => { this.#statusMessageConnected = optional.length === 0 },
      () => { this.#statusMessageConnected = false })
    const failures = await super.connectParts(options)
    if (failures.length > 0) return failures
    try {
      await this.controller.identify()
      return []
    } catch (err) {
      return [{ name: `${this.label}-drv-model`, cause: err }]
    }
  }

  /** ArrayCounter_RBV: frames the driver produced since prepare reset it (for the timing report). */
  async readArrayCounter (): Promise<number> {
    return await this.controller.readArrayCounter()
  }

  async readConfiguration (): Promise<Record<string, Reading>> {
    const parts = await Promise.all([this.drv.acquireTime.read(), this.drv.acquirePeriod.read(), this.drv.model.read()])
    return Object.assign({}, ...parts) as Record<string, Reading>
  }

  async describeConfiguration (): Promise<Record<string, DataKey>> {
    const parts = await Promise.all([this.drv.acquireTime.describe(), this.drv.acquirePeriod.describe(), this.drv.model.describe()])
    return Object.assign({}, ...parts) as Record<string, DataKey>
  }
}
