import t from 'tap'
import { randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { VimbaDriverIO } from '../../src/areadetector/index.js'
import { IocHdfWriter } from '../../src/areadetector/ioc-hdf-writer.js'
import type { StreamAsset } from '../../src/devices/index.js'
import { ErrorCode } from '../../src/errors.js'
import { LocalPathProvider, StaticPathProvider } from '../../src/paths/index.js'
import { createSimIoc, parseIocConfig, simHdf5Ready } from '../../src/sim/ioc/index.js'
import { serveIoc } from '../support/served-ioc.js'
import { requireHdf5Tools, runPython } from '../support/h5py.js'
import { validateDocument } from '../support/schemas.js'

// IOC-writer mode against the simulated IOC over Channel Access: IocHdfWriter drives the simulated HDF1 plugin, which
// writes a real file (src/sim/ioc/hdf-file.ts); the file is read back with h5py. Real clock, small frames.

requireHdf5Tools()
const PREFIX = 'XF:31ID1-ES{GigE-Cam:1}'
const WIDTH = 160
const HEIGHT = 120

const ioc = createSimIoc(parseIocConfig({ cameras: [{ prefix: PREFIX, width: WIDTH, height: HEIGHT }] }, 'ioc-writer.test'))
await simHdf5Ready()
const { CA } = await serveIoc(t, ioc)

const drv = new VimbaDriverIO(`${PREFIX}cam1:`, { ca: CA })
drv.setName('manta1-drv')
await drv.connect({ timeout: 5000 })

/** What the IOC holds in `<PREFIX><suffix>` (number, or the text of an enum or long string). */
function held (suffix: string): number | string {
  const pv = ioc.find(`${PREFIX}${suffix}`)
  if (pv === undefined) throw new Error(`no PV ${PREFIX}${suffix}`)
  const v = pv.get().value
  if (pv.metadata().enumStrings !== undefined) return pv.metadata().enumStrings?.[v[0] as number] ?? ''
  if (v instanceof Uint8Array && pv.maxCount > 1) return Buffer.from(v.subarray(0, v.indexOf(0) < 0 ? v.length : v.indexOf(0))).toString()
  return v[0] as number
}

async function docsOf (writer: IocHdfWriter, name: string, index: number): Promise<StreamAsset[]> {
  const out: StreamAsset[] = []
  for await (const doc of writer.collectStreamDocs(name, index)) out.push(doc)
  return out
}

t.test('a fresh IOC: warm-up, then 30 internal frames into the IOC-written file, documents schema-valid', async t => {
  const dir = t.testdir({})
  t.equal(held('HDF1:ArraySize0_RBV'), 0, 'a fresh IOC: the plugin has never seen an array')
  // Settings the warm-up must put back.
  await drv.triggerMode.set('On')
  await drv.imageMode.set('Continuous')
  await drv.numImages.set(7)
  await drv.acquireTime.set(0.002)

  const writer = new IocHdfWriter(`${PREFIX}HDF1:`, {
    name: 'manta1-writer', pathProvider: new LocalPathProvider(dir, { uuid: () => 'scan-1' }), driver: drv, ca: CA
  })
  await writer.connect({ timeout: 5000 })
  const keys = await writer.open('manta1', 1, 30)
  t.equal(writer.lastWarmup?.warmedUp, true, 'the warm-up ran')
  t.same(writer.lastWarmup?.restored, { ImageMode: 'Continuous', TriggerMode: 'On', NumImages: 7, AcquireTime: 0.002 })
  t.same([held('cam1:TriggerMode_RBV'), held('cam1:ImageMode_RBV'), held('cam1:NumImages_RBV'), held('cam1:AcquireTime_RBV')],
    ['On', 'Continuous', 7, 0.002], 'the driver\'s settings are back')
  t.equal(held('HDF1:ArraySize0_RBV'), WIDTH)
  t.same(keys, {
    manta1: { source: `ca://${PREFIX}HDF1:FullFileName_RBV`, dtype: 'array', shape: [HEIGHT, WIDTH], dtype_numpy: '|u1', external: 'STREAM:' }
  })
  t.equal(held('HDF1:Capture_RBV'), 'Capture')
  t.same([held('HDF1:FileWriteMode_RBV'), held('HDF1:FileTemplate_RBV'), held('HDF1:AutoIncrement_RBV'), held('HDF1:NumCapture_RBV'), held('HDF1:LazyOpen_RBV')],
    ['Stream', '%s%s.h5', 'No', 30, 'Yes'])
  t.same(await docsOf(writer, 'manta1', 0), [], 'LazyOpen: no file named before the first frame, nothing to announce')

  // The camera runs 30 internal frames, driven over CA.
  await drv.triggerMode.set('Off')
  await drv.imageMode.set('Multiple')
  await drv.numImages.set(30)
  await drv.acquireTime.set(0.001)
  await drv.acquirePeriod.set(0.01)
  await drv.acquire.set(true, { timeout: 10_000 })
  const deadline = Date.now() + 10_000
  while (await writer.getIndicesWritten() < 30) {
    if (Date.now() > deadline) throw new Error(`only ${await writer.getIndicesWritten()} of 30 frames written within 10 s`)
    await sleep(20)
  }
  const file = join(dir, 'manta1', ...ymd(), 'scan-1.h5')
  t.equal(held('HDF1:FullFileName_RBV'), file)
  const docs = await docsOf(writer, 'manta1', 30)
  t.same(docs.map(([kind]) => kind), ['stream_resource', 'stream_datum'])
  const resource = docs[0]?.[1] as unknown as Record<string, unknown>
  t.match(resource, { data_key: 'manta1', mimetype: 'application/x-hdf5', uri: `file://localhost${file}`, parameters: { dataset: '/entry/data/data', chunk_shape: [1, HEIGHT, WIDTH] } })
  t.match(docs[1]?.[1], { stream_resource: resource.uid, indices: { start: 0, stop: 30 }, seq_nums: { start: 1, stop: 31 } })
  const runStart = randomUUID()
  const descriptor = randomUUID()
  validateDocument('descriptor', { uid: descriptor, run_start: runStart, time: Date.now() / 1000, name: 'primary', data_keys: keys, object_keys: { manta1: ['manta1'] } })
  for (const [kind, doc] of docs) {
    t.doesNotThrow(() => validateDocument(kind, kind === 'stream_datum' ? { ...doc, descriptor } : { ...doc, run_start: runStart }), `${kind} is schema-valid`)
  }
  t.same(await docsOf(writer, 'manta1', 30), [], 'nothing new to collect')

  await writer.close()
  await writer.close()
  const c = writer.counters()
  t.match(c, { received: 30, written: 30, dropped: 0, uniqueIdGaps: 0, bytesWritten: 30 * WIDTH * HEIGHT })
  t.equal(held('HDF1:Capture_RBV'), 'Done')
  t.equal(held('HDF1:WriteStatus'), 'Write OK')

  const read = JSON.parse(runPython(`
import json, sys
import h5py
with h5py.File(sys.argv[1], 'r') as f:
    d = f['/entry/data/data']
    print(json.dumps({'shape': list(d.shape), 'dtype': str(d.dtype),
                      'ids': f['/entry/instrument/NDAttributes/NDArrayUniqueId'][()].tolist(),
                      'stamped': [int.from_bytes(bytes(d[k, 0, :4]), 'little') for k in range(d.shape[0])]}))
`, [file])) as { shape: number[], dtype: string, ids: number[], stamped: number[] }
  t.same(read.shape, [30, HEIGHT, WIDTH])
  t.equal(read.dtype, 'uint8')
  // The warm-up frame was UniqueId 1; the scan's frames follow it.
  const expected = Array.from({ length: 30 }, (_, i) => i + 2)
  t.same(read.ids, expected, 'UniqueIds consecutive')
  t.same(read.stamped, expected, 'each frame holds its own UniqueId')
  t.equal(c.firstUniqueId === undefined || c.firstUniqueId >= 2, true)
  t.equal(c.lastUniqueId, 31)
})

t.test('a warm plugin is not warmed up again; a FilePath that cannot be created fails open naming it', async t => {
  const dir = t.testdir({})
  const blocker = join(dir, 'a-file')
  writeFileSync(blocker, 'not a directory')
  const writer = new IocHdfWriter(`${PREFIX}HDF1:`, { name: 'manta1-writer', pathProvider: new LocalPathProvider(blocker), driver: drv, ca: CA })
  await writer.connect({ timeout: 5000 })
  const counter = held('cam1:ArrayCounter_RBV')
  await t.rejects(writer.open('manta1', 1, 0), {
    code: ErrorCode.DETECTOR,
    message: new RegExp(`^manta1-writer: ${escape(PREFIX)}HDF1:FilePath = ${escape(blocker)}/manta1/.*/: the directory does not exist on the IOC host and could not be created`)
  })
  t.equal(writer.lastWarmup?.warmedUp, false, 'ArraySize0_RBV was already set')
  t.equal(held('cam1:ArrayCounter_RBV'), counter, 'no frame was taken')
  t.equal(held('HDF1:Capture_RBV'), 'Done', 'capture never started')

  const missing = new IocHdfWriter(`${PREFIX}HDF1:`, { pathProvider: new StaticPathProvider('/nonexistent-tst-fly/run/x.h5'), driver: drv, ca: CA })
  await missing.connect({ timeout: 5000 })
  await t.rejects(missing.open('manta1', 1, 0), {
    code: ErrorCode.DETECTOR,
    message: `${PREFIX}HDF1:: ${PREFIX}HDF1:FilePath = /nonexistent-tst-fly/run/: the directory does not exist on the IOC host and could not be created ` +
      `(CreateDirectory 0; ${PREFIX}HDF1:FilePathExists_RBV = No)`
  })
})

function ymd (): string[] {
  const d = new Date()
  return [String(d.getFullYear()), String(d.getMonth() + 1).padStart(2, '0'), String(d.getDate()).padStart(2, '0')]
}

function escape (s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
