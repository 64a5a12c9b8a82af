/**
 * An in-process fly-scan rig for tests that need to reach into the simulators while a scan runs: it starts the
 * simulated beamline of config/sim.yaml (data root in a temporary directory, or the one given), builds and connects
 * the FlyScan as `tst-fly run` does (src/cli/run.ts: createDevices, the PandA's path provider, a TstFlyFrameWriter per
 * camera), runs plans on a RunEngine and keeps every document. `checkEnded` asserts what every faulted scan must
 * leave behind: the PandA disarmed, the cameras and the motor stopped, the files closed and readable by h5py up to
 * what the run says was written, the documents schema-valid with the timing report in run_stop.
 *
 * Call privateCaRepeater(t) once per test file before the first rig (the rig creates this thread's CaContext).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { StandardDetector, TstFlyFrameWriter } from '../../src/areadetector/index.js'
import { CaContext } from '../../src/backends/index.js'
import { createDevices, loadConfigFile, type FlyConfig } from '../../src/config/index.js'
import type { Document, DocumentName } from '../../src/documents/index.js'
import { RunEngine, type Plan, type RunResult } from '../../src/engine/index.js'
import { FlyScan, type TimingReport } from '../../src/fly/index.js'
import { HDFPanda } from '../../src/panda/index.js'
import { pathProviderFor } from '../../src/paths/index.js'
import { SimBeamline } from '../../src/sim/index.js'
import type { Test } from 'tap'
import { REPO_ROOT, runPython } from './h5py.js'
import { validateDocument } from './schemas.js'

/** A tap test (tap 21's Test). */
export type RigTest = Test

export interface RigOptions {
  /** Where the data goes (default: a new temporary directory, removed in teardown). */
  readonly dataRoot?: string
  /** Edit the config file's text before it is loaded. */
  readonly editConfig?: (yaml: string) => string
}

/** How a run ended: its result, or the error run() rejected with (a failed plan). */
export interface RigOutcome {
  readonly result: RunResult | undefined
  readonly error: unknown
  readonly ms: number
}

export const CAMERA_NAMES = ['manta1', 'manta2'] as const

/** Config/sim.yaml with its data root at `dataRoot`, written to `dir`; returns the path. */
export function simConfigCopy (dir: string, dataRoot: string, edit: (yaml: string) => string = (s) => s): string {
  const file = join(dir, 'sim.yaml')
  const text = readFileSync(join(REPO_ROOT, 'config', 'sim.yaml'), 'utf8').replace(/root: out\/data/, `root: ${dataRoot}`)
  writeFileSync(file, edit(text))
  return file
}

export class FlyRig {
  readonly docs: Array<[DocumentName, Document]> = []
  readonly log: string[] = []
  readonly re: RunEngine
  private constructor (
    readonly beamline: SimBeamline,
    readonly config: FlyConfig,
    readonly flyscan: FlyScan,
    readonly panda: HDFPanda,
    readonly cameras: readonly StandardDetector[],
    readonly dataRoot: string
  ) {
    this.re = new RunEngine({ metadata: config.metadata })
    this.re.subscribe((name, doc) => { this.docs.push([name, doc]) })
  }

  static async start (t: RigTest, options: RigOptions = {}): Promise<FlyRig> {
    const dir = mkdtempSync(join(tmpdir(), 'tst-fly-rig-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const dataRoot = options.dataRoot ?? join(dir, 'data')
    const loaded = await loadConfigFile(simConfigCopy(dir, dataRoot, options.editConfig))
    const log: string[] = []
    const beamline = await SimBeamline.start(loaded, { log: (line) => { log.push(line) }, beaconPort: 0 })
    t.teardown(async () => { await beamline.close() })
    const config = beamline.configFor(loaded)
    const { registry } = createDevices(config)
    const all = registry.findAll()
    const flyscan = all.find((d): d is FlyScan => d instanceof FlyScan)
    const panda = all.find((d): d is HDFPanda => d instanceof HDFPanda)
    if (flyscan === undefined || panda === undefined) throw new Error(`${loaded.file}: no FlyScan or HDFPanda device`)
    const cameras: StandardDetector[] = []
    // As src/cli/run.ts wireDataPaths does: the PandA's path provider, tst-fly's frame writer for each camera.
    const provider = pathProviderFor(config.data)
    for (const entry of config.devices) {
      const device = all.find((d) => d.name === entry.name)
      if (device instanceof HDFPanda) device.setPathProvider(provider, config.metadata)
      else if (device instanceof StandardDetector && entry.prefix !== undefined && (CAMERA_NAMES as readonly string[]).includes(entry.name)) {
        const option = (key: string): string | undefined => typeof entry.options[key] === 'string' ? entry.options[key] : undefined
        device.setWriter(new TstFlyFrameWriter({
          prefix: entry.prefix, driver: option('driver'), image: option('image'), ca: config.ca, pathProvider: provider, runMetadata: config.metadata
        }))
        cameras.push(device)
      }
    }
    CaContext.get(config.ca)
    t.teardown(async () => { await CaContext.current()?.destroy() })
    await flyscan.connect()
    const rig = new FlyRig(beamline, config, flyscan, panda, cameras, dataRoot)
    rig.log.push(...log)
    return rig
  }

  /** Runs `plan`; never rejects (a failed plan's error is in `error`). */
  async run (plan: Plan<unknown>): Promise<RigOutcome> {
    const t0 = Date.now()
    this.#ended = undefined
    let outcome: RigOutcome
    try {
      const result = await this.re.run(plan)
      outcome = { result, error: undefined, ms: Date.now() - t0 }
    } catch (error) {
      outcome = { result: undefined, error, ms: Date.now() - t0 }
    }
    this.#ended = outcome
    return outcome
  }

  #ended: RigOutcome | undefined

  /** Resolves once `check()` holds (polled every 20 ms); rejects naming `what` after `timeoutMs`. */
  async until (what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
    const end = Date.now() + timeoutMs
    while (!check()) {
      const ended = this.#ended
      if (ended !== undefined) {
        const why = ended.error instanceof Error ? ended.error.message : `${ended.result?.outcome ?? '?'} ${ended.result?.reason ?? ''}`
        throw new Error(`fly rig: the run ended before ${what}: ${why}`)
      }
      if (Date.now() > end) throw new Error(`fly rig: ${what} did not happen within ${timeoutMs} ms (progress ${JSON.stringify(this.flyscan.progress())})`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  /** Resolves once every camera has `frames` frames on disk and the PandA `rows` rows. */
  async untilWritten (frames: number, rows = 0, timeoutMs = 30_000): Promise<void> {
    await this.until(`${frames} frames per camera and ${rows} rows on disk`,
      () => this.cameras.every((c) => c.counters().written >= frames) && this.panda.rowsWritten >= rows, timeoutMs)
  }

  /** The TstFlyFrameWriter of camera `name`. */
  writer (name: string): TstFlyFrameWriter {
    const w = this.cameras.find((c) => c.name === name)?.writer
    if (!(w instanceof TstFlyFrameWriter)) throw new Error(`fly rig: ${name} has no TstFlyFrameWriter`)
    return w
  }

  get stopDoc (): { exit_status: string, reason?: string, timing?: TimingReport } | undefined {
    const stop = this.docs.find(([n]) => n === 'stop')
    return stop?.[1] as { exit_status: string, reason?: string, timing?: TimingReport } | undefined
  }

  /** The data files the run's stream_resource documents point at. */
  get files (): string[] {
    return [...new Set(this.docs.filter(([n]) => n === 'stream_resource')
      .map(([, d]) => fileURLToPath((d as { uri: string }).uri.replace(/^file:\/\/localhost\//, 'file:///'))))]
  }

  /** The largest stream_datum stop of each data key. */
  datumStops (): Map<string, number> {
    const keyOf = new Map(this.docs.filter(([n]) => n === 'stream_resource').map(([, d]) => [(d as { uid: string }).uid, (d as { data_key: string }).data_key]))
    const stops = new Map<string, number>()
    for (const [n, d] of this.docs) {
      if (n !== 'stream_datum') continue
      const sd = d as { stream_resource: string, indices: { stop: number } }
      const key = keyOf.get(sd.stream_resource) ?? '?'
      stops.set(key, Math.max(stops.get(key) ?? 0, sd.indices.stop))
    }
    return stops
  }

  /**
   * What every faulted scan must leave: the run closed with `exitStatus` and a reason matching `reason`; the PandA
   * disarmed (PCAP.ACTIVE 0), every camera stopped (not acquiring, cam1:Acquire 0), the motor stopped (DMOV 1); every
   * file readable by h5py with as many frames (rows) as the timing report says were written, and at least as many as
   * the stream_datum documents announced; the documents schema-valid and the timing report in run_stop.
   */
  async checkEnded (t: RigTest, outcome: RigOutcome, want: { exitStatus: 'abort' | 'fail', reason: RegExp, iocGone?: boolean }): Promise<void> {
    const stop = this.stopDoc
    t.ok(stop !== undefined, 'the run was closed (run_stop)')
    t.equal(stop?.exit_status, want.exitStatus, `exit_status ${want.exitStatus}`)
    t.match(stop?.reason ?? '', want.reason, 'the reason names the fault')
    if (want.exitStatus === 'fail') t.ok(outcome.error instanceof Error, 'run() rejected with the failure')
    else t.equal(outcome.result?.outcome, 'aborted', 'run() resolved aborted')
    for (const [name, doc] of this.docs) validateDocument(name, doc)
    t.ok(this.docs.at(0)?.[0] === 'start' && this.docs.at(-1)?.[0] === 'stop', 'documents: start first, stop last, all schema-valid')
    const timing = stop?.timing
    t.ok(timing !== undefined, 'run_stop has the timing report')

    const model = this.beamline.panda.simulation
    const active = model.get('PCAP.ACTIVE')
    t.equal(active.kind === 'one' ? active.value : '?', '0', 'the PandA is disarmed (PCAP.ACTIVE 0)')
    for (const [prefix, cam] of this.beamline.ioc.cameras) {
      t.equal(cam.acquiring, false, `${prefix}: the simulated camera is not acquiring`)
      // With the IOC gone, no put reaches the record: its Acquire stays as it was.
      if (want.iocGone !== true) t.equal(Number(this.pv(`${prefix}cam1:Acquire`)), 0, `${prefix}cam1:Acquire 0`)
    }
    // stop() writes STOP without waiting (as bluesky's motors do): the stage comes to rest within its deceleration
    // (ACCL 0.2 s), or at the end of its move when STOP could not reach it (iocGone).
    const endDeg = this.flyscan.plan?.motor?.endPosition
    for (const [prefix, motor] of this.beamline.ioc.motors) {
      const deadline = Date.now() + (want.iocGone === true ? 15_000 : 2_000)
      while (motor.moving && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
      t.equal(motor.moving, false, `${prefix}: the motor is not moving`)
      t.equal(Number(this.pv(`${prefix}.DMOV`)), 1, `${prefix}.DMOV 1`)
      if (want.iocGone !== true && endDeg !== undefined) {
        const start = this.flyscan.plan?.motor?.startPosition ?? 0
        const short = endDeg >= start ? motor.position < endDeg - 1 : motor.position > endDeg + 1
        t.ok(short, `${prefix}: stopped at ${motor.position.toFixed(2)}°, short of the scan's end ${endDeg}°`)
      }
    }

    const datums = this.datumStops()
    for (const file of this.files) {
      const shapes = h5Shapes(file)
      const camera = timing?.cameras.find((c) => file.includes(c.name))
      if (camera !== undefined) {
        const frames = shapes['/entry/data/data']?.[0]
        t.equal(frames, camera.written, `${file}: h5py reads the ${camera.written} frames the timing report says were written`)
        t.ok((frames ?? 0) >= (datums.get(camera.name) ?? 0), `${file}: at least the ${datums.get(camera.name) ?? 0} frames stream_datum announced`)
      } else {
        const rows = Object.values(shapes).map((s) => s[0])
        const announced = Math.max(0, ...[...datums].filter(([k]) => k.startsWith(this.panda.name)).map(([, v]) => v))
        t.ok(rows.length > 0 && rows.every((r) => r === rows[0]), `${file}: every PandA dataset has the same number of rows (${rows.join(', ')})`)
        t.equal(rows[0], timing?.panda?.rows, `${file}: h5py reads the ${timing?.panda?.rows ?? '?'} rows the timing report says were written`)
        t.ok((rows[0] ?? 0) >= announced, `${file}: at least the ${announced} rows stream_datum announced`)
      }
    }
  }

  /** A simulated IOC PV's value (first element). */
  pv (name: string): unknown {
    const pv = this.beamline.ioc.find(name)
    if (pv === undefined) throw new Error(`fly rig: the simulated IOC serves no ${name}`)
    const v = pv.get().value as unknown
    return ArrayLike(v) ? v[0] : v
  }
}

/** Every dataset's shape in `file`, read by h5py (not SWMR: the file must be closed or recovered), reading each one's last element. */
export function h5Shapes (file: string): Record<string, number[]> {
  return JSON.parse(runPython(H5_SCRIPT, [file])) as Record<string, number[]>
}

function ArrayLike (v: unknown): v is ArrayLike<unknown> {
  return typeof v === 'object' && v !== null && 'length' in v
}

// Opens the file (not SWMR: it must be closed, or recovered), reads every dataset's shape and the last element of
// each (a frame, a row), so a truncated chunk fails here.
const H5_SCRIPT = `
import json, sys
import h5py
out = {}
with h5py.File(sys.argv[1], 'r') as f:
    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.shape is not None and len(obj.shape) > 0:
            if obj.shape[0] > 0:
                obj[obj.shape[0] - 1]
            out['/' + name] = list(obj.shape)
    f.visititems(visit)
print(json.dumps(out))
`
