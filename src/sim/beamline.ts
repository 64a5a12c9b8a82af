/**
 * The simulated beamline: the simulated IOC (motor record, cameras, plain records) behind its Channel Access server
 * and the simulated PandA, in one process, on one clock, wired as the config's `sim` section says: the PandA's
 * encoder follows the IOC's motor record, and its TTLOUT rising edges trigger the IOC's cameras
 * (docs/sim-beamline.md).
 *
 *   const beamline = await SimBeamline.start(config)          // free ports on 127.0.0.1
 *   const run = beamline.configFor(config)                    // ca and HDFPanda entries point at it
 *   ...
 *   await beamline.close()
 */
import { defaults } from '../../config/index.js'
import type { FlyConfig, SimConfig, SimTriggerWire } from '../config/index.js'
import { ErrorCode, FlyScanError } from '../errors.js'
import { realClock, type SimClock } from './ioc/pv.js'
import { simIocFromConfig, type SimIoc } from './ioc/provider.js'
import { CaServer } from './ioc/server.js'
import type { SimCamera, TriggerOutcome } from './ioc/camera.js'
import { CLOCK_HZ, SimPanda, type Model, type TriggerEdge, type TriggerSink } from './panda/index.js'

/** The loopback address every simulator listens on. */
export const SIM_HOST = '127.0.0.1'

export interface SimBeamlineOptions {
  /** The CA server's port, search (UDP) and circuits (TCP) both, as an IOC with EPICS_CA_SERVER_PORT; default 0: free ports. */
  readonly caPort?: number
  /** Default 0: a free port. */
  readonly pandaControlPort?: number
  /** Default 0: a free port. */
  readonly pandaDataPort?: number
  /** The one clock of the IOC and the PandA (default: the wall clock, performance.timeOrigin + performance.now()). */
  readonly clock?: SimClock
  /** One line per event worth a human's attention (the CA server's); default: stderr. */
  readonly log?: (line: string) => void
  /** UDP port the CA server's beacons go to (the CA repeater's); default the CA server's (5065); 0 sends none. */
  readonly beaconPort?: number
}

/** What each trigger wire did with the edges it carried. */
export interface SimTriggerStats {
  readonly wire: SimTriggerWire
  readonly accepted: number
  readonly missed: number
  readonly ignored: number
}

/** Counts of one wire's edges by what the camera made of them. */
interface WireCounts { accepted: number, missed: number, ignored: number }

export class SimBeamline {
  readonly ioc: SimIoc
  readonly panda: SimPanda
  readonly caServer: CaServer
  readonly clock: SimClock
  /** The validated `sim` section it was built from (the empty wiring when the config had none). */
  readonly sim: SimConfig
  readonly #counts: ReadonlyArray<{ readonly wire: SimTriggerWire, readonly counts: WireCounts }>
  #closing: Promise<void> | undefined

  private constructor (ioc: SimIoc, panda: SimPanda, caServer: CaServer, clock: SimClock, sim: SimConfig,
    counts: ReadonlyArray<{ readonly wire: SimTriggerWire, readonly counts: WireCounts }>) {
    this.ioc = ioc
    this.panda = panda
    this.caServer = caServer
    this.clock = clock
    this.sim = sim
    this.#counts = counts
  }

  /**
   * Build the simulated IOC of `config.ioc` and the simulated PandA wired by `config.sim`, and serve both on
   * 127.0.0.1. Fails with BAD_INPUT naming the file and the path if the wiring names a motor or camera the IOC lacks,
   * with CONNECTION if a port cannot be had; nothing is left running then.
   */
  static async start (config: FlyConfig, opts: SimBeamlineOptions = {}): Promise<SimBeamline> {
    const clock = opts.clock ?? realClock
    const sim = config.sim ?? { embedded: false, encoderMotor: undefined, triggers: [], panda: {} }
    const ioc = simIocFromConfig(config, { clock })
    let caServer: CaServer | undefined
    try {
      const motor = sim.encoderMotor === undefined ? undefined : ioc.motors.get(sim.encoderMotor)
      if (sim.encoderMotor !== undefined && motor === undefined) {
        throw new FlyScanError(ErrorCode.BAD_INPUT, `${config.file}: sim.encoderMotor: the simulated IOC has no motor ${sim.encoderMotor} ` +
          `(it has ${[...ioc.motors.keys()].join(', ') || 'none'})`, { details: { file: config.file, pv: sim.encoderMotor } })
      }
      const counts = sim.triggers.map((wire) => ({ wire, counts: { accepted: 0, missed: 0, ignored: 0 } }))
      const ref: { panda?: SimPanda } = {}
      const sinks: TriggerSink[] = counts.map(({ wire, counts }, i) => {
        const camera = ioc.cameras.get(wire.camera)
        if (camera === undefined) {
          throw new FlyScanError(ErrorCode.BAD_INPUT, `${config.file}: sim.triggers[${i}].camera: the simulated IOC has no camera ${wire.camera} ` +
            `(it has ${[...ioc.cameras.keys()].join(', ') || 'none'})`, { details: { file: config.file, pv: wire.camera } })
        }
        return {
          ttlout: wire.ttlout,
          externalTrigger: (edge: TriggerEdge) => {
            const outcome = trigger(camera, wire, edge, ref.panda === undefined ? undefined : gateWidthS(ref.panda.model, wire.ttlout))
            counts[outcome]++
          }
        }
      })
      const port = opts.caPort ?? 0
      caServer = await listening(`the CA server on ${SIM_HOST}:${port}`, async () => await CaServer.start({
        provider: ioc, host: SIM_HOST, tcpPort: port, udpPort: port, log: opts.log, beaconPort: opts.beaconPort
      }))
      const countsPerRev = sim.panda.countsPerRev ?? defaults.panda.encoderCountsPerRev
      const panda = ref.panda = await listening(`the simulated PandA on ${SIM_HOST} (control ${opts.pandaControlPort ?? 0}, data ${opts.pandaDataPort ?? 0})`,
        async () => await SimPanda.start({
          host: SIM_HOST,
          controlPort: opts.pandaControlPort ?? 0,
          dataPort: opts.pandaDataPort ?? 0,
          clock,
          stepMs: defaults.sim.pandaStepMs,
          countsPerUnit: countsPerRev / 360,
          ...(sim.panda.encoder === undefined ? {} : { encoder: sim.panda.encoder }),
          ...(sim.panda.adc === undefined ? {} : { adc: sim.panda.adc }),
          ...(motor === undefined ? {} : { motor }),
          triggerSinks: sinks
        }))
      return new SimBeamline(ioc, panda, caServer, clock, sim, counts)
    } catch (err) {
      await caServer?.close()
      ioc.close()
      throw err
    }
  }

  /** Where a CA client searches for this IOC: `127.0.0.1:<udp port>` (EPICS_CA_ADDR_LIST). */
  get caAddrList (): string {
    return `${SIM_HOST}:${this.caServer.udpPort}`
  }

  get pandaControlPort (): number {
    return this.panda.controlPort
  }

  get pandaDataPort (): number {
    return this.panda.dataPort
  }

  /** Per trigger wire, how many edges the camera took, missed (still busy) or ignored (not armed for them). */
  get triggerStats (): SimTriggerStats[] {
    return this.#counts.map(({ wire, counts }) => ({ wire, ...counts }))
  }

  /**
   * A copy of `config` pointed at this beamline: `ca` searches only this IOC (addrList, autoAddrList false, the rest
   * kept), and every HDFPanda device entry talks to this PandA (host 127.0.0.1, its control and data ports).
   */
  configFor (config: FlyConfig): FlyConfig {
    return {
      ...config,
      ca: { ...config.ca, addrList: this.caAddrList, autoAddrList: false },
      devices: config.devices.map((entry) => entry.deviceClass !== 'HDFPanda'
        ? entry
        : { ...entry, options: { ...entry.options, host: SIM_HOST, controlPort: this.pandaControlPort, dataPort: this.pandaDataPort } })
    }
  }

  /** Stop motion, acquisitions and the PandA's clock loop, and close both servers. Idempotent. */
  async close (): Promise<void> {
    this.#closing ??= (async () => {
      const results = await Promise.allSettled([this.panda.close(), this.caServer.close()])
      this.ioc.close()
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
      if (failed !== undefined) throw failed.reason
    })()
    await this.#closing
  }
}

/** Hand a TTLOUT edge to the camera on the wire's line, at the edge's time, with the gate width when it is known. */
function trigger (camera: SimCamera, wire: SimTriggerWire, edge: TriggerEdge, widthS: number | undefined): TriggerOutcome {
  return camera.externalTrigger({ line: `Line${wire.line}`, atMs: edge.atMs, ...(widthS === undefined ? {} : { widthS }) })
}

/**
 * The high time (s) of what TTLOUT`ttlout` outputs, when its source is a CLOCK or a PULSE (both have a WIDTH in
 * FPGA ticks); undefined for other sources (e.g. PCOMP, whose width is in encoder counts), and the camera then
 * exposes for AcquireTime. Only matters with ExposureMode TriggerWidth.
 */
export function gateWidthS (model: Model, ttlout: number): number | undefined {
  const source = /^(CLOCK|PULSE)(\d+)\.OUT$/.exec(model.bitMuxName(model.field('TTLOUT', 'VAL', ttlout).value))
  if (source === null) return undefined
  const [, block, n] = source as unknown as [string, 'CLOCK' | 'PULSE', string]
  const width = model.field(block, 'WIDTH', Number(n)).value
  if (width > 0) return width / CLOCK_HZ
  if (block === 'PULSE') return undefined
  // A CLOCK with WIDTH 0 is high for half its period (clock_sim.py).
  const period = model.field('CLOCK', 'PERIOD', Number(n)).value
  return period >= 2 ? Math.floor(period / 2) / CLOCK_HZ : undefined
}

async function listening<T> (what: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start()
  } catch (err) {
    if (err instanceof FlyScanError) throw err
    const code = (err as NodeJS.ErrnoException).code
    const hint = code === 'EADDRINUSE' ? ' (another process holds the port; give another one, or 0 for a free one)' : ''
    throw new FlyScanError(ErrorCode.CONNECTION, `simulated beamline: cannot start ${what}: ${(err as Error).message}${hint}`, { cause: err })
  }
}
