import t from 'tap'
import { join } from 'node:path'
import { ColumnDecoder, columnsFor } from '../../src/parsers/index.js'
import type { FieldInfo, StartData } from '../../src/parsers/index.js'
import { ErrorCode, isFlyScanError } from '../../src/errors.js'
import { packRows, pandaFixturesDir, readExpected, readWithH5py, requireHdf5Tools, startFromExpected } from '../support/h5py.js'

function field (name: string, type: FieldInfo['type'], capture: string, byteOffset: number,
  scale?: number, offset?: number): FieldInfo {
  const byteLength = type === 'int96' ? 12 : type === 'uint32' || type === 'int32' ? 4 : 8
  return { name, type, capture, scale, offset, units: scale === undefined ? undefined : '', byteOffset, byteLength }
}

function startOf (process: 'Raw' | 'Scaled', specs: Array<[string, FieldInfo['type'], string, number?, number?]>): StartData {
  let at = 0
  const fields = specs.map(([name, type, capture, scale, offset]) => {
    const f = field(name, type, capture, at, scale, offset)
    at += f.byteLength
    return f
  })
  return {
    fields,
    missed: 0,
    process,
    format: 'Framed',
    sampleBytes: at,
    armTime: undefined,
    startTime: undefined,
    hwTimeOffsetNs: undefined,
    attributes: {}
  }
}

t.test('SCALED: columns equal the reference client\'s HDF5 file, names, dtypes and values', async t => {
  requireHdf5Tools()
  for (const name of ['slow_dump', 'fast_dump']) {
    const [acq] = readExpected(name)
    if (acq === undefined) throw new Error(`${name}.expected.json has no acquisition`)
    const start = startFromExpected(acq)
    const decoder = new ColumnDecoder(start)
    const frame = packRows(start, acq.rows)
    const out = decoder.allocate(frame.rows)
    decoder.decode(frame, out)
    const ref = readWithH5py(join(pandaFixturesDir(), `${name}.reference.h5`))
    t.same(decoder.columns.map(c => c.name).sort(), Object.keys(ref.datasets).sort(), `${name}: dataset names`)
    decoder.columns.forEach((c, i) => {
      const r = ref.datasets[c.name]
      if (r === undefined) return
      t.equal(c.dtype, r.dtype, `${name} ${c.name}: dtype`)
      t.same(Array.from(out[i] ?? []), r.values, `${name} ${c.name}: values`)
    })
    t.ok(frame.rows > 1, `${name}: has rows`)

    // Decoding in two pieces into one buffer gives the same columns.
    const split = Math.floor(frame.rows / 2)
    const pieces = decoder.allocate(frame.rows)
    decoder.decode(frame, pieces, 0, 0, split)
    decoder.decode(frame, pieces, split, split)
    t.same(pieces.map(a => Array.from(a)), out.map(a => Array.from(a)), `${name}: split decode equals whole`)

    // An unaligned view (odd byteOffset) decodes the same.
    const shifted = new Uint8Array(frame.bytes.byteLength + 1)
    shifted.set(frame.bytes, 1)
    const viaView = decoder.allocate(frame.rows)
    decoder.decode({ rows: frame.rows, bytes: shifted.subarray(1) }, viaView)
    t.same(viaView.map(a => Array.from(a)), out.map(a => Array.from(a)), `${name}: unaligned view`)
  }
})

t.test('RAW: scale and offset, Mean divided by PCAP.SAMPLES, int64 beyond 2^32, negative values', async t => {
  const start = startOf('Raw', [
    ['PCAP.SAMPLES', 'uint32', 'Value'],
    ['PCAP.BITS0', 'uint32', 'Value'],
    ['INENC1.VAL', 'int32', 'Value', 0.5, 10],
    ['COUNTER1.OUT', 'int64', 'Sum', 2, 1],
    ['PCAP.TS_TRIG', 'int64', 'Value', 8e-9, 0],
    ['COUNTER2.OUT', 'int64', 'Mean', 0.25, 3]
  ])
  const cols = columnsFor(start)
  t.same(cols.map(c => [c.name, c.dtype]), [
    ['PCAP.SAMPLES.Value', 'uint32'],
    ['PCAP.BITS0.Value', 'uint32'],
    ['INENC1.VAL.Value', 'float64'],
    ['COUNTER1.OUT.Sum', 'float64'],
    ['PCAP.TS_TRIG.Value', 'float64'],
    ['COUNTER2.OUT.Mean', 'float64']
  ])
  const frame = packRows(start, [
    [4, 0xffffffff, -7, 1099511627777n, 125_000_000n, 1000n],
    [8, 5, 3, -5_000_000_000n, 0n, -40n]
  ])
  const decoder = new ColumnDecoder(start)
  const out = decoder.allocate(2)
  decoder.decode(frame, out)
  t.same(Array.from(out[0] ?? []), [4, 8], 'PCAP.SAMPLES stays uint32, unscaled')
  t.same(Array.from(out[1] ?? []), [4294967295, 5], 'bits stay uint32')
  t.same(Array.from(out[2] ?? []), [6.5, 11.5], 'int32: -7 * 0.5 + 10, 3 * 0.5 + 10')
  t.same(Array.from(out[3] ?? []), [2199023255555, -9999999999], 'int64: (2^40 + 1) * 2 + 1, -5e9 * 2 + 1')
  const ts = out[4] ?? new Float64Array(0)
  t.ok(Math.abs((ts[0] ?? NaN) - 1) < 1e-15, `timestamp 125e6 ticks * 8 ns = 1 s, got ${ts[0]}`)
  t.equal(ts[1], 0)
  t.same(Array.from(out[5] ?? []), [65.5, 1.75], 'Mean: 1000 * 0.25 / 4 + 3, -40 * 0.25 / 8 + 3')
  t.equal(decoder.rowBytes, 4 + 4 + 8 * 4)
})

t.test('RAW: Mean divided by PCAP.GATE_DURATION when captured; gate duration itself is scaled', async t => {
  const start = startOf('Raw', [
    ['PCAP.SAMPLES', 'uint32', 'Value'],
    ['PCAP.GATE_DURATION', 'int64', 'Value', 0.5, 0],
    ['FMC_IN.VAL1', 'int64', 'Mean', 4, -1]
  ])
  const decoder = new ColumnDecoder(start)
  t.equal(decoder.columns[2]?.divisor?.name, 'PCAP.GATE_DURATION')
  const out = decoder.allocate(1)
  decoder.decode(packRows(start, [[3, 10n, 25n]]), out)
  t.same(Array.from(out[0] ?? []), [3])
  t.same(Array.from(out[1] ?? []), [5], 'gate duration 10 ticks * 0.5')
  t.same(Array.from(out[2] ?? []), [9], 'mean 25 * 4 / 10 (raw gate) - 1, not / 3 samples')
})

t.test('layouts it cannot decode fail with coded errors naming the field', async t => {
  const check = (fn: () => unknown, code: string, re: RegExp, what: string): void => {
    try {
      fn()
      t.fail(`${what}: did not throw`)
    } catch (err) {
      t.ok(isFlyScanError(err) && err.code === code, `${what}: code ${code}`)
      t.match((err as Error).message, re, `${what}: message`)
    }
  }
  check(() => columnsFor(startOf('Raw', [['PCAP.SAMPLES', 'uint32', 'Value'], ['INENC1.VAL', 'int96', 'StdDev', 1, 0]])),
    ErrorCode.PANDA_PROTOCOL, /INENC1\.VAL\.StdDev.*int96/, 'RAW StdDev')
  check(() => columnsFor(startOf('Raw', [['INENC1.VAL', 'int64', 'Mean', 1, 0]])),
    ErrorCode.PANDA_PROTOCOL, /INENC1\.VAL\.Mean.*PCAP\.GATE_DURATION.*PCAP\.SAMPLES/, 'RAW Mean without divisor')
  check(() => columnsFor(startOf('Scaled', [['A', 'double', 'Value', 1, 0], ['A', 'double', 'Value', 1, 0]])),
    ErrorCode.PANDA_PROTOCOL, /A\.Value twice/, 'duplicate')
  const start = startOf('Scaled', [['PCAP.BITS0', 'uint32', 'Value'], ['A', 'double', 'Max', 1, 0]])
  check(() => columnsFor({ ...start, sampleBytes: 8 }), ErrorCode.PANDA_PROTOCOL, /A\.Max.*sample_bytes=8/, 'field past row end')
  const decoder = new ColumnDecoder(start)
  check(() => { decoder.decode({ rows: 2, bytes: new Uint8Array(23) }, decoder.allocate(2)) },
    ErrorCode.PANDA_PROTOCOL, /23 bytes for 2 rows of 12 bytes/, 'short frame')
  check(() => { decoder.decode({ rows: 2, bytes: new Uint8Array(24) }, decoder.allocate(1)) },
    ErrorCode.PANDA_PROTOCOL, /PCAP\.BITS0\.Value holds 1 values, needs 2/, 'small buffer')
})
