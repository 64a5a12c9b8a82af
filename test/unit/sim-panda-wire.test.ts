/**
 * The simulated PandA's data-port encoding without sockets: C number formatting, the options line, the header
 * (checked byte for byte against a real box's recording), the server's field order and types, RAW/SCALED rows,
 * ASCII lines and BIN blocks.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  CaptureLayout, formatG, frames, headerText, isoNs, parseWireOptions, type CaptureField
} from '../../src/sim/panda/index.js'
import { pandaFixturesDir } from '../support/h5py.js'

t.test('formatG prints what C printf %.Ng prints', async t => {
  const cases: Array<[number, number, string]> = [
    [8e-9, 12, '8e-09'], [1 / 125e6, 12, '8e-09'], [4.65661287e-9, 12, '4.65661287e-09'], [1, 12, '1'], [0, 10, '0'],
    [0.005, 10, '0.005'], [0.015000000000000001, 10, '0.015'], [123456789012, 10, '1.23456789e+11'],
    [1234567890, 10, '1234567890'], [0.0001, 10, '0.0001'], [0.00001, 10, '1e-05'], [-2.5, 10, '-2.5'],
    [1e21, 10, '1e+21'], [100, 2, '1e+02'], [99.99999999999, 10, '100'], [531.2278544, 10, '531.2278544'],
    [NaN, 10, 'nan'], [Infinity, 10, 'inf'], [-Infinity, 10, '-inf']
  ]
  for (const [v, p, want] of cases) t.equal(formatG(v, p), want, `%.${p}g of ${v}`)
})

t.test('isoNs gives nanoseconds, as the header timestamps have them', async t => {
  // Milliseconds since 1970 in a double resolve about 0.25 µs: the nanoseconds are as exact as that.
  const text = isoNs(Date.UTC(2026, 0, 2, 3, 4, 5, 6) + 0.000789)
  t.match(text, /^2026-01-02T03:04:05\.\d{9}Z$/)
  t.ok(Math.abs(Number(text.slice(20, 29)) - 6000789) < 500, `nanoseconds of ${text}`)
  t.equal(isoNs(Date.UTC(2026, 0, 1)), '2026-01-01T00:00:00.000000000Z')
})

t.test('options lines are read as prepare.c parse_data_options reads them', async t => {
  const base = { format: 'ASCII', process: 'SCALED', xml: false, noHeader: false, noStatus: false, oneShot: false }
  t.same(parseWireOptions(''), base, 'empty line: the defaults')
  t.same(parseWireOptions('XML FRAMED RAW'), { ...base, xml: true, format: 'FRAMED', process: 'RAW' })
  t.same(parseWireOptions('  BASE64\tSCALED  '), { ...base, format: 'BASE64' }, 'spaces and tabs between words')
  t.same(parseWireOptions('XML BARE'), { format: 'UNFRAMED', process: 'RAW', xml: false, noHeader: true, noStatus: true, oneShot: true },
    'BARE replaces everything before it')
  t.same(parseWireOptions('BARE XML'), { format: 'UNFRAMED', process: 'RAW', xml: true, noHeader: true, noStatus: true, oneShot: true })
  t.same(parseWireOptions('XML RAW DEFAULT'), base, 'DEFAULT resets')
  t.same(parseWireOptions('NO_HEADER NO_STATUS ONE_SHOT'), { ...base, noHeader: true, noStatus: true, oneShot: true })
  t.same(parseWireOptions('XML FRAMED BOGUS'), { error: 'Invalid data capture option' })
  t.same(parseWireOptions('xml'), { error: 'Invalid data capture option' }, 'options are case sensitive')
  t.same(parseWireOptions('XML FRAMED\r'), { error: 'Cannot process CR character' })
  t.same(parseWireOptions('XML,FRAMED'), { error: 'No name found' })
})

/** The header part of a recording: from `<header>` to the empty line after `</header>`. */
function recordedHeader (file: string): string {
  const text = readFileSync(join(pandaFixturesDir(), file)).toString('latin1')
  const start = text.indexOf('<header>')
  return text.slice(start, text.indexOf('</header>\n\n') + '</header>\n\n'.length)
}

t.test('headerText writes the header a PandABox wrote, byte for byte', async t => {
  const fields = [
    { name: 'PCAP.BITS2', type: 'uint32', capture: 'Value' },
    { name: 'COUNTER1.OUT', type: 'double', capture: 'Min', scale: 1, offset: 0, units: '' },
    { name: 'COUNTER1.OUT', type: 'double', capture: 'Max', scale: 1, offset: 0, units: '' },
    { name: 'COUNTER3.OUT', type: 'double', capture: 'Value', scale: 1, offset: 0, units: '' },
    { name: 'PCAP.TS_START', type: 'double', capture: 'Value', scale: 1 / 125e6, offset: 0, units: 's' },
    { name: 'COUNTER1.OUT', type: 'double', capture: 'Mean', scale: 1, offset: 0, units: '' },
    { name: 'COUNTER2.OUT', type: 'double', capture: 'Mean', scale: 1, offset: 0, units: '' }
  ]
  const ours = headerText({ missed: 0, process: 'Scaled', format: 'Framed', sampleBytes: 52 }, fields, true)
  t.equal(ours, recordedHeader('fast_dump.bin'))
  t.equal(ours, recordedHeader('slow_dump.bin'), 'slow_dump has the same fields')
})

t.test('the text header has the key: value form of capture.rst', async t => {
  const text = headerText({ armTime: 'A', startTime: 'S', missed: 3, process: 'Raw', format: 'ASCII' }, [
    { name: 'PCAP.BITS0', type: 'uint32', capture: 'Value' },
    { name: 'INENC1.VAL', type: 'int32', capture: 'Min', scale: 0.5, offset: 1, units: 'deg' }
  ], false)
  t.equal(text, 'arm_time: A\nstart_time: S\nmissed: 3\nprocess: Raw\nformat: ASCII\nfields:\n PCAP.BITS0 uint32 Value\n' +
    ' INENC1.VAL int32 Min scale: 0.5 offset: 1 units: deg\n\n')
})

t.test('XML units are escaped', async t => {
  const text = headerText({ missed: 0, process: 'Scaled', format: 'Framed', sampleBytes: 8 },
    [{ name: 'X.Y', type: 'double', capture: 'Value', scale: 1, offset: 0, units: 'a<b&"c\'>' }], true)
  t.match(text, 'units="a&lt;b&amp;&quot;c&apos;&gt;"')
})

const f = (name: string, capture: string, group: CaptureField['group'], kind: CaptureField['kind'], source = 0, scale = 1, offset = 0, units = ''): CaptureField =>
  ({ name, capture, group, kind, source, scale, offset, units })
const gate = f('PCAP.GATE_DURATION', 'Value', 'scaled32', 'samples', 0, 8e-9, 0, 's')

t.test('CaptureLayout: the server\'s group order and an anonymous sample count for means', async t => {
  // Registration order: INENC1.VAL Value Mean, PCAP.TS_TRIG, PCAP.BITS0.
  const layout = new CaptureLayout([
    f('INENC1.VAL', 'Value', 'scaled32', 'value', 0, 0.5, 1, 'deg'),
    f('INENC1.VAL', 'Mean', 'averaged', 'mean', 0, 0.5, 1, 'deg'),
    f('PCAP.TS_TRIG', 'Value', 'scaled64', 'ts_trig', 0, 8e-9, 0, 's'),
    f('PCAP.BITS0', 'Value', 'unscaled', 'bits')
  ], gate)
  t.ok(layout.anonymousSamples)
  t.same(layout.outputFields('RAW').map((x) => `${x.name}.${x.capture}:${x.type}`),
    ['PCAP.GATE_DURATION.Value:int32', 'PCAP.BITS0.Value:uint32', 'INENC1.VAL.Value:int32', 'PCAP.TS_TRIG.Value:int64', 'INENC1.VAL.Mean:int64'])
  t.same(layout.outputFields('SCALED').map((x) => `${x.name}.${x.capture}:${x.type}`),
    ['PCAP.BITS0.Value:uint32', 'INENC1.VAL.Value:double', 'PCAP.TS_TRIG.Value:double', 'INENC1.VAL.Mean:double'])
  t.equal(layout.binaryRowBytes('RAW'), 4 + 4 + 4 + 8 + 8)
  t.equal(layout.binaryRowBytes('SCALED'), 4 + 3 * 8)
  t.equal(layout.sampleWord, 0)

  // One raw row: samples 4, bits 0x80000001, value -3, ts 2^33 + 5, sum 10.
  const raw = new Uint8Array(layout.rawBytes)
  const v = new DataView(raw.buffer)
  v.setUint32(0, 4, true)
  v.setUint32(4, 0x80000001, true)
  v.setInt32(8, -3, true)
  v.setBigInt64(12, 2n ** 33n + 5n, true)
  v.setBigInt64(20, 10n, true)
  const scaled = new DataView(layout.toScaled(raw, 1).buffer)
  t.equal(scaled.getUint32(0, true), 0x80000001)
  t.equal(scaled.getFloat64(4, true), -3 * 0.5 + 1)
  t.equal(scaled.getFloat64(12, true), 8e-9 * (2 ** 33 + 5))
  t.equal(scaled.getFloat64(20, true), 0.5 * 10 / 4 + 1, 'Mean = scale * sum / samples + offset')
  t.equal(layout.toAscii(raw, 1, 'RAW'), ' 0x00000004 0x80000001 0xfffffffd 0x00000005 0x00000002 0x0000000a 0x00000000\n')
  t.equal(layout.toAscii(raw, 1, 'SCALED'), ' 2147483649 -0.5 68.71947678 2.25\n')
  v.setUint32(0, 0, true)
  t.ok(Number.isNaN(new DataView(layout.toScaled(raw, 1).buffer).getFloat64(20, true)), 'a mean of no samples is NaN')
})

t.test('CaptureLayout: a captured GATE_DURATION divides the means and nothing is anonymous', async t => {
  const layout = new CaptureLayout([f('FMC_IN.VAL1', 'Mean', 'averaged', 'mean'), gate], gate)
  t.notOk(layout.anonymousSamples)
  t.same(layout.outputFields('RAW').map((x) => x.name), ['PCAP.GATE_DURATION', 'FMC_IN.VAL1'])
  t.equal(layout.sampleWord, 0)
  const none = new CaptureLayout([f('INENC1.VAL', 'Min', 'scaled32', 'min')], gate)
  t.equal(none.sampleWord, undefined, 'no mean, no sample count')
  t.equal(none.rawWords, 1)
})

t.test('frames cut whole rows into BIN blocks no bigger than asked', async t => {
  const rows = Uint8Array.from({ length: 5 * 12 }, (_, i) => i)
  const out = frames(rows, 12, 30)
  const v = new DataView(out.buffer)
  const lengths: number[] = []
  for (let at = 0; at < out.length;) {
    t.equal(Buffer.from(out.subarray(at, at + 4)).toString('latin1'), 'BIN ')
    const n = v.getUint32(at + 4, true)
    lengths.push(n - 8)
    at += n
  }
  t.same(lengths, [24, 24, 12], 'two rows, two rows, one row')
})
