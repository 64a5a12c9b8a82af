/**
 * Loads a YAML config in the habit of BITS `devices.yml`:
 *
 *   metadata: { beamline_id: tst, ... }          # run metadata defaults (scalars)
 *   data: { provider: nsls2 | local | static, root: <dir>, path?: <file, static only> }
 *   ca: { addrList: "127.0.0.1:5064", autoAddrList: false, serverPort: 5064, maxArrayBytes: 100000000, libraryPath: ... }
 *   ioc: { ... }                                 # the simulated IOC's PVs; validated by src/sim/ioc, kept raw here
 *   sim: { embedded: true, encoderMotor: <ioc motor prefix>, triggers: [{ ttlout: 1, camera: <ioc camera prefix>, line: 1 }], panda: { ... } }
 *   devices:
 *     SimMotor:                                   # a class from the device-class table
 *       - { name: sim_rot, labels: [motors], velocity: 90 }
 *
 * Every problem is reported at once in one FlyScanError BAD_INPUT naming the file, the path (e.g.
 * `devices.EpicsMotor[2].prefix`) and the problem. Relative data roots are relative to the working directory.
 */
import { readFile } from 'node:fs/promises'
import { parseDocument } from 'yaml'
import { ErrorCode, FlyScanError } from '../errors.js'
import type { Device } from '../devices/index.js'
import { Registry } from '../registry/index.js'
import { defaultDeviceClasses, type DeviceClassTable, type DeviceEntry, type OptionType } from './device-classes.js'

export type MetadataValue = string | number | boolean

export type DataProvider = 'nsls2' | 'local' | 'static'
export const DATA_PROVIDERS: readonly DataProvider[] = ['nsls2', 'local', 'static']

export interface DataConfig {
  readonly provider: DataProvider
  readonly root: string
  /** The one file a static provider returns. */
  readonly path?: string
}

/**
 * Channel Access client settings: each becomes the EPICS_CA_* environment variable of the same meaning when the
 * thread's CA context is created (docs/channel-access.md). Unset ones leave the environment as it is.
 */
export interface CaConfig {
  /** EPICS_CA_ADDR_LIST: space-separated `host[:port]` entries to send name searches to. */
  readonly addrList?: string
  /** EPICS_CA_AUTO_ADDR_LIST: also search the broadcast addresses of every interface. */
  readonly autoAddrList?: boolean
  /** EPICS_CA_SERVER_PORT: the UDP search port for entries without one (default 5064). */
  readonly serverPort?: number
  /** EPICS_CA_MAX_ARRAY_BYTES: the largest array the client accepts. */
  readonly maxArrayBytes?: number
  /** Where libca is; default: the Debian package's library, found by the system loader. */
  readonly libraryPath?: string
}

/** One wire of the simulated beamline: PandA TTLOUT `ttlout` drives trigger input `Line<line>` of a simulated camera. */
export interface SimTriggerWire {
  /** 1..10 */
  readonly ttlout: number
  /** The camera's prefix, as in ioc.cameras. */
  readonly camera: string
  /** 1..4: the camera's TriggerSource Line1..Line4. */
  readonly line: number
}

/** The synthetic absorption edge on the simulated PandA's FMC_IN channels (src/sim/panda/adc.ts). */
export interface SimAdcConfig {
  readonly edgeDeg?: number
  readonly widthDeg?: number
  readonly i0Volts?: number
  readonly muBelow?: number
  readonly muJump?: number
  readonly noise?: number
}

/** Options of the simulated PandA that make sense in a config file. */
export interface SimPandaConfig {
  /** Which INENC follows encoderMotor (1..4, default 1). */
  readonly encoder?: number
  /** Encoder counts per 360 motor units (default defaults.panda.encoderCountsPerRev, TST's 8000). */
  readonly countsPerRev?: number
  readonly adc?: SimAdcConfig
}

/**
 * The `sim` section: how the simulated IOC and the simulated PandA are wired into one beamline (src/sim/beamline.ts,
 * docs/sim-beamline.md).
 */
export interface SimConfig {
  /** `tst-fly run` and `npm start` start the simulators in-process on free ports (default false). */
  readonly embedded: boolean
  /** The prefix of the ioc.motors entry the PandA's encoder follows (none: the encoder stays at 0). */
  readonly encoderMotor: string | undefined
  readonly triggers: readonly SimTriggerWire[]
  readonly panda: SimPandaConfig
}

export interface FlyConfig {
  readonly file: string
  readonly metadata: Readonly<Record<string, MetadataValue>>
  readonly data: DataConfig
  readonly ca: CaConfig
  /** The `ioc` section, unvalidated: only the simulated IOC reads it (src/sim/ioc/config.ts). */
  readonly ioc: unknown
  /** The `sim` section: the simulated beamline's wiring (validated here, against the raw ioc section). */
  readonly sim: SimConfig | undefined
  readonly devices: readonly DeviceEntry[]
}

const CA_KEYS: Readonly<Record<keyof CaConfig, OptionType>> = {
  addrList: 'string', autoAddrList: 'boolean', serverPort: 'number', maxArrayBytes: 'number', libraryPath: 'string'
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/
const TOP_KEYS = ['metadata', 'data', 'ca', 'ioc', 'devices', 'sim']
const SIM_KEYS = ['embedded', 'encoderMotor', 'triggers', 'panda']
const SIM_TRIGGER_KEYS = ['ttlout', 'camera', 'line']
const SIM_PANDA_KEYS = ['encoder', 'countsPerRev', 'adc']
const SIM_ADC_KEYS: ReadonlyArray<keyof SimAdcConfig> = ['edgeDeg', 'widthDeg', 'i0Volts', 'muBelow', 'muJump', 'noise']
/** PandABox TTL outputs, camera trigger lines (a Manta's Line1..Line4), PandA encoders. */
const TTLOUTS = 10
const CAMERA_LINES = 4
const ENCODERS = 4

function isRecord (x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

function matchesType (v: unknown, type: OptionType): boolean {
  switch (type) {
    case 'string': return typeof v === 'string'
    case 'number': return typeof v === 'number'
    case 'boolean': return typeof v === 'boolean'
  }
}

function show (x: unknown): string {
  return x === undefined ? 'nothing' : JSON.stringify(x)
}

/** Validate a parsed config document; `file` names it in errors. */
export function parseConfig (doc: unknown, file: string, classes: DeviceClassTable = defaultDeviceClasses()): FlyConfig {
  const problems: string[] = []
  const bad = (path: string, what: string): void => { problems.push(`${path}: ${what}`) }
  if (!isRecord(doc)) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `${file}: the top level must be a mapping with ${TOP_KEYS.join(', ')} (got ${show(doc)})`, { details: { file } })
  }
  for (const key of Object.keys(doc)) if (!TOP_KEYS.includes(key)) bad(key, `unknown key; allowed: ${TOP_KEYS.join(', ')}`)

  const metadata: Record<string, MetadataValue> = {}
  if (doc.metadata !== undefined && !isRecord(doc.metadata)) bad('metadata', `must be a mapping (got ${show(doc.metadata)})`)
  else {
    for (const [k, v] of Object.entries(doc.metadata ?? {})) {
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') metadata[k] = v
      else bad(`metadata.${k}`, `must be a string, number or boolean (got ${show(v)})`)
    }
  }

  let data: DataConfig = { provider: 'local', root: 'out/data' }
  if (doc.data !== undefined) {
    if (!isRecord(doc.data)) bad('data', `must be a mapping (got ${show(doc.data)})`)
    else {
      const { provider, root, path, ...rest } = doc.data
      for (const k of Object.keys(rest)) bad(`data.${k}`, 'unknown key; allowed: provider, root, path')
      if (typeof provider !== 'string' || !(DATA_PROVIDERS as readonly string[]).includes(provider)) {
        bad('data.provider', `must be one of ${DATA_PROVIDERS.join(', ')} (got ${show(provider)})`)
      } else if (typeof root !== 'string' || root === '') {
        bad('data.root', `must be a non-empty string (got ${show(root)})`)
      } else if (provider === 'static' && typeof path !== 'string') {
        bad('data.path', `a static provider needs the file path as a string (got ${show(path)})`)
      } else if (path !== undefined && provider !== 'static') {
        bad('data.path', `only a static provider takes a path (provider is ${provider})`)
      } else {
        data = typeof path === 'string' ? { provider: provider as DataProvider, root, path } : { provider: provider as DataProvider, root }
      }
    }
  }

  const ca: Record<string, string | number | boolean> = {}
  if (doc.ca !== undefined && !isRecord(doc.ca)) bad('ca', `must be a mapping (got ${show(doc.ca)})`)
  for (const [k, v] of Object.entries(isRecord(doc.ca) ? doc.ca : {})) {
    const type = CA_KEYS[k as keyof CaConfig] as OptionType | undefined
    if (type === undefined) bad(`ca.${k}`, `unknown key; allowed: ${Object.keys(CA_KEYS).join(', ')}`)
    else if (!matchesType(v, type)) bad(`ca.${k}`, `must be a ${type} (got ${show(v)})`)
    else if (type === 'number' && (!Number.isInteger(v) || (v as number) <= 0)) bad(`ca.${k}`, `must be a positive integer (got ${show(v)})`)
    else ca[k] = v as string | number | boolean
  }

  const sim = doc.sim === undefined ? undefined : parseSim(doc.sim, doc.ioc, bad)

  const devices: DeviceEntry[] = []
  const seen = new Map<string, string>()
  if (doc.devices !== undefined && !isRecord(doc.devices)) bad('devices', `must be a mapping of device class to a list (got ${show(doc.devices)})`)
  for (const [className, list] of Object.entries(isRecord(doc.devices) ? doc.devices : {})) {
    const cls = classes.get(className)
    if (cls === undefined) {
      bad(`devices.${className}`, `unknown device class; known: ${[...classes.keys()].join(', ')}`)
      continue
    }
    if (!Array.isArray(list)) {
      bad(`devices.${className}`, `must be a list of {name, prefix, labels, ...} (got ${show(list)})`)
      continue
    }
    list.forEach((item: unknown, i: number) => {
      const at = `devices.${className}[${i}]`
      if (!isRecord(item)) { bad(at, `must be a mapping (got ${show(item)})`); return }
      const { name, prefix, labels, ...options } = item
      const before = problems.length
      if (typeof name !== 'string' || !NAME_RE.test(name)) bad(`${at}.name`, `must be an identifier like rot_motor (got ${show(name)})`)
      else if (seen.has(name)) bad(`${at}.name`, `'${name}' is already used by ${seen.get(name) ?? ''}`)
      if (prefix !== undefined && typeof prefix !== 'string') bad(`${at}.prefix`, `must be a string (got ${show(prefix)})`)
      if (prefix === undefined && cls.prefixRequired) bad(`${at}.prefix`, `is required for ${className}`)
      if (labels !== undefined && !(Array.isArray(labels) && labels.every((l) => typeof l === 'string'))) {
        bad(`${at}.labels`, `must be a list of strings (got ${show(labels)})`)
      }
      const opts: Record<string, string | number | boolean> = {}
      for (const [k, v] of Object.entries(options)) {
        const type = cls.options[k]
        if (type === undefined) bad(`${at}.${k}`, `unknown option for ${className}; allowed: name, prefix, labels${Object.keys(cls.options).map((o) => `, ${o}`).join('')}`)
        else if (!matchesType(v, type)) bad(`${at}.${k}`, `must be a ${type} (got ${show(v)})`)
        else opts[k] = v as string | number | boolean
      }
      for (const k of cls.required ?? []) if (options[k] === undefined) bad(`${at}.${k}`, `is required for ${className}`)
      if (problems.length > before || typeof name !== 'string') return
      seen.set(name, at)
      devices.push({ deviceClass: className, name, prefix: prefix as string | undefined, labels: (labels as string[] | undefined) ?? [], options: opts })
    })
  }

  if (problems.length > 0) {
    throw new FlyScanError(ErrorCode.BAD_INPUT,
      `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}: ${problems.join('; ')}`,
      { details: { file, problems: problems.length } })
  }
  return { file, metadata, data, ca: ca as CaConfig, ioc: doc.ioc, sim, devices }
}

/** The `prefix` of each mapping in the raw `ioc.<list>` (the simulated IOC validates the rest of it). */
function iocPrefixes (ioc: unknown, list: 'motors' | 'cameras'): string[] {
  const items = isRecord(ioc) ? ioc[list] : undefined
  if (!Array.isArray(items)) return []
  return items.flatMap((item: unknown) => isRecord(item) && typeof item.prefix === 'string' ? [item.prefix] : [])
}

function integerIn (v: unknown, lo: number, hi: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi
}

/** Validate the `sim` section; its camera and motor prefixes must name entries of the `ioc` section. */
function parseSim (raw: unknown, ioc: unknown, bad: (path: string, what: string) => void): SimConfig | undefined {
  if (!isRecord(raw)) {
    bad('sim', `must be a mapping with ${SIM_KEYS.join(', ')} (got ${show(raw)})`)
    return undefined
  }
  for (const k of Object.keys(raw)) if (!SIM_KEYS.includes(k)) bad(`sim.${k}`, `unknown key; allowed: ${SIM_KEYS.join(', ')}`)
  const motors = iocPrefixes(ioc, 'motors')
  const cameras = iocPrefixes(ioc, 'cameras')
  const list = (names: string[]): string => names.length === 0 ? 'none' : names.map((n) => JSON.stringify(n)).join(', ')

  let embedded = false
  if (raw.embedded !== undefined) {
    if (typeof raw.embedded !== 'boolean') bad('sim.embedded', `must be true or false (got ${show(raw.embedded)})`)
    else embedded = raw.embedded
  }

  let encoderMotor: string | undefined
  if (raw.encoderMotor !== undefined) {
    if (typeof raw.encoderMotor !== 'string') bad('sim.encoderMotor', `must be a motor prefix string (got ${show(raw.encoderMotor)})`)
    else if (!motors.includes(raw.encoderMotor)) bad('sim.encoderMotor', `no motor with prefix ${JSON.stringify(raw.encoderMotor)} in ioc.motors (it has ${list(motors)})`)
    else encoderMotor = raw.encoderMotor
  }

  const triggers: SimTriggerWire[] = []
  if (raw.triggers !== undefined && !Array.isArray(raw.triggers)) {
    bad('sim.triggers', `must be a list of { ttlout, camera, line } (got ${show(raw.triggers)})`)
  } else {
    const seen = new Map<string, string>()
    ;(raw.triggers as unknown[] | undefined ?? []).forEach((item, i) => {
      const at = `sim.triggers[${i}]`
      if (!isRecord(item)) { bad(at, `must be a mapping { ttlout, camera, line } (got ${show(item)})`); return }
      for (const k of Object.keys(item)) if (!SIM_TRIGGER_KEYS.includes(k)) bad(`${at}.${k}`, `unknown key; allowed: ${SIM_TRIGGER_KEYS.join(', ')}`)
      const { ttlout, camera, line } = item
      let ok = true
      if (!integerIn(ttlout, 1, TTLOUTS)) { bad(`${at}.ttlout`, `must be a PandA TTLOUT number 1..${TTLOUTS} (got ${show(ttlout)})`); ok = false }
      if (typeof camera !== 'string') { bad(`${at}.camera`, `must be a camera prefix string (got ${show(camera)})`); ok = false } else if (!cameras.includes(camera)) {
        bad(`${at}.camera`, `no camera with prefix ${JSON.stringify(camera)} in ioc.cameras (it has ${list(cameras)})`)
        ok = false
      }
      if (!integerIn(line, 1, CAMERA_LINES)) { bad(`${at}.line`, `must be a camera trigger line 1..${CAMERA_LINES} (TriggerSource Line1..Line${CAMERA_LINES}; got ${show(line)})`); ok = false }
      if (!ok) return
      const key = `${String(ttlout)} ${String(camera)} ${String(line)}`
      const first = seen.get(key)
      if (first !== undefined) { bad(at, `wires TTLOUT${String(ttlout)} to ${String(camera)} Line${String(line)} again (as ${first} does)`); return }
      seen.set(key, at)
      triggers.push({ ttlout: ttlout as number, camera: camera as string, line: line as number })
    })
  }

  const panda: { encoder?: number, countsPerRev?: number, adc?: SimAdcConfig } = {}
  if (raw.panda !== undefined && raw.panda !== null) {
    if (!isRecord(raw.panda)) {
      bad('sim.panda', `must be a mapping with ${SIM_PANDA_KEYS.join(', ')} (got ${show(raw.panda)})`)
    } else {
      const p = raw.panda
      for (const k of Object.keys(p)) if (!SIM_PANDA_KEYS.includes(k)) bad(`sim.panda.${k}`, `unknown key; allowed: ${SIM_PANDA_KEYS.join(', ')}`)
      if (p.encoder !== undefined) {
        if (!integerIn(p.encoder, 1, ENCODERS)) bad('sim.panda.encoder', `must be an INENC number 1..${ENCODERS} (got ${show(p.encoder)})`)
        else panda.encoder = p.encoder
      }
      if (p.countsPerRev !== undefined) {
        if (!integerIn(p.countsPerRev, 1, Number.MAX_SAFE_INTEGER)) bad('sim.panda.countsPerRev', `must be a positive integer (got ${show(p.countsPerRev)})`)
        else panda.countsPerRev = p.countsPerRev
      }
      if (p.adc !== undefined) {
        if (!isRecord(p.adc)) {
          bad('sim.panda.adc', `must be a mapping with ${SIM_ADC_KEYS.join(', ')} (got ${show(p.adc)})`)
        } else {
          const adc: Record<string, number> = {}
          for (const [k, v] of Object.entries(p.adc)) {
            const at = `sim.panda.adc.${k}`
            if (!(SIM_ADC_KEYS as readonly string[]).includes(k)) bad(at, `unknown key; allowed: ${SIM_ADC_KEYS.join(', ')}`)
            else if (typeof v !== 'number' || !Number.isFinite(v)) bad(at, `must be a finite number (got ${show(v)})`)
            else if ((k === 'widthDeg' || k === 'i0Volts') && !(v > 0)) bad(at, `must be > 0 (got ${v})`)
            else if (k === 'noise' && !(v >= 0 && v < 1)) bad(at, `must be in [0, 1) (got ${v})`)
            else adc[k] = v
          }
          panda.adc = adc
        }
      }
    }
  }
  return { embedded, encoderMotor, triggers, panda }
}

/** Read and validate a YAML config file. */
export async function loadConfigFile (file: string, classes?: DeviceClassTable): Promise<FlyConfig> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new FlyScanError(ErrorCode.BAD_FILE, `cannot read config ${file}: ${(err as Error).message}`, { details: { file }, cause: err })
  }
  const doc = parseDocument(text)
  const first = doc.errors[0]
  if (first !== undefined) {
    const where = first.linePos?.[0]
    throw new FlyScanError(ErrorCode.BAD_FILE,
      `${file}${where === undefined ? '' : `:${where.line}:${where.col}`}: not valid YAML: ${first.message.split('\n')[0] ?? ''}`,
      { details: { file }, cause: first })
  }
  return parseConfig(doc.toJS(), file, classes)
}

export interface CreatedDevices {
  readonly registry: Registry<Device>
  /** Entries whose class is declared but has no factory yet. */
  readonly skipped: ReadonlyArray<{ name: string, deviceClass: string }>
}

/** Build every device whose class has a factory and register it with its labels. */
export function createDevices (config: FlyConfig, classes: DeviceClassTable = defaultDeviceClasses()): CreatedDevices {
  const registry = new Registry<Device>()
  const skipped: Array<{ name: string, deviceClass: string }> = []
  const created = new Map<string, Device>()
  const composite = (e: DeviceEntry): boolean => classes.get(e.deviceClass)?.composite === true
  // Plain devices first, then the composites that name them.
  for (const entry of [...config.devices.filter((e) => !composite(e)), ...config.devices.filter(composite)]) {
    const create = classes.get(entry.deviceClass)?.create
    if (create === undefined) {
      skipped.push({ name: entry.name, deviceClass: entry.deviceClass })
      continue
    }
    const resolve = (name: string, option: string): Device => {
      const found = created.get(name)
      if (found !== undefined) return found
      const known = [...created.keys()].join(', ')
      const why = skipped.some((s) => s.name === name) ? `${name} is of a class not implemented yet` : `there is no device called ${name} (created: ${known})`
      throw new FlyScanError(ErrorCode.BAD_INPUT, `${config.file}: ${entry.deviceClass} ${entry.name}: ${option}: ${why}`,
        { details: { file: config.file, device: entry.name, option } })
    }
    const device = create(entry, resolve)
    created.set(entry.name, device)
    registry.register(device, entry.labels)
  }
  return { registry, skipped }
}
