/**
 * The simulated PandA's fields, attributes, tables and *CHANGES bookkeeping, without sockets: what each target
 * reads back, and the box's message for each kind of bad command (PandABlocks-server dd1b8e0).
 */
import t from 'tap'
import { ChangeContext, PandaSimulation, ParseError, type Reply } from '../../src/sim/panda/index.js'
import { ManualClock } from '../../src/sim/index.js'

function sim (): PandaSimulation {
  return new PandaSimulation({ clock: new ManualClock() })
}

/** The ERR message a call produces. */
function err (fn: () => unknown): string {
  try {
    fn()
  } catch (e) {
    if (e instanceof ParseError) return e.message
    throw e
  }
  return '(no error)'
}

const value = (r: Reply): string => r.kind === 'one' ? r.value : `[${r.lines.join('|')}]`
const lines = (r: Reply): string[] => r.kind === 'many' ? r.lines : [`(one: ${r.value})`]

t.test('targets: the box\'s messages for each malformed or unknown part', async t => {
  const s = sim()
  const m = s.model
  const cases: Array<[string, string]> = [
    ['NOPE.VAL', 'No such block'],
    ['SEQ5.TABLE', 'Invalid block number'],
    ['SEQ0.TABLE', 'Invalid block number'],
    ['SEQ.TABLE', 'Missing block number'],
    ['PCAP.NOPE', 'No such field'],
    ['PCAP.TRIG.NOPE', 'No such attribute'],
    ['PCAP', 'Missing field name'],
    ['PCAP.TRIG.DELAY.X', 'Unexpected character after input'],
    ['PCAP.TRIG ', 'Unexpected character after input'],
    ['.TRIG', 'No name found'],
    ['PCAP.TS_TRIG', 'Field not readable'],
    ['INENC1.SETP', 'Field not readable']
  ]
  for (const [target, message] of cases) t.equal(err(() => m.get(target)), message, `${target}?`)
  t.equal(value(m.get('PCAP.TRIG')), 'ZERO', 'a one-instance block needs no number')
  t.equal(value(m.get('PCAP1.TRIG')), 'ZERO', 'but may have one')
  t.equal(value(m.get('SEQ01.PRESCALE')), '0', 'the number is read with strtoul base 0')
})

t.test('writes: values, ranges and the messages for bad ones', async t => {
  const s = sim()
  const m = s.model
  const bad: Array<[string, string, string]> = [
    ['PCAP.ACTIVE', '1', 'Field not writeable'],
    ['PCAP.HEALTH', '0', 'Field not writeable'],
    ['PCAP.TS_TRIG', '1', 'Field not writeable'],
    ['SEQ1.TABLE', '1', 'Field not writeable'],
    ['PCAP.TRIG', 'CLOCK9.OUT', 'Invalid bit bus selection'],
    ['PCOMP1.INP', 'CLOCK1.OUT', 'Invalid position selection'],
    ['PCAP.TRIG_EDGE', 'rising', 'Invalid enumeration value'],
    ['PCAP.SHIFT_SUM', '9', 'Number out of range'],
    ['PCOMP1.START', '12x', 'Unexpected character after input'],
    ['PCOMP1.START', '', 'Number missing'],
    ['PCOMP1.START', '3000000000', 'Error converting number'],
    ['CLOCK1.PERIOD', '-1', 'Time setting out of range'],
    ['CLOCK1.PERIOD', '40', 'Time setting out of range'],
    ['BITS.A', '2', 'Invalid bit value'],
    ['BITS.A', '10', 'Unexpected character after input'],
    ['PULSE1.DELAY', 'soon', 'Number missing']
  ]
  for (const [target, v, message] of bad) t.equal(err(() => s.put(target, v)), message, `${target}=${v}`)
  s.put('PCOMP1.START', '0x10')
  t.equal(value(m.get('PCOMP1.START')), '16', 'hex')
  s.put('PCOMP1.START', '-010')
  t.equal(value(m.get('PCOMP1.START')), '-8', 'octal, signed')
  s.put('PCOMP1.PULSES', '-1')
  t.equal(value(m.get('PCOMP1.PULSES')), '4294967295', 'a uint wraps like strtoul')
  s.put('CLOCK1.PERIOD', '0.01')
  t.equal(value(m.get('CLOCK1.PERIOD')), '0.01')
  t.equal(value(m.get('CLOCK1.PERIOD.RAW')), '1250000')
  s.put('CLOCK1.PERIOD.UNITS', 'ms')
  t.equal(value(m.get('CLOCK1.PERIOD')), '10', 'units change how it reads...')
  t.equal(value(m.get('CLOCK1.PERIOD.RAW')), '1250000', '...not the period')
  s.put('CLOCK1.PERIOD', '5')
  t.equal(value(m.get('CLOCK1.PERIOD.RAW')), '625000')
  t.equal(err(() => s.put('CLOCK1.PERIOD.UNITS', 'hours')), 'Invalid time units')
  s.put('PULSE1.DELAY.UNITS', 's')
  s.put('PULSE1.DELAY', '2.5')
  t.equal(value(m.get('PULSE1.DELAY.RAW')), '312500000', 'the example of panda-protocol.md §1.3')
  s.put('PULSE1.DELAY.RAW', '125')
  t.equal(value(m.get('PULSE1.DELAY')), '1e-06')
  t.equal(err(() => s.put('PULSE1.DELAY.MAX', '1')), 'No such attribute')
  t.equal(err(() => s.put('PCAP.SHIFT_SUM.MAX', '1')), 'Attribute not writeable')
  t.equal(value(m.get('PCAP.SHIFT_SUM.MAX')), '8')
  t.equal(value(m.get('PCAP.TRIG.MAX_DELAY')), '31')
  t.equal(err(() => s.put('PCAP.TRIG.DELAY', '32')), 'Delay too long')
  s.put('PULSE1.TRIG_EDGE', 'Either')
  t.equal(value(m.get('PULSE1.TRIG_EDGE')), 'Either')
})

t.test('pos_out attributes and CAPTURE', async t => {
  const s = sim()
  const m = s.model
  t.same(lines(m.get('INENC1.VAL.*')), ['SCALED', 'SCALE', 'OFFSET', 'UNITS', 'CAPTURE'])
  s.put('INENC1.VAL.SCALE', '0.045')
  s.put('INENC1.VAL.OFFSET', '-1')
  s.put('INENC1.VAL.UNITS', 'deg')
  t.equal(value(m.get('INENC1.VAL.SCALED')), '-1', '0 × 0.045 − 1')
  s.put('INENC1.VAL.CAPTURE', 'Mean Min Max')
  t.equal(value(m.get('INENC1.VAL.CAPTURE')), 'Min Max Mean', 'options in the server\'s order')
  t.equal(err(() => s.put('INENC1.VAL.CAPTURE', 'Min Bogus')), 'Unknown capture option "Bogus"')
  t.equal(err(() => s.put('PCAP.TS_TRIG.CAPTURE', 'Mean')), 'Invalid capture option')
  s.put('PCAP.TS_TRIG.CAPTURE', 'Value')
  t.equal(value(m.get('FMC_IN.VAL1.SCALE')), '4.65661287e-09')
  t.equal(value(m.get('FMC_IN.VAL1.UNITS')), 'V')
  t.same(m.captureList(), ['INENC1.VAL Min Max Mean', 'PCAP.TS_TRIG Value'])
  m.resetCapture()
  t.same(m.captureList(), [])
  t.equal(value(m.get('PCAP.BITS1.CAPTURE')), 'No')
  const bits = lines(m.get('PCAP.BITS0.BITS'))
  t.equal(bits.length, 32)
  t.equal(bits[0], 'TTLIN1.VAL')
  t.equal(value(m.get('CLOCK1.OUT.CAPTURE_WORD')), `PCAP.BITS${Math.floor(m.field('CLOCK', 'OUT', 1).bus / 32)}`)
  t.equal(value(m.get('CLOCK1.OUT.OFFSET')), String(m.field('CLOCK', 'OUT', 1).bus % 32))
})

t.test('listings, *DESC and *ENUMS', async t => {
  const s = sim()
  const m = s.model
  t.same(lines(m.get('TTLIN.*')), ['TERM 0 param enum', 'VAL 1 bit_out'], 'the example of panda-protocol.md §1.2')
  const pcap = lines(m.get('PCAP.*'))
  t.ok(pcap.includes('TS_TRIG 8 ext_out timestamp'))
  t.ok(pcap.includes('GATE_DURATION 9 ext_out samples'))
  t.ok(pcap.includes('BITS0 10 ext_out bits'))
  t.ok(pcap.includes('SHIFT_SUM 4 param uint'))
  t.ok(lines(m.get('PULSE.*')).includes('DELAY 2 time'))
  t.ok(lines(m.get('SEQ.*')).includes('TABLE 7 table'))
  t.same(lines(m.get('SEQ1.TABLE.*')), ['LENGTH', 'MAX_LENGTH', 'FIELDS', 'B', 'ROW_WORDS', 'QUEUED_LINES', 'MODE'])
  t.same(lines(m.enums('PCAP.TRIG_EDGE')), ['Rising', 'Falling', 'Either'])
  const mux = lines(m.enums('PCAP.TRIG'))
  t.same(mux.slice(0, 2), ['ZERO', 'ONE'])
  t.ok(mux.includes('CLOCK1.OUT') && mux.includes('PCOMP4.ACTIVE') && mux.includes('SEQ2.OUTF'))
  t.same(lines(m.enums('PCOMP1.INP')).slice(0, 3), ['ZERO', 'INENC1.VAL', 'INENC2.VAL'])
  t.same(lines(m.enums('PULSE1.DELAY.UNITS')), ['min', 's', 'ms', 'us'])
  t.same(lines(m.enums('INENC1.VAL.CAPTURE')), ['No', 'Value', 'Diff', 'Sum', 'Mean', 'Min', 'Max', 'Min Max', 'Min Max Mean'])
  t.equal(lines(m.enums('SEQ.TABLE[].TRIGGER'))[8], 'POSA<=POSITION')
  t.equal(err(() => m.enums('CLOCK1.PERIOD')), 'Field is not an enumeration')
  t.equal(err(() => m.enums('SEQ1.TABLE[].REPEATS')), 'Table sub-field is not an enumeration')
  t.equal(err(() => m.enums('SEQ1.TABLE[].NOPE')), 'Table sub-field not found')
  t.equal(err(() => m.enums('PCAP')), 'Missing field name')
  t.equal(value(m.desc('PCAP')), 'Position capture')
  t.equal(value(m.desc('SEQ.TABLE[].REPEATS')), 'Times the line runs (0: forever)')
  t.equal(value(m.desc('PCAP.TRIG.DELAY')), 'Clock delay on input')
  t.same(lines(m.get('SEQ1.TABLE.FIELDS')).slice(0, 5), ['15:0 REPEATS uint', '19:16 TRIGGER enum', '63:32 POSITION int', '95:64 TIME1 uint', '20:20 OUTA1 uint'])
})

/** Writes a table as the control port would: lines, then close. */
function writeTable (s: PandaSimulation, target: string, data: string[], mode: '' | '<' | '<|' = '', binary = false): string {
  return err(() => {
    const w = s.model.putTable(target, mode !== '', mode !== '<', binary)
    try {
      for (const line of data) w.write(line)
    } catch (e) {
      s.model.abortTable(target)
      throw e
    }
    w.close()
  })
}

t.test('tables: fixed, streaming and base64 writes, MODE and the refusals', async t => {
  const s = sim()
  const m = s.model
  t.equal(writeTable(s, 'SEQ1.TABLE', ['1048577 4294967295 1250 1250', '2097153 0 625 625']), '(no error)')
  t.same(lines(m.get('SEQ1.TABLE')), ['1048577', '4294967295', '1250', '1250', '2097153', '0', '625', '625'])
  t.equal(value(m.get('SEQ1.TABLE.LENGTH')), '8')
  t.equal(value(m.get('SEQ1.TABLE.MODE')), 'FIXED')
  t.equal(value(m.get('SEQ1.TABLE.MAX_LENGTH')), '16384', '4096 rows of 4 words')
  const b64 = lines(m.get('SEQ1.TABLE.B'))
  t.same(b64, [Buffer.from(new Uint32Array([1048577, 4294967295, 1250, 1250, 2097153, 0, 625, 625]).buffer).toString('base64')])
  t.equal(writeTable(s, 'SEQ2.TABLE', b64, '', true), '(no error)', 'the B form written back')
  t.same(lines(m.get('SEQ2.TABLE')), lines(m.get('SEQ1.TABLE')))
  t.equal(writeTable(s, 'SEQ2.TABLE', ['AAAAAAA='], '', true), 'Invalid data length', '5 bytes')
  t.equal(writeTable(s, 'SEQ2.TABLE', ['A*AA'], '', true), 'Malformed base64 string')
  t.equal(writeTable(s, 'SEQ2.TABLE', ['1 2 3 4 ']), 'Number missing', 'a trailing space')
  t.equal(writeTable(s, 'SEQ2.TABLE', ['1 2 3']), 'Table write is not a whole number of rows')
  t.equal(writeTable(s, 'SEQ2.TABLE', Array.from({ length: 4097 }, () => '1 0 1 1')), 'Too many points for table')
  t.same(lines(m.get('SEQ2.TABLE')).length, 8, 'a failed write changes nothing')
  t.equal(writeTable(s, 'SEQ2.TABLE', ['0x10 010 -1 7']), '(no error)')
  t.same(lines(m.get('SEQ2.TABLE')), ['16', '8', '4294967295', '7'], 'strtoul base 0')
  t.equal(writeTable(s, 'SEQ2.TABLE', []), '(no error)', 'an empty fixed write clears')
  t.equal(value(m.get('SEQ2.TABLE.MODE')), 'INIT')
  t.equal(writeTable(s, 'SEQ3.TABLE', [], '<'), 'Streaming table must have data')
  t.equal(writeTable(s, 'SEQ3.TABLE', ['1 0 5 5', '1 0 5 5'], '<'), '(no error)')
  t.equal(value(m.get('SEQ3.TABLE.MODE')), 'STREAMING')
  t.equal(value(m.get('SEQ3.TABLE.LENGTH')), '0', 'streamed rows are not shown')
  t.equal(value(m.get('SEQ3.TABLE.QUEUED_LINES')), '2')
  t.equal(writeTable(s, 'SEQ3.TABLE', ['1 0 5 5']), 'Table is in streaming mode')
  t.equal(writeTable(s, 'SEQ3.TABLE', ['1 0 5 5'], '<|'), '(no error)')
  t.equal(value(m.get('SEQ3.TABLE.MODE')), 'STREAMING_LAST')
  t.equal(writeTable(s, 'SEQ3.TABLE', ['1 0 5 5'], '<'), 'Last streaming table was sent')
  t.equal(writeTable(s, 'SEQ3.TABLE', []), '(no error)', 'cleared...')
  t.equal(writeTable(s, 'SEQ3.TABLE', ['1 0 5 5'], '<'), '(no error)', '...then streaming again')
  t.equal(err(() => m.putTable('PCAP.TRIG', false, true, false)), 'Field is not a table')
  t.equal(err(() => m.putTable('SEQ1.TABLE.LENGTH', false, true, false)), 'Field not a table')
})

t.test('*CHANGES: per connection, by group, reset to now or to the start', async t => {
  const s = sim()
  const m = s.model
  const a = new ChangeContext()
  const b = new ChangeContext()
  const ALL = 0x7f
  const CONFIG = 1
  const BITS = 2
  const ATTR = 16
  const TABLE = 32
  const first = m.changes(a, ALL)
  t.ok(first.includes('PCAP.TRIG=ZERO') && first.includes('CLOCK1.PERIOD=0') && first.includes('SEQ1.TABLE<'), 'the first time: everything')
  t.ok(first.includes('INENC1.VAL.CAPTURE=No') && first.includes('PCAP.ACTIVE=0') && first.includes('*METADATA.DESIGN='))
  t.ok(first.includes('INENC1.VAL=0'), 'positions too')
  t.same(m.changes(a, ALL), [], 'then nothing')
  s.put('PCAP.TRIG', 'CLOCK1.OUT')
  s.put('INENC1.VAL.CAPTURE', 'Mean')
  t.same(m.changes(a, CONFIG), ['PCAP.TRIG=CLOCK1.OUT'], 'CONFIG only')
  t.same(m.changes(a, ATTR), ['INENC1.VAL.CAPTURE=Mean'], 'ATTR, still pending for this connection')
  t.ok(m.changes(b, ALL).length === first.length, 'another connection still sees everything')
  writeTable(s, 'SEQ2.TABLE', ['1 0 1 1'])
  t.same(m.changes(a, TABLE), ['SEQ2.TABLE<'], 'a table change shows as NAME<')
  // A bit that goes up and down again between two polls is still reported.
  s.put('BITS.A', '1')
  s.put('BITS.A', '0')
  t.same(m.changes(a, BITS), ['BITS.OUTA=0'])
  s.put('CLOCK1.WIDTH', '0.001')
  m.resetChanges(a, ALL, false)
  t.same(m.changes(a, ALL), [], '*CHANGES= forgets what is pending')
  m.resetChanges(a, CONFIG, true)
  const again = m.changes(a, ALL)
  t.ok(again.includes('PCAP.TRIG=CLOCK1.OUT') && !again.includes('INENC1.VAL.CAPTURE=Mean'), '*CHANGES.CONFIG=S: CONFIG from the start')
  s.put('PCAP.TS_TRIG.CAPTURE', 'Value')
  s.put('PULSE1.WIDTH.UNITS', 'ms')
  const after = m.changes(b, ALL)
  t.ok(after.includes('PCAP.TS_TRIG.CAPTURE=Value'))
  t.ok(after.includes('PULSE1.WIDTH.UNITS=ms') && after.includes('PULSE1.WIDTH=0'), 'a units change reports the value too')
  t.same(m.changes(b, ALL), [])
})
