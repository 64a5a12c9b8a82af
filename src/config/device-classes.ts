/**
 * The device-class table: the class names a config file may use, the options each accepts, and the factory that
 * builds it. A class without a factory is "declared, not yet implemented": the loader validates its entries and
 * `createDevices` lists them as skipped.
 */
import { type Device, SimDetector, SimMotor } from '../devices/index.js'
import { ADVimba, StandardDetector, TRIGGER_LINES, parseRois } from '../areadetector/index.js'
import { FlyScan } from '../fly/index.js'
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
  /**
   * Builds the device. `resolve` finds a device the config created before this one, by name (a composite such as
   * FlyScan names its parts); composites are created after every other class.
   */
  readonly create?: (entry: DeviceEntry, resolve: (name: string, option: string) => Device) => Device
  /** Built from other devices (created last, after the devices it names). */
  readonly composite?: boolean
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
      description: 'Allied Vision camera via areaDetector ADVimba, a StandardDetector (src/areadetector/advimba.ts)',
      prefixRequired: true,
      // deadtime: seconds of readout between frames (wins over the model's); the writer is set later (setWriter).
      options: { driver: 'string', image: 'string', hdf: 'string', model: 'string', deadtime: 'number', triggerLine: 'number', stallMarginMs: 'number', writer: 'string', rois: 'string' },
      create: (e) => {
        const bad = (text: string): FlyScanError => new FlyScanError(ErrorCode.BAD_INPUT, `ADVimba ${e.name}: ${text}`, { details: { device: e.name } })
        const str = (key: string): string | undefined => {
          const v = e.options[key]
          if (v === undefined) return undefined
          if (typeof v !== 'string' || (key !== 'model' && v === '')) throw bad(`${key} must be a non-empty string`)
          return v
        }
        const deadtime = num(e, 'deadtime')
        const triggerLine = num(e, 'triggerLine')
        const stallMarginMs = num(e, 'stallMarginMs')
        if (deadtime !== undefined && !(deadtime >= 0 && deadtime < 1)) throw bad(`deadtime ${deadtime} must be seconds in [0, 1)`)
        if (triggerLine !== undefined && !(TRIGGER_LINES as readonly number[]).includes(triggerLine)) {
          throw bad(`triggerLine ${triggerLine} must be one of ${TRIGGER_LINES.join(', ')} (TriggerSource Line1..Line4)`)
        }
        if (stallMarginMs !== undefined && !(stallMarginMs >= 0)) throw bad(`stallMarginMs ${stallMarginMs} must be >= 0`)
        const writer = e.options.writer
        // writer: who writes the frames, set by the command line at run time (src/cli/run.ts): tst-fly's own frame
        // writer (default), or the IOC's HDF1 plugin (docs/ioc-writer.md).
        if (writer !== undefined && writer !== 'tst-fly' && writer !== 'ioc') throw bad(`writer '${String(writer)}' must be tst-fly or ioc`)
        // rois: "name:x,y,width,height;..." analysed live beside tst-fly's frame writer (docs/analysis.md).
        const roiText = str('rois')
        const rois = roiText === undefined ? undefined : parseRois(roiText, e.name)
        if (rois !== undefined && writer === 'ioc') throw bad('rois need tst-fly\'s frame writer (writer: tst-fly): the IOC writer\'s frames never pass through tst-fly')
        return new ADVimba(String(e.prefix), {
          name: e.name,
          driver: str('driver'),
          image: str('image'),
          hdf: str('hdf'),
          model: str('model'),
          deadtime,
          triggerLine,
          ...(stallMarginMs === undefined ? {} : { timeouts: { stallMarginMs } }),
          ...(rois === undefined ? {} : { rois })
        })
      }
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
    }],
    ['FlyScan', {
      description: 'a fly-scan coordinator: the PandA, the cameras and the motor of one fly scan, flown together (src/fly/coordinator.ts)',
      prefixRequired: false,
      composite: true,
      // panda, motor: device names; cameras: comma-separated device names (may be empty).
      options: { panda: 'string', motor: 'string', cameras: 'string', failOnTimingProblems: 'boolean', xasRunUpDeg: 'number', calibrationEdge: 'number', calibrationRange: 'number' },
      required: ['panda', 'motor'],
      create: (e, resolve) => {
        const bad = (option: string, text: string): FlyScanError => new FlyScanError(ErrorCode.BAD_INPUT, `FlyScan ${e.name}: ${option}: ${text}`, { details: { device: e.name, option } })
        const panda = resolve(String(e.options.panda), 'panda')
        if (!(panda instanceof HDFPanda)) throw bad('panda', `${panda.name} is a ${panda.constructor.name}, not an HDFPanda`)
        const motor = resolve(String(e.options.motor), 'motor')
        if (!(motor instanceof EpicsMotor)) throw bad('motor', `${motor.name} is a ${motor.constructor.name}, not an EpicsMotor`)
        const names = String(e.options.cameras ?? '').split(',').map((n) => n.trim()).filter((n) => n !== '')
        const cameras = names.map((n) => {
          const camera = resolve(n, 'cameras')
          if (!(camera instanceof StandardDetector)) throw bad('cameras', `${camera.name} is a ${camera.constructor.name}, not a camera (StandardDetector)`)
          return camera
        })
        const fail = e.options.failOnTimingProblems
        const runUp = num(e, 'xasRunUpDeg')
        if (runUp !== undefined && !(runUp >= 0)) throw bad('xasRunUpDeg', `${runUp} must be degrees >= 0`)
        const edge = num(e, 'calibrationEdge')
        const range = num(e, 'calibrationRange')
        if (range !== undefined && !(range > 0)) throw bad('calibrationRange', `${range} must be degrees > 0`)
        return new FlyScan({
          name: e.name,
          panda,
          motor,
          cameras,
          ...(typeof fail === 'boolean' ? { failOnTimingProblems: fail } : {}),
          ...(runUp === undefined ? {} : { xasRunUpDeg: runUp }),
          ...(edge === undefined ? {} : { calibrationEdge: edge }),
          ...(range === undefined ? {} : { calibrationRange: range })
        })
      }
    }]
  ])
}
