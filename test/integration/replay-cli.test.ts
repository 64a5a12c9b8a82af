import t, { type Test } from 'tap'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { h5dump, pandaFixturesDir, readWithH5py, requireHdf5Tools } from '../support/h5py.js'
import { runCli } from '../support/cli.js'

// `tst-fly replay` end to end: a loopback data-port server, the panda-capture and hdf5-writer workers, the ring,
// the files. The files are checked with two independent readers (h5py and h5dump) against the reference client's.
requireHdf5Tools()
const dir = mkdtempSync(join(tmpdir(), 'tst-fly-replay-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

interface ReplayJson {
  files: string[]
  acquisitions: Array<{ file: string, rows: number, endReason: string, fields: string[], error?: string }>
  latency: Record<string, { count: number, min: number, p50: number, p90: number, p99: number, p999: number, max: number }>
  errors: Array<{ code: string, message: string }>
}

function assertSameAsReference (t: Test, file: string, reference: string): void {
  const ours = readWithH5py(file)
  const ref = readWithH5py(reference)
  t.same(Object.keys(ours.datasets).sort(), Object.keys(ref.datasets).sort(), 'dataset names')
  for (const [name, r] of Object.entries(ref.datasets)) {
    const o = ours.datasets[name]
    if (o === undefined) { t.fail(`${name} missing`); continue }
    t.equal(o.dtype, r.dtype, `${name} dtype`)
    t.same(o.shape, r.shape, `${name} shape`)
    t.same(o.values, r.values, `${name} values`)
  }
  t.equal(h5dump(file).status, 0, 'h5dump reads the file')
}

for (const name of ['slow_dump', 'fast_dump']) {
  t.test(`replay ${name}.bin writes datasets equal to ${name}.reference.h5`, async t => {
    const out = join(dir, name)
    const r = await runCli(['replay', join(pandaFixturesDir(), `${name}.bin`), '--out', out, '--json'])
    t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`)
    const json = JSON.parse(r.stdout) as ReplayJson
    t.equal(json.files.length, 1)
    const acq = json.acquisitions[0]
    if (acq === undefined) throw new Error('no acquisition')
    t.equal(acq.endReason, 'Disarmed')
    const expected = JSON.parse(readFileSync(join(pandaFixturesDir(), `${name}.expected.json`), 'utf8')) as { acquisitions: Array<{ rows: unknown[] }> }
    t.equal(acq.rows, expected.acquisitions[0]?.rows.length, 'row count')
    t.same(json.errors, [])
    for (const stage of ['panda.socket_to_ring_us', 'ring.handoff_us', 'hdf5.ring_to_disk_us', 'e2e.arrival_to_disk_us']) {
      const s = json.latency[stage]
      t.ok(s !== undefined, `latency has ${stage}`)
      if (s === undefined) continue
      t.equal(s.count, acq.rows, `${stage} counts every row`)
      t.ok(s.min <= s.p50 && s.p50 <= s.p90 && s.p90 <= s.p99 && s.p99 <= s.p999 && s.p999 <= s.max, `${stage} percentiles ordered`)
    }
    assertSameAsReference(t, acq.file, join(pandaFixturesDir(), `${name}.reference.h5`))
  })
}

t.test('two acquisitions on one connection give two files, each equal to its reference', async t => {
  const fast = readFileSync(join(pandaFixturesDir(), 'fast_dump.bin'))
  const slow = readFileSync(join(pandaFixturesDir(), 'slow_dump.bin'))
  // The second acquisition on a connection has no OK line: the header follows the first END directly.
  const both = Buffer.concat([fast, slow.subarray(slow.indexOf('\n') + 1)])
  const rec = join(dir, 'two.bin')
  writeFileSync(rec, both)
  const r = await runCli(['replay', rec, '--out', join(dir, 'two'), '--json'])
  t.equal(r.code, 0, r.stderr)
  const json = JSON.parse(r.stdout) as ReplayJson
  t.equal(json.acquisitions.length, 2)
  t.match(json.files[0], /two-1\.h5$/)
  t.match(json.files[1], /two-2\.h5$/)
  assertSameAsReference(t, json.files[0] as string, join(pandaFixturesDir(), 'fast_dump.reference.h5'))
  assertSameAsReference(t, json.files[1] as string, join(pandaFixturesDir(), 'slow_dump.reference.h5'))
})

t.test('a stream cut mid-frame ends as Early disconnect, exits 1, and keeps every whole row received', async t => {
  const fast = readFileSync(join(pandaFixturesDir(), 'fast_dump.bin'))
  const cut = fast.subarray(0, Math.floor(fast.length * 0.6))
  const rec = join(dir, 'cut.bin')
  writeFileSync(rec, cut)
  const r = await runCli(['replay', rec, '--out', join(dir, 'cut'), '--json'])
  t.equal(r.code, 1, 'a failed acquisition exits 1')
  const json = JSON.parse(r.stdout) as ReplayJson
  const acq = json.acquisitions[0]
  if (acq === undefined) throw new Error('no acquisition')
  t.equal(acq.endReason, 'Early disconnect')
  t.ok(acq.rows > 0 && acq.rows < 58, `some rows kept (${acq.rows})`)
  const ours = readWithH5py(acq.file)
  const ref = readWithH5py(join(pandaFixturesDir(), 'fast_dump.reference.h5'))
  for (const [name, d] of Object.entries(ours.datasets)) {
    t.same(d.values, ref.datasets[name]?.values.slice(0, acq.rows), `${name}: the first ${acq.rows} rows equal the reference`)
  }
  t.equal(ours.attrs.end_reason, 'Early disconnect', 'the file records how it ended')
  t.equal(h5dump(acq.file).status, 0)
})

t.test('END Data overrun: the file is written and listed, the exit status is 1', async t => {
  const fast = readFileSync(join(pandaFixturesDir(), 'fast_dump.bin'), 'latin1')
  const rec = join(dir, 'overrun.bin')
  writeFileSync(rec, Buffer.from(fast.replace('END 58 Disarmed', 'END 58 Data overrun'), 'latin1'))
  const r = await runCli(['replay', rec, '--out', join(dir, 'overrun'), '--json'])
  t.equal(r.code, 1)
  const json = JSON.parse(r.stdout) as ReplayJson
  t.equal(json.acquisitions[0]?.endReason, 'Data overrun')
  t.equal(json.files.length, 1)
  const ours = readWithH5py(json.files[0] as string)
  t.equal(ours.attrs.end_reason, 'Data overrun')
})

t.test('a missing recording exits 2 naming the file', async t => {
  const r = await runCli(['replay', join(dir, 'nope.bin'), '--out', join(dir, 'nope')])
  t.equal(r.code, 2)
  t.match(r.stderr, /cannot read recording .*nope\.bin: no such file/)
})

t.test('an empty recording exits 2', async t => {
  const rec = join(dir, 'empty.bin')
  writeFileSync(rec, '')
  const r = await runCli(['replay', rec, '--out', join(dir, 'empty')])
  t.equal(r.code, 2)
  t.match(r.stderr, /empty/)
})

t.test('a malformed recording exits 1 with the coded error and offset; rows before the damage are kept', async t => {
  const fast = readFileSync(join(pandaFixturesDir(), 'fast_dump.bin'))
  const bad = Buffer.from(fast)
  // Damage the marker of the third BIN frame.
  let at = -1
  for (let k = 0; k < 3; k++) at = bad.indexOf('BIN ', at + 1)
  bad.write('BAD ', at)
  const rec = join(dir, 'bad.bin')
  writeFileSync(rec, bad)
  const r = await runCli(['replay', rec, '--out', join(dir, 'bad'), '--json'])
  t.equal(r.code, 1)
  const json = JSON.parse(r.stdout) as ReplayJson
  t.ok(json.errors.some((e) => e.code === 'FLY_ERR_PANDA_PROTOCOL' && e.message.includes(`offset ${at}`)),
    `a PANDA_PROTOCOL error names offset ${at}: ${JSON.stringify(json.errors)}`)
  const acq = json.acquisitions[0]
  if (acq === undefined) throw new Error('no acquisition')
  t.ok(acq.rows >= 1, `rows before the damage are kept (${acq.rows})`)
  t.match(readWithH5py(acq.file).attrs.error, /FLY_ERR_PANDA_PROTOCOL/)
})

t.test('bad arguments exit 2 with usage', async t => {
  const r1 = await runCli(['replay'])
  t.equal(r1.code, 2)
  t.match(r1.stderr, /exactly one recording/)
  const r2 = await runCli(['replay', 'x.bin', '--out', dir, '--rate', 'fast'])
  t.equal(r2.code, 2)
  t.match(r2.stderr, /--rate must be a positive number/)
  const r3 = await runCli(['frobnicate'])
  t.equal(r3.code, 2)
  t.match(r3.stderr, /unknown command 'frobnicate'/)
})

t.test('--rate paces the replay', async t => {
  const started = Date.now()
  // 3791 bytes at 0.02 MB/s cannot take less than 0.19 s.
  const r = await runCli(['replay', join(pandaFixturesDir(), 'fast_dump.bin'), '--out', join(dir, 'rate'), '--rate', '0.02', '--json'])
  t.equal(r.code, 0, r.stderr)
  t.ok(Date.now() - started >= 180, 'took at least the paced time')
  t.equal((JSON.parse(r.stdout) as ReplayJson).acquisitions[0]?.rows, 58)
})

t.test('an output directory that cannot be made exits 2 naming it', async t => {
  const file = join(dir, 'a-file')
  writeFileSync(file, '')
  const r = await runCli(['replay', join(pandaFixturesDir(), 'slow_dump.bin'), '--out', join(file, 'sub')])
  t.equal(r.code, 2)
  t.match(r.stderr, /output directory .*a-file\/sub: .*not a directory/)
})
