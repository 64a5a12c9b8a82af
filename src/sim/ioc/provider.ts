/**
 * The simulated IOC's PV provider: the records, motor records and cameras of an `ioc:` config section, built on one
 * SimClock, answering the CA server's searches by name. A record's value is also found as `NAME.VAL`.
 */
import { ErrorCode, FlyScanError } from '../../errors.js'
import type { FlyConfig } from '../../config/index.js'
import { DbrClass, dbrType, dbrTypeName } from '../../parsers/index.js'
import { SimCamera } from './camera.js'
import { parseIocConfig, type IocConfig } from './config.js'
import { SimMotorRecord } from './motor.js'
import { realClock, type PvProvider, type ServedPv, type SimClock } from './pv.js'
import { SimRecord, type RecordType } from './records.js'

export interface SimIocOptions {
  /** Time for motion, frames and timestamps (default: the real clock). */
  readonly clock?: SimClock
}

/** One simulated device and the PVs it serves (for listings and docs). */
export interface IocDevice {
  readonly kind: 'record' | 'motor' | 'camera'
  /** A record's name, or a motor's or camera's prefix. */
  readonly name: string
  /** The record type of a plain record. */
  readonly recordType?: RecordType
  /** Full PV names, the device's own first. */
  readonly pvs: readonly string[]
}

/** One served PV as `tst-fly sim-ioc` lists it. */
export interface PvListing {
  readonly name: string
  /** e.g. DBR_DOUBLE */
  readonly type: string
  readonly count: number
  readonly access: 'read-write' | 'read-only'
  /** The record name or prefix it belongs to. */
  readonly device: string
}

export class SimIoc implements PvProvider {
  readonly records: ReadonlyMap<string, SimRecord>
  readonly motors: ReadonlyMap<string, SimMotorRecord>
  readonly cameras: ReadonlyMap<string, SimCamera>
  readonly clock: SimClock
  readonly #pvs = new Map<string, ServedPv>()
  readonly #aliases = new Map<string, ServedPv>()
  readonly #devices: IocDevice[] = []

  constructor (config: IocConfig, options: SimIocOptions = {}) {
    const clock = options.clock ?? realClock
    this.clock = clock
    const records = new Map<string, SimRecord>()
    const motors = new Map<string, SimMotorRecord>()
    const cameras = new Map<string, SimCamera>()
    for (const o of config.records) {
      const record = new SimRecord(o, clock)
      records.set(record.name, record)
      this.#add({ kind: 'record', name: record.name, recordType: record.type }, record.pvs())
    }
    for (const o of config.motors) {
      const motor = new SimMotorRecord(o, clock)
      motors.set(motor.prefix, motor)
      this.#add({ kind: 'motor', name: motor.prefix }, motor.pvs())
    }
    for (const o of config.cameras) {
      const camera = new SimCamera(o, clock)
      cameras.set(camera.prefix, camera)
      this.#add({ kind: 'camera', name: camera.prefix }, camera.pvs())
    }
    this.records = records
    this.motors = motors
    this.cameras = cameras
    // `NAME.VAL` is the value of record NAME: every record's value PV, and each motor's.
    for (const record of records.values()) this.#alias(record.pv)
    for (const camera of cameras.values()) for (const record of camera.records()) this.#alias(record.pv)
    for (const motor of motors.values()) this.#alias(motor.pvs()[0] as ServedPv)
  }

  find (name: string): ServedPv | undefined {
    return this.#pvs.get(name) ?? this.#aliases.get(name)
  }

  /** Every PV name served, device by device (the `.VAL` aliases are not listed). */
  names (): string[] {
    return [...this.#pvs.keys()]
  }

  /** The devices and their PV names, in config order. */
  devices (): readonly IocDevice[] {
    return this.#devices
  }

  /** One row per served PV: name, native DBR type, element count, access, device. */
  listing (): PvListing[] {
    return this.#devices.flatMap((d) => d.pvs.map((name) => {
      const pv = this.#pvs.get(name) as ServedPv
      return {
        name,
        type: dbrTypeName(dbrType(pv.base, DbrClass.PLAIN)),
        count: pv.maxCount,
        access: pv.writable ? 'read-write' as const : 'read-only' as const,
        device: d.name
      }
    }))
  }

  /** Stop motion and acquisitions; pending writes reject with CANCELLED. Safe to call twice. */
  close (): void {
    for (const motor of this.motors.values()) motor.close()
    for (const camera of this.cameras.values()) camera.close()
  }

  #add (device: Omit<IocDevice, 'pvs'>, pvs: readonly ServedPv[]): void {
    for (const pv of pvs) {
      if (this.#pvs.has(pv.name)) {
        const owner = this.#devices.find((d) => d.pvs.includes(pv.name))
        throw new FlyScanError(ErrorCode.BAD_INPUT,
          `simulated IOC: ${pv.name} of ${device.kind} ${device.name} is already served by ${owner?.kind ?? 'another device'} ${owner?.name ?? ''}`,
          { details: { pv: pv.name } })
      }
      this.#pvs.set(pv.name, pv)
    }
    this.#devices.push({ ...device, pvs: pvs.map((pv) => pv.name) })
  }

  #alias (pv: ServedPv): void {
    const alias = `${pv.name}.VAL`
    if (!this.#pvs.has(alias)) this.#aliases.set(alias, pv)
  }
}

/** Build the simulated IOC from a validated `ioc` section. */
export function createSimIoc (config: IocConfig, options: SimIocOptions = {}): SimIoc {
  return new SimIoc(config, options)
}

/** Validate a loaded config's raw `ioc` section (errors name config.file) and build the simulated IOC from it. */
export function simIocFromConfig (config: Pick<FlyConfig, 'file' | 'ioc'>, options: SimIocOptions = {}): SimIoc {
  return new SimIoc(parseIocConfig(config.ioc, config.file), options)
}

/** Every PV name an `ioc` section serves (for `tst-fly sim-ioc` and the docs), without starting anything. */
export function iocPvNames (config: IocConfig): string[] {
  const ioc = new SimIoc(config, { clock: { nowMs: () => 0, setTimer: () => () => {} } })
  return ioc.names()
}
