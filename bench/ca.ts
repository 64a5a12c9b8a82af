/**
 * bench `ca` (issue 4 item 5): Channel Access on loopback, the simulated IOC serving our libca client and pyepics.
 *
 * The simulated IOC runs in its own process (`tst-fly sim-ioc --port 0 --json --quiet`, from a temporary config),
 * so the client's CPU figures are the client's alone. It serves two free-running cameras and one scalar ao:
 * - 728 x 544 Mono8 (396 KB frames, the Manta's) and 2048 x 2048 Mono16 (8 MiB frames), in Continuous mode at the
 *   shortest period, capped by each camera's maxFrameRate at about twice the 1 GB/s target, more than one client
 *   takes: the server coalesces what a client cannot follow, and the UniqueId gaps count it;
 * - one ao for gets and puts.
 *
 * Monitors, per frame size, in alternation (ours raw, ours decoded, the peer; `runs` times each; medians):
 * - ours, raw copy: CaChannel.monitorCopy on DBR_TIME_<native>, each frame copied (memcpy) from libca's buffer into
 *   one preallocated buffer, as the camera worker copies into a ring slot. The CPU target uses this one;
 * - ours, decoded: CaChannel.monitor, each frame decoded into a new typed array;
 * - the peer: Debian's pyepics (another libca client) in a /usr/bin/python3 child, epics.PV(auto_monitor=True) with a
 *   callback receiving the numpy array pyepics makes (its own copy).
 * Each client subscribes, waits for its first frame and a warm-up, then counts over a fixed window: frames, bytes,
 * UniqueId gaps, its process CPU (ours: process.cpuUsage(), which includes libca's threads; pyepics:
 * time.process_time(), all its threads), and the IOC process's CPU from /proc (Linux).
 *
 * Scalars, on the ao: sequential awaited gets (DBR_TIME_DOUBLE) and puts with completion; 1000 gets in flight at
 * once; pyepics' caget(use_monitor=False) and caput(wait=True) loops. Each loop runs for a fixed time.
 *
 * Targets: our raw-copy client's CPU per frame at most 1.1 x pyepics' in the same run (each frame size); the IOC
 * serving at least 1000 MB/s of 396 KB frames to one client, taken as the MB/s delivered to the fastest client.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { CaChannel, CaContext, type CaMonitor } from '../src/backends/index.js'
import { DbrBase, DbrClass, dbrType, elementSize, type DbrValue } from '../src/parsers/index.js'
import { caEnv, runPythonJson } from '../test/support/pyepics.js'
import { median, target, type Benchmark, type BenchResult, type Measurement, type Role } from './harness.js'
import { processCpuS, startIoc, type IocProcess } from './sim-ioc-process.js'

const MAX_ARRAY_BYTES = 100_000_000
const CONNECT_TIMEOUT_MS = 10_000
/** Bound on the first frame of a window (a loaded machine may take a while to start streaming 8 MiB frames). */
const FIRST_FRAME_TIMEOUT_MS = 30_000
const TARGET_CPU_RATIO = 1.1
const TARGET_IOC_MBPS = 1000

interface Camera {
  readonly prefix: string
  readonly width: number
  readonly height: number
  readonly dataType: 'UInt8' | 'UInt16'
  /** The camera's maxFrameRate: the rate offered, above what one client takes. */
  readonly maxFrameRate: number
  /** Suffix of every subject measured on this camera. */
  readonly label: string
}

const CAMERAS: readonly Camera[] = [
  { prefix: 'BENCH{Cam:8}', width: 728, height: 544, dataType: 'UInt8', maxFrameRate: 5_000, label: '396 KB Mono8' },
  { prefix: 'BENCH{Cam:16}', width: 2048, height: 2048, dataType: 'UInt16', maxFrameRate: 250, label: '8 MiB Mono16' }
]
const SCALAR_PV = 'BENCH{Sim}Scalar-SP'

const OURS_RAW = 'tst-fly libca+koffi, raw copy'
const OURS_DECODED = 'tst-fly libca+koffi, decoded'
const OURS_SCALAR = 'tst-fly libca+koffi'
const OURS_PIPELINED = 'tst-fly libca+koffi, 1000 in flight'
const PEER = 'pyepics (Debian python3-pyepics)'
const IOC = 'tst-fly sim-ioc, to the fastest client'
const PIPELINE_DEPTH = 1000

const subject = (client: string, what: string): string => `${client}: ${what}`

interface Workload {
  readonly windowMs: number
  readonly warmupMs: number
  readonly scalarMs: number
  readonly runs: number
}

const FULL: Workload = { windowMs: 3000, warmupMs: 300, scalarMs: 1000, runs: 3 }
const QUICK: Workload = { windowMs: 300, warmupMs: 50, scalarMs: 100, runs: 1 }

function iocYaml (): string {
  const cams = CAMERAS.map((c) =>
    `    - { prefix: "${c.prefix}", width: ${c.width}, height: ${c.height}, dataType: ${c.dataType}, ` +
    `maxFrameRate: ${c.maxFrameRate}, deadtime: 0, minExposure: 1.0e-6 }`)
  return [
    '# bench ca: written by bench/ca.ts for one run',
    'ioc:',
    '  records:',
    `    - { name: "${SCALAR_PV}", type: ao, value: 0, prec: 3 }`,
    '  cameras:',
    ...cams,
    ''
  ].join('\n')
}

// ---------------------------------------------------------------------------------------------------------------
// Monitors

/** What one client saw over one window. */
interface FrameWindow {
  readonly frames: number
  readonly bytes: number
  /** UniqueIds skipped: frames the camera produced during the window that never reached the client. */
  readonly gaps: number
  readonly cpuS: number
  readonly seconds: number
  /** The IOC process's CPU over the same window (s), when /proc can tell. */
  readonly iocCpuS: number | undefined
}

/** Counts frames and UniqueId gaps; the UniqueId is the little-endian uint32 in a frame's first 4 bytes. */
class FrameCounter {
  frames = 0
  bytes = 0
  gaps = 0
  #last = -1
  #first: (() => void) | undefined
  readonly firstFrame = new Promise<void>((resolve) => { this.#first = resolve })

  count (b0: number, b1: number, b2: number, b3: number, bytes: number): void {
    const id = (b0 | (b1 << 8) | (b2 << 16) | (b3 << 24)) >>> 0
    if (this.#last >= 0 && id > this.#last + 1) this.gaps += id - this.#last - 1
    this.#last = id
    this.frames++
    this.bytes += bytes
    this.#first?.()
  }
}

async function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new Error(`${what}: nothing within ${ms} ms`)) }, ms)
  })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Our client on `ch` (ArrayData) for one window: 'raw' copies into one buffer, 'decoded' decodes each frame. */
async function ourWindow (ch: CaChannel, mode: 'raw' | 'decoded', iocPid: number, w: Workload): Promise<FrameWindow> {
  const base = ch.nativeType
  const type = dbrType(base, DbrClass.TIME)
  const frameBytes = ch.elementCount * elementSize(base)
  const counter = new FrameCounter()
  let monitor: CaMonitor
  if (mode === 'raw') {
    const slot = new Uint8Array(frameBytes)
    monitor = ch.monitorCopy(type, 0, (update) => {
      update.copyTo(slot)
      counter.count(slot[0] as number, slot[1] as number, slot[2] as number, slot[3] as number, update.valueBytes)
    })
  } else {
    monitor = ch.monitor((payload) => {
      const v = payload.value as Exclude<DbrValue, string[]>
      const b = new Uint8Array(v.buffer, v.byteOffset, 4)
      counter.count(b[0] as number, b[1] as number, b[2] as number, b[3] as number, v.byteLength)
    })
  }
  try {
    await withTimeout(counter.firstFrame, FIRST_FRAME_TIMEOUT_MS, `first frame of ${ch.pv}`)
    await sleep(w.warmupMs)
    const f0 = counter.frames
    const b0 = counter.bytes
    const g0 = counter.gaps
    const ioc0 = processCpuS(iocPid)
    const cpu0 = process.cpuUsage()
    const t0 = process.hrtime.bigint()
    await sleep(w.windowMs)
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9
    const cpu = process.cpuUsage(cpu0)
    const ioc1 = processCpuS(iocPid)
    return {
      frames: counter.frames - f0,
      bytes: counter.bytes - b0,
      gaps: counter.gaps - g0,
      cpuS: (cpu.user + cpu.system) / 1e6,
      seconds,
      iocCpuS: ioc0 === undefined || ioc1 === undefined ? undefined : ioc1 - ioc0
    }
  } finally {
    await monitor.close()
  }
}

interface PeerWindow {
  readonly frames: number
  readonly bytes: number
  readonly gaps: number
  readonly cpu_s: number
  readonly seconds: number
  readonly version: string
}

/** pyepics: subscribe, first frame, warm-up, then the window between WINDOW_START and WINDOW_END (printed). */
const PEER_MONITOR_SCRIPT = `
import json, threading, time
pvname, window_s, warmup_s, first_timeout_s = ARGS
state = {'frames': 0, 'bytes': 0, 'gaps': 0, 'last': -1}
first = threading.Event()

def on_frame(value=None, **kw):
    b = value.view('uint8')
    uid = int(b[0]) | (int(b[1]) << 8) | (int(b[2]) << 16) | (int(b[3]) << 24)
    last = state['last']
    if last >= 0 and uid > last + 1:
        state['gaps'] += uid - last - 1
    state['last'] = uid
    state['frames'] += 1
    state['bytes'] += value.nbytes
    first.set()

pv = epics.PV(pvname, auto_monitor=True, callback=on_frame, form='time')
if not pv.wait_for_connection(timeout=10):
    raise SystemExit('pyepics: %s did not connect' % pvname)
if not first.wait(first_timeout_s):
    raise SystemExit('pyepics: no frame from %s within %s s' % (pvname, first_timeout_s))
time.sleep(warmup_s)
print('WINDOW_START', flush=True)
f0, b0, g0 = state['frames'], state['bytes'], state['gaps']
c0, t0 = time.process_time(), time.perf_counter()
time.sleep(window_s)
c1, t1 = time.process_time(), time.perf_counter()
f1, b1, g1 = state['frames'], state['bytes'], state['gaps']
print('WINDOW_END', flush=True)
pv.clear_callbacks()
pv.disconnect()
import numpy, os, sys
version = 'pyepics %s, numpy %s, python %s' % (epics.__version__, numpy.__version__, sys.version.split()[0])
print(json.dumps({'frames': f1 - f0, 'bytes': b1 - b0, 'gaps': g1 - g0, 'cpu_s': c1 - c0, 'seconds': t1 - t0, 'version': version}))
sys.stdout.flush()
os._exit(0)  # skip pyepics' atexit libca teardown (about 0.5 s): the measurement is done
`

const withArgs = (script: string, args: unknown[]): string => `ARGS = ${JSON.stringify(args)}\n${script}`

/** The window, and the versions the peer reported. */
async function peerWindow (pv: string, udpPort: number, iocPid: number, w: Workload): Promise<{ window: FrameWindow, version: string }> {
  let ioc0: number | undefined
  let ioc1: number | undefined
  const r = await runPythonJson<PeerWindow>(withArgs(PEER_MONITOR_SCRIPT, [pv, w.windowMs / 1000, w.warmupMs / 1000, FIRST_FRAME_TIMEOUT_MS / 1000]),
    caEnv(udpPort), {
      timeoutMs: FIRST_FRAME_TIMEOUT_MS + w.windowMs + 30_000,
      onLine: (line) => {
        if (line === 'WINDOW_START') ioc0 = processCpuS(iocPid)
        else if (line === 'WINDOW_END') ioc1 = processCpuS(iocPid)
      }
    })
  const iocCpuS = ioc0 === undefined || ioc1 === undefined ? undefined : ioc1 - ioc0
  return { window: { frames: r.frames, bytes: r.bytes, gaps: r.gaps, cpuS: r.cpu_s, seconds: r.seconds, iocCpuS }, version: r.version }
}

// ---------------------------------------------------------------------------------------------------------------
// Scalars

/** Repeat `op` (sequentially) for `ms`; operations per second. */
async function rate (ms: number, op: () => Promise<number>): Promise<number> {
  let n = 0
  const t0 = process.hrtime.bigint()
  const end = t0 + BigInt(Math.round(ms * 1e6))
  let now = t0
  while (now < end || n === 0) {
    n += await op()
    now = process.hrtime.bigint()
  }
  return n / (Number(now - t0) / 1e9)
}

const PEER_SCALAR_SCRIPT = `
import json, os, sys, time
pvname, duration_s = ARGS
if epics.caget(pvname, use_monitor=False, timeout=10) is None:
    raise SystemExit('pyepics: %s did not answer' % pvname)
n, t0 = 0, time.perf_counter()
while n == 0 or time.perf_counter() - t0 < duration_s:
    if epics.caget(pvname, use_monitor=False) is None:
        raise SystemExit('pyepics: caget %s failed' % pvname)
    n += 1
gets = n / (time.perf_counter() - t0)
n, t0 = 0, time.perf_counter()
while n == 0 or time.perf_counter() - t0 < duration_s:
    if epics.caput(pvname, float(n % 100), wait=True) != 1:
        raise SystemExit('pyepics: caput %s failed' % pvname)
    n += 1
puts = n / (time.perf_counter() - t0)
print(json.dumps({'gets_per_s': gets, 'puts_per_s': puts}))
sys.stdout.flush()
os._exit(0)
`

// ---------------------------------------------------------------------------------------------------------------

/** A measurement from per-run values (runs alternate between subjects, so `measure` does not fit). */
function fromRuns (subjectName: string, role: Role, metric: string, unit: string, values: readonly number[]): Measurement {
  return { subject: subjectName, role, metric, unit, median: median(values), min: Math.min(...values), max: Math.max(...values), runs: values.length }
}

/** frames_per_s, MB_per_s, cpu_us_per_frame and delivered_pct of one client's windows. */
function frameMeasurements (name: string, role: Role, windows: readonly FrameWindow[]): Measurement[] {
  return [
    fromRuns(name, role, 'frames_per_s', 'frames/s', windows.map((w) => w.frames / w.seconds)),
    fromRuns(name, role, 'MB_per_s', 'MB/s', windows.map((w) => w.bytes / w.seconds / 1e6)),
    fromRuns(name, role, 'cpu_us_per_frame', 'µs', windows.map((w) => (w.cpuS * 1e6) / w.frames)),
    fromRuns(name, role, 'delivered_pct', '%', windows.map((w) => (100 * w.frames) / (w.frames + w.gaps)))
  ]
}

async function putValue (context: CaContext, pv: string, base: DbrBase, value: DbrValue, wait: boolean): Promise<void> {
  const ch = new CaChannel(pv, { context })
  try {
    await ch.waitConnected(CONNECT_TIMEOUT_MS)
    await ch.put(base, value, wait)
  } finally {
    await ch.clear()
  }
}

/** Continuous acquisition at the shortest period (AcquireTime = minExposure, AcquirePeriod 0), or stop. */
async function acquire (context: CaContext, cam: Camera, on: boolean): Promise<void> {
  const p = `${cam.prefix}cam1:`
  if (!on) {
    await putValue(context, `${p}Acquire`, DbrBase.ENUM, Uint16Array.of(0), true)
    return
  }
  await putValue(context, `${p}ImageMode`, DbrBase.ENUM, Uint16Array.of(2), true)
  await putValue(context, `${p}AcquireTime`, DbrBase.DOUBLE, Float64Array.of(1e-6), true)
  await putValue(context, `${p}AcquirePeriod`, DbrBase.DOUBLE, Float64Array.of(0), true)
  // Continuous: the write would complete only when acquisition stops, so no completion is asked for.
  await putValue(context, `${p}Acquire`, DbrBase.ENUM, Uint16Array.of(1), false)
}

interface CameraResult {
  readonly measurements: Measurement[]
  /** Frames and UniqueId gaps of every window. */
  readonly summary: string
  readonly peerVersion: string
}

async function benchCamera (context: CaContext, ioc: IocProcess, cam: Camera, w: Workload): Promise<CameraResult> {
  const pv = `${cam.prefix}image1:ArrayData`
  const ch = new CaChannel(pv, { context })
  const raw: FrameWindow[] = []
  const decoded: FrameWindow[] = []
  const peer: FrameWindow[] = []
  let peerVersion = ''
  try {
    await ch.waitConnected(CONNECT_TIMEOUT_MS)
    await acquire(context, cam, true)
    let failed = true
    try {
      for (let i = 0; i < w.runs; i++) {
        raw.push(await ourWindow(ch, 'raw', ioc.pid, w))
        decoded.push(await ourWindow(ch, 'decoded', ioc.pid, w))
        const p = await peerWindow(pv, ioc.udpPort, ioc.pid, w)
        peer.push(p.window)
        peerVersion = p.version
      }
      failed = false
    } finally {
      // After a failure, the first error is the one to report (the IOC process is killed at the end anyway).
      await acquire(context, cam, false).catch((err: unknown) => { if (!failed) throw err })
    }
  } finally {
    await ch.clear()
  }
  for (const [name, windows] of [[OURS_RAW, raw], [OURS_DECODED, decoded], [PEER, peer]] as const) {
    for (const x of windows) if (x.frames === 0) throw new Error(`${name} received no frame of ${pv} in ${x.seconds.toFixed(2)} s`)
  }
  const measurements = [
    ...frameMeasurements(subject(OURS_RAW, cam.label), 'ours', raw),
    ...frameMeasurements(subject(OURS_DECODED, cam.label), 'ours', decoded),
    ...frameMeasurements(subject(PEER, cam.label), 'peer', peer)
  ]
  // The IOC's served rate: what the fastest client (median MB/s) received, and the IOC's CPU during its windows.
  const clients = [raw, decoded, peer]
  const fastest = clients.reduce((a, b) => median(b.map((x) => x.bytes / x.seconds)) > median(a.map((x) => x.bytes / x.seconds)) ? b : a)
  measurements.push(fromRuns(subject(IOC, cam.label), 'ours', 'MB_per_s', 'MB/s', fastest.map((x) => x.bytes / x.seconds / 1e6)))
  const iocCpu = fastest.flatMap((x) => x.iocCpuS === undefined ? [] : [(100 * x.iocCpuS) / x.seconds])
  if (iocCpu.length > 0) measurements.push(fromRuns(subject(IOC, cam.label), 'ours', 'ioc_cpu_pct', '%', iocCpu))
  const gaps = (ws: readonly FrameWindow[]): string => ws.map((x) => `${x.frames}+${x.gaps}`).join(',')
  const fastestName = fastest === raw ? 'raw' : fastest === decoded ? 'decoded' : 'pyepics'
  return {
    measurements,
    summary: `raw ${gaps(raw)} decoded ${gaps(decoded)} pyepics ${gaps(peer)}; fastest ${fastestName}`,
    peerVersion
  }
}

async function benchScalars (context: CaContext, udpPort: number, w: Workload): Promise<Measurement[]> {
  const ch = new CaChannel(SCALAR_PV, { context })
  const gets: number[] = []
  const puts: number[] = []
  const pipelined: number[] = []
  const peerGets: number[] = []
  const peerPuts: number[] = []
  try {
    await ch.waitConnected(CONNECT_TIMEOUT_MS)
    const value = new Float64Array(1)
    for (let i = 0; i < w.runs; i++) {
      gets.push(await rate(w.scalarMs, async () => { await ch.get(); return 1 }))
      puts.push(await rate(w.scalarMs, async () => {
        value[0] = (value[0] as number + 1) % 100
        await ch.put(DbrBase.DOUBLE, value, true)
        return 1
      }))
      pipelined.push(await rate(w.scalarMs, async () => {
        await Promise.all(Array.from({ length: PIPELINE_DEPTH }, async () => await ch.get()))
        return PIPELINE_DEPTH
      }))
      const r = await runPythonJson<{ gets_per_s: number, puts_per_s: number }>(
        withArgs(PEER_SCALAR_SCRIPT, [SCALAR_PV, w.scalarMs / 1000]), caEnv(udpPort), { timeoutMs: 60_000 })
      peerGets.push(r.gets_per_s)
      peerPuts.push(r.puts_per_s)
    }
  } finally {
    await ch.clear()
  }
  const what = 'ao scalar'
  return [
    fromRuns(subject(OURS_SCALAR, what), 'ours', 'gets_per_s', 'gets/s', gets),
    fromRuns(subject(OURS_SCALAR, what), 'ours', 'puts_per_s', 'puts/s', puts),
    fromRuns(subject(OURS_PIPELINED, what), 'ours', 'gets_per_s', 'gets/s', pipelined),
    fromRuns(subject(PEER, what), 'peer', 'gets_per_s', 'gets/s', peerGets),
    fromRuns(subject(PEER, what), 'peer', 'puts_per_s', 'puts/s', peerPuts)
  ]
}

export const bench: Benchmark = {
  name: 'ca',
  description: 'Channel Access on loopback: simulated IOC (own process) → our libca client and pyepics; frames, CPU per frame, scalar gets/puts',
  async run ({ quick }): Promise<BenchResult> {
    const w = quick ? QUICK : FULL
    const dir = mkdtempSync(join(tmpdir(), 'tst-fly-bench-ca-'))
    const configFile = join(dir, 'ioc.yaml')
    writeFileSync(configFile, iocYaml())
    let ioc: IocProcess | undefined
    let context: CaContext | undefined
    try {
      ioc = await startIoc(configFile, 'bench ca')
      context = CaContext.get({ addrList: `127.0.0.1:${ioc.udpPort}`, autoAddrList: false, maxArrayBytes: MAX_ARRAY_BYTES })
      const measurements: Measurement[] = []
      const summaries: Record<string, string> = {}
      let peerVersion = ''
      for (const cam of CAMERAS) {
        const r = await benchCamera(context, ioc, cam, w)
        measurements.push(...r.measurements)
        summaries[`framesAndGaps ${cam.label}`] = r.summary
        peerVersion = r.peerVersion
      }
      measurements.push(...await benchScalars(context, ioc.udpPort, w))
      const targets = CAMERAS.map((cam) => {
        const peer = measurements.find((m) => m.subject === subject(PEER, cam.label) && m.metric === 'cpu_us_per_frame')
        const limit = +((peer?.median ?? Number.NaN) * TARGET_CPU_RATIO).toPrecision(4)
        return target(measurements, subject(OURS_RAW, cam.label), 'cpu_us_per_frame', '<=', limit, 'µs')
      })
      const small = CAMERAS[0] as Camera
      targets.push(target(measurements, subject(IOC, small.label), 'MB_per_s', '>=', TARGET_IOC_MBPS, 'MB/s'))
      return {
        name: 'ca',
        description: this.description,
        workload: {
          frames: CAMERAS.map((c) => `${c.label} ${c.width}x${c.height} ${c.dataType} (${c.width * c.height * (c.dataType === 'UInt8' ? 1 : 2)} B), offered up to ${c.maxFrameRate}/s`).join('; '),
          windowMs: w.windowMs,
          warmupMs: w.warmupMs,
          scalarMs: w.scalarMs,
          pipelineDepth: PIPELINE_DEPTH,
          runsAlternating: w.runs,
          peer: `${peerVersion}, /usr/bin/python3`,
          cpuTarget: `ours (raw copy) <= ${TARGET_CPU_RATIO} x pyepics' median cpu_us_per_frame in this run`,
          iocServed: 'MB/s delivered to the fastest client (ioc_cpu_pct: the sim-ioc process during those windows, % of one core)',
          ...summaries
        },
        measurements,
        latency: {},
        targets
      }
    } finally {
      try {
        await context?.destroy()
      } finally {
        await ioc?.close()
        rmSync(dir, { recursive: true, force: true })
      }
    }
  }
}
