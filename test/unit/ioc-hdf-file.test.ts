import t from 'tap'
import type { Test } from 'tap'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { DbrBase, EPICS_EPOCH_OFFSET_S } from '../../src/parsers/index.js'
import {
  ManualClock, SimCamera, charsFromString, openSimHdfFile, simHdf5Loaded, simHdf5Ready, stringFromChars,
  type CameraOptions, type ServedPv, type SimHdfTarget
} from '../../src/sim/ioc/index.js'
import { defaults } from '../../config/index.js'
import { requireHdf5Tools, runPython } from '../support/h5py.js'

// The simulated NDFileHDF5 plugin writes real files (src/sim/ioc/hdf-file.ts), read back here with h5py.

// Opened before h5wasm finished loading (it starts when hdf-file.ts is imported, a few lines above): a pending file.
const pendingDir = t.testdir({})
const wasLoaded = simHdf5Loaded()
const pending: SimHdfTarget = openSimHdfFile(join(pendingDir, 'pending.h5'), { width: 4, height: 2, dataType: 'UInt8', framesPerChunk: 1, swmr: false },
  (message) => { throw new Error(`the pending file failed: ${message}`) })
for (let i = 1; i <= 3; i++) pending.append(Uint8Array.of(i, 0, 0, 0, 9, 9, 9, 9), { uniqueId: i, timeStamp: i / 10, epicsSec: i, epicsNsec: 100 * i })
pending.close()

requireHdf5Tools()
await simHdf5Ready()

const PREFIX = 'XF:31ID1-ES{GigE-Cam:1}'

/** What h5py sees in a file of ADCore's default layout. */
interface AdFile {
  shape: number[]
  dtype: string
  chunks: number[] | null
  linked: boolean
  signal: number
  nxClass: Record<string, string>
  /** UniqueId stamped into each frame's first 4 bytes (little-endian uint32). */
  stamped: number[]
  /** The centre pixel of each frame: shows the frame is the camera's image, not zeros. */
  pixel: number[]
  attrs: Record<string, { dtype: string, values: number[], name: string }>
}

const READ_AD = `
import json, sys
import h5py, numpy as np
with h5py.File(sys.argv[1], 'r', swmr=sys.argv[2] == '1') as f:
    d = f['/entry/data/data']
    raw = d[()]
    b = raw.view(np.uint8).reshape(raw.shape[0], -1) if raw.shape[0] else np.zeros((0, 4), np.uint8)
    out = {
        'shape': list(d.shape), 'dtype': str(d.dtype), 'chunks': list(d.chunks) if d.chunks else None,
        'linked': f['/entry/data/data'].id == f['/entry/instrument/detector/data'].id,
        'signal': int(f['/entry/instrument/detector/data'].attrs['signal']),
        'nxClass': {g: (f[g].attrs['NX_class'].decode() if isinstance(f[g].attrs['NX_class'], bytes) else str(f[g].attrs['NX_class']))
                    for g in ['/entry', '/entry/instrument', '/entry/instrument/detector', '/entry/instrument/NDAttributes', '/entry/data']},
        'stamped': [int.from_bytes(bytes(b[k, :4]), 'little') for k in range(raw.shape[0])],
        'pixel': [int(raw[k, raw.shape[1] // 2, raw.shape[2] // 2]) for k in range(raw.shape[0])],
        'attrs': {n: {'dtype': str(ds.dtype), 'values': ds[()].tolist(), 'name': ds.attrs['NDAttrName'].decode() if isinstance(ds.attrs['NDAttrName'], bytes) else str(ds.attrs['NDAttrName'])}
                  for n, ds in f['/entry/instrument/NDAttributes'].items()}}
    print(json.dumps(out))
`

function readAd (path: string, swmr = false): AdFile {
  return JSON.parse(runPython(READ_AD, [path, swmr ? '1' : '0'])) as AdFile
}

interface Rig {
  clock: ManualClock
  camera: SimCamera
  put: (suffix: string, v: number | string) => Promise<void>
  get: (suffix: string) => number
  text: (suffix: string) => string
  /** Acquire `n` frames in internal mode (Multiple), moving the manual clock until done. */
  shoot: (n: number) => Promise<void>
}

function rig (t: Test, options: Partial<CameraOptions> = {}): Rig {
  const clock = new ManualClock()
  const camera = new SimCamera({ prefix: PREFIX, ...options }, clock)
  t.teardown(() => { camera.close() })
  const pvs = new Map(camera.pvs().map((p) => [p.name.slice(PREFIX.length), p]))
  const pv = (suffix: string): ServedPv => {
    const p = pvs.get(suffix)
    if (p === undefined) throw new Error(`no PV ${suffix}`)
    return p
  }
  const text = (suffix: string): string => {
    const p = pv(suffix)
    const value = p.get().value
    if (p.base === DbrBase.ENUM) return p.metadata().enumStrings?.[value[0] as number] ?? ''
    if (p.base === DbrBase.CHAR) return stringFromChars(value)
    return String(value[0])
  }
  const put = (suffix: string, v: number | string): Promise<void> => {
    const p = pv(suffix)
    switch (p.base) {
      case DbrBase.ENUM: {
        const state = typeof v === 'number' ? v : (p.metadata().enumStrings ?? []).indexOf(v)
        if (state < 0) throw new Error(`${suffix} has no state ${v}`)
        return p.put(Uint16Array.of(state))
      }
      case DbrBase.CHAR: return p.put(charsFromString(String(v), p.maxCount))
      case DbrBase.LONG: return p.put(Int32Array.of(Number(v)))
      default: return p.put(Float64Array.of(Number(v)))
    }
  }
  const get = (suffix: string): number => pv(suffix).get().value[0] as number
  const shoot = async (n: number): Promise<void> => {
    await put('cam1:ImageMode', n === 1 ? 'Single' : 'Multiple')
    await put('cam1:NumImages', n)
    const done = put('cam1:Acquire', 1)
    // AcquireTime 0.01 s, AcquirePeriod 0.1 s: one frame per 100 ms.
    for (let i = 0; i < n; i++) clock.advance(100)
    await done
  }
  return { clock, camera, put, get, text, shoot }
}

/** Stream settings as ADHDFWriter writes them. */
async function stream (r: Rig, dir: string, name: string, numCapture = 0): Promise<{ capture: Promise<void> }> {
  await r.put('HDF1:FilePath', dir)
  await r.put('HDF1:FileName', name)
  await r.put('HDF1:FileTemplate', '%s%s.h5')
  await r.put('HDF1:FileWriteMode', 'Stream')
  await r.put('HDF1:NumCapture', numCapture)
  await r.put('HDF1:LazyOpen', 1)
  await r.put('HDF1:SWMRMode', 1)
  // Not awaited: the write completes when the capture ends.
  return { capture: r.put('HDF1:Capture', 1) }
}

t.test('a file opened before h5wasm loaded is written once it has', async t => {
  t.equal(wasLoaded, false, 'h5wasm was still loading when the file was opened')
  t.equal(pending.pending, false, 'the file is real now')
  const f = readAd(join(pendingDir, 'pending.h5'))
  t.same(f.shape, [3, 2, 4])
  t.same(f.stamped, [1, 2, 3], 'the queued frames, in order')
  t.same(f.attrs.NDArrayUniqueId?.values, [1, 2, 3])
  t.same(f.attrs.NDArrayEpicsTSnSec?.values, [100, 200, 300])
})

t.test('Stream: 30 frames in ADCore\'s default layout, UniqueIds and time stamps per frame', async t => {
  const dir = t.testdir({})
  const r = rig(t)
  const { capture } = await stream(r, dir, 'scan')
  await r.shoot(30)
  t.equal(r.get('HDF1:NumCaptured_RBV'), 30)
  t.equal(r.get('HDF1:SWMRActive_RBV'), 1, 'SWMRMode On: the file is SWMR while open')
  const path = join(dir, 'scan.h5')
  t.equal(r.text('HDF1:FullFileName_RBV'), path)
  await r.put('HDF1:Capture', 0)
  await capture
  t.equal(r.get('HDF1:SWMRActive_RBV'), 0)
  t.equal(r.get('HDF1:WriteStatus'), 0, r.text('HDF1:WriteMessage'))

  const f = readAd(path)
  t.same(f.shape, [30, 544, 728])
  t.equal(f.dtype, 'uint8')
  t.same(f.chunks, [1, 544, 728], 'NumFramesChunks 1')
  t.ok(f.linked, '/entry/data/data is a hard link to /entry/instrument/detector/data')
  t.equal(f.signal, 1)
  t.same(f.nxClass, {
    '/entry': 'NXentry',
    '/entry/instrument': 'NXinstrument',
    '/entry/instrument/detector': 'NXdetector',
    '/entry/instrument/NDAttributes': 'NXcollection',
    '/entry/data': 'NXdata'
  })
  const ids = Array.from({ length: 30 }, (_, i) => i + 1)
  t.same(f.stamped, ids, 'each frame is the one received')
  t.ok(f.pixel.every((p) => p > 0), 'frames hold the image')
  t.same(Object.keys(f.attrs).sort(), ['NDArrayEpicsTSSec', 'NDArrayEpicsTSnSec', 'NDArrayTimeStamp', 'NDArrayUniqueId'])
  t.same(f.attrs.NDArrayUniqueId, { dtype: 'int32', values: ids, name: 'NDArrayUniqueId' })
  t.equal(f.attrs.NDArrayTimeStamp?.dtype, 'float64')
  t.equal(f.attrs.NDArrayEpicsTSSec?.dtype, 'uint32')
  // Frame k ends its exposure at t0 + k * 100 ms + 10 ms (AcquireTime 0.01 s, AcquirePeriod 0.1 s).
  const stamps = f.attrs.NDArrayTimeStamp?.values ?? []
  const t0 = (r.clock.nowMs() - 30 * 100) / 1000 - EPICS_EPOCH_OFFSET_S
  t.ok(stamps.every((s, k) => Math.abs(s - (t0 + k * 0.1 + 0.01)) < 1e-6), 'NDArrayTimeStamp: seconds since the EPICS epoch, per frame')
  const secs = f.attrs.NDArrayEpicsTSSec?.values ?? []
  const nsecs = f.attrs.NDArrayEpicsTSnSec?.values ?? []
  t.ok(stamps.every((s, k) => Math.abs((secs[k] as number) + (nsecs[k] as number) / 1e9 - s) < 1e-6), 'the EPICS time stamp is the same instant')
})

t.test('Stream: a reader follows the file, every dataset the same length after each flush', async t => {
  const dir = t.testdir({})
  const r = rig(t)
  const { capture } = await stream(r, dir, 'live')
  await r.shoot(5)
  r.clock.advance(defaults.iocWriter.simFlushPeriodMs)
  const live = readAd(join(dir, 'live.h5'), true)
  t.same(live.shape, [5, 544, 728], 'flushed within simFlushPeriodMs of the first unflushed frame')
  t.same(live.attrs.NDArrayUniqueId?.values, [1, 2, 3, 4, 5])
  await r.put('HDF1:NumFramesFlush', 3)
  await r.shoot(1)
  const again = readAd(join(dir, 'live.h5'), true)
  t.same(again.attrs.NDArrayUniqueId?.values, [1, 2, 3, 4, 5, 6], 'NumFramesFlush 3: flushed at the 6th frame, at once')
  t.same(again.stamped, [1, 2, 3, 4, 5, 6])
  await r.put('HDF1:Capture', 0)
  await capture
})

t.test('Stream with NumCapture closes the file by itself; a 16-bit camera writes uint16', async t => {
  const dir = t.testdir({})
  const r = rig(t, { dataType: 'UInt16', width: 64, height: 48 })
  const { capture } = await stream(r, dir, 'mono12', 4)
  await r.shoot(6)
  await capture
  t.equal(r.get('HDF1:NumCaptured_RBV'), 4)
  t.equal(r.get('HDF1:Capture_RBV'), 0)
  const f = readAd(join(dir, 'mono12.h5'))
  t.same(f.shape, [4, 48, 64])
  t.equal(f.dtype, 'uint16')
  t.same(f.stamped, [1, 2, 3, 4])
  t.ok(f.pixel.every((p) => p > 0 && p <= 4095), '12-bit values')
})

t.test('Capture mode buffers NumCapture frames and writes them in one file; Single writes a file per frame', async t => {
  const dir = t.testdir({})
  const r = rig(t, { width: 32, height: 16 })
  await r.shoot(1)
  await r.put('HDF1:FilePath', dir)
  await r.put('HDF1:FileName', 'buf')
  await r.put('HDF1:FileWriteMode', 'Capture')
  await r.put('HDF1:NumCapture', 3)
  await r.put('HDF1:AutoSave', 1)
  const capture = r.put('HDF1:Capture', 1)
  await r.shoot(3)
  await capture
  const buffered = readAd(join(dir, 'buf_000.h5'))
  t.same(buffered.stamped, [2, 3, 4], 'the three captured frames, as received')
  t.same(buffered.attrs.NDArrayUniqueId?.values, [2, 3, 4])

  await r.put('HDF1:FileWriteMode', 'Single')
  await r.put('HDF1:AutoIncrement', 1)
  await r.shoot(2)
  t.same(readAd(join(dir, 'buf_000.h5')).stamped, [5], 'Single + AutoSave: one file per frame')
  t.same(readAd(join(dir, 'buf_001.h5')).stamped, [6])
  await r.put('HDF1:AutoSave', 0)
  // The pool's frame for UniqueId 6 is reused for UniqueId 14 (FRAME_POOL 8), which HDF1 does not see (callbacks off):
  // WriteFile must still write frame 6 as it was received.
  await r.put('HDF1:EnableCallbacks', 'Disable')
  await r.put('cam1:ArrayCounter', 13)
  await r.shoot(1)
  await r.put('HDF1:EnableCallbacks', 'Enable')
  await r.put('HDF1:WriteFile', 1)
  t.same(readAd(join(dir, 'buf_002.h5')).stamped, [6], 'WriteFile writes the last frame')
  t.equal(r.get('HDF1:WriteStatus'), 0)
})

t.test('write errors: WriteStatus Write error, WriteMessage with the file and the reason', async t => {
  const dir = t.testdir({})
  const r = rig(t, { width: 32, height: 16 })
  await r.shoot(1)
  // The file name is taken by a directory: HDF5 cannot create it.
  mkdirSync(join(dir, 'taken.h5'))
  await r.put('HDF1:FilePath', dir)
  await r.put('HDF1:FileName', 'taken')
  await r.put('HDF1:FileTemplate', '%s%s.h5')
  await r.put('HDF1:FileWriteMode', 'Stream')
  await r.put('HDF1:NumCapture', 0)
  await r.put('HDF1:Capture', 1)
  t.equal(r.get('HDF1:Capture_RBV'), 0, 'capture does not start')
  t.equal(r.get('HDF1:WriteStatus'), 1)
  t.match(r.text('HDF1:WriteMessage'), `Error opening file ${join(dir, 'taken.h5')}: `)

  // LazyOpen: the file opens at the first frame; that frame is not counted and capture goes on.
  await r.put('HDF1:LazyOpen', 1)
  const capture = r.put('HDF1:Capture', 1)
  t.equal(r.get('HDF1:WriteStatus'), 0, 'a new capture clears the status')
  await r.shoot(2)
  t.equal(r.get('HDF1:NumCaptured_RBV'), 0, 'no frame written')
  t.equal(r.get('HDF1:Capture_RBV'), 1)
  t.match(r.text('HDF1:WriteMessage'), `Error opening file ${join(dir, 'taken.h5')}: `)
  await r.put('HDF1:Capture', 0)
  await capture
})
