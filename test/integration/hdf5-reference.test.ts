import t from 'tap'
import type { Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import { PandaHdfWriter } from '../../src/hdf5/index.js'
import { PandaDataParser } from '../../src/parsers/index.js'
import type { H5FileInfo } from '../support/h5py.js'
import { packRows, pandaFixturesDir, readExpected, readWithH5py, requireHdf5Tools, startFromExpected } from '../support/h5py.js'

// The recorded acquisitions (as the reference client parsed them) written by PandaHdfWriter must give the same
// datasets as the reference client's HDFWriter wrote: names, dtypes, shapes, values.
requireHdf5Tools()
const dir = mkdtempSync(join(tmpdir(), 'tst-fly-hdf5-ref-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

for (const name of ['slow_dump', 'fast_dump']) {
  t.test(`${name}: same datasets, dtypes, shapes and values as ${name}.reference.h5`, async t => {
    const [acq] = readExpected(name)
    if (acq === undefined) throw new Error(`${name}.expected.json has no acquisition`)
    const start = startFromExpected(acq)
    const path = join(dir, `${name}.h5`)
    // Small blocks and frames of 3 rows so that blocks, partial blocks and flushes all happen.
    const w = await PandaHdfWriter.create(path, start, { blockRows: 4 })
    for (let i = 0; i < acq.rows.length; i += 3) {
      w.append(packRows(start, acq.rows.slice(i, i + 3)))
      if (i % 9 === 0) w.flush()
    }
    w.close({ end: { samples: acq.end.samples, reason: 'Disarmed' } })
    t.equal(w.rowsWritten, acq.rows.length)

    compare(t, readWithH5py(path), readWithH5py(join(pandaFixturesDir(), `${name}.reference.h5`)))
    t.equal(readWithH5py(path).attrs.end_reason, 'Disarmed')
  })

  t.test(`${name}: the recorded bytes, through the parser and the writer, give ${name}.reference.h5`, async t => {
    const bytes = readFileSync(join(pandaFixturesDir(), `${name}.bin`))
    const parser = new PandaDataParser({ format: 'FRAMED', process: 'SCALED', xml: true })
    const path = join(dir, `${name}-parsed.h5`)
    let writer: PandaHdfWriter | undefined
    let ended = false
    // 44-byte chunks, as the reference client's tests read these dumps (splits a BIN marker).
    for (let at = 0; at < bytes.length; at += 44) {
      for (const rec of parser.push(bytes.subarray(at, at + 44))) {
        if (rec.kind === 'start') writer = await PandaHdfWriter.create(path, rec.start, { blockRows: 5 })
        else if (rec.kind === 'frame') writer?.append(rec.frame)
        else if (rec.kind === 'end') { writer?.close({ end: rec.end }); ended = true }
      }
    }
    t.ok(writer !== undefined && ended, 'one whole acquisition')
    const ours = readWithH5py(path)
    compare(t, ours, readWithH5py(join(pandaFixturesDir(), `${name}.reference.h5`)))
    t.equal(ours.attrs.end_reason, 'Disarmed')
    t.equal(ours.attrs.rows_written, ours.attrs.samples, 'rows written = END samples')
  })
}

function compare (t: Test, ours: H5FileInfo, ref: H5FileInfo): void {
  t.same(Object.keys(ours.datasets).sort(), Object.keys(ref.datasets).sort(), 'dataset names')
  for (const [ds, r] of Object.entries(ref.datasets)) {
    const o = ours.datasets[ds]
    t.ok(o !== undefined, `${ds} exists`)
    if (o === undefined) continue
    t.equal(o.dtype, r.dtype, `${ds} dtype`)
    t.same(o.shape, r.shape, `${ds} shape`)
    t.same(o.maxshape, r.maxshape, `${ds} maxshape`)
    t.same(o.values, r.values, `${ds} values`)
  }
}
