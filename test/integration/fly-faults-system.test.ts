// Faults of the machine during a tomography fly scan: the data disk fills (in-process on the simulated beamline, the
// data root on a 16 MiB tmpfs), and SIGINT twice to `tst-fly run` in a child process. The run ends, failing (or
// aborted) with a reason naming the fault, and every file is readable up to what the run says was written
// (docs/faults.md).
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseJsonl } from '../../src/documents/index.js'
import { tomoFly } from '../../src/plans/index.js'
import { privateCaRepeater } from '../support/ca-repeater.js'
import { CLI } from '../support/cli.js'
import { FlyRig, h5Shapes, simConfigCopy } from '../support/fly-rig.js'
import { requireHdf5Tools } from '../support/h5py.js'
import { validateDocument } from '../support/schemas.js'

requireHdf5Tools()
await privateCaRepeater(t)

t.test('disk full: the frame writer stops with FLY_ERR_DISK_FULL naming the file, the run fails naming it', async t => {
  const mount = mkdtempSync(join(tmpdir(), 'tst-fly-diskfull-'))
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mount], { encoding: 'utf8' })
  if (mounted.status !== 0) {
    rmSync(mount, { recursive: true, force: true })
    throw new Error(`this test needs to mount a 16 MiB tmpfs (run it as root, or with CAP_SYS_ADMIN): mount -t tmpfs -o size=16m tmpfs ${mount}: ` +
      `${mounted.error?.message ?? mounted.stderr.trim()}`)
  }
  t.teardown(() => {
    spawnSync('umount', ['-l', mount])
    rmSync(mount, { recursive: true, force: true })
  })
  // 81 frames of 728 x 544 bytes per camera are 64 MB: the disk fills after some 20 frames per camera.
  const rig = await FlyRig.start(t, { dataRoot: mount })
  const outcome = await rig.run(tomoFly(rig.flyscan, { numImages: 81, scanTime: 4 }))
  const reason = rig.stopDoc?.reason ?? ''
  t.comment(`reason: ${reason} (${outcome.ms} ms)`)
  t.match(reason, /FLY_ERR_DISK_FULL|disk full/, 'the reason says the disk is full')
  t.match(reason, new RegExp(`${mount}/manta[12]/\\S+\\.h5`), 'the reason names the camera file')
  const written = rig.stopDoc?.timing?.cameras.map((c) => c.written) ?? []
  t.ok(written.some((n) => n > 0 && n < 81), `frames written before the disk filled: ${written.join(', ')}`)
  await rig.checkEnded(t, outcome, { exitStatus: 'fail', reason: /manta[12].*disk full/ })
})

t.test('SIGINT twice to tst-fly run tomo_fly: exit 1, the run aborted, the files readable', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'tst-fly-sigint-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'data'))
  const config = simConfigCopy(dir, join(dir, 'data'))
  const docsFile = join(dir, 'docs.jsonl')
  // 161 images over 8 s (4000 counts / 160 = 25 per pulse): time to interrupt it in the middle.
  const child = spawn(process.execPath, [CLI, 'run', 'tomo_fly', '--num-images', '161', '--scan-time', '8', '--config', config, '--docs', docsFile],
    { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => { resolve(code) }))
  const killer = setTimeout(() => child.kill('SIGKILL'), 120_000)
  t.teardown(() => { clearTimeout(killer); child.kill('SIGKILL') })
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
      if (/frames [1-9]\d*\//.test(stdout)) resolve()
    })
    exited.then((code) => { reject(new Error(`tst-fly exited (${String(code)}) before frames arrived\nstdout: ${stdout}\nstderr: ${stderr}`)) }, reject)
  })
  child.kill('SIGINT')
  await new Promise((resolve) => setTimeout(resolve, 300))
  child.kill('SIGINT')
  const code = await exited
  t.comment(stderr.trim().split('\n').slice(-3).join(' | '))
  t.equal(code, 1, 'exit code 1')
  t.match(stderr, /run tomo_fly failed: .*SIGINT/, 'stderr says the run ended on SIGINT')

  const docs = parseJsonl(readFileSync(docsFile, 'utf8'), docsFile)
  for (const [name, doc] of docs) validateDocument(name, doc)
  t.equal(docs.at(-1)?.[0], 'stop', 'the run was closed; every document is schema-valid')
  const stop = docs.at(-1)?.[1] as unknown as { exit_status: string, reason: string, timing?: { cameras: Array<{ name: string, written: number }>, panda: { rows: number } | null } }
  t.equal(stop.exit_status, 'abort')
  t.match(stop.reason, /SIGINT/)
  t.ok(stop.timing !== undefined, 'run_stop has the timing report')
  const files = [...new Set(docs.filter(([n]) => n === 'stream_resource')
    .map(([, d]) => fileURLToPath((d as { uri: string }).uri.replace(/^file:\/\/localhost\//, 'file:///'))))]
  t.equal(files.length, 3, 'two camera files and the PandA file')
  for (const file of files) {
    const shapes = h5Shapes(file)
    const camera = stop.timing?.cameras.find((c) => file.includes(`/${c.name}/`))
    if (camera !== undefined) {
      t.equal(shapes['/entry/data/data']?.[0], camera.written, `${file}: h5py reads the ${camera.written} frames written`)
      t.ok(camera.written > 0 && camera.written < 161, 'the scan was interrupted in the middle')
    } else {
      const rows = Object.values(shapes).map((s) => s[0])
      t.ok(rows.length > 0 && rows.every((r) => r === stop.timing?.panda?.rows), `${file}: h5py reads the ${stop.timing?.panda?.rows ?? '?'} rows written`)
    }
  }
})
