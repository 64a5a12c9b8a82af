/**
 * The real HDFPanda (src/panda/device.ts) against the simulated PandA (src/sim/panda) on loopback, for both TST
 * trigger setups (issue 5's done-criterion). The rotation stage is the simulated IOC's motor record model
 * (SimMotorRecord), driven in-process as the setup's `motion` says the plan must: parked before the range, started
 * after kickoff. A trigger sink on TTLOUT1 stands in for the camera and records every edge. Checked: the verbs
 * succeed, the HDF5 file (read with h5py) has the expected rows, the captured positions and TS_TRIG follow the
 * motion, the XAS ADC means show the absorption edge, camera triggers match rows, and the stream documents validate.
 * Last, the data connection is cut mid-capture: complete() fails naming the file, and the file stays readable.
 *
 * Everything runs on one wall clock shared by the motor and the simulation (the device polls in real time).
 */
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ErrorCode, isFlyScanError } from '../../src/errors.js'
import { HDFPanda, triggerSetup, type PandaFlyInfo, type PandaTriggerSetup } from '../../src/panda/index.js'
import type { PathProvider } from '../../src/paths/index.js'
import type { StreamAsset } from '../../src/devices/index.js'
import { composeRun } from '../../src/documents/index.js'
import {
  ADC_DEFAULTS, SimMotorRecord, SimPanda, edgeFraction, type SimClock, type TriggerEdge
} from '../../src/sim/index.js'
import { readWithH5py, requireHdf5Tools, type H5FileInfo } from '../support/h5py.js'
import { trackLeaks } from '../support/leaks.js'
import { validateDocument } from '../support/schemas.js'

requireHdf5Tools()
const dir = mkdtempSync(join(tmpdir(), 'tst-fly-panda-on-sim-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

/** Encoder counts per degree (8000 counts per revolution). */
const CPD = 8000 / 360

/** One clock for the motor and the simulated PandA: wall-clock ms with sub-ms resolution, and plain timers. */
const clock: SimClock = {
  nowMs: () => performance.timeOrigin + performance.now(),
  setTimer: (fn, ms) => {
    const timer = setTimeout(fn, ms)
    return () => clearTimeout(timer)
  }
}

interface Bench {
  readonly sim: SimPanda
  readonly panda: HDFPanda
  readonly motor: SimMotorRecord
  /** Rising edges of TTLOUT1, as the camera would see them. */
  readonly triggers: TriggerEdge[]
  /**
   * The motor's position at each trigger, and `fallMs` later, read when the edge arrives (the motor record forgets
   * a move's profile once it has stopped, so the positions cannot be asked afterwards).
   */
  readonly triggerDeg: Array<{ readonly atEdge: number, readonly atFall: number }>
  readonly setup: PandaTriggerSetup
  readonly file: string
}

/**
 * The simulated PandA with the motor parked at `parkDeg` (moving at the setup's velocity, ramping in `acclS`), a
 * trigger sink on TTLOUT1, and a connected, staged HDFPanda writing `<name>-1.h5`.
 */
async function bench (t: Test, name: string, info: PandaFlyInfo, parkDeg: number, acclS: number, fallMs = 0): Promise<Bench> {
  const setup = triggerSetup(info)
  const motion = setup.motion
  if (motion === undefined) throw new Error(`${info.logic} has no motion`)
  const motor = new SimMotorRecord({ prefix: 'XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr', velo: motion.velocityDegPerS, accl: acclS, value: parkDeg }, clock)
  t.teardown(() => motor.close())
  const triggers: TriggerEdge[] = []
  const triggerDeg: Bench['triggerDeg'] = []
  const sim = await SimPanda.start({
    controlPort: 0,
    dataPort: 0,
    clock,
    motor,
    triggerSinks: [{
      ttlout: 1,
      externalTrigger: (e: TriggerEdge) => {
        triggers.push(e)
        triggerDeg.push({ atEdge: motor.positionAt(e.atMs), atFall: motor.positionAt(e.atMs + fallMs) })
      }
    }]
  })
  t.teardown(async () => { await sim.close() })
  const path: PathProvider = { getPath: () => ({ directoryPath: dir, filename: name, path: join(dir, `${name}.h5`), createDirDepth: 0 }) }
  const panda = new HDFPanda({
    name: 'panda1',
    host: '127.0.0.1',
    controlPort: sim.controlPort,
    dataPort: sim.dataPort,
    pathProvider: path,
    timeouts: { armTimeoutMs: 2000, disarmTimeoutMs: 2000, dataClientTimeoutMs: 5000, controlReplyTimeoutMs: 5000, completeMarginMs: 10_000, pipelineCloseTimeoutMs: 10_000 },
    pipeline: { flushPeriodMs: 50 }
  })
  t.teardown(async () => await panda.close())
  await panda.connect({ timeout: 5000 })
  await panda.stage()
  return { sim, panda, motor, triggers, triggerDeg, setup, file: join(dir, `${name}-1.h5`) }
}

/**
 * complete(), collecting asset documents every 100 ms while it runs (as collectWhileCompleting does) and once after.
 */
async function completeAndCollect (panda: HDFPanda): Promise<StreamAsset[]> {
  const docs: StreamAsset[] = []
  const status = panda.complete()
  const finished = (async () => { try { await status } catch { /* rethrown below */ } })()
  while (!status.done) {
    for await (const a of panda.collectAssetDocs()) docs.push(a)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  await finished
  await status
  for await (const a of panda.collectAssetDocs()) docs.push(a)
  return docs
}

/**
 * The asset documents through the same composers the RunEngine uses (it adds run_start and the descriptor), each
 * validated against the event-model schema; the stream_datum of each resource must cover rows [0, rows) without gaps.
 */
async function checkDocuments (t: Test, panda: HDFPanda, docs: readonly StreamAsset[], rows: number, file: string): Promise<void> {
  const run = composeRun({ metadata: { beamline_id: 'tst' } })
  validateDocument('start', run.startDoc)
  const dataKeys = await panda.describeCollect()
  const descriptor = run.composeDescriptor({ name: 'primary', dataKeys, objectKeys: { panda1: Object.keys(dataKeys) } })
  validateDocument('descriptor', descriptor.descriptorDoc)
  const resources = new Map<string, ReturnType<typeof run.composeStreamResource>>()
  const covered = new Map<string, Array<{ start: number, stop: number }>>()
  for (const [kind, doc] of docs) {
    if (kind === 'stream_resource') {
      validateDocument('stream_resource', doc)
      t.equal(doc.uri, `file://localhost${file}`, `${doc.data_key}: the file's URI`)
      const resource = run.composeStreamResource({ dataKey: doc.data_key, mimetype: doc.mimetype, uri: doc.uri, parameters: doc.parameters, uid: doc.uid })
      validateDocument('stream_resource', resource.streamResourceDoc)
      resources.set(doc.uid, resource)
      covered.set(doc.uid, [])
    } else {
      const resource = resources.get(doc.stream_resource)
      if (resource === undefined) { t.fail(`stream_datum ${doc.uid} before its stream_resource`); continue }
      validateDocument('stream_datum', resource.composeStreamDatum({ descriptor: descriptor.descriptorDoc.uid, indices: doc.indices, seqNums: doc.seq_nums }))
      t.equal(doc.seq_nums.start, doc.indices.start + 1, 'seq_nums count from 1')
      covered.get(doc.stream_resource)?.push(doc.indices)
    }
  }
  t.same([...resources.values()].map((r) => r.streamResourceDoc.data_key).sort(), Object.keys(dataKeys).sort(), 'one stream_resource per data key')
  for (const [uid, ranges] of covered) {
    let at = 0
    for (const r of ranges) {
      if (r.start !== at) t.fail(`${uid}: stream_datum starts at ${r.start}, expected ${at}`)
      at = r.stop
    }
    t.equal(at, rows, `the stream_datum of ${uid} cover ${rows} rows without gaps`)
  }
}

function column (file: H5FileInfo, name: string): number[] {
  const ds = file.datasets[name]
  if (ds === undefined) throw new Error(`no dataset ${name} in the file (it has ${Object.keys(file.datasets).join(', ')})`)
  return ds.values.map(Number)
}

const TOMO: PandaFlyInfo = { logic: 'tomography', numImages: 21, scanTime: 2, startDeg: 0 }

t.test('tomography on the simulated PandA: 21 images over 180° in 2 s, a row and a camera trigger at each PCOMP step', async t => {
  trackLeaks(t)
  // TST parks the stage 20° before the start; 10° is enough here: the ramp (0.1 s to 90°/s) takes 4.5°.
  const b = await bench(t, 'tomo', TOMO, -10, 0.1)
  const { panda, motor } = b
  await panda.prepare(TOMO)
  t.same(panda.setup?.motion, { startDeg: 0, endDeg: 180, velocityDegPerS: 90 }, 'the plan must turn the stage through 0..180° at 90°/s')
  t.same(panda.setup?.motion, b.setup.motion)
  await panda.kickoff()
  const move = motor.moveTo(190)
  const docs = await completeAndCollect(panda)
  await move
  t.equal(await panda.getIndex(), 21, '21 rows on disk')

  const file = readWithH5py(b.file)
  t.equal(file.attrs.end_reason, 'Ok')
  t.equal(file.attrs.rows_written, 21)
  const enc = column(file, 'INENC1.VAL.Value')
  const ts = column(file, 'PCAP.TS_TRIG.Value')
  t.equal(enc.length, 21)
  t.equal(ts.length, 21)
  const step = 8000 / (2 * (21 - 1))
  enc.forEach((v, k) => t.ok(Math.abs(v - k * step) <= 1, `image ${k}: encoder ${v} counts = START + ${k} STEP (${k * step}) within one count`))
  // At 90°/s, one step (200 counts = 9°) takes 0.1 s; the stage cruises from 4.5° before the start.
  const stepS = step / CPD / 90
  ts.slice(1).forEach((x, k) => {
    const d = x - (ts[k] as number)
    t.ok(Math.abs(d - stepS) < 1e-5, `TS_TRIG spacing ${k}→${k + 1}: ${d} s = the step time ${stepS} s`)
  })
  t.ok((ts[0] as number) > 0, 'the first image comes after PCAP was enabled')

  t.equal(b.triggers.length, 21, 'TTLOUT1 = PCOMP1.OUT gave the camera one trigger per row')
  b.triggers.slice(1).forEach((e, k) => {
    const d = e.atMs - (b.triggers[k] as TriggerEdge).atMs
    t.ok(Math.abs(d - 1000 * ((ts[k + 1] as number) - (ts[k] as number))) < 1e-2, `camera trigger ${k + 1} follows the previous by the row's TS_TRIG spacing (${d} ms)`)
  })
  // Each trigger is when the motor reached its PCOMP position (the encoder rounds to the nearest count).
  b.triggerDeg.forEach(({ atEdge }, k) => {
    t.ok(Math.abs(atEdge * CPD - k * step) < 0.6, `trigger ${k} at the motor's ${atEdge.toFixed(4)}°: where the encoder reads START + ${k} STEP`)
  })

  await checkDocuments(t, panda, docs, 21, b.file)
  await panda.unstage()
})

const XAS: PandaFlyInfo = { logic: 'xas', npoints: 50, totalTime: 1, startDeg: 0, endDeg: -4, runUpDeg: 0.5 }

t.test('XAS on the simulated PandA: 50 points over 0..-4° in 1 s through the edge at -2°; rows are the clock periods inside the PCOMP window', async t => {
  trackLeaks(t)
  const park = 0.5 // startDeg + runUpDeg, against the direction of the scan
  const periodS = 1 / 50
  const widthS = periodS - 1e-6
  const b = await bench(t, 'xas', XAS, park, 0.05, 1000 * widthS)
  const { panda, motor } = b
  await panda.prepare(XAS)
  t.same(panda.setup?.motion, { startDeg: 0, endDeg: -4, velocityDegPerS: 4, runUpDeg: 0.5 }, 'the plan must park 0.5° before 0° and turn the stage at 4°/s')
  await panda.kickoff()
  t.equal(motor.positionAt(clock.nowMs()), park, 'the stage is still parked when PCOMP is enabled (it is Relative)')
  const move = motor.moveTo(-4.5)
  const docs = await completeAndCollect(panda)
  await move
  const rows = await panda.getIndex()
  t.ok(Math.abs(rows - 50) <= 1, `${rows} rows on disk (50 ± 1: the clock's phase at the window edges)`)

  const file = readWithH5py(b.file)
  t.equal(file.attrs.end_reason, 'Ok', 'the capture ended when the window closed')
  t.same(Object.keys(file.datasets).sort(), ['CALC1.OUT.Mean', 'FMC_IN.VAL1.Mean', 'FMC_IN.VAL2.Mean', 'PCAP.BITS1.Value', 'PCAP.TS_TRIG.Value'])
  t.equal(file.datasets['PCAP.BITS1.Value']?.dtype, 'uint32')
  const calc = column(file, 'CALC1.OUT.Mean')
  const i0 = column(file, 'FMC_IN.VAL1.Mean')
  const it = column(file, 'FMC_IN.VAL2.Mean')
  const ts = column(file, 'PCAP.TS_TRIG.Value')
  t.equal(calc.length, rows)
  // CALC1.OUT = -INENC1.VAL (the scan runs towards negative angles on a positive encoder): the mean angle of a row.
  const angle = calc.map((c) => -c / CPD)
  angle.slice(1).forEach((a, k) => { if (!(a < (angle[k] as number))) t.fail(`row ${k + 1}: angle ${a} is not below row ${k}'s ${angle[k]}`) })
  t.pass('the mean angles fall monotonically')
  const travel = 4 * periodS // degrees per clock period
  t.ok((angle[0] as number) <= 0 && (angle[0] as number) > -1.5 * travel, `the first row (${(angle[0] as number).toFixed(4)}°) is inside the window, within a period of its start`)
  // The last period ends within a period of the window's end; its mean angle is half a period before its end.
  const last = angle.at(-1) as number
  t.ok(last >= -4 + 0.4 * travel && last < -4 + 1.6 * travel, `the last row (${last.toFixed(4)}°) averages the last whole period before the window's end`)
  // The first row averages only the part of its period inside the window. CALC1.OUT moves in whole counts, so a
  // period's mean is good to a fraction of a count (1 count = 0.045°).
  angle.slice(2).forEach((a, j) => {
    const d = (angle[j + 1] as number) - a
    if (Math.abs(d - travel) > 0.5 / CPD) t.fail(`rows ${j + 1}→${j + 2}: the mean angle moved ${d}°, not ${travel}° (a period at 4°/s)`)
  })
  t.pass(`from the second row on, the mean angle moves ${travel}° per row (4°/s) within half a count`)
  ts.slice(1).forEach((x, k) => {
    const d = x - (ts[k] as number)
    if (Math.abs(d - periodS) > 1e-6) t.fail(`TS_TRIG spacing ${k}→${k + 1}: ${d} s, not the clock period ${periodS} s`)
  })
  t.pass(`TS_TRIG steps by the clock period (${periodS} s)`)

  // The absorption edge: ln(I0 / It) is μ(θ), from muBelow above the edge angle to muBelow + muJump below it.
  const mu = i0.map((v, k) => Math.log(v / (it[k] as number)))
  mu.forEach((m, k) => {
    const a = angle[k] as number
    if (Math.abs(a - ADC_DEFAULTS.edgeDeg) < 0.3) return // a period averages 0.08°, steep next to the 0.05° wide edge
    const expected = ADC_DEFAULTS.muBelow + ADC_DEFAULTS.muJump * edgeFraction(a, ADC_DEFAULTS)
    if (Math.abs(m - expected) > 0.03) t.fail(`row ${k} at ${a.toFixed(3)}°: ln(I0/It) ${m.toFixed(4)}, expected μ ${expected.toFixed(4)}`)
  })
  t.ok(Math.abs((mu[0] as number) - ADC_DEFAULTS.muBelow) < 0.03, `above the edge: μ ${(mu[0] as number).toFixed(4)} ≈ ${ADC_DEFAULTS.muBelow}`)
  t.ok(Math.abs((mu.at(-1) as number) - ADC_DEFAULTS.muBelow - ADC_DEFAULTS.muJump) < 0.03, `below the edge: μ ${(mu.at(-1) as number).toFixed(4)} ≈ ${ADC_DEFAULTS.muBelow + ADC_DEFAULTS.muJump}`)
  let steepest = 1
  for (let k = 2; k < mu.length; k++) if ((mu[k] as number) - (mu[k - 1] as number) > (mu[steepest] as number) - (mu[steepest - 1] as number)) steepest = k
  const edgeAt = ((angle[steepest] as number) + (angle[steepest - 1] as number)) / 2
  t.ok(Math.abs(edgeAt - ADC_DEFAULTS.edgeDeg) < travel, `the steepest rise of μ is at ${edgeAt.toFixed(3)}°, the edge angle ${ADC_DEFAULTS.edgeDeg}°`)

  // The camera: TTLOUT1 = CLOCK1.OUT, and CLOCK1 runs only while the window is open (CLOCK1.ENABLE = PCOMP1.OUT,
  // docs/panda-device.md): one trigger per row, none during the wait and the run-up. The window is where CALC1.OUT
  // has moved START .. START + WIDTH counts from where it was at kickoff; the rows are the clock periods whose
  // falling edge (the trigger's time + the clock width) lies inside it.
  const n = b.setup.numbers
  const open = n.startCounts as number
  const close = open + (n.widthCounts as number)
  const base = -Math.round(park * CPD)
  // How far CALC1.OUT (-INENC1.VAL, the encoder rounding the motor's position) has moved at each trigger and at its fall.
  const movedAtEdge = b.triggerDeg.map(({ atEdge }) => -Math.round(atEdge * CPD) - base)
  const moved = b.triggerDeg.map(({ atFall }) => -Math.round(atFall * CPD) - base)
  t.ok(movedAtEdge.every((m) => m >= open - 1 && m < close + 1), 'every camera trigger came while the window was open (none in the run-up)')
  const inWindow = moved.filter((m) => m >= open && m < close).length
  t.equal(inWindow, rows, `the camera's triggers whose period ends inside the window (${inWindow}) match the rows`)
  t.ok(b.triggers.length - rows >= 0 && b.triggers.length - rows <= 1, `one trigger per row, plus at most one period the closing window cuts (${b.triggers.length} triggers, ${rows} rows)`)
  b.triggers.slice(1).forEach((e, k) => {
    const d = e.atMs - (b.triggers[k] as TriggerEdge).atMs
    if (Math.abs(d - 1000 * periodS) > 1e-2) t.fail(`camera triggers ${k}→${k + 1} are ${d} ms apart, not a clock period`)
  })

  await checkDocuments(t, panda, docs, rows, b.file)
  await panda.unstage()
})

t.test('the data connection is cut mid-capture: complete() fails naming the file, the box is disarmed, the file stays readable', async t => {
  trackLeaks(t)
  const b = await bench(t, 'cut', TOMO, -10, 0.1)
  const { panda, motor, sim } = b
  await panda.prepare(TOMO)
  await panda.kickoff()
  const move = motor.moveTo(190)
  // Cut after 5 images (0.4 s into the range), while PCOMP is still stepping.
  const until = Date.now() + 10_000
  while (b.triggers.length < 5) {
    if (Date.now() > until) throw new Error(`only ${b.triggers.length} camera triggers after 10 s`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  sim.cutDataConnections()
  try {
    await panda.complete()
    t.fail('complete() succeeded after the data connection was cut')
  } catch (err) {
    t.ok(isFlyScanError(err, ErrorCode.PANDA_ACQUISITION_FAILED), `FLY_ERR_PANDA_ACQUISITION_FAILED (got ${(err as { code?: string }).code ?? String(err)})`)
    t.match((err as Error).message, /^panda1: the capture ended with 'Early disconnect' after \d+ rows; file .*cut-1\.h5/)
  }
  t.equal(sim.simulation.pcap.active, false, 'complete() disarmed the box')
  motor.stop()
  await move
  const file = readWithH5py(b.file)
  const enc = column(file, 'INENC1.VAL.Value')
  t.equal(file.attrs.rows_written, enc.length, 'the file was closed with its row count')
  t.ok(enc.length < 21, `${enc.length} rows: the capture was cut short`)
  enc.forEach((v, k) => { if (Math.abs(v - k * 200) > 1) t.fail(`row ${k}: encoder ${v}, expected ${k * 200}`) })
  t.pass('the rows on disk are the images before the cut, at their PCOMP positions')
  await panda.unstage()
})
