/**
 * TstFlyFrameWriter (the DetectorWriter over CameraPipeline) on the simulated IOC: open() names the file from the
 * path provider and returns an event-model data key; collectStreamDocs emits one stream_resource then stream_datum
 * for the events on disk (both valid against the event-model schemas, with the run's uids filled in); close() ends the
 * file and keeps the result for the timing report.
 */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TstFlyFrameWriter } from '../../src/areadetector/frame-writer.js'
import type { StreamAsset } from '../../src/devices/index.js'
import { LocalPathProvider } from '../../src/paths/index.js'
import { CaServer, createSimIoc } from '../../src/sim/index.js'
import { privateCaRepeater } from '../support/ca-repeater.js'
import { requireHdf5Tools, runPython } from '../support/h5py.js'
import { validateDocument } from '../support/schemas.js'

requireHdf5Tools()
await privateCaRepeater(t)
const dir = mkdtempSync(join(tmpdir(), 'tst-fly-frame-detector-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const PREFIX = 'XF:31ID1-ES{GigE-Cam:2}'

t.test('open → data key, frames, stream documents, close', async t => {
  const ioc = createSimIoc({ records: [], motors: [], cameras: [{ prefix: PREFIX, width: 64, height: 48, dataType: 'UInt8' }] })
  const server = await CaServer.start({ provider: ioc, tcpPort: 0, udpPort: 0, beaconPort: 0, log: () => {} })
  t.teardown(async () => { await server.close(); ioc.close() })
  const writer = new TstFlyFrameWriter({
    prefix: PREFIX,
    ca: { addrList: `127.0.0.1:${server.udpPort}`, autoAddrList: false },
    pathProvider: new LocalPathProvider(dir, { uuid: () => 'scan1' }),
    flushPeriodMs: 50
  })
  t.teardown(() => writer.abort('test teardown'))
  const keys = await writer.open('manta2', 2, 10)
  t.same(keys, {
    manta2: { source: `CA:${PREFIX}image1:ArrayData`, dtype: 'array', shape: [2, 48, 64], dtype_numpy: '|u1', external: 'STREAM:' }
  })
  const file = writer.file ?? ''
  t.match(file, /manta2\/\d{4}\/\d\d\/\d\d\/scan1\.h5$/)
  t.equal(await writer.getIndicesWritten(), 0)

  const put = async (suffix: string, value: Uint16Array | Int32Array | Float64Array): Promise<void> => {
    const pv = ioc.find(`${PREFIX}${suffix}`)
    if (pv === undefined) throw new Error(`no ${suffix}`)
    await pv.put(value)
  }
  await put('cam1:ImageMode', Uint16Array.of(1))
  await put('cam1:NumImages', Int32Array.of(10))
  await put('cam1:AcquireTime', Float64Array.of(0.001))
  await put('cam1:AcquirePeriod', Float64Array.of(0.005))
  await put('cam1:Acquire', Uint16Array.of(1))
  const deadline = Date.now() + 20_000
  while (await writer.getIndicesWritten() < 5) {
    if (Date.now() > deadline) throw new Error(`only ${writer.counters().written} frames on disk`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.equal(writer.counters().written, 10)

  const docs: StreamAsset[] = []
  for await (const d of writer.collectStreamDocs('manta2', 3)) docs.push(d)
  for await (const d of writer.collectStreamDocs('manta2', 5)) docs.push(d)
  t.same(docs.map((d) => d[0]), ['stream_resource', 'stream_datum', 'stream_datum'])
  const [resource, first, second] = docs.map((d) => d[1]) as unknown as [Record<string, unknown>, Record<string, unknown>, Record<string, unknown>]
  t.match(resource, { data_key: 'manta2', mimetype: 'application/x-hdf5', uri: `file://localhost${file}`, parameters: { dataset: '/entry/data/data', chunk_shape: [1, 48, 64] } })
  t.same(first.indices, { start: 0, stop: 3 })
  t.same(second.indices, { start: 3, stop: 5 })
  t.same(second.seq_nums, { start: 4, stop: 6 })
  validateDocument('stream_resource', { ...resource, run_start: 'run-uid' })
  validateDocument('stream_datum', { ...second, descriptor: 'descriptor-uid' })

  await writer.close()
  await writer.close()
  const result = writer.lastResult
  t.equal(result?.counters.written, 10)
  t.equal(result?.file, file)
  t.ok((result?.latency['e2e.frame_arrival_to_disk_us']?.count ?? 0) === 10, 'latency kept for the timing report')
  const n = runPython("import h5py, sys; print(h5py.File(sys.argv[1], 'r')['/entry/data/data'].shape[0])", [file]).trim()
  t.equal(n, '10')
})
