/**
 * The camera data path on the simulated IOC (127.0.0.1, random ports): camera-capture worker (libca monitors) →
 * frame ring → frame-writer worker (h5wasm) → a file that h5py reads back. The simulated camera writes each frame's
 * UniqueId into its first 4 bytes, so the file's pixels and its NDArrayUniqueId column can be checked against each
 * other.
 */
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ErrorCode } from '../../src/errors.js'
import { DbrBase, type DbrValue } from '../../src/parsers/index.js'
import { CameraPipeline } from '../../src/pipeline/index.js'
import { CaServer, createSimIoc, type CameraOptions, type SimIoc } from '../../src/sim/index.js'
import { privateCaRepeater } from '../support/ca-repeater.js'
import { h5dump, requireHdf5Tools, runPython } from '../support/h5py.js'

requireHdf5Tools()
await privateCaRepeater(t)
const dir = mkdtempSync(join(tmpdir(), 'tst-fly-camera-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const PREFIX = 'XF:31ID1-ES{GigE-Cam:1}'

interface Rig {
  ioc: SimIoc
  server: CaServer
  ca: { addrList: string, autoAddrList: boolean }
  put: (suffix: string, v: number) => Promise<void>
}

async function rig (t: Test, camera: Partial<CameraOptions> = {}): Promise<Rig> {
  const ioc = createSimIoc({ records: [], motors: [], cameras: [{ prefix: PREFIX, width: 728, height: 544, dataType: 'UInt8', ...camera }] })
  const server = await CaServer.start({ provider: ioc, tcpPort: 0, udpPort: 0, beaconPort: 0, log: () => {} })
  t.teardown(async () => {
    await server.close()
    ioc.close()
  })
  const put = (suffix: string, v: number): Promise<void> => {
    const pv = ioc.find(`${PREFIX}${suffix}`)
    if (pv === undefined) throw new Error(`no PV ${suffix}`)
    let value: DbrValue
    switch (pv.base) {
      case DbrBase.ENUM: value = Uint16Array.of(v); break
      case DbrBase.LONG: value = Int32Array.of(v); break
      default: value = Float64Array.of(v)
    }
    return pv.put(value)
  }
  return { ioc, server, ca: { addrList: `127.0.0.1:${server.udpPort}`, autoAddrList: false }, put }
}

/** Internal mode: ImageMode Multiple, NumImages n, AcquirePeriod periodS; resolves when the camera is done. */
async function acquire (r: Rig, n: number, periodS: number): Promise<void> {
  await r.put('cam1:TriggerMode', 0)
  await r.put('cam1:ImageMode', 1)
  await r.put('cam1:NumImages', n)
  await r.put('cam1:AcquireTime', 0.001)
  await r.put('cam1:AcquirePeriod', periodS)
  await r.put('cam1:Acquire', 1)
}

async function waitFor (what: string, cond: () => boolean, timeoutMs = 20_000, periodMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, periodMs))
  }
}

const READ_FRAMES = `
import json, sys
import h5py, numpy as np
with h5py.File(sys.argv[1], 'r') as f:
    d = f['/entry/data/data']
    nd = f['/entry/instrument/NDAttributes']
    n = d.shape[0]
    first4 = d[:, 0, 0:4] if d.dtype == np.uint8 else d[:, 0, 0:2]
    embedded = [int(x) for x in np.ascontiguousarray(first4).view('<u4').reshape(n)] if n else []
    out = {
      'shape': list(d.shape), 'maxshape': list(d.maxshape), 'chunks': list(d.chunks), 'dtype': str(d.dtype),
      'same': d.id == f['/entry/instrument/detector/data'].id,
      'nx': {k: f[k].attrs['NX_class'].decode() if isinstance(f[k].attrs['NX_class'], bytes) else f[k].attrs['NX_class']
             for k in ['/entry', '/entry/instrument', '/entry/instrument/detector', '/entry/instrument/NDAttributes', '/entry/data']},
      'uid': [int(x) for x in nd['NDArrayUniqueId'][()]],
      'uid_dtype': str(nd['NDArrayUniqueId'].dtype),
      'ts': [float(x) for x in nd['NDArrayTimeStamp'][()]],
      'sec': [int(x) for x in nd['NDArrayEpicsTSSec'][()]],
      'nsec': [int(x) for x in nd['NDArrayEpicsTSnSec'][()]],
      'sec_dtype': str(nd['NDArrayEpicsTSSec'].dtype),
      'arrival': [float(x) for x in f['/entry/instrument/performance/arrival_ns'][()]],
      'embedded': embedded,
      'max': int(d[()].max()) if n else 0,
      'frames_written': int(f['/entry'].attrs.get('frames_written', -1)),
      'error': (lambda e: e.decode() if isinstance(e, bytes) else e)(f['/entry'].attrs.get('error', '')),
    }
    print(json.dumps(out))
`

interface FileView {
  shape: number[]
  maxshape: Array<number | null>
  chunks: number[]
  dtype: string
  same: boolean
  nx: Record<string, string>
  uid: number[]
  uid_dtype: string
  ts: number[]
  sec: number[]
  nsec: number[]
  sec_dtype: string
  arrival: number[]
  embedded: number[]
  max: number
  frames_written: number
  error: string
}

const readFrames = (file: string): FileView => JSON.parse(runPython(READ_FRAMES, [file])) as FileView

const increasing = (xs: number[]): boolean => xs.every((x, i) => i === 0 || x > (xs[i - 1] as number))
const consecutive = (xs: number[]): boolean => xs.every((x, i) => i === 0 || x === (xs[i - 1] as number) + 1)

t.test('internal mode, 8-bit: 50 frames, their UniqueIds and timestamps on disk', async t => {
  const r = await rig(t)
  const file = join(dir, 'manta1', 'a', 'internal.h5')
  let progress = 0
  const p = await CameraPipeline.start({ name: 'manta1', prefix: PREFIX, ca: r.ca, file, expectedFrames: 50, flushPeriodMs: 100 },
    { progress: (n) => { progress = n } })
  t.teardown(() => p.destroy('test teardown'))
  t.same(p.shape, { width: 728, height: 544, dtype: 'UInt8' })
  await acquire(r, 50, 0.01)
  await waitFor('50 frames received', () => p.counters().received >= 50)
  p.stop()
  const res = await p.result()
  t.same(res.errors.map((e) => e.message), [], 'no errors')
  t.equal(res.counters.received, 50)
  t.equal(res.counters.written, 50)
  t.equal(res.counters.dropped, 0)
  t.equal(res.counters.uniqueIdGaps, 0)
  t.equal(res.counters.unpaired, 0, 'every frame paired with its UniqueId by timestamp')
  t.equal(res.counters.stale, 2, 'the initial update of each monitor was discarded')
  t.equal(res.counters.bytesWritten, 50 * 728 * 544)
  t.equal(progress, 50, 'progress reported the frames on disk')
  for (const name of ['camera.monitor_to_ring_us', 'camera.ring_handoff_us', 'hdf5.frame_write_us', 'e2e.frame_arrival_to_disk_us']) {
    t.equal(res.latency[name]?.count, 50, `${name} has one value per frame`)
  }

  const f = readFrames(file)
  t.same(f.shape, [50, 544, 728])
  t.same(f.maxshape, [null, 544, 728])
  t.same(f.chunks, [1, 544, 728])
  t.equal(f.dtype, 'uint8')
  t.ok(f.same, '/entry/data/data is a hard link to /entry/instrument/detector/data')
  t.same(f.nx, { '/entry': 'NXentry', '/entry/instrument': 'NXinstrument', '/entry/instrument/detector': 'NXdetector', '/entry/instrument/NDAttributes': 'NXcollection', '/entry/data': 'NXdata' })
  t.equal(f.uid_dtype, 'int32')
  t.equal(f.sec_dtype, 'uint32')
  t.equal(f.uid.length, 50)
  t.ok(consecutive(f.uid), 'UniqueIds consecutive')
  t.equal(f.uid[0], res.counters.firstUniqueId)
  t.same(f.embedded, f.uid, "each frame's pixels carry the UniqueId stored with it")
  t.ok(increasing(f.ts), 'timestamps increasing')
  t.ok(f.ts.every((ts, i) => Math.abs(ts - ((f.sec[i] as number) + (f.nsec[i] as number) / 1e9)) < 1e-6), 'NDArrayTimeStamp = sec + nsec/1e9')
  t.ok(Math.abs((f.ts[49] as number) - (f.ts[0] as number) - 49 * 0.01) < 0.005, 'frames 10 ms apart on the camera clock')
  t.ok(increasing(f.arrival), 'arrival times increasing')
  t.equal(f.frames_written, 50)
  t.equal(f.error, '')
  t.equal(h5dump(file, ['-H']).status, 0, 'h5dump reads the file')
})

t.test('a 16-bit camera: uint16 frames', async t => {
  const r = await rig(t, { dataType: 'UInt16', width: 128, height: 96 })
  const file = join(dir, 'u16.h5')
  const p = await CameraPipeline.start({ name: 'manta16', prefix: PREFIX, ca: r.ca, file })
  t.teardown(() => p.destroy('test teardown'))
  t.same(p.shape, { width: 128, height: 96, dtype: 'UInt16' })
  await acquire(r, 20, 0.005)
  await waitFor('20 frames received', () => p.counters().received >= 20)
  p.stop()
  const res = await p.result()
  t.same(res.errors.map((e) => e.message), [])
  const f = readFrames(file)
  t.same(f.shape, [20, 96, 128])
  t.equal(f.dtype, 'uint16')
  t.ok(consecutive(f.uid))
  t.same(f.embedded, f.uid, 'UniqueId in the first two 16-bit pixels')
  t.ok(f.max > 255 && f.max <= 4095, `12-bit values survive as uint16 (max ${f.max})`)
})

t.test('a 2-slot ring and a writer that flushes after every frame: drops counted, the file consistent', async t => {
  const r = await rig(t)
  const file = join(dir, 'drops.h5')
  const p = await CameraPipeline.start({ name: 'manta1', prefix: PREFIX, ca: r.ca, file, slots: 2, flushPeriodMs: 0 })
  t.teardown(() => p.destroy('test teardown'))
  // Frames as fast as the simulated camera makes them (~14 per 1 ms timer tick, sent in one burst).
  await r.put('cam1:ImageMode', 1)
  await r.put('cam1:NumImages', 200)
  await r.put('cam1:AcquireTime', 1e-5)
  await r.put('cam1:AcquirePeriod', 0)
  await r.put('cam1:Acquire', 1) // resolves when the camera has made its 200 frames
  // The server may also skip monitor updates to a slow client (CA flow control): wait until arrivals stop.
  let seen = -1
  await waitFor('frames to stop arriving', () => {
    const now = p.counters().received
    const still = now === seen && now > 0
    seen = now
    return still
  }, 20_000, 600)
  p.stop()
  const res = await p.result()
  t.same(res.errors.map((e) => e.message), [])
  const c = res.counters
  t.ok(c.received > 2 && c.received <= 200, `frames received (${c.received})`)
  t.ok(c.dropped > 0, `frames dropped on the full ring (${c.dropped})`)
  t.equal(c.written + c.dropped, c.received, 'every frame received is either on disk or counted as dropped')
  t.equal(c.uniqueIdGaps, (c.lastUniqueId ?? 0) - (c.firstUniqueId ?? 0) + 1 - c.written, 'gaps = ids spanned - frames written')
  const f = readFrames(file)
  t.equal(f.shape[0], c.written)
  t.same(f.embedded, f.uid, 'pixels and UniqueIds still belong together')
  t.ok(increasing(f.uid), 'UniqueIds increasing')
  t.equal(f.frames_written, c.written)
})

t.test('the camera IOC gone mid-acquisition: an error naming the PV, a readable file with the frames before', async t => {
  const r = await rig(t)
  const file = join(dir, 'ioc-gone.h5')
  const errors: string[] = []
  const p = await CameraPipeline.start({ name: 'manta1', prefix: PREFIX, ca: r.ca, file, flushPeriodMs: 50 },
    { error: (e) => errors.push(e.message) })
  t.teardown(() => p.destroy('test teardown'))
  acquire(r, 1000, 0.01).catch(() => {})
  await waitFor('10 frames received', () => p.counters().received >= 10)
  await r.server.close()
  r.ioc.close()
  const res = await p.result()
  const gone = res.errors.find((e) => e.code === ErrorCode.NOT_CONNECTED)
  t.ok(gone, 'a NOT_CONNECTED error')
  t.match(gone?.message ?? '', `${PREFIX}image1:ArrayData disconnected`)
  t.match(gone?.message ?? '', /after \d+ frames received/)
  t.ok(errors.length >= 1, 'the error event fired')
  const f = readFrames(file)
  t.ok(f.shape[0] !== undefined && f.shape[0] >= 10, `frames before the IOC went are on disk (${String(f.shape[0])})`)
  t.equal(f.shape[0], res.counters.written)
  t.equal(f.uid.length, f.shape[0], 'one UniqueId per frame')
  t.same(f.embedded, f.uid)
})
