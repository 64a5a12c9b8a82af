import t from 'tap'
import { spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { PandaHdfWriter, clearWriterFlags } from '../../src/hdf5/index.js'
import { expectedValue, rows, start } from '../fixtures/hdf5/rows.js'
import { PYTHON, REPO_ROOT, h5dump, readWithH5py, requireHdf5Tools } from '../support/h5py.js'

// DESIGN §8: files are readable by h5py and h5dump at every flush and after any failure.
requireHdf5Tools()
const dir = mkdtempSync(join(tmpdir(), 'tst-fly-hdf5-fail-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

/** Lines of a child's stdout, one at a time, with a bounded wait. */
function lineReader (child: ChildProcessWithoutNullStreams, what: string): (timeoutMs?: number) => Promise<string> {
  const lines: string[] = []
  const waiters: Array<(line: string) => void> = []
  let stderr = ''
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
  createInterface({ input: child.stdout }).on('line', line => {
    const w = waiters.shift()
    if (w !== undefined) w(line)
    else lines.push(line)
  })
  return async (timeoutMs = 20_000) => {
    const ready = lines.shift()
    if (ready !== undefined) return ready
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: no line within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs)
      const onExit = (code: number | null): void => {
        clearTimeout(timer)
        reject(new Error(`${what} exited (${String(code)}) before printing; stderr: ${stderr}`))
      }
      child.once('exit', onExit)
      waiters.push(line => { clearTimeout(timer); child.off('exit', onExit); resolve(line) })
    })
  }
}

const SWMR_READER = `
import json, sys, h5py
f = h5py.File(sys.argv[1], 'r', swmr=True)
names = sorted(f.keys())
for line in sys.stdin:
    out = {}
    for n in names:
        d = f[n]
        d.refresh()
        out[n] = {'len': d.shape[0], 'last': d[-1].item() if d.shape[0] else None}
    print(json.dumps(out), flush=True)
f.close()
`

t.test('an h5py SWMR reader follows the file live: each flush is visible after refresh', async t => {
  const path = join(dir, 'live.h5')
  const w = await PandaHdfWriter.create(path, start, { blockRows: 1000 })
  w.append(rows(0, 2500))
  w.flush()
  const reader = spawn(PYTHON, ['-c', SWMR_READER, path])
  const next = lineReader(reader, 'h5py SWMR reader')
  const read = async (): Promise<Record<string, { len: number, last: number | null }>> => {
    reader.stdin.write('\n')
    return JSON.parse(await next()) as Record<string, { len: number, last: number | null }>
  }
  try {
    const first = await read()
    t.same(first['PCAP.BITS0.Value'], { len: 2500, last: 2499 }, 'after the first flush')
    t.same(first['COUNTER1.OUT.Mean'], { len: 2500, last: 2499 / 4 })

    w.append(rows(2500, 4100)) // 4 blocks reach the datasets, 600 rows stay buffered
    w.flush()
    const second = await read()
    t.same(second['PCAP.BITS0.Value'], { len: 6600, last: 6599 }, 'after the second flush, same reader')
    t.same(second['PCAP.TS_TRIG.Value'], { len: 6600, last: 6599 * 1e-6 })

    w.append(rows(6600, 10))
    w.close({ end: { samples: 6610, reason: 'Ok' } })
    const third = await read()
    t.same(third['PCAP.BITS0.Value'], { len: 6610, last: 6609 }, 'after close')
  } finally {
    reader.stdin.end()
    await new Promise(resolve => reader.once('exit', resolve))
  }
  t.equal(reader.exitCode, 0, 'the reader closed the file cleanly')
})

t.test('SIGKILL right after a flush: h5py (SWMR) reads every flushed row; after clearWriterFlags h5py and h5dump do', async t => {
  const path = join(dir, 'killed.h5')
  const fixture = join(REPO_ROOT, 'build', 'test', 'fixtures', 'hdf5', 'write-then-wait.js')
  // 25,000 rows flushed, then 23,456 more appended: 2 more blocks reach the datasets unflushed, 3,456 stay buffered.
  const child = spawn(process.execPath, [fixture, path, '25000', '23456', '10000'])
  const next = lineReader(child, 'writer child')
  t.equal(await next(), 'flushed 25000')
  t.equal(await next(), 'appended 45000 buffered 3456')
  child.kill('SIGKILL')
  await new Promise(resolve => child.once('exit', resolve))
  t.equal(child.signalCode, 'SIGKILL')

  const check = (how: string, swmr: boolean): void => {
    const f = readWithH5py(path, { swmr })
    t.same(Object.keys(f.datasets).sort(), ['COUNTER1.OUT.Mean', 'PCAP.BITS0.Value', 'PCAP.TS_TRIG.Value'], `${how}: datasets`)
    for (const [name, ds] of Object.entries(f.datasets)) {
      const n = ds.shape[0] ?? 0
      t.ok(n >= 25000 && n <= 45000, `${how}: ${name} holds ${n} rows, at least the 25000 flushed`)
      t.same(ds.values, Array.from({ length: n }, (_, k) => expectedValue(name, k)), `${how}: ${name} values`)
    }
  }
  // A SWMR reader opens the file as the dead writer left it.
  check('h5py swmr=True, as left', true)
  // The dead writer left the superblock's writer flags set; recovery clears them (like h5clear -s).
  t.equal(clearWriterFlags(path), true, 'writer flags were set and are cleared')
  t.equal(clearWriterFlags(path), false, 'second call: already clean')
  check('h5py, after recovery', false)
  const dump = h5dump(path)
  t.equal(dump.status, 0, `h5dump reads the recovered file: ${dump.stderr.slice(0, 500)}`)
  t.match(dump.stdout, /DATASET "PCAP\.BITS0\.Value"/)
})
