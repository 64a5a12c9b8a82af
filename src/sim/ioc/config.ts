/**
 * The `ioc:` section of a config file: what the simulated IOC serves.
 *
 *   ioc:
 *     records: [{ name: "XF:31ID1-ES{Sim}Temp-I", type: ai, value: 22.5, egu: C, prec: 2, high: 30, hihi: 40 }, ...]
 *     motors:  [{ prefix: "XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr", egu: deg, velo: 90, vmax: 720, accl: 0.2, hlm: 1e5, llm: -1e5 }]
 *     cameras: [{ prefix: "XF:31ID1-ES{GigE-Cam:1}", width: 728, height: 544, model: "Manta G-125", deadtime: 63e-6 }]
 *
 * src/config keeps the section raw (FlyConfig.ioc); this module validates it like the rest of the config: every
 * problem at once, in one FlyScanError BAD_INPUT naming the file and the path (e.g. `ioc.records[3].type`).
 */
import { ErrorCode, FlyScanError } from '../../errors.js'
import { MAX_ENUM_STATES, MAX_ENUM_STRING_SIZE, MAX_STRING_SIZE } from '../../parsers/index.js'
import { CAMERA_DATA_TYPES, CAMERA_MODEL_DEADTIME, SimCamera, type CameraDataType, type CameraOptions } from './camera.js'
import type { MotorOptions } from './motor.js'
import type { SimClock } from './pv.js'
import {
  FTVL_NAMES, RECORD_TYPES, SEVERITY_NAMES,
  type FtvlName, type RecordOptions, type RecordType, type SeverityName, type WaveformPattern
} from './records.js'

export interface IocConfig {
  readonly records: readonly RecordOptions[]
  readonly motors: readonly MotorOptions[]
  readonly cameras: readonly CameraOptions[]
}

/** Longest record name EPICS accepts (PVNAME_STRINGSZ - 1); a field PV adds `.FIELD`. */
export const MAX_RECORD_NAME = 60
/** EGU holds 15 characters in EPICS 7 (CA carries the first 7 as units). */
const MAX_EGU = 15

const IOC_KEYS = ['records', 'motors', 'cameras']
const COMMON_RECORD_KEYS = ['name', 'type', 'value', 'desc', 'readOnly']
const ANALOG_KEYS = ['egu', 'hopr', 'lopr', 'hihi', 'high', 'low', 'lolo', 'hhsv', 'hsv', 'lsv', 'llsv']
const RECORD_KEYS: Readonly<Record<RecordType, readonly string[]>> = {
  ai: [...ANALOG_KEYS, 'prec'],
  ao: [...ANALOG_KEYS, 'prec', 'drvh', 'drvl'],
  longin: ANALOG_KEYS,
  longout: [...ANALOG_KEYS, 'drvh', 'drvl'],
  bi: ['znam', 'onam', 'zsv', 'osv'],
  bo: ['znam', 'onam', 'zsv', 'osv'],
  mbbi: ['states', 'stateSeverities'],
  mbbo: ['states', 'stateSeverities'],
  stringin: [],
  stringout: [],
  waveform: ['egu', 'prec', 'hopr', 'lopr', 'nelm', 'ftvl', 'pattern']
}
const MOTOR_KEYS = ['prefix', 'desc', 'egu', 'prec', 'velo', 'vmax', 'accl', 'hlm', 'llm', 'value', 'rdbd', 'mres', 'updateMs']
const CAMERA_KEYS = [
  'prefix', 'model', 'manufacturer', 'width', 'height', 'dataType', 'deadtime', 'maxFrameRate', 'minExposure',
  'maxExposure', 'driver', 'image', 'hdf', 'portName', 'maxFramesPerTick'
]
const PATTERNS: readonly WaveformPattern[] = ['ramp', 'sine']

function isRecord (x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

function show (x: unknown): string {
  return x === undefined ? 'nothing' : JSON.stringify(x)
}

const utf8 = new TextEncoder()

/** Collects problems as `path: what`, and typed reads of one mapping's keys. */
class Checker {
  readonly problems: string[] = []

  bad (path: string, what: string): void {
    this.problems.push(`${path}: ${what}`)
  }

  unknownKeys (item: Record<string, unknown>, at: string, allowed: readonly string[], what: string): void {
    for (const k of Object.keys(item)) if (!allowed.includes(k)) this.bad(`${at}.${k}`, `unknown key for ${what}; allowed: ${allowed.join(', ')}`)
  }

  number (item: Record<string, unknown>, key: string, at: string, check: { min?: number, integer?: boolean, positive?: boolean } = {}): number | undefined {
    const v = item[key]
    if (v === undefined) return undefined
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      this.bad(`${at}.${key}`, `must be a finite number (got ${show(v)})`)
      return undefined
    }
    if (check.integer === true && !Number.isInteger(v)) this.bad(`${at}.${key}`, `must be an integer (got ${v})`)
    else if (check.positive === true && !(v > 0)) this.bad(`${at}.${key}`, `must be > 0 (got ${v})`)
    else if (check.min !== undefined && v < check.min) this.bad(`${at}.${key}`, `must be >= ${check.min} (got ${v})`)
    else return v
    return undefined
  }

  string (item: Record<string, unknown>, key: string, at: string, maxBytes?: number): string | undefined {
    const v = item[key]
    if (v === undefined) return undefined
    if (typeof v !== 'string') {
      this.bad(`${at}.${key}`, `must be a string (got ${show(v)})`)
      return undefined
    }
    if (maxBytes !== undefined && utf8.encode(v).length > maxBytes) {
      this.bad(`${at}.${key}`, `must be at most ${maxBytes} bytes (got ${utf8.encode(v).length}: ${show(v)})`)
      return undefined
    }
    return v
  }

  oneOf<T extends string> (item: Record<string, unknown>, key: string, at: string, allowed: readonly T[]): T | undefined {
    const v = item[key]
    if (v === undefined) return undefined
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      this.bad(`${at}.${key}`, `must be one of ${allowed.join(', ')} (got ${show(v)})`)
      return undefined
    }
    return v as T
  }

  boolean (item: Record<string, unknown>, key: string, at: string): boolean | undefined {
    const v = item[key]
    if (v === undefined) return undefined
    if (typeof v !== 'boolean') {
      this.bad(`${at}.${key}`, `must be true or false (got ${show(v)})`)
      return undefined
    }
    return v
  }

  /** A record name or prefix: no spaces or dots (a dot starts a field name), within EPICS's record-name length. */
  pvName (item: Record<string, unknown>, key: string, at: string): string | undefined {
    const v = item[key]
    if (typeof v !== 'string' || v === '' || /[\s.]/.test(v)) {
      this.bad(`${at}.${key}`, `must be a non-empty PV name without spaces or dots (got ${show(v)})`)
      return undefined
    }
    if (v.length > MAX_RECORD_NAME) {
      this.bad(`${at}.${key}`, `is ${v.length} characters; EPICS record names are at most ${MAX_RECORD_NAME}`)
      return undefined
    }
    return v
  }

  list (raw: unknown, at: string): unknown[] {
    if (raw === undefined) return []
    if (!Array.isArray(raw)) {
      this.bad(at, `must be a list (got ${show(raw)})`)
      return []
    }
    return raw
  }
}

/** Validate the raw `ioc` section of `file`. Nothing (or null) is an IOC that serves nothing. */
export function parseIocConfig (raw: unknown, file: string): IocConfig {
  const c = new Checker()
  const records: RecordOptions[] = []
  const motors: MotorOptions[] = []
  const cameras: CameraOptions[] = []
  if (raw !== undefined && raw !== null && !isRecord(raw)) {
    c.bad('ioc', `must be a mapping with ${IOC_KEYS.join(', ')} (got ${show(raw)})`)
  } else if (isRecord(raw)) {
    for (const k of Object.keys(raw)) if (!IOC_KEYS.includes(k)) c.bad(`ioc.${k}`, `unknown key; allowed: ${IOC_KEYS.join(', ')}`)
    const seen = new Map<string, string>()
    const unique = (name: string | undefined, at: string): void => {
      if (name === undefined) return
      const first = seen.get(name)
      if (first !== undefined) c.bad(at, `"${name}" is already used by ${first}`)
      else seen.set(name, at)
    }
    c.list(raw.records, 'ioc.records').forEach((item, i) => {
      const at = `ioc.records[${i}]`
      const r = parseRecord(c, item, at)
      if (r !== undefined) {
        unique(r.name, `${at}.name`)
        records.push(r)
      }
    })
    c.list(raw.motors, 'ioc.motors').forEach((item, i) => {
      const at = `ioc.motors[${i}]`
      const m = parseMotor(c, item, at)
      if (m !== undefined) {
        unique(m.prefix, `${at}.prefix`)
        motors.push(m)
      }
    })
    c.list(raw.cameras, 'ioc.cameras').forEach((item, i) => {
      const at = `ioc.cameras[${i}]`
      const cam = parseCamera(c, item, at)
      if (cam !== undefined) {
        unique(cam.prefix, `${at}.prefix`)
        cameras.push(cam)
      }
    })
  }
  if (c.problems.length > 0) {
    throw new FlyScanError(ErrorCode.BAD_INPUT,
      `${file}: ${c.problems.length} problem${c.problems.length === 1 ? '' : 's'}: ${c.problems.join('; ')}`,
      { details: { file, problems: c.problems.length } })
  }
  return { records, motors, cameras }
}

function parseRecord (c: Checker, item: unknown, at: string): RecordOptions | undefined {
  if (!isRecord(item)) {
    c.bad(at, `must be a mapping with name, type, ... (got ${show(item)})`)
    return undefined
  }
  const before = c.problems.length
  const type = c.oneOf(item, 'type', at, RECORD_TYPES)
  if (item.type === undefined) c.bad(`${at}.type`, `is required; one of ${RECORD_TYPES.join(', ')}`)
  const name = c.pvName(item, 'name', at)
  if (type === undefined) return undefined
  c.unknownKeys(item, at, [...COMMON_RECORD_KEYS, ...RECORD_KEYS[type]], `a ${type} record`)

  const severity = (key: string): SeverityName | undefined => c.oneOf(item, key, at, SEVERITY_NAMES)
  const n = (key: string): number | undefined => c.number(item, key, at)
  const options: Record<string, unknown> = {
    type,
    desc: c.string(item, 'desc', at, MAX_STRING_SIZE - 1),
    readOnly: c.boolean(item, 'readOnly', at),
    egu: c.string(item, 'egu', at, MAX_EGU),
    prec: c.number(item, 'prec', at, { integer: true, min: 0 }),
    hopr: n('hopr'),
    lopr: n('lopr'),
    drvh: n('drvh'),
    drvl: n('drvl'),
    hihi: n('hihi'),
    high: n('high'),
    low: n('low'),
    lolo: n('lolo'),
    hhsv: severity('hhsv'),
    hsv: severity('hsv'),
    lsv: severity('lsv'),
    llsv: severity('llsv'),
    znam: c.string(item, 'znam', at, MAX_ENUM_STRING_SIZE - 1),
    onam: c.string(item, 'onam', at, MAX_ENUM_STRING_SIZE - 1),
    zsv: severity('zsv'),
    osv: severity('osv')
  }

  let states: string[] | undefined
  if (item.states !== undefined) {
    if (!Array.isArray(item.states) || item.states.length > MAX_ENUM_STATES) {
      c.bad(`${at}.states`, `must be a list of at most ${MAX_ENUM_STATES} strings (got ${show(item.states)})`)
    } else {
      states = []
      item.states.forEach((s: unknown, i: number) => {
        if (typeof s !== 'string' || utf8.encode(s).length >= MAX_ENUM_STRING_SIZE) {
          c.bad(`${at}.states[${i}]`, `must be a string of at most ${MAX_ENUM_STRING_SIZE - 1} bytes (got ${show(s)})`)
        } else {
          states?.push(s)
        }
      })
      options.states = states
    }
  }
  if (item.stateSeverities !== undefined) {
    if (!Array.isArray(item.stateSeverities) || item.stateSeverities.some((s) => !(SEVERITY_NAMES as readonly unknown[]).includes(s))) {
      c.bad(`${at}.stateSeverities`, `must be a list of ${SEVERITY_NAMES.join(', ')} (got ${show(item.stateSeverities)})`)
    } else {
      options.stateSeverities = item.stateSeverities
    }
  }

  const ftvl: FtvlName = c.oneOf(item, 'ftvl', at, FTVL_NAMES) ?? 'DOUBLE'
  if (type === 'waveform') {
    const nelm = c.number(item, 'nelm', at, { integer: true, positive: true })
    if (item.nelm === undefined) c.bad(`${at}.nelm`, 'is required for a waveform (the most elements it holds)')
    options.nelm = nelm
    options.ftvl = ftvl
    options.pattern = c.oneOf(item, 'pattern', at, PATTERNS)
    if (item.pattern !== undefined && item.value !== undefined) c.bad(`${at}.pattern`, 'give either a value or a pattern, not both')
  }
  options.value = checkValue(c, item.value, `${at}.value`, type, { states, znam: options.znam as string | undefined, onam: options.onam as string | undefined, nelm: options.nelm as number | undefined, ftvl })
  if (c.problems.length > before || name === undefined) return undefined
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined))
  return { ...defined, name, type } as RecordOptions
}

function checkValue (c: Checker, v: unknown, at: string, type: RecordType,
  o: { states?: string[], znam?: string, onam?: string, nelm?: number, ftvl: FtvlName }): RecordOptions['value'] | undefined {
  if (v === undefined) return undefined
  switch (type) {
    case 'ai': case 'ao': case 'longin': case 'longout':
      if (typeof v !== 'number' || !Number.isFinite(v)) c.bad(at, `must be a finite number (got ${show(v)})`)
      else if (type.startsWith('long') && !Number.isInteger(v)) c.bad(at, `must be an integer for a ${type} record (got ${v})`)
      else return v
      return undefined
    case 'bi': case 'bo': case 'mbbi': case 'mbbo': {
      const states = type === 'bi' || type === 'bo' ? [o.znam ?? '', o.onam ?? ''] : (o.states ?? [])
      const count = type === 'bi' || type === 'bo' ? 2 : (states.length === 0 ? MAX_ENUM_STATES : states.length)
      if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < count) return v
      if (typeof v === 'string' && v !== '' && states.includes(v)) return v
      c.bad(at, `must be a state index 0..${count - 1}${states.some((s) => s !== '') ? ` or one of ${states.filter((s) => s !== '').join(', ')}` : ''} (got ${show(v)})`)
      return undefined
    }
    case 'stringin': case 'stringout':
      if (typeof v !== 'string' || utf8.encode(v).length >= MAX_STRING_SIZE) c.bad(at, `must be a string of at most ${MAX_STRING_SIZE - 1} bytes (got ${show(v)})`)
      else return v
      return undefined
    case 'waveform': {
      const strings = o.ftvl === 'STRING'
      if (typeof v === 'string' && (o.ftvl === 'CHAR' || o.ftvl === 'UCHAR')) {
        if (o.nelm !== undefined && utf8.encode(v).length >= o.nelm) c.bad(at, `needs ${utf8.encode(v).length + 1} elements with its NUL; nelm is ${o.nelm}`)
        else return v
        return undefined
      }
      if (!Array.isArray(v) || !v.every((x) => strings ? typeof x === 'string' : typeof x === 'number' && Number.isFinite(x))) {
        c.bad(at, `must be a list of ${strings ? 'strings' : 'numbers'}${o.ftvl === 'CHAR' || o.ftvl === 'UCHAR' ? ' or a string' : ''} (got ${show(v)})`)
        return undefined
      }
      if (o.nelm !== undefined && v.length > o.nelm) {
        c.bad(at, `has ${v.length} elements; nelm is ${o.nelm}`)
        return undefined
      }
      return v as number[] | string[]
    }
  }
}

function parseMotor (c: Checker, item: unknown, at: string): MotorOptions | undefined {
  if (!isRecord(item)) {
    c.bad(at, `must be a mapping with prefix, velo, ... (got ${show(item)})`)
    return undefined
  }
  const before = c.problems.length
  c.unknownKeys(item, at, MOTOR_KEYS, 'a motor')
  const prefix = c.pvName(item, 'prefix', at)
  const options: Record<string, unknown> = {
    desc: c.string(item, 'desc', at, MAX_STRING_SIZE - 1),
    egu: c.string(item, 'egu', at, MAX_EGU),
    prec: c.number(item, 'prec', at, { integer: true, min: 0 }),
    velo: c.number(item, 'velo', at, { min: 0 }),
    vmax: c.number(item, 'vmax', at, { min: 0 }),
    accl: c.number(item, 'accl', at, { min: 0 }),
    hlm: c.number(item, 'hlm', at),
    llm: c.number(item, 'llm', at),
    value: c.number(item, 'value', at),
    rdbd: c.number(item, 'rdbd', at, { min: 0 }),
    mres: c.number(item, 'mres', at, { positive: true }),
    updateMs: c.number(item, 'updateMs', at, { positive: true })
  }
  const hlm = (options.hlm as number | undefined) ?? 0
  const llm = (options.llm as number | undefined) ?? 0
  if (hlm < llm) c.bad(`${at}.hlm`, `must be >= llm (got hlm ${hlm}, llm ${llm})`)
  const value = options.value as number | undefined
  if (value !== undefined && (hlm !== 0 || llm !== 0) && (value > hlm || value < llm)) {
    c.bad(`${at}.value`, `must be within [llm, hlm] = [${llm}, ${hlm}] (got ${value})`)
  }
  if (c.problems.length > before || prefix === undefined) return undefined
  return { ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)), prefix } as MotorOptions
}

/** A clock that never fires: enough to build a camera and list its PV names. */
const idleClock: SimClock = { nowMs: () => 0, setTimer: () => () => {} }

function parseCamera (c: Checker, item: unknown, at: string): CameraOptions | undefined {
  if (!isRecord(item)) {
    c.bad(at, `must be a mapping with prefix, width, height, ... (got ${show(item)})`)
    return undefined
  }
  const before = c.problems.length
  c.unknownKeys(item, at, CAMERA_KEYS, 'a camera')
  const prefix = c.pvName(item, 'prefix', at)
  const options: Record<string, unknown> = {
    model: c.string(item, 'model', at, MAX_STRING_SIZE - 1),
    manufacturer: c.string(item, 'manufacturer', at, MAX_STRING_SIZE - 1),
    width: c.number(item, 'width', at, { integer: true, positive: true }),
    height: c.number(item, 'height', at, { integer: true, positive: true }),
    dataType: c.oneOf<CameraDataType>(item, 'dataType', at, CAMERA_DATA_TYPES),
    deadtime: c.number(item, 'deadtime', at, { min: 0 }),
    maxFrameRate: c.number(item, 'maxFrameRate', at, { min: 0 }),
    minExposure: c.number(item, 'minExposure', at, { positive: true }),
    maxExposure: c.number(item, 'maxExposure', at, { positive: true }),
    driver: item.driver === undefined ? undefined : c.pvName(item, 'driver', at),
    image: item.image === undefined ? undefined : c.pvName(item, 'image', at),
    hdf: item.hdf === undefined ? undefined : c.pvName(item, 'hdf', at),
    portName: c.string(item, 'portName', at),
    maxFramesPerTick: c.number(item, 'maxFramesPerTick', at, { integer: true, positive: true })
  }
  const model = options.model as string | undefined
  if (model !== undefined && options.deadtime === undefined && CAMERA_MODEL_DEADTIME[model] === undefined) {
    c.bad(`${at}.deadtime`, `is required for model "${model}" (models with a known deadtime: ${Object.keys(CAMERA_MODEL_DEADTIME).join(', ')})`)
  }
  const minExposure = options.minExposure as number | undefined
  const maxExposure = options.maxExposure as number | undefined
  if (minExposure !== undefined && maxExposure !== undefined && maxExposure < minExposure) {
    c.bad(`${at}.maxExposure`, `must be >= minExposure (got ${maxExposure} < ${minExposure})`)
  }
  if (c.problems.length > before || prefix === undefined) return undefined
  const camera = { ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)), prefix } as CameraOptions
  const longest = new SimCamera(camera, idleClock).pvs().reduce((a, pv) => pv.name.length > a.length ? pv.name : a, '')
  if (longest.length > MAX_RECORD_NAME) {
    c.bad(`${at}.prefix`, `makes ${longest} ${longest.length} characters; EPICS record names are at most ${MAX_RECORD_NAME}`)
    return undefined
  }
  return camera
}
