import t from 'tap'
import { callbackOnMockPut, getMockPutCalls, setMockValue, type HasBackend } from '../../src/backends/index.js'
import { VimbaDriverIO } from '../../src/areadetector/index.js'
import { needsWarmup, warmUpHdfPlugin, type WarmupTimeouts } from '../../src/areadetector/hdf-warmup.js'
import { IOC_HDF_FILE_TEMPLATE, IocHdfWriter, NDFileHDF5IO } from '../../src/areadetector/ioc-hdf-writer.js'
import type { StreamAsset } from '../../src/devices/index.js'
import { ErrorCode } from '../../src/errors.js'
import { StaticPathProvider, type PathInfo, type PathProvider } from '../../src/paths/index.js'

// The warm-up and IocHdfWriter with mock backends: the order of writes, and every error path naming its PV.

const PREFIX = 'XF:31ID1-ES{GigE-Cam:1}'
const FAST: WarmupTimeouts = { putTimeoutMs: 200, acquireTimeoutMs: 200, arrayTimeoutMs: 100, pollPeriodMs: 5, exposureS: 0.001 }
const FAST_WRITER = { putTimeoutMs: 200, captureTimeoutMs: 100, drainTimeoutMs: 100, pollPeriodMs: 5 }

interface Rig {
  drv: VimbaDriverIO
  hdf: NDFileHDF5IO
  /** Every put, in order, as `<PV suffix>=<value>`. */
  puts: string[]
}

async function rig (): Promise<Rig> {
  const drv = new VimbaDriverIO(`${PREFIX}cam1:`)
  drv.setName('drv')
  const hdf = new NDFileHDF5IO(`${PREFIX}HDF1:`)
  hdf.setName('hdf')
  await drv.connect({ mock: true })
  await hdf.connect({ mock: true })
  const puts: string[] = []
  record(puts, drv as unknown as Record<string, unknown>)
  record(puts, hdf as unknown as Record<string, unknown>)
  setMockValue(drv.imageMode, 'Multiple')
  setMockValue(drv.triggerMode, 'On')
  setMockValue(drv.numImages, 721)
  setMockValue(drv.acquireTime, 0.02)
  return { drv, hdf, puts }
}

/** Record every put to every signal of `device` as `<suffix>=<value>`. */
function record (puts: string[], device: Record<string, unknown>): void {
  for (const value of Object.values(device)) {
    const s = value as HasBackend<unknown> & { source?: string }
    if (typeof s?.source !== 'string' || !s.source.includes('ca://')) continue
    const suffix = s.source.replace(/^mock\+ca:\/\/.*?(cam1:|HDF1:)/, '$1').replace(/_RBV$/, '')
    callbackOnMockPut(s, (v) => { puts.push(`${suffix}=${String(v)}`) })
  }
}

t.test('warm-up: saves, takes one internal frame with callbacks on, restores in reverse order', async t => {
  const { drv, hdf, puts } = await rig()
  t.equal(await needsWarmup(hdf), true)
  callbackOnMockPut(drv.acquire, (v) => { if (v === true) setMockValue(hdf.arraySize0, 728) })
  const result = await warmUpHdfPlugin(drv, hdf, FAST)
  t.same(puts, [
    'cam1:TriggerMode=Off', 'cam1:ImageMode=Single', 'cam1:AcquireTime=0.001', 'cam1:ArrayCallbacks=Enable', 'HDF1:EnableCallbacks=Enable',
    'cam1:Acquire=true',
    'cam1:AcquireTime=0.02', 'cam1:NumImages=721', 'cam1:ImageMode=Multiple', 'cam1:TriggerMode=On'
  ])
  t.same(result, { warmedUp: true, restored: { ImageMode: 'Multiple', TriggerMode: 'On', NumImages: 721, AcquireTime: 0.02 }, arraySize0: 728 })
  t.same(getMockPutCalls(drv.acquire), [{ value: true, wait: true }], 'Acquire with completion')
})

t.test('warm-up: nothing is touched when ArraySize0_RBV is set', async t => {
  const { drv, hdf, puts } = await rig()
  setMockValue(hdf.arraySize0, 728)
  t.equal(await needsWarmup(hdf), false)
  t.same(await warmUpHdfPlugin(drv, hdf, FAST), { warmedUp: false, restored: {}, arraySize0: 728 })
  t.same(puts, [])
})

t.test('warm-up failures name the PV, and the settings are put back anyway', async t => {
  const { drv, hdf, puts } = await rig()
  callbackOnMockPut(drv.acquire, () => { throw new Error('camera unplugged') })
  await t.rejects(warmUpHdfPlugin(drv, hdf, FAST), {
    code: ErrorCode.DETECTOR,
    message: `HDF5 warm-up: acquiring one internal frame (${PREFIX}cam1:Acquire = 1 with completion) failed: camera unplugged`,
    details: { pv: `${PREFIX}cam1:Acquire` }
  })
  t.same(puts.slice(-4), ['cam1:AcquireTime=0.02', 'cam1:NumImages=721', 'cam1:ImageMode=Multiple', 'cam1:TriggerMode=On'], 'restored')

  const second = await rig()
  await t.rejects(warmUpHdfPlugin(second.drv, second.hdf, FAST), {
    code: ErrorCode.DETECTOR,
    message: `HDF5 warm-up: ${PREFIX}HDF1:ArraySize0_RBV is still 0 100 ms after the frame: the plugin did not get it (is its NDArrayPort the driver's port?)`
  })
  t.same(second.puts.slice(-4), ['cam1:AcquireTime=0.02', 'cam1:NumImages=721', 'cam1:ImageMode=Multiple', 'cam1:TriggerMode=On'], 'restored')

  const third = await rig()
  callbackOnMockPut(third.drv.acquire, (v) => { if (v === true) setMockValue(third.hdf.arraySize0, 728) })
  callbackOnMockPut(third.drv.imageMode, (v) => { if (v === 'Multiple') throw new Error('refused') })
  await t.rejects(warmUpHdfPlugin(third.drv, third.hdf, FAST), {
    code: ErrorCode.DETECTOR,
    message: `HDF5 warm-up, restore: writing "Multiple" to ${PREFIX}cam1:ImageMode failed: refused`
  })
  t.ok(third.puts.includes('cam1:TriggerMode=On'), 'the settings after the failed one are still put back')

  const fourth = await rig()
  callbackOnMockPut(fourth.drv.acquire, async () => await new Promise(() => {}))
  await t.rejects(warmUpHdfPlugin(fourth.drv, fourth.hdf, FAST), {
    code: ErrorCode.TIMEOUT,
    message: `HDF5 warm-up: acquiring one internal frame (${PREFIX}cam1:Acquire = 1 with completion) did not finish within 200 ms`,
    details: { pv: `${PREFIX}cam1:Acquire` }
  })
})

/** A path provider that records what it was asked. */
function provider (info: PathInfo): PathProvider & { asked: string[] } {
  const asked: string[] = []
  return { asked, getPath: (name) => { asked.push(name); return info } }
}

async function writerRig (info: PathInfo = { directoryPath: '/data/tst/manta1', filename: 'abc', path: '/data/tst/manta1/abc.h5', createDirDepth: 2 }): Promise<{
  writer: IocHdfWriter
  hdf: NDFileHDF5IO
  puts: string[]
  paths: PathProvider & { asked: string[] }
}> {
  const paths = provider(info)
  const writer = new IocHdfWriter(`${PREFIX}HDF1:`, { name: 'manta1-writer', pathProvider: paths, timeouts: FAST_WRITER })
  await writer.connect({ mock: true })
  const hdf = writer.hdf
  const puts: string[] = []
  record(puts, hdf as unknown as Record<string, unknown>)
  setMockValue(hdf.arraySize0, 728)
  setMockValue(hdf.arraySize1, 544)
  setMockValue(hdf.dataType, 'UInt8')
  setMockValue(hdf.numFramesChunks, 1)
  callbackOnMockPut(hdf.filePath, () => { setMockValue(hdf.filePathExists, true) })
  // Capture=1 starts the capture (Capture_RBV 1) and names the file; Capture=0 stops it.
  callbackOnMockPut(hdf.capture, (v) => { if (v === true) setMockValue(hdf.fullFileName, info.path) })
  return { writer, hdf, puts, paths }
}

async function collect (writer: IocHdfWriter, index: number): Promise<StreamAsset[]> {
  const out: StreamAsset[] = []
  for await (const d of writer.collectStreamDocs('manta1', index)) out.push(d)
  return out
}

t.test('open: the ADHDFWriter sequence, file naming from the path provider, then the data key', async t => {
  const { writer, hdf, puts, paths } = await writerRig()
  const keys = await writer.open('manta1', 2, 10)
  t.same(paths.asked, ['manta1'])
  t.equal(puts[0], 'HDF1:CreateDirectory=-2', 'CreateDirectory first: the last 2 levels may be created')
  t.same(new Set(puts.slice(1, -1)), new Set([
    'HDF1:FilePath=/data/tst/manta1/', 'HDF1:FileName=abc', `HDF1:FileTemplate=${IOC_HDF_FILE_TEMPLATE}`, 'HDF1:AutoIncrement=false',
    'HDF1:FileNumber=0', 'HDF1:FileWriteMode=Stream', 'HDF1:NumCapture=10', 'HDF1:LazyOpen=true', 'HDF1:SWMRMode=true',
    'HDF1:NumExtraDims=0', 'HDF1:EnableCallbacks=Enable', 'HDF1:ArrayCounter=0'
  ]))
  t.equal(puts.at(-1), 'HDF1:Capture=true', 'Capture last')
  t.same(getMockPutCalls(hdf.capture), [{ value: true, wait: false }], 'Capture is not waited for (it completes when the capture ends)')
  t.same(keys, { manta1: { source: `ca://${PREFIX}HDF1:FullFileName_RBV`, dtype: 'array', shape: [544, 728], dtype_numpy: '|u1', external: 'STREAM:' } })
  t.equal(writer.lastWarmup?.warmedUp, false)

  // Progress: 5 frames written = 2 events of 2 frames.
  setMockValue(hdf.arrayCounter, 5)
  setMockValue(hdf.numCaptured, 5)
  setMockValue(hdf.uniqueId, 12)
  t.equal(await writer.getIndicesWritten(), 2)
  t.match(writer.counters(), { received: 5, written: 5, dropped: 0, uniqueIdGaps: 0, lastUniqueId: 12, bytesWritten: 5 * 728 * 544 })
  const docs = await collect(writer, 2)
  t.match(docs, [
    ['stream_resource', { data_key: 'manta1', uri: 'file://localhost/data/tst/manta1/abc.h5', parameters: { dataset: '/entry/data/data', chunk_shape: [1, 544, 728] } }],
    ['stream_datum', { indices: { start: 0, stop: 2 }, seq_nums: { start: 1, stop: 3 } }]
  ])
  await t.rejects(writer.open('manta1', 1, 0), { code: ErrorCode.BAD_INPUT, message: /a file is already open \(\/data\/tst\/manta1\/abc.h5\)/ })

  setMockValue(hdf.numCaptured, 10)
  setMockValue(hdf.arrayCounter, 10)
  await writer.close()
  t.same(getMockPutCalls(hdf.capture).at(-1), { value: false, wait: true })
  t.same(await collect(writer, 5), [['stream_datum', { uid: `${(docs[0]?.[1] as { uid: string }).uid}/1`, stream_resource: (docs[0]?.[1] as { uid: string }).uid, indices: { start: 2, stop: 5 }, seq_nums: { start: 3, stop: 6 } }]],
    'the rest is collected after close')
  await writer.open('manta1', 1, 0)
  t.pass('a closed writer opens the next scan')
})

t.test('open errors name the PV: cold plugin without the driver, missing directory, capture that does not start', async t => {
  const cold = await writerRig()
  setMockValue(cold.hdf.arraySize0, 0)
  await t.rejects(cold.writer.open('manta1', 1, 0), {
    code: ErrorCode.DETECTOR,
    message: `manta1-writer: ${PREFIX}HDF1:ArraySize0_RBV is 0: the plugin has not seen an array since the IOC started, so it cannot open a file; ` +
      'give the writer the driver\'s signals (options.driver) to warm it up'
  })

  const nodir = await writerRig(new StaticPathProvider('/nowhere/x.h5').getPath('manta1'))
  callbackOnMockPut(nodir.hdf.filePath, () => { setMockValue(nodir.hdf.filePathExists, false) })
  await t.rejects(nodir.writer.open('manta1', 1, 0), {
    code: ErrorCode.DETECTOR,
    message: `manta1-writer: ${PREFIX}HDF1:FilePath = /nowhere/: the directory does not exist on the IOC host and could not be created ` +
      `(CreateDirectory 0; ${PREFIX}HDF1:FilePathExists_RBV = No)`,
    details: { pv: `${PREFIX}HDF1:FilePath` }
  })
  t.notOk(nodir.puts.includes('HDF1:Capture=true'), 'capture is not started')

  const refused = await writerRig()
  callbackOnMockPut(refused.hdf.capture, (v) => {
    if (v === true) setMockValue(refused.hdf.writeMessage, 'ERROR, must collect an array to get dimensions first')
  })
  // The IOC refuses: Capture_RBV goes straight back to 0 (the mock stores the value written as the readback).
  refused.hdf.capture.subscribeValue((v) => { if (v) setMockValue(refused.hdf.capture, false) })
  await t.rejects(refused.writer.open('manta1', 1, 0), {
    code: ErrorCode.DETECTOR,
    message: `manta1-writer: ${PREFIX}HDF1:Capture_RBV did not become 1 within 100 ms after ${PREFIX}HDF1:Capture = 1; ` +
      `${PREFIX}HDF1:WriteMessage: ERROR, must collect an array to get dimensions first`
  })

  const bad = await writerRig()
  callbackOnMockPut(bad.hdf.fileName, () => { throw new Error('put refused by the IOC') })
  await t.rejects(bad.writer.open('manta1', 1, 0), { code: ErrorCode.DETECTOR, message: `manta1-writer: writing "abc" to ${PREFIX}HDF1:FileName failed: put refused by the IOC` })
  await t.rejects(bad.writer.open('manta1', 0, 0), { code: ErrorCode.BAD_INPUT, message: /framesPerEvent must be an integer >= 1/ })
})

t.test('close errors: WriteStatus error with WriteMessage; frames that never reach the file', async t => {
  const { writer, hdf } = await writerRig()
  await writer.open('manta1', 1, 0)
  setMockValue(hdf.arrayCounter, 3)
  setMockValue(hdf.numCaptured, 3)
  setMockValue(hdf.writeStatus, 1)
  setMockValue(hdf.writeMessage, 'Error writing file, status=3')
  await t.rejects(writer.close(), {
    code: ErrorCode.DETECTOR,
    message: `manta1-writer: the IOC's HDF plugin reports a write error for /data/tst/manta1/abc.h5: ${PREFIX}HDF1:WriteMessage = "Error writing file, status=3" (3 frames written)`,
    details: { pv: `${PREFIX}HDF1:WriteStatus` }
  })
  await t.rejects(writer.close(), { code: ErrorCode.DETECTOR }, 'close is idempotent: the same outcome')

  const lagging = await writerRig()
  await lagging.writer.open('manta1', 1, 0)
  setMockValue(lagging.hdf.arrayCounter, 8)
  setMockValue(lagging.hdf.numCaptured, 6)
  await t.rejects(lagging.writer.close(), {
    code: ErrorCode.DETECTOR,
    message: `manta1-writer: ${PREFIX}HDF1:NumCaptured_RBV did not reach the 8 frames the plugin received within 100 ms (6 of 8)`
  })

  const aborted = await writerRig()
  await aborted.writer.open('manta1', 1, 0)
  setMockValue(aborted.hdf.arrayCounter, 8)
  await aborted.writer.abort('scan aborted')
  t.same(getMockPutCalls(aborted.hdf.capture).at(-1), { value: false, wait: true }, 'abort stops the capture without waiting for frames')
})
