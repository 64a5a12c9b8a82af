/**
 * Path providers: where a device writes its next file (ophyd-async's PathProvider / PathInfo). Paths are POSIX.
 *
 * - ProposalPathProvider (NSLS-II): `<root>/<cycle>/<data_session>/assets/<device>/YYYY/MM/DD/<uuid>.h5`, with cycle and
 *   data_session taken from run metadata.
 * - LocalPathProvider (sim and tests): `<root>/<device>/YYYY/MM/DD/<uuid>.h5`.
 * - StaticPathProvider: always the one configured file.
 *
 * The date (local time) and the uuid are injectable for tests.
 */
import { randomUUID } from 'node:crypto'
import { posix } from 'node:path'
import { ErrorCode, FlyScanError } from '../errors.js'
import type { DataConfig } from '../config/index.js'

export interface PathInfo {
  /** The directory the file goes in. */
  readonly directoryPath: string
  /** The file name without extension. */
  readonly filename: string
  /** The whole path, `<directoryPath>/<filename>.h5`. */
  readonly path: string
  /** How many trailing levels of directoryPath the writer may create (the rest must exist). */
  readonly createDirDepth: number
}

export type RunMetadata = Readonly<Record<string, unknown>>

export interface PathProvider {
  getPath (deviceName: string, metadata?: RunMetadata): PathInfo
}

export interface PathProviderOptions {
  now?: () => Date
  uuid?: () => string
}

const DEVICE_RE = /^[A-Za-z0-9_-]+$/

function checkDevice (deviceName: string): void {
  if (!DEVICE_RE.test(deviceName)) {
    throw new FlyScanError(ErrorCode.BAD_INPUT,
      `device name ${JSON.stringify(deviceName)} cannot be a directory: use letters, digits, '_' and '-'`, { details: { deviceName } })
  }
}

function ymd (date: Date): string[] {
  return [String(date.getFullYear()), String(date.getMonth() + 1).padStart(2, '0'), String(date.getDate()).padStart(2, '0')]
}

function info (directoryPath: string, filename: string, createDirDepth: number): PathInfo {
  return { directoryPath, filename, path: posix.join(directoryPath, `${filename}.h5`), createDirDepth }
}

/** What the dated providers share: a root, and injectable date and uuid sources (tests pin both). */
abstract class DatedPathProvider implements PathProvider {
  protected readonly root: string
  protected readonly now: () => Date
  protected readonly uuid: () => string

  constructor (root: string, options: PathProviderOptions = {}) {
    this.root = root
    this.now = options.now ?? (() => new Date())
    this.uuid = options.uuid ?? randomUUID
  }

  abstract getPath (deviceName: string, metadata?: RunMetadata): PathInfo
}

export class ProposalPathProvider extends DatedPathProvider {
  getPath (deviceName: string, metadata: RunMetadata = {}): PathInfo {
    checkDevice(deviceName)
    const missing = ['cycle', 'data_session'].filter((k) => typeof metadata[k] !== 'string' || metadata[k] === '')
    if (missing.length > 0) {
      throw new FlyScanError(ErrorCode.BAD_INPUT,
        `the NSLS-II path for ${deviceName} needs run metadata ${missing.join(' and ')} (e.g. cycle: '2025-2', data_session: 'pass-56789'); ` +
        `got ${missing.map((k) => `${k}=${JSON.stringify(metadata[k]) ?? 'missing'}`).join(', ')}`,
        { details: { deviceName, missing: missing.join(',') } })
    }
    const cycle = String(metadata.cycle)
    const session = String(metadata.data_session)
    for (const [key, value] of [['cycle', cycle], ['data_session', session]] as const) {
      if (value.includes('/') || value === '.' || value === '..') {
        throw new FlyScanError(ErrorCode.BAD_INPUT, `run metadata ${key} ${JSON.stringify(value)} cannot be a directory name`, { details: { [key]: value } })
      }
    }
    // assets/<device>/YYYY/MM/DD are created by the writer; the proposal directories must exist.
    return info(posix.join(this.root, cycle, session, 'assets', deviceName, ...ymd(this.now())), this.uuid(), 5)
  }
}

export class LocalPathProvider extends DatedPathProvider {
  getPath (deviceName: string): PathInfo {
    checkDevice(deviceName)
    const dir = posix.join(this.root, deviceName, ...ymd(this.now()))
    return info(dir, this.uuid(), 4 + this.root.split('/').filter((p) => p !== '' && p !== '.').length)
  }
}

export class StaticPathProvider implements PathProvider {
  readonly #info: PathInfo

  /** `file` with or without the .h5 extension. */
  constructor (file: string) {
    const base = posix.basename(file)
    const filename = base.endsWith('.h5') ? base.slice(0, -3) : base
    if (filename === '') throw new FlyScanError(ErrorCode.BAD_INPUT, `static path ${JSON.stringify(file)} names no file`, { details: { file } })
    this.#info = info(posix.dirname(file), filename, 0)
  }

  getPath (deviceName: string): PathInfo {
    checkDevice(deviceName)
    return this.#info
  }
}

/** The provider a config's `data` section asks for. */
export function pathProviderFor (data: DataConfig, options: PathProviderOptions = {}): PathProvider {
  switch (data.provider) {
    case 'nsls2': return new ProposalPathProvider(data.root, options)
    case 'local': return new LocalPathProvider(data.root, options)
    case 'static': return new StaticPathProvider(posix.join(data.root, data.path ?? ''))
  }
}
