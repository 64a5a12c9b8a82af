/**
 * The catalog of runnable plans: what `tst-fly run <plan>` and `tst-fly plans` know. Each entry names its
 * parameters (camelCase; on the command line they are kebab-case: `numImages` ↔ `--num-images`) with a kind, whether
 * it is required, its default and a help line, and builds the plan from arguments already parsed and resolved by
 * `parsePlanArgs`. Device arguments are names resolved through a registry; a `devices` argument is a comma-separated
 * list of names, and its default may be "every device labelled X" (`defaultLabel`).
 */
import type { Plan } from '../engine/index.js'
import { isMovable, isReadable, type FlyScanDevice, type Readable } from '../devices/index.js'
import { ErrorCode, FlyScanError } from '../errors.js'
import { count, gridScan, relScan, scan, type Motor, type PlanMetadata } from './scans.js'
import { darkFlat, energyCalibration, tomoFly, xasFly } from './tst.js'

export type ParamKind = 'device' | 'devices' | 'number' | 'integer' | 'string' | 'boolean'

export interface PlanParam {
  /** camelCase; the command-line argument is its kebab-case. */
  readonly name: string
  readonly kind: ParamKind
  readonly required: boolean
  /** The value when the argument is not given (device names for device kinds). */
  readonly default?: number | string | boolean | readonly string[]
  /** For device kinds: when not given, every device carrying this label. */
  readonly defaultLabel?: string
  readonly help: string
}

/** What a device argument resolves to (a registry's devices). */
export interface NamedObject { readonly name: string }
export type PlanArgValue = NamedObject | readonly NamedObject[] | number | string | boolean
export type PlanArgs = Readonly<Record<string, PlanArgValue>>

/** Finds devices by name (an unknown name throws, listing the known ones) and by label: a Registry fits. */
export interface DeviceResolver {
  find: (name: string) => NamedObject
  findAll: (query: { label?: string }) => NamedObject[]
}

export interface CatalogPlan {
  readonly name: string
  readonly description: string
  readonly params: readonly PlanParam[]
  readonly build: (args: PlanArgs, md?: PlanMetadata) => Plan<string>
}

function bad (message: string): FlyScanError {
  return new FlyScanError(ErrorCode.BAD_INPUT, message)
}

/** `numImages` → `num-images` */
export function kebabCase (name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
}

function readables (v: PlanArgValue | undefined, what: string): Readable[] {
  const list: unknown[] = Array.isArray(v) ? v : [v]
  return list.map((d) => {
    if (!isReadable(d)) throw bad(`--${what}: ${(d as NamedObject | undefined)?.name ?? String(d)} is not readable (it needs read() and describe())`)
    return d
  })
}

function motor (v: PlanArgValue | undefined, what: string): Motor {
  if (!isMovable(v) || !isReadable(v)) throw bad(`--${what}: ${(v as NamedObject | undefined)?.name ?? String(v)} is not a motor (it needs set(), read() and describe())`)
  return v as unknown as Motor
}

function numberArg (v: PlanArgValue | undefined): number {
  return v as number
}

/** A fly-scan coordinator argument: checked by the plan itself (it names what is missing). */
function flyscan (v: PlanArgValue | undefined): FlyScanDevice {
  return v as unknown as FlyScanDevice
}

function optionalNumber (v: PlanArgValue | undefined): number | undefined {
  return typeof v === 'number' ? v : undefined
}

const FLYSCAN: PlanParam = {
  name: 'flyscan', kind: 'device', required: false, defaultLabel: 'flyscans', help: 'the fly-scan coordinator (PandA, cameras, motor) to fly'
}

const DETECTORS: PlanParam = {
  name: 'detectors', kind: 'devices', required: false, defaultLabel: 'detectors', help: 'detectors to read, comma-separated names'
}

/** The arguments of a one-motor line scan: motor, start, stop, num (start and stop are a `what`). */
function lineParams (what: string): PlanParam[] {
  return [
    { name: 'motor', kind: 'device', required: true, help: 'the motor to move' },
    { name: 'start', kind: 'number', required: true, help: `first ${what}` },
    { name: 'stop', kind: 'number', required: true, help: `last ${what}` },
    { name: 'num', kind: 'integer', required: true, help: 'number of points' }
  ]
}

const CATALOG: readonly CatalogPlan[] = [
  {
    name: 'tomo_fly',
    description: 'tomography fly scan: numImages frames over 180° at constant speed, one PandA row and one frame per image',
    params: [
      FLYSCAN,
      { name: 'numImages', kind: 'integer', required: true, help: 'images over the 180° (the first at startDeg, the last at startDeg + 180)' },
      { name: 'scanTime', kind: 'number', required: true, help: 'seconds the stage takes for the 180°' },
      { name: 'startDeg', kind: 'number', required: false, default: 0, help: 'angle of the first image, degrees' },
      { name: 'exposureTime', kind: 'number', required: false, help: 'camera exposure, seconds (default: a third of the time between images)' }
    ],
    build: (a, md) => tomoFly(flyscan(a.flyscan), {
      numImages: numberArg(a.numImages), scanTime: numberArg(a.scanTime), startDeg: numberArg(a.startDeg), exposureTime: optionalNumber(a.exposureTime)
    }, md)
  },
  {
    name: 'xas_fly',
    description: 'XAS fly scan: npoints PandA rows (ADC means, angle, TS_TRIG) over [startE, endE], one camera frame per row',
    params: [
      FLYSCAN,
      { name: 'npoints', kind: 'integer', required: true, help: 'points (rows) over the range' },
      { name: 'totalTime', kind: 'number', required: true, help: 'seconds to cross the range' },
      { name: 'startE', kind: 'number', required: true, help: 'start of the range (TST passes energies to the stage as degrees)' },
      { name: 'endE', kind: 'number', required: true, help: 'end of the range' },
      { name: 'exposureTime', kind: 'number', required: false, help: 'camera exposure per point, seconds (default: half the point time)' }
    ],
    build: (a, md) => xasFly(flyscan(a.flyscan), {
      npoints: numberArg(a.npoints), totalTime: numberArg(a.totalTime), startE: numberArg(a.startE), endE: numberArg(a.endE), exposureTime: optionalNumber(a.exposureTime)
    }, md)
  },
  {
    name: 'energy_calibration',
    description: 'XAS fly scan over the reference edge (the coordinator\'s calibrationEdge ± range), edge fitted: the offset goes to the stream calibration',
    params: [
      FLYSCAN,
      { name: 'npoints', kind: 'integer', required: true, help: 'points (rows) over the range' },
      { name: 'totalTime', kind: 'number', required: false, default: 2, help: 'seconds to cross the range' },
      { name: 'range', kind: 'number', required: false, help: 'half-width around the edge, degrees (default: the coordinator\'s calibrationRange)' }
    ],
    build: (a, md) => energyCalibration(flyscan(a.flyscan), {
      npoints: numberArg(a.npoints), totalTime: numberArg(a.totalTime), ...(typeof a.range === 'number' ? { range: a.range } : {})
    }, md)
  },
  {
    name: 'dark_flat',
    description: 'dark frames (shutter closed, stream dark) then flat frames (shutter open, stream flat), cameras on their own clock',
    params: [
      FLYSCAN,
      { name: 'numDark', kind: 'integer', required: true, help: 'dark frames per camera' },
      { name: 'numFlat', kind: 'integer', required: true, help: 'flat frames per camera' },
      { name: 'exposureTime', kind: 'number', required: false, default: 0.01, help: 'exposure per frame, seconds' },
      { name: 'shutter', kind: 'device', required: false, help: 'a shutter to close (0) for the darks and open (1) for the flats' }
    ],
    build: (a, md) => darkFlat(flyscan(a.flyscan), {
      numDark: numberArg(a.numDark),
      numFlat: numberArg(a.numFlat),
      exposureTime: numberArg(a.exposureTime),
      ...(a.shutter === undefined ? {} : { shutter: a.shutter as object })
    }, md)
  },
  {
    name: 'count',
    description: 'read the detectors num times (bluesky count)',
    params: [
      DETECTORS,
      { name: 'num', kind: 'integer', required: false, default: 1, help: 'number of readings' },
      { name: 'delay', kind: 'number', required: false, default: 0, help: 'seconds between readings' }
    ],
    build: (a, md) => count(readables(a.detectors, 'detectors'), numberArg(a.num), numberArg(a.delay), md)
  },
  {
    name: 'scan',
    description: 'move a motor from start to stop in num evenly spaced points, reading the detectors at each (bluesky scan)',
    params: [DETECTORS, ...lineParams('position')],
    build: (a, md) => scan(readables(a.detectors, 'detectors'), [[motor(a.motor, 'motor'), numberArg(a.start), numberArg(a.stop)]], numberArg(a.num), md)
  },
  {
    name: 'rel_scan',
    description: 'scan relative to the motor\'s position, returning it there at the end (bluesky rel_scan)',
    params: [DETECTORS, ...lineParams('offset from the current position')],
    build: (a, md) => relScan(readables(a.detectors, 'detectors'), [[motor(a.motor, 'motor'), numberArg(a.start), numberArg(a.stop)]], numberArg(a.num), md)
  },
  {
    name: 'grid_scan',
    description: 'outer product of two motors, the first one slowest (bluesky grid_scan)',
    params: [
      DETECTORS,
      { name: 'motor', kind: 'device', required: true, help: 'the slow motor' },
      { name: 'start', kind: 'number', required: true, help: 'slow motor first position' },
      { name: 'stop', kind: 'number', required: true, help: 'slow motor last position' },
      { name: 'num', kind: 'integer', required: true, help: 'slow motor number of points' },
      { name: 'motor2', kind: 'device', required: true, help: 'the fast motor' },
      { name: 'start2', kind: 'number', required: true, help: 'fast motor first position' },
      { name: 'stop2', kind: 'number', required: true, help: 'fast motor last position' },
      { name: 'num2', kind: 'integer', required: true, help: 'fast motor number of points' },
      { name: 'snake', kind: 'boolean', required: false, default: false, help: 'run the fast motor back and forth' }
    ],
    build: (a, md) => gridScan(readables(a.detectors, 'detectors'), [
      [motor(a.motor, 'motor'), numberArg(a.start), numberArg(a.stop), numberArg(a.num)],
      [motor(a.motor2, 'motor2'), numberArg(a.start2), numberArg(a.stop2), numberArg(a.num2), a.snake === true]
    ], md)
  }
]

/** Every runnable plan, in listing order. */
export function planCatalog (): readonly CatalogPlan[] {
  return CATALOG
}

/** The plan called `name`; an unknown name is BAD_INPUT listing the plans. */
export function findCatalogPlan (name: string): CatalogPlan {
  const plan = CATALOG.find((p) => p.name === name)
  if (plan === undefined) throw bad(`unknown plan '${name}'; plans: ${CATALOG.map((p) => p.name).join(', ')}`)
  return plan
}

/** `--num <integer> (default 1)` */
export function describeParam (p: PlanParam): string {
  const value = p.kind === 'boolean' ? '' : p.kind === 'devices' ? ' <name,...>' : p.kind === 'device' ? ' <name>' : ` <${p.kind}>`
  const dflt = p.required
    ? 'required'
    : p.defaultLabel !== undefined
      ? `default: devices labelled '${p.defaultLabel}'`
      : p.default !== undefined ? `default ${Array.isArray(p.default) ? p.default.join(',') : String(p.default)}` : 'optional'
  return `--${kebabCase(p.name)}${value} (${p.kind}, ${dflt})`
}

/** The accepted arguments of `plan`, one per line, for errors and `tst-fly plans`. */
export function planUsage (plan: CatalogPlan, indent = '  '): string {
  if (plan.params.length === 0) return `${indent}(no arguments)`
  const width = Math.max(...plan.params.map((p) => describeParam(p).length))
  return plan.params.map((p) => `${indent}${describeParam(p).padEnd(width)}  ${p.help}`).join('\n')
}

function badArg (plan: CatalogPlan, message: string): FlyScanError {
  return bad(`${plan.name}: ${message}; accepted arguments:\n${planUsage(plan)}`)
}

function parseNumber (plan: CatalogPlan, p: PlanParam, text: string): number {
  const n = text.trim() === '' ? NaN : Number(text)
  if (!Number.isFinite(n)) throw badArg(plan, `--${kebabCase(p.name)} must be a finite number, got '${text}'`)
  if (p.kind === 'integer' && !Number.isInteger(n)) throw badArg(plan, `--${kebabCase(p.name)} must be an integer, got '${text}'`)
  return n
}

function resolveDevices (plan: CatalogPlan, p: PlanParam, names: readonly string[], devices: DeviceResolver): NamedObject[] {
  return names.map((n) => {
    try {
      return devices.find(n)
    } catch (err) {
      if (err instanceof FlyScanError) throw badArg(plan, `--${kebabCase(p.name)}: ${err.message}`)
      throw err
    }
  })
}

/**
 * Parse, check and resolve command-line values for `plan`: `raw` maps kebab-case argument names to their text
 * (true for a bare flag). Unknown, missing and ill-typed arguments are BAD_INPUT listing the accepted ones.
 */
export function parsePlanArgs (plan: CatalogPlan, raw: ReadonlyMap<string, string | true>, devices: DeviceResolver): PlanArgs {
  const byArg = new Map(plan.params.map((p) => [kebabCase(p.name), p]))
  for (const key of raw.keys()) {
    if (!byArg.has(key)) throw badArg(plan, `unknown argument --${key}`)
  }
  const out: Record<string, PlanArgValue> = {}
  for (const [arg, p] of byArg) {
    const text = raw.get(arg)
    if (text === undefined) {
      if (p.required) throw badArg(plan, `missing --${arg}`)
      if (p.defaultLabel !== undefined) {
        const found = devices.findAll({ label: p.defaultLabel })
        if (found.length === 0) throw badArg(plan, `--${arg} not given and no device is labelled '${p.defaultLabel}'`)
        out[p.name] = p.kind === 'device' ? found[0] as NamedObject : found
      } else if (p.default !== undefined) {
        const d = p.default
        out[p.name] = p.kind === 'devices'
          ? resolveDevices(plan, p, Array.isArray(d) ? d : [String(d)], devices)
          : p.kind === 'device' ? resolveDevices(plan, p, [String(d)], devices)[0] as NamedObject : d as number | string | boolean
      }
      continue
    }
    if (p.kind === 'boolean') {
      if (text === true || text === 'true') out[p.name] = true
      else if (text === 'false') out[p.name] = false
      else throw badArg(plan, `--${arg} is a flag (or --${arg}=true|false), got '${text}'`)
      continue
    }
    if (text === true) throw badArg(plan, `--${arg} needs a value`)
    switch (p.kind) {
      case 'number':
      case 'integer':
        out[p.name] = parseNumber(plan, p, text)
        break
      case 'string':
        out[p.name] = text
        break
      case 'device':
        out[p.name] = resolveDevices(plan, p, [text.trim()], devices)[0] as NamedObject
        break
      case 'devices': {
        const names = text.split(',').map((s) => s.trim()).filter((s) => s !== '')
        if (names.length === 0) throw badArg(plan, `--${arg} needs at least one device name`)
        out[p.name] = resolveDevices(plan, p, names, devices)
        break
      }
    }
  }
  return out
}

/** `tst-fly plans`: every plan, its description and arguments. */
export function catalogText (): string {
  return CATALOG.map((p) => `${p.name}: ${p.description}\n${planUsage(p)}`).join('\n\n') + '\n'
}
