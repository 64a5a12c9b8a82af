import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PandaHdfWriter, clearWriterFlags, lookup3 } from '../../src/hdf5/index.js'
import { ErrorCode } from '../../src/errors.js'
import { start } from '../fixtures/hdf5/rows.js'

const dir = mkdtempSync(join(tmpdir(), 'tst-fly-hdf5-recover-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test('lookup3 matches Bob Jenkins\' published test values', async t => {
  const enc = new TextEncoder()
  t.equal(lookup3(new Uint8Array(0)), 0xdeadbeef)
  t.equal(lookup3(enc.encode('Four score and seven years ago')), 0x17770551)
  t.equal(lookup3(enc.encode('Four score and seven years ago'), 1), 0xcd628161)
})

t.test('clearWriterFlags: clean files are left alone, others are refused with BAD_FILE', async t => {
  const path = join(dir, 'clean.h5')
  const w = await PandaHdfWriter.create(path, start)
  w.close()
  const before = readFileSync(path)
  t.equal(clearWriterFlags(path), false, 'a closed file has no flags set')
  t.same(readFileSync(path), before, 'and is not modified')

  // An open SWMR file has them set (cleared here only to test the mechanism; never do this to a live file).
  const live = join(dir, 'live.h5')
  const open = await PandaHdfWriter.create(live, start)
  const copy = join(dir, 'copy.h5')
  writeFileSync(copy, readFileSync(live))
  open.close()
  t.equal(clearWriterFlags(copy), true, 'a copy of an open file has flags set')
  t.equal(readFileSync(copy)[11], 0, 'flags byte cleared')

  const notH5 = join(dir, 'not.h5')
  writeFileSync(notH5, 'hello, this is not HDF5 at all')
  t.throws(() => clearWriterFlags(notH5), { code: ErrorCode.BAD_FILE, message: /not\.h5: no HDF5 signature/ })
  const corrupt = join(dir, 'corrupt.h5')
  const bytes = readFileSync(path)
  bytes[20] = (bytes[20] ?? 0) ^ 0xff
  writeFileSync(corrupt, bytes)
  t.throws(() => clearWriterFlags(corrupt), { code: ErrorCode.BAD_FILE, message: /checksum/ })
  t.throws(() => clearWriterFlags(join(dir, 'missing.h5')), { code: ErrorCode.BAD_FILE, message: /cannot open/ })
})
