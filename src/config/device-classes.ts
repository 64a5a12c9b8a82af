/**
 * The device-class table: the class names a config file may use, the options each accepts, and the factory that
 * builds it. A class without a factory is "declared, not yet implemented": the loader validates its entries and
 * `createDevices` lists them as skipped. Later issues register EpicsMotor, ADVimba and HDFPanda factories here.
 */
import { type Device, SimDetector, SimMotor } from '../devices/index.js'
import { EpicsMotor } from '../epics/index.js'
import { ErrorCode, FlyScanError } from '../errors.js'
import { HDFPanda } from '../panda/index.js'
import { LocalPathProvider } from '../paths/index.js'

export type OptionType = 'string' | 'number' | 'boolean'

/** One entry of a config's device list, validated. */
export interface DeviceEntry {
  readonly deviceClass: string
  readonly name: string
  readonly prefix: string | undefined
  readonly labels: readonly string[]
  readonly options: Readonly<Record<string, string | number | boolean>>
}

export interface DeviceClass {
  readonly description: string
  readonly prefixRequired: boolean
  /** Option keys besides name, prefix and labels, with their types; `required` lists the mandatory ones. */
  readonly options: Readonly<Record<string, OptionType>>
  readonly required?: readonly string[]
  readonly create?: (entry: DeviceEntry) => Device
}

export type DeviceClassTable = Map<string, DeviceClass>

function num (entry: DeviceEntry, key: string): number | undefined {
  const v = entry.options[key]
  return typeof v === 'number' ? v : undefined
}

/** A fresh table with the classes built so far (callers may add to it). */
export function defaultDeviceClasses (): DeviceClassTable {
  return new Map<string, DeviceClass>([
    ['SimMotor', {
      description: 'simulated motor (in memory)',
      prefixRequired: false,
      options: { velocity: 'number', units: 'string', lowLimit: 'number', highLimit: 'number', initial: 'number' },
      create: (e) => {
        const units = e.options.units
        return new SimMotor({
          name: e.name,
          velocity: num(e, 'velocity'),
          units: typeof units === 'string' ? units : undefined,
          lowLimit: num(e, 'lowLimit'),
          highLimit: num(e, 'highLimit'),
          initial: num(e, 'initial')
        })
      }
    }],
    ['SimDetector', {
      description: 'simulated point detector (in memory)',
      prefixRequired: false,
      options: { acquireTime: 'number' },
      create: (e) => new SimDetector({ name: e.name, acquireTime: num(e, 'acquireTime') })
    }],
    ['EpicsMotor', {
      description: 'EPICS motor record over Channel Access; prefix: the record name (src/epics/motor.ts)',
      prefixRequired: true,
      // velocity: what unstage() writes back to VELO after a fly scan (TST: 90 deg/s).
      options: { velocity: 'number', moveTimeoutMarginMs: 'number' },
      create: (e) => {
        const velocity = num(e, 'velocity')
        const margin = num(e, 'moveTimeoutMarginMs')
        if (velocity !== undefined && !(velocity > 0)) {
          throw new FlyScanError(ErrorCode.BAD_INPUT, `EpicsMotor ${e.name}: velocity ${velocity} must be > 0`, { details: { device: e.name } })
        }
        if (margin !== undefined && !(margin >= 0)) {
          throw new FlyScanError(ErrorCode.BAD_INPUT, `EpicsMotor ${e.name}: moveTimeoutMarginMs ${margin} must be >= 0`, { details: { device: e.name } })
        }
        return new EpicsMotor(String(e.prefix), { name: e.name, velocity, moveTimeoutMarginMs: margin })
      }
    }],
    ['ADVimba', {
      description: 'Allied Vision camera via areaDetector ADVimba (declared, not yet implemented)',
      prefixRequired: true,
      options: { driver: 'string', hdf: 'string', image: 'string' }
    }],
    ['HDFPanda', {
      description: 'PandABox over its TCP control and data ports (src/panda/device.ts)',
      prefixRequired: true,
      options: { host: 'string', controlPort: 'number', dataPort: 'number', dataRoot: 'string', encoderPolarity: 'number', countsPerRev: 'number' },
      required: ['host'],
      create: (e) => {
        const polarity = num(e, 'encoderPolarity')
        if (polarity !== undefined && polarity !== 1 && polarity !== -1) {
          throw new FlyScanError(ErrorCode.BAD_INPUT, `HDFPanda ${e.name}: encoderPolarity ${polarity} must be 1 or -1`, { details: { device: e.name } })
        }
        const countsPerRev = num(e, 'countsPerRev')
        const dataRoot = e.options.dataRoot
        return new HDFPanda({
          name: e.name,
          host: String(e.options.host),
          controlPort: num(e, 'controlPort'),
          dataPort: num(e, 'dataPort'),
          pathProvider: typeof dataRoot === 'string' ? new LocalPathProvider(dataRoot) : undefined,
          trigger: {
            ...(polarity === undefined ? {} : { encoderPolarity: polarity }),
            ...(countsPerRev === undefined ? {} : { countsPerRev })
          }
        })
      }
    }]
  ])
}
