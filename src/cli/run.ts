/**
 * `tst-fly run <plan> [--<arg> <value> ...] [--config <yaml>] [--docs <file.jsonl>] [--md key=value ...] [--json]`
 *
 * Loads the config (default: the embedded config/sim.yaml), creates its devices and connects those the plan's
 * arguments name (simulated classes, `Sim*`, with mock backends; EPICS ones over Channel Access with the config's
 * `ca` settings), builds the plan from the catalog (src/plans/catalog.ts) with the checked
 * arguments, and runs it on a RunEngine whose metadata is the config's `metadata` with the `--md` pairs over it
 * (a value is parsed as JSON when it parses, else kept as a string). Prints the live table on stdout (or, with
 * --json, one summary object at the end) and writes every document to a JSONL file: `--docs`, or by default
 * `<data.root>/run-<local time>.jsonl` beside the data. Exit codes: 0 the run succeeded, 1 it failed (or a device
 * did not connect), 2 bad input (thrown as FlyScanError BAD_INPUT / BAD_FILE for main to report).
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ErrorCode, FlyScanError } from '../errors.js'
import { ADVimba, IocHdfWriter, TstFlyFrameWriter } from '../areadetector/index.js'
import { CaContext } from '../backends/index.js'
import { createDevices, loadConfigFile, type FlyConfig } from '../config/index.js'
import type { Device } from '../devices/index.js'
import { RunEngine, type Plan, type RunResult } from '../engine/index.js'
import { JsonlSink, type DocumentName, type Document } from '../documents/index.js'
import { FlyScan, formatTimingReport, type TimingReport, type CalibrationResult } from '../fly/index.js'
import { HDFPanda } from '../panda/index.js'
import { pathProviderFor } from '../paths/index.js'
import { catalogText, findCatalogPlan, parsePlanArgs, planCatalog, type PlanArgs } from '../plans/index.js'
import type { Registry } from '../registry/index.js'
import { SimBeamline } from '../sim/index.js'
import { liveTable } from './live-table.js'
import { startProgressBar } from './progress.js'

export interface RunCommandIo {
  readonly stdout: (text: string) => void
  readonly stderr: (text: string) => void
  /** The config used when --config is not given. */
  readonly defaultConfig: string
  /** stdout is a terminal: the progress bar redraws in place (default false: a line now and then). */
  readonly tty?: boolean
}

export interface RunSummary {
  readonly plan: string
  readonly outcome: RunResult['outcome'] | 'failed'
  readonly exitStatus: string | undefined
  readonly reason: string | undefined
  readonly runUids: readonly string[]
  readonly events: number
  readonly documents: number
  readonly docs: string
  /** The data files the run's stream_resource documents point at (HDF5). */
  readonly files: readonly string[]
  /** Frames on disk (every camera) and PandA rows on disk, for a fly scan. */
  readonly frames: number
  readonly rows: number
  /** The fly scan's timing report (as in run_stop), or null. */
  readonly timing: TimingReport | null
  /** energy_calibration's fit (src/fly/calibration.ts), when the run made one. */
  readonly calibration?: CalibrationResult
}

function bad (message: string): FlyScanError {
  return new FlyScanError(ErrorCode.BAD_INPUT, message)
}

function planNames (): string {
  return planCatalog().map((p) => p.name).join(', ')
}

/** `key=value` → [key, value], the value parsed as JSON when it parses (numbers, booleans, objects), else text. */
export function parseMdPair (text: string): [string, unknown] {
  const eq = text.indexOf('=')
  const key = eq < 0 ? '' : text.slice(0, eq).trim()
  if (eq < 0 || key === '') throw bad(`--md takes key=value (e.g. --md sample=Si --md temperature=295), got '${text}'`)
  const raw = text.slice(eq + 1)
  try {
    return [key, JSON.parse(raw) as unknown]
  } catch {
    return [key, raw]
  }
}

interface ParsedRunArgs {
  readonly planName: string
  readonly config: string | undefined
  readonly docs: string | undefined
  readonly md: Record<string, unknown>
  readonly json: boolean
  readonly planArgs: Map<string, string | true>
}

const OWN_OPTIONS = ['config', 'docs', 'md', 'json']

/** Split `run`'s arguments into its own options and the plan's (`--name value`, `--name=value`, bare flags). */
export function parseRunArgs (args: readonly string[]): ParsedRunArgs {
  const [planName, ...rest] = args
  if (planName === undefined || planName.startsWith('-')) throw bad(`run needs a plan name first; plans: ${planNames()}`)
  const plan = findCatalogPlan(planName)
  const booleans = new Set(plan.params.filter((p) => p.kind === 'boolean').map((p) => p.name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)))
  booleans.add('json')
  let config: string | undefined
  let docs: string | undefined
  let json = false
  const md: Record<string, unknown> = {}
  const planArgs = new Map<string, string | true>()
  for (let i = 0; i < rest.length; i++) {
    const token = rest[i] as string
    if (!token.startsWith('--') || token === '--') throw bad(`run ${planName}: unexpected '${token}' (arguments are --name value)`)
    const eq = token.indexOf('=')
    const name = eq < 0 ? token.slice(2) : token.slice(2, eq)
    let value: string | true
    if (eq >= 0) value = token.slice(eq + 1)
    else if (booleans.has(name)) {
      const next = rest[i + 1]
      if (next === 'true' || next === 'false') { value = next; i++ } else value = true
    } else {
      const next = rest[i + 1]
      if (next === undefined || next.startsWith('--')) value = true
      else { value = next; i++ }
    }
    if (OWN_OPTIONS.includes(name)) {
      if (name === 'json') {
        if (value !== true && value !== 'true' && value !== 'false') throw bad(`--json is a flag, got '${value}'`)
        json = value !== 'false'
        continue
      }
      if (value === true) throw bad(`--${name} needs a value`)
      if (name === 'config') config = value
      else if (name === 'docs') docs = value
      else { const [k, v] = parseMdPair(value); md[k] = v }
      continue
    }
    if (planArgs.has(name)) throw bad(`run ${planName}: --${name} given twice`)
    planArgs.set(name, value)
  }
  return { planName, config, docs, md, json, planArgs }
}

function stamp (): string {
  const d = new Date()
  const two = (n: number): string => String(n).padStart(2, '0')
  return `${d.getFullYear()}${two(d.getMonth() + 1)}${two(d.getDate())}-${two(d.getHours())}${two(d.getMinutes())}${two(d.getSeconds())}-${String(d.getMilliseconds()).padStart(3, '0')}`
}

/** `tst-fly plans` */
export function plansCommand (io: Pick<RunCommandIo, 'stdout'>): number {
  io.stdout(catalogText())
  return 0
}

/** `tst-fly run ...`; resolves to the exit code (bad input is thrown as FlyScanError). */
export async function runCommand (args: readonly string[], io: RunCommandIo): Promise<number> {
  const parsed = parseRunArgs(args)
  const plan = findCatalogPlan(parsed.planName)
  const loaded = await loadConfigFile(parsed.config ?? io.defaultConfig)
  // The plan's arguments are checked against the config's devices before any simulator starts; the simulated
  // beamline starts only for a plan that uses a device it serves (not one of the in-memory Sim* classes).
  const first = createDevices(loaded).registry
  const simClasses = new Set(loaded.devices.filter((e) => e.deviceClass.startsWith('Sim')).map((e) => e.name))
  const needsBeamline = devicesIn(parsePlanArgs(plan, parsed.planArgs, first), first.findAll()).some((d) => !simClasses.has(d.name))
  let beamline: SimBeamline | undefined
  let config = loaded
  if (loaded.sim?.embedded === true && needsBeamline) {
    beamline = await SimBeamline.start(loaded)
    config = beamline.configFor(loaded)
    if (!parsed.json) {
      io.stdout(`simulated beamline (${path.relative(process.cwd(), loaded.file) || loaded.file}): IOC at ${beamline.caAddrList}, ` +
        `PandA at 127.0.0.1 control ${beamline.pandaControlPort} data ${beamline.pandaDataPort}\n`)
    }
  }
  try {
    return await runWithDevices(plan.name, config, parsed, io)
  } finally {
    await beamline?.close()
  }
}

/**
 * Where each device's data goes: the config's path provider with this run's metadata for the PandA, and for each
 * camera without a data writer, tst-fly's own frame writer (camera-capture and frame-writer workers), or with the
 * camera's `writer: ioc` option, the IOC's HDF1 plugin (IocHdfWriter, docs/ioc-writer.md).
 */
function wireDataPaths (registry: Registry<Device>, config: FlyConfig, md: Readonly<Record<string, unknown>>): void {
  const provider = pathProviderFor(config.data)
  for (const entry of config.devices) {
    const device = registry.findAll().find((d) => d.name === entry.name)
    if (device instanceof HDFPanda) device.setPathProvider(provider, md)
    else if (device instanceof ADVimba && device.writer === undefined && entry.prefix !== undefined) {
      const option = (key: string): string | undefined => typeof entry.options[key] === 'string' ? entry.options[key] : undefined
      device.setWriter(option('writer') === 'ioc'
        ? new IocHdfWriter(device.hdfPrefix, { name: `${entry.name}-hdf`, pathProvider: provider, runMetadata: md, driver: device.drv, ca: config.ca })
        : new TstFlyFrameWriter({
          prefix: entry.prefix,
          driver: option('driver'),
          image: option('image'),
          ca: config.ca,
          pathProvider: provider,
          runMetadata: md,
          ...(device.roiStream === undefined ? {} : { roi: device.roiStream })
        }))
    }
  }
}

async function runWithDevices (planName: string, config: FlyConfig, parsed: ParsedRunArgs, io: RunCommandIo): Promise<number> {
  const plan = findCatalogPlan(planName)
  const { registry, skipped } = createDevices(config)
  const planArgs = parsePlanArgs(plan, parsed.planArgs, registry)
  wireDataPaths(registry, config, { ...config.metadata, ...parsed.md })
  const built = plan.build(planArgs)
  if (skipped.length > 0 && !parsed.json) {
    io.stderr(`tst-fly: not created (class not implemented yet): ${skipped.map((s) => `${s.name} (${s.deviceClass})`).join(', ')}\n`)
  }

  // Connect the devices the plan uses, in parallel: simulated classes on mock backends, EPICS ones through this
  // thread's CA context, created first from the config's ca section (so every channel searches where it says).
  const sim = new Set(config.devices.filter((e) => e.deviceClass.startsWith('Sim')).map((e) => e.name))
  const used = devicesIn(planArgs, registry.findAll())
  if (used.some((d) => !sim.has(d.name))) CaContext.get(config.ca)
  try {
    const connected = await Promise.allSettled(used.map(async (d) => { await d.connect({ mock: sim.has(d.name) }) }))
    const failures = connected.flatMap((r) => r.status === 'rejected' ? [r.reason instanceof Error ? r.reason.message : String(r.reason)] : [])
    if (failures.length > 0) {
      io.stderr(`tst-fly: ${failures.length} device${failures.length === 1 ? '' : 's'} failed to connect: ${failures.join('; ')}\n`)
      return 1
    }
    const flyscan = used.find((d): d is FlyScan => d instanceof FlyScan)
    return await runConnected(plan.name, built, config, parsed, io, flyscan)
  } finally {
    // Open CA channels keep the process alive: close them with the context.
    await CaContext.current()?.destroy()
  }
}

/** The devices among `all` that the plan's arguments name (directly or in a list). */
function devicesIn (args: PlanArgs, all: readonly Device[]): Device[] {
  const set = new Set<Device>(all)
  const found = new Set<Device>()
  for (const v of Object.values(args)) {
    for (const item of Array.isArray(v) ? v : [v]) if (set.has(item as Device)) found.add(item as Device)
  }
  return [...found]
}

async function runConnected (
  planName: string, built: Plan<string>, config: FlyConfig, parsed: ParsedRunArgs, io: RunCommandIo, flyscan: FlyScan | undefined
): Promise<number> {
  const docsPath = path.resolve(parsed.docs ?? path.join(config.data.root, `run-${stamp()}.jsonl`))
  const sink = await JsonlSink.open(docsPath)
  const re = new RunEngine({ metadata: config.metadata })
  let events = 0
  let exitStatus: string | undefined
  let reason: string | undefined
  const files = new Set<string>()
  re.subscribe((name: DocumentName, doc: Document) => {
    sink.write(name, doc as never)
    if (name === 'stream_resource') files.add(fileOf((doc as { uri: string }).uri))
    else if (name === 'event') events++
    else if (name === 'event_page') events += (doc as { seq_num: readonly number[] }).seq_num.length
    else if (name === 'stop') {
      const stop = doc as { exit_status: string, reason?: string }
      exitStatus = stop.exit_status
      reason = stop.reason
    }
  })
  // A camera with ROIs makes the live table show its ROI stream (an XAS spectrum as it is taken).
  const roiStream = flyscan?.roiCollectables()[0]?.name
  if (!parsed.json) re.subscribe(liveTable({ write: (line) => { io.stdout(line + '\n') }, ...(roiStream === undefined ? {} : { stream: roiStream }) }))
  const removeSigint = re.installSigintHandler()
  const stopBar = flyscan === undefined || parsed.json
    ? () => {}
    : startProgressBar({ sample: () => flyscan.progress(), write: io.stdout, tty: io.tty ?? false })

  let result: RunResult | undefined
  let failure: string | undefined
  try {
    result = await re.run(built, parsed.md)
    // The CLI cannot resume a paused run (SIGINT once): close it as aborted.
    if (result.outcome === 'paused') result = await re.abort('interrupted (SIGINT); the command line cannot resume')
  } catch (err) {
    failure = err instanceof Error ? err.message : String(err)
  } finally {
    stopBar()
    removeSigint()
    await sink.close()
  }

  const ok = failure === undefined && result !== undefined && result.outcome === 'completed' && (exitStatus === undefined || exitStatus === 'success')
  const summary: RunSummary = {
    plan: planName,
    outcome: result?.outcome ?? 'failed',
    exitStatus,
    reason: failure ?? reason ?? result?.reason,
    runUids: result?.runUids ?? [],
    events,
    documents: sink.lines,
    docs: docsPath,
    files: [...files],
    frames: flyscan?.progress().frames ?? 0,
    rows: flyscan?.progress().rows ?? 0,
    timing: flyscan?.timingReport() ?? null,
    ...(flyscan?.calibration?.result === undefined ? {} : { calibration: flyscan.calibration.result })
  }
  if (parsed.json) io.stdout(JSON.stringify(summary) + '\n')
  else {
    if (summary.timing !== null) io.stdout(formatTimingReport(summary.timing) + '\n')
    const cal = flyscan?.calibration?.result
    if (cal !== undefined) io.stdout(`calibration: edge fitted at ${cal.e0.toFixed(4)}°, reference ${cal.reference}°, offset ${cal.offset.toFixed(4)}° (${cal.points} rows)\n`)
    if (!ok) io.stderr(`tst-fly: run ${planName} failed: ${summary.reason ?? summary.outcome}\n`)
    for (const f of summary.files) io.stdout(`data: ${shown(f)}\n`)
    io.stdout(`${sink.lines} documents (${events} events) written to ${shown(docsPath)}\n`)
  }
  return ok ? 0 : 1
}

/** A path relative to the working directory when it is inside it, else absolute. */
function shown (file: string): string {
  const rel = path.relative(process.cwd(), file)
  return rel.startsWith('..') || rel === '' ? file : rel
}

/** The path of a stream_resource's `file://localhost/...` URI (the URI itself when it is not a local file). */
function fileOf (uri: string): string {
  try {
    return fileURLToPath(uri.replace(/^file:\/\/localhost\//, 'file:///'))
  } catch {
    return uri
  }
}
