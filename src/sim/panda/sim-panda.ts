/**
 * A simulated PandABox on loopback: the control port (control-server.ts) and the data port (data-server.ts) in front
 * of the simulation (simulation.ts: the blocks on one timeline, driven by a clock, the motor the encoder follows, and
 * trigger sinks fed by TTLOUT edges). docs/sim-panda.md describes it.
 *
 *   const panda = await SimPanda.start({ controlPort: 0, dataPort: 0, motor, triggerSinks: [camera] })
 *   const client = await PandaControlClient.connect('127.0.0.1', panda.controlPort, 2000)
 *   ...
 *   await panda.close()
 */
import { ErrorCode, FlyScanError } from '../../errors.js'
import { fail } from './cparse.js'
import { ControlServer } from './control-server.js'
import { DataServer, type CaptureRun, type DataClientRecord } from './data-server.js'
import type { Model } from './model.js'
import type { CaptureSink, Completion } from './pcap.js'
import { RateGenerator, type RateModeOptions } from './rate.js'
import { PandaSimulation, type SimPandaClock, type SimPandaStats, type SimulationOptions } from './simulation.js'

export interface SimPandaOptions extends SimulationOptions {
  /** Control port (default 0: a free port). */
  readonly controlPort?: number
  /** Data port (default 0: a free port). */
  readonly dataPort?: number
  /** Address to listen on (default 127.0.0.1). */
  readonly host?: string
  /** Rows at a fixed rate instead of the blocks (benchmarks; rate.ts). */
  readonly rateMode?: RateModeOptions
  /** Raw capture bytes kept for slow or late data clients (default 32 MiB); a client further behind overruns. */
  readonly bufferBytes?: number
  /** Bytes queued on a data socket before the server holds rows back for it (default 256 KiB). */
  readonly socketHighWater?: number
  /** How often the simulation catches up with the clock, ms (default 1). */
  readonly stepMs?: number
  /** `*IDN?` reply. */
  readonly idn?: string
}

export const SIM_IDN = 'PandA SW: 3.0-sim FPGA: 0.0.0 00000000 00000000 rootfs: tst-fly simulated PandA'

export class SimPanda {
  readonly simulation: PandaSimulation
  readonly #options: SimPandaOptions
  readonly #control: ControlServer
  readonly #data: DataServer
  #rate: RateGenerator | undefined
  #rateMode: RateModeOptions | undefined
  #completion: Completion = 'Ok'
  #cancelTimer: (() => void) | undefined
  #closed = false

  private constructor (simulation: PandaSimulation, options: SimPandaOptions, control: ControlServer, data: DataServer) {
    this.simulation = simulation
    this.#options = options
    this.#rateMode = options.rateMode
    this.#control = control
    this.#data = data
  }

  /** Starts the simulation, both servers and the clock loop. */
  static async start (options: SimPandaOptions = {}): Promise<SimPanda> {
    checkRateMode(options.rateMode)
    const sim = new PandaSimulation(options)
    const host = options.host ?? '127.0.0.1'
    const data = await DataServer.start({
      host,
      port: options.dataPort ?? 0,
      bufferBytes: options.bufferBytes,
      socketHighWater: options.socketHighWater,
      nowMs: () => sim.clock.nowMs()
    })
    const ref: { panda?: SimPanda } = {}
    let control: ControlServer
    try {
      control = await ControlServer.start({
        model: sim.model,
        sync: () => ref.panda?.sync(),
        settle: () => sim.settle(),
        arm: () => ref.panda?.arm(),
        disarm: () => ref.panda?.disarm(),
        pcapStatus: () => {
          const s = data.status()
          return `${s.busy ? 'Busy' : 'Idle'} ${s.readers} ${s.active}`
        },
        pcapCaptured: () => data.run?.rows ?? 0,
        pcapCompletion: () => ref.panda === undefined || sim.pcap.active ? 'Busy' : ref.panda.#completion,
        idn: () => options.idn ?? SIM_IDN,
        dataWho: () => data.who(),
        nowMs: () => sim.clock.nowMs()
      }, options.controlPort ?? 0, host)
    } catch (err) {
      await data.close()
      throw err
    }
    const panda = ref.panda = new SimPanda(sim, options, control, data)
    panda.#loop()
    return panda
  }

  get controlPort (): number {
    return this.#control.port
  }

  get dataPort (): number {
    return this.#data.port
  }

  get model (): Model {
    return this.simulation.model
  }

  get clock (): SimPandaClock {
    return this.simulation.clock
  }

  /** Every data connection so far: its options, and per capture the rows sent, missed and how it ended. */
  get dataConnections (): readonly DataClientRecord[] {
    return this.#data.records
  }

  get stats (): SimPandaStats {
    return this.simulation.stats
  }

  /** Rate mode from the next arm on (undefined: the blocks again). */
  setRateMode (mode: RateModeOptions | undefined): void {
    checkRateMode(mode)
    this.#rateMode = mode
  }

  /** Runs the simulation up to the clock's now. */
  sync (): void {
    if (!this.#closed) this.simulation.sync()
  }

  #loop (): void {
    if (this.#closed) return
    this.#cancelTimer = this.clock.setTimer(() => {
      this.#cancelTimer = undefined
      this.sync()
      this.#loop()
    }, this.#options.stepMs ?? 1)
  }

  /** `*PCAP.ARM=`. */
  arm (): void {
    const sim = this.simulation
    sim.sync()
    const busy = this.#data.armError()
    if (busy !== undefined) fail(busy)
    const layout = sim.layout()
    const run = this.#data.startRun(layout, sim.msAt(sim.timeline.tick))
    const rate = this.#rateMode
    if (rate !== undefined) {
      sim.pcap.armExternal()
      this.#rate = new RateGenerator(run, rate, this.clock, () => {
        this.#completion = run.completion
        this.#rate = undefined
        sim.pcap.endExternal()
        sim.settle()
      })
      sim.settle()
    } else {
      sim.arm(this.#runSink(run), layout)
    }
  }

  #runSink (run: CaptureRun): CaptureSink {
    const sim = this.simulation
    return {
      started: (t) => run.start(sim.msAt(t)),
      rows: (bytes, count) => run.append(bytes, count),
      ended: (reason, t) => {
        this.#completion = reason
        run.end(reason, sim.msAt(t))
      }
    }
  }

  /** `*PCAP.DISARM=`. */
  disarm (): void {
    if (this.#rate !== undefined) {
      this.simulation.sync()
      this.#rate.stop()
    } else {
      this.simulation.disarm()
    }
  }

  /**
   * Ends the running capture as a hardware fault would (`Framing error`, `Driver data overrun`, `DMA data error`):
   * the simulation never produces the last two by itself, so tests inject them here.
   */
  fault (reason: Exclude<Completion, 'Ok' | 'Disarmed'>): void {
    if (this.#rate !== undefined) {
      this.simulation.sync()
      this.#rate.stop(reason)
    } else {
      this.simulation.sync()
      this.simulation.pcap.fault(reason, this.simulation.timeline.tick)
      this.simulation.settle()
    }
  }

  /** Every data client taking data loses its connection in the middle of a block, with no END line. */
  cutDataConnections (): void {
    this.#data.cutAll()
  }

  /**
   * Every data client taking data gets `END <rows sent> Data overrun` now, as a client that fell behind the box's
   * buffer would (the capture itself goes on). Real overruns need a client that stops reading; this makes one on demand.
   */
  overrunDataConnections (): void {
    this.#data.overrunAll()
  }

  /** Stops the clock loop and both servers, dropping every connection. Idempotent. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#cancelTimer?.()
    this.#rate?.stop()
    await Promise.all([this.#control.close(), this.#data.close()])
  }
}

function checkRateMode (mode: RateModeOptions | undefined): void {
  if (mode === undefined) return
  const bad = !(mode.rowsPerSecond > 0 && Number.isFinite(mode.rowsPerSecond)) ||
    (mode.rows !== undefined && !(Number.isInteger(mode.rows) && mode.rows > 0)) ||
    (mode.blockRows !== undefined && !(Number.isInteger(mode.blockRows) && mode.blockRows > 0))
  if (bad) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `simulated PandA rate mode ${JSON.stringify(mode)}: rowsPerSecond must be a ` +
      'positive number, rows and blockRows positive integers', { details: { mode: JSON.stringify(mode) } })
  }
}
