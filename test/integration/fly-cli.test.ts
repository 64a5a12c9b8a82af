// TST's fly scans from the command line on the embedded simulated beamline (issue 6's done-criterion): the built
// `tst-fly run tomo_fly --num-images 21 --scan-time 2` with --json, and `tst-fly demo` (what `npm start` runs), each
// in a child process with config/sim.yaml's devices and simulators writing into a temporary directory. Checked: the
// summary, the timing report, the HDF5 files read by h5py (frames, UniqueIds, PandA rows), and the documents
// (schema-valid, external STREAM: keys, stream_datum covering every frame and row, the timing report in run_stop).
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseJsonl } from '../../src/documents/index.js'
import { REPO_ROOT, requireHdf5Tools, runPython } from '../support/h5py.js'
import { runCli } from '../support/cli.js'
import { privateCaRepeater } from '../support/ca-repeater.js'
import { validateDocument } from '../support/schemas.js'

requireHdf5Tools()
await privateCaRepeater(t)
const dir = mkdtempSync(join(tmpdir(), 'tst-fly-fly-cli-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
// config/sim.yaml with its data root in the temporary directory.
const config = join(dir, 'sim.yaml')
writeFileSync(config, readFileSync(join(REPO_ROOT, 'config', 'sim.yaml'), 'utf8').replace(/root: out\/data/, `root: ${join(dir, 'data')}`))

const CAMERA_SCRIPT = `
import json, sys
import h5py
with h5py.File(sys.argv[1], 'r') as f:
    d = f['/entry/data/data']
    uid = f['/entry/instrument/NDAttributes/NDArrayUniqueId'][()].tolist()
    pixels = [int.from_bytes(bytes(d[k, 0, 0:4]), 'little') for k in range(d.shape[0])]
    print(json.dumps({'shape': list(d.shape), 'dtype': str(d.dtype), 'uid': uid, 'pixels': pixels}))
`
const PANDA_SCRIPT = `
import json, sys
import h5py
with h5py.File(sys.argv[1], 'r') as f:
    print(json.dumps({k: f[k].shape[0] for k in f.keys()}))
`

interface Summary {
  outcome: string
  exitStatus: string
  files: string[]
  frames: number
  rows: number
  docs: string
  timing: { verdict: string, cameras: Array<{ name: string, received: number, uniqueIdGaps: number, arrayCounter: number }>, panda: { rows: number } }
}

t.test('tst-fly run tomo_fly --num-images 21 --scan-time 2 --json: files, frames, rows, timing, documents', async t => {
  const r = await runCli(['run', 'tomo_fly', '--num-images', '21', '--scan-time', '2', '--config', config, '--json'], 120_000)
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`)
  const summary = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as Summary
  t.equal(summary.outcome, 'completed')
  t.equal(summary.exitStatus, 'success')
  t.equal(summary.frames, 42, '21 frames from each of the two cameras')
  t.equal(summary.rows, 21)
  t.equal(summary.timing.verdict, 'ok')
  t.same(summary.timing.cameras.map((c) => [c.name, c.received, c.uniqueIdGaps, c.arrayCounter]), [['manta1', 21, 0, 21], ['manta2', 21, 0, 21]])
  t.equal(summary.files.length, 3, 'two camera files and the PandA file')

  for (const file of summary.files.filter((f) => /manta/.test(f))) {
    const cam = JSON.parse(runPython(CAMERA_SCRIPT, [file])) as { shape: number[], dtype: string, uid: number[], pixels: number[] }
    t.same(cam.shape, [21, 544, 728], `${file}: (N, H, W)`)
    t.equal(cam.dtype, 'uint8')
    const first = cam.uid[0] as number
    t.same(cam.uid, Array.from({ length: 21 }, (_, k) => first + k), 'UniqueIds consecutive')
    t.same(cam.pixels, cam.uid, "each frame's UniqueId (the simulator writes it into the first pixels) matches NDArrayUniqueId")
  }
  const pandaFile = summary.files.find((f) => /panda1/.test(f)) as string
  const rows = JSON.parse(runPython(PANDA_SCRIPT, [pandaFile])) as Record<string, number>
  t.same(rows, { 'INENC1.VAL.Value': 21, 'PCAP.TS_TRIG.Value': 21 }, 'the PandA file: 21 rows of each captured field')

  const docs = parseJsonl(readFileSync(summary.docs, 'utf8'), summary.docs)
  for (const [name, doc] of docs) validateDocument(name, doc)
  const names = docs.map(([n]) => n)
  t.equal(names[0], 'start')
  t.equal(names.at(-1), 'stop')
  const descriptor = docs.find(([n]) => n === 'descriptor')?.[1] as { data_keys: Record<string, { external?: string, shape: number[] }> }
  t.ok(Object.values(descriptor.data_keys).every((k) => k.external === 'STREAM:'), 'every data key is external')
  t.same(descriptor.data_keys.manta1?.shape, [544, 728])
  const resources = docs.filter(([n]) => n === 'stream_resource').map(([, d]) => d as { uid: string, data_key: string })
  t.same(resources.map((d) => d.data_key).sort(), [...Object.keys(descriptor.data_keys)].sort(), 'one stream_resource per data key')
  for (const res of resources) {
    const stops = docs.filter(([n, d]) => n === 'stream_datum' && (d as { stream_resource: string }).stream_resource === res.uid)
      .map(([, d]) => (d as { indices: { stop: number } }).indices.stop)
    t.equal(Math.max(0, ...stops), 21, `${res.data_key}: stream_datum covers all 21 events`)
  }
  const stop = docs.at(-1)?.[1] as unknown as { exit_status: string, timing: { verdict: string } }
  t.equal(stop.exit_status, 'success')
  t.equal(stop.timing.verdict, 'ok', 'the timing report is in run_stop')
})

t.test('tst-fly demo (npm start): an XAS fly scan with a progress bar, the timing report and where the files went', async t => {
  const r = await runCli(['demo', '--config', config], 120_000)
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`)
  t.match(r.stdout, /simulated beamline .*IOC at 127\.0\.0\.1:\d+, PandA at 127\.0\.0\.1/)
  t.match(r.stdout, /\[#{26}\]\s+100%\s+frames 400\/400\s+rows 200\/200\s+[\d.]+ MB\/s/, 'the progress bar ends full')
  t.match(r.stdout, /^timing\s+ok in [\d.]+ s, 0 problems$/m)
  t.match(r.stdout, /^manta1\s+frames 200 of 200 received, 200 written, 0 dropped, 0 UniqueId gaps/m)
  t.match(r.stdout, /^panda1\s+rows 200 of 200/m)
  t.match(r.stdout, /^TS_TRIG\s+199 deltas/m)
  const files = [...r.stdout.matchAll(/^data: (.+\.h5)$/gm)].map((m) => m[1])
  t.equal(files.length, 3, 'three HDF5 files listed')
  t.match(r.stdout, /New stream: 'manta1_roi'/, 'the live table shows the camera\'s ROI stream')
  t.match(r.stdout, /documents \(\d+ events\) written to .+\.jsonl/)
})

t.test('dark_flat with manta1 in IOC-writer mode: two scans in one run, streams dark and flat, a file per camera per scan', async t => {
  // manta1 without its ROIs (they need tst-fly's frame writer) and with the IOC's HDF1 plugin writing its files (after
  // its HDF5 warm-up, whose frame must not count against the scan); manta2 keeps tst-fly's frame writer.
  const iocConfig = join(dir, 'sim-ioc-writer.yaml')
  writeFileSync(iocConfig, readFileSync(config, 'utf8')
    .replace(/ {6}# Live ROI statistics.*\n {6}rois: .*\n/, '')
    .replace(/(- name: manta1\n(?: {6}.*\n)*? {6}hdf: "HDF1:"\n)/, '$1      writer: ioc\n'))
  t.match(readFileSync(iocConfig, 'utf8'), /hdf: "HDF1:"\n {6}writer: ioc\n {4}- name: manta2/, 'the option is on manta1 only')
  const r = await runCli(['run', 'dark_flat', '--num-dark', '3', '--num-flat', '4', '--config', iocConfig, '--json'], 120_000)
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`)
  const summary = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as Summary
  t.equal(summary.timing.verdict, 'ok')
  t.equal(summary.files.length, 4, 'dark and flat files of both cameras')
  for (const camera of ['manta1', 'manta2']) {
    const files = summary.files.filter((f) => f.includes(`/${camera}/`))
    const read = files.map((f) => JSON.parse(runPython(CAMERA_SCRIPT, [f])) as { shape: number[], uid: number[] })
    t.same(read.map((c) => c.shape[0]).sort(), [3, 4], `${camera}: a dark file of 3 frames and a flat file of 4`)
    for (const c of read) {
      const first = c.uid[0] as number
      t.same(c.uid, Array.from({ length: c.uid.length }, (_, k) => first + k), `${camera}: UniqueIds consecutive`)
    }
  }
  const docs = parseJsonl(readFileSync(summary.docs, 'utf8'), summary.docs)
  for (const [name, doc] of docs) validateDocument(name, doc)
  t.same(docs.filter(([n]) => n === 'descriptor').map(([, d]) => (d as { name: string }).name), ['dark', 'flat'])
  const stop = docs.at(-1)?.[1] as unknown as { timing: { verdict: string }, timing_scans: Array<{ cameras: Array<{ received: number }> }> }
  t.same(stop.timing_scans.map((s) => s.cameras.map((c) => c.received)), [[3, 3], [4, 4]], 'run_stop has both scans\' reports')
})
