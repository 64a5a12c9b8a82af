/**
 * The blocks the simulated PandA has: names, instance counts, fields in the order `BLOCK.*?` numbers them, field
 * classes and types as the server lists them (`!PERIOD 1 param time`), enum labels, pos_out scaling. Field names,
 * types and enum labels follow the FPGA's block definitions (PandABlocks-FPGA modules/<block>/<block>.block.ini at
 * 916fb9a6); descriptions are our own words. Only data here: the behaviour is in blocks.ts, the server's handling
 * of each class in model.ts.
 */

/** A field's class, the first word of its `BLOCK.*?` line. */
export type FieldClass =
  | 'param' | 'read' | 'write' | 'time' | 'bit_out' | 'pos_out' | 'ext_out' | 'bit_mux' | 'pos_mux' | 'table'

/** The value type of a param, read or write field (the second word of its `BLOCK.*?` line). */
export type ValueType = 'uint' | 'int' | 'enum' | 'bit' | 'time' | 'action'

export interface TableSubfield {
  readonly name: string
  /** Bit positions in the concatenated row words: `left:right`, left ≥ right. */
  readonly left: number
  readonly right: number
  readonly subtype: 'uint' | 'int' | 'enum'
  readonly labels?: readonly string[]
  readonly desc: string
}

export interface TableSpec {
  readonly rowWords: number
  /** Most words the table holds (MAX_LENGTH). */
  readonly maxWords: number
  readonly fields: readonly TableSubfield[]
}

export interface FieldSpec {
  readonly name: string
  readonly cls: FieldClass
  /** For param, read and write fields. */
  readonly type?: ValueType
  /** For `ext_out`: what it captures. */
  readonly ext?: 'timestamp' | 'samples' | 'bits'
  /** For `ext_out bits`: which 32-bit quarter of the bit bus. */
  readonly group?: number
  /** For `uint` fields with a maximum (`param uint 8`). */
  readonly max?: number
  readonly labels?: readonly string[]
  /** pos_out default scaling (SCALE, OFFSET, UNITS attributes). */
  readonly scale?: number
  readonly offset?: number
  readonly units?: string
  readonly table?: TableSpec
  /** Raw value at power-up (default 0, the first enum label, ZERO for muxes). */
  readonly initial?: number
  readonly desc: string
}

export interface BlockSpec {
  readonly name: string
  readonly count: number
  readonly desc: string
  readonly fields: readonly FieldSpec[]
}

/** The 125 MHz FPGA clock: one tick is 8 ns. */
export const CLOCK_HZ = 125_000_000
export const TICKS_PER_MS = CLOCK_HZ / 1000

/** ADC counts to volts on the FMC ACQ427/430 inputs (10 V full scale over 2^31). */
export const ADC_VOLTS_PER_COUNT = 4.65661287e-9

/** Table rows the SEQ block holds. */
export const SEQ_MAX_ROWS = 4096

export const EDGE_LABELS = ['Rising', 'Falling', 'Either'] as const

const f = {
  param: (name: string, type: ValueType, desc: string, extra: Partial<FieldSpec> = {}): FieldSpec =>
    ({ name, cls: 'param', type, desc, ...extra }),
  read: (name: string, type: ValueType, desc: string, extra: Partial<FieldSpec> = {}): FieldSpec =>
    ({ name, cls: 'read', type, desc, ...extra }),
  write: (name: string, type: ValueType, desc: string): FieldSpec => ({ name, cls: 'write', type, desc }),
  time: (name: string, desc: string): FieldSpec => ({ name, cls: 'time', desc }),
  bitOut: (name: string, desc: string): FieldSpec => ({ name, cls: 'bit_out', desc }),
  posOut: (name: string, desc: string, extra: Partial<FieldSpec> = {}): FieldSpec => ({ name, cls: 'pos_out', desc, ...extra }),
  bitMux: (name: string, desc: string): FieldSpec => ({ name, cls: 'bit_mux', desc }),
  posMux: (name: string, desc: string): FieldSpec => ({ name, cls: 'pos_mux', desc }),
  ext: (name: string, ext: 'timestamp' | 'samples' | 'bits', desc: string, group?: number): FieldSpec =>
    ({ name, cls: 'ext_out', ext, desc, ...(group === undefined ? {} : { group }) })
}

const letters = (prefix: string, n: number, suffix = ''): string[] =>
  Array.from({ length: n }, (_, i) => `${prefix}${String.fromCharCode(65 + i)}${suffix}`)

const SEQ_TRIGGERS = [
  'Immediate', 'BITA=0', 'BITA=1', 'BITB=0', 'BITB=1', 'BITC=0', 'BITC=1',
  'POSA>=POSITION', 'POSA<=POSITION', 'POSB>=POSITION', 'POSB<=POSITION', 'POSC>=POSITION', 'POSC<=POSITION'
]

/** The SEQ table: 4 words a row, in the order `SEQ1.TABLE.FIELDS?` lists the sub-fields. */
export const SEQ_TABLE: TableSpec = {
  rowWords: 4,
  maxWords: SEQ_MAX_ROWS * 4,
  fields: [
    { name: 'REPEATS', left: 15, right: 0, subtype: 'uint', desc: 'Times the line runs (0: forever)' },
    { name: 'TRIGGER', left: 19, right: 16, subtype: 'enum', labels: SEQ_TRIGGERS, desc: 'Condition that starts the line' },
    { name: 'POSITION', left: 63, right: 32, subtype: 'int', desc: 'Position the POS triggers compare with' },
    { name: 'TIME1', left: 95, right: 64, subtype: 'uint', desc: 'Length of phase 1 in PRESCALE units (0: no phase 1)' },
    ...letters('OUT', 6, '1').map((name, i): TableSubfield =>
      ({ name, left: 20 + i, right: 20 + i, subtype: 'uint', desc: `Output ${name[3] ?? ''} during phase 1` })),
    { name: 'TIME2', left: 127, right: 96, subtype: 'uint', desc: 'Length of phase 2 in PRESCALE units' },
    ...letters('OUT', 6, '2').map((name, i): TableSubfield =>
      ({ name, left: 26 + i, right: 26 + i, subtype: 'uint', desc: `Output ${name[3] ?? ''} during phase 2` }))
  ]
}

/** Every block, in the order the server registers them (this order decides capture field order within a group). */
export const BLOCKS: readonly BlockSpec[] = [
  {
    name: 'TTLIN',
    count: 6,
    desc: 'TTL input',
    fields: [
      f.param('TERM', 'enum', 'Input termination', { labels: ['High-Z', '50-Ohm'] }),
      f.bitOut('VAL', 'Input level (the simulator drives no inputs: always 0)')
    ]
  },
  {
    name: 'TTLOUT',
    count: 10,
    desc: 'TTL output',
    fields: [f.bitMux('VAL', 'Output level; a rising edge triggers what is wired to this output')]
  },
  {
    name: 'INENC',
    count: 4,
    desc: 'Input encoder',
    fields: [
      f.param('PROTOCOL', 'enum', 'Encoder protocol', { labels: ['Quadrature', 'SSI', 'BISS', 'enDat'] }),
      f.param('CLK_PERIOD', 'time', 'Clock period of absolute protocols'),
      f.param('FRAME_PERIOD', 'time', 'Frame period of absolute protocols'),
      f.param('BITS', 'uint', 'Position bits of absolute protocols', { max: 63 }),
      f.write('SETP', 'int', 'Set the current position to this value'),
      f.param('RST_ON_Z', 'bit', 'Zero the position on a rising Z'),
      f.bitOut('A', 'Quadrature A (not simulated: 0)'),
      f.bitOut('B', 'Quadrature B (not simulated: 0)'),
      f.bitOut('Z', 'Index channel (not simulated: 0)'),
      f.bitOut('DATA', 'Data from an absolute encoder (not simulated: 0)'),
      f.bitOut('CONN', 'Encoder connected'),
      f.read('HOMED', 'bit', 'Quadrature homed'),
      f.read('HEALTH', 'enum', 'Encoder status', {
        labels: ['OK', 'Linkup error (=not CONN)', 'Timeout error (for BISS, SSI)', 'CRC error (for BISS)',
          'Error bit active (for BISS)', 'ENDAT not implemented', 'Protocol readback error']
      }),
      f.posOut('VAL', 'Encoder position (INENC1 follows the simulated motor)', { units: '' })
    ]
  },
  {
    name: 'FMC_IN',
    count: 1,
    desc: 'FMC ADC inputs (8 channels)',
    fields: [
      ...Array.from({ length: 8 }, (_, i) => f.param(`GAIN${i + 1}`, 'enum', 'ADC input range', { labels: ['10V', '5V', '2.5V', '1.25V'] })),
      ...Array.from({ length: 8 }, (_, i) =>
        f.posOut(`VAL${i + 1}`, `ADC channel ${i + 1} (synthetic absorption edge, see docs/sim-panda.md)`,
          { scale: ADC_VOLTS_PER_COUNT, units: 'V' })),
      f.bitOut('TTL', 'TTL input of the FMC card (always 0)')
    ]
  },
  {
    name: 'BITS',
    count: 1,
    desc: 'Soft bits',
    fields: [
      ...letters('', 4).map((n) => f.param(n, 'bit', `Value of OUT${n}`)),
      ...letters('OUT', 4).map((n) => f.bitOut(n, `Soft bit ${n.slice(3)}`))
    ]
  },
  {
    name: 'CALC',
    count: 2,
    desc: 'Position calculation: the sum of signed inputs, shifted right',
    fields: [
      ...letters('INP', 4).map((n) => f.posMux(n, `Position input ${n.slice(3)}`)),
      ...letters('TYPE', 4).map((n) => f.param(n, 'enum', `Sign of input ${n.slice(4)}`, { labels: ['Value', '-Value'] })),
      f.param('SHIFT', 'uint', 'Places to shift the sum right', { max: 2 }),
      f.posOut('OUT', 'Result', { units: '' })
    ]
  },
  {
    name: 'COUNTER',
    count: 8,
    desc: 'Up/down pulse counter',
    fields: [
      f.bitMux('ENABLE', 'Count while high; a rising edge loads START'),
      f.bitMux('TRIG', 'Edges to count'),
      f.bitMux('DIR', 'Count direction (0 up, 1 down)'),
      f.param('TRIG_EDGE', 'enum', 'Edges of TRIG that count', { labels: EDGE_LABELS }),
      f.param('OUT_MODE', 'enum', 'When OUT follows the count', { labels: ['On-Change', 'On-Disable'] }),
      f.param('SET', 'int', 'Set the count now'),
      f.param('START', 'int', 'Count loaded on a rising ENABLE'),
      f.param('STEP', 'uint', 'Amount each edge adds (0 counts as 1)'),
      f.param('MAX', 'int', 'Roll-over maximum (MAX=MIN=0: int32 range)'),
      f.param('MIN', 'int', 'Roll-over minimum'),
      f.bitOut('CARRY', 'The count rolled over'),
      f.posOut('OUT', 'The count', { units: '' })
    ]
  },
  {
    name: 'CLOCK',
    count: 2,
    desc: 'Configurable clock',
    fields: [
      f.bitMux('ENABLE', 'Run while high; a falling edge stops and resets'),
      f.param('PERIOD', 'time', 'Clock period'),
      f.param('WIDTH', 'time', 'High time in each period (0: half the period)'),
      f.bitOut('OUT', 'Clock output')
    ]
  },
  {
    name: 'PULSE',
    count: 4,
    desc: 'Pulse delay and stretch',
    fields: [
      f.bitMux('ENABLE', 'A falling edge drops queued pulses'),
      f.bitMux('TRIG', 'Input pulse train'),
      f.time('DELAY', 'Delay from input edge to output pulse'),
      f.time('WIDTH', 'Output pulse width (0: delay line)'),
      f.param('PULSES', 'uint', 'Pulses per input edge (0 counts as 1)'),
      f.time('STEP', 'Time between the rising edges of the pulses of one input edge'),
      f.param('TRIG_EDGE', 'enum', 'Input edges that make pulses', { labels: EDGE_LABELS }),
      f.bitOut('OUT', 'Output pulse train'),
      f.read('QUEUED', 'uint', 'Output edges waiting', { max: 1023 }),
      f.read('DROPPED', 'uint', 'Pulses dropped because the queue was full')
    ]
  },
  {
    name: 'PCOMP',
    count: 4,
    desc: 'Position compare',
    fields: [
      f.bitMux('ENABLE', 'A rising edge starts, a falling edge stops'),
      f.posMux('INP', 'Position to compare'),
      f.param('PRE_START', 'int', 'Distance INP must first be from START'),
      f.param('START', 'int', 'Position of the first pulse (absolute, or relative to INP at enable)'),
      f.param('WIDTH', 'int', 'Distance from a rising to its falling edge'),
      f.param('STEP', 'int', 'Distance between rising edges'),
      f.param('PULSES', 'uint', 'Pulses to produce (0: forever)'),
      f.param('RELATIVE', 'enum', 'START absolute or relative', { labels: ['Absolute', 'Relative'] }),
      f.param('DIR', 'enum', 'Direction of motion to compare in', { labels: ['Positive', 'Negative', 'Either'] }),
      f.bitOut('ACTIVE', 'High while producing pulses'),
      f.bitOut('OUT', 'Output pulse train'),
      f.read('HEALTH', 'enum', 'Error, if any', {
        labels: ['OK', 'Position jumped by more than STEP', "Can't guess DIR when RELATIVE and PRE_START=0 and START=0"]
      }),
      f.read('PRODUCED', 'uint', 'Pulses produced'),
      f.read('STATE', 'enum', 'State machine state', {
        labels: ['WAIT_ENABLE', 'WAIT_DIR', 'WAIT_PRE_START', 'WAIT_RISING', 'WAIT_FALLING']
      })
    ]
  },
  {
    name: 'SEQ',
    count: 4,
    desc: 'Sequencer',
    fields: [
      f.bitMux('ENABLE', 'A rising edge starts the table, a falling edge stops it'),
      ...letters('BIT', 3).map((n) => f.bitMux(n, `Bit input ${n.slice(3)} for trigger conditions`)),
      ...letters('POS', 3).map((n) => f.posMux(n, `Position input ${n.slice(3)} for trigger conditions`)),
      { name: 'TABLE', cls: 'table', table: SEQ_TABLE, desc: 'Sequencer table, 4 words a line' },
      f.param('PRESCALE', 'time', 'Unit of the table times'),
      f.param('REPEATS', 'uint', 'Times the table runs (0: forever)'),
      f.bitOut('ACTIVE', 'High while running the table'),
      ...letters('OUT', 6).map((n) => f.bitOut(n, `Output ${n.slice(3)}`)),
      f.read('TABLE_REPEAT', 'uint', 'Current repeat of the table'),
      f.read('TABLE_LINE', 'uint', 'Current line (1-based)'),
      f.read('LINE_REPEAT', 'uint', 'Current repeat of the line'),
      f.read('STATE', 'enum', 'State machine state', { labels: ['UNREADY', 'WAIT_ENABLE', 'WAIT_TRIGGER', 'PHASE1', 'PHASE2'] }),
      f.read('HEALTH', 'enum', 'Error, if any', { labels: ['OK', 'DMA underrun', 'Not ready for table'] })
    ]
  },
  {
    name: 'PCAP',
    count: 1,
    desc: 'Position capture',
    fields: [
      f.bitMux('ENABLE', 'Capture while high (after *PCAP.ARM=); a falling edge ends the capture'),
      f.bitMux('GATE', 'Ticks that count towards Sum, Mean, Min, Max, Diff and GATE_DURATION'),
      f.bitMux('TRIG', 'Each selected edge captures one row'),
      f.param('TRIG_EDGE', 'enum', 'Edges of TRIG that capture', { labels: EDGE_LABELS }),
      f.param('SHIFT_SUM', 'uint', 'Shift Sum and GATE_DURATION right by this', { max: 8 }),
      f.bitOut('ACTIVE', 'High from *PCAP.ARM= to the end of the capture'),
      f.ext('TS_START', 'timestamp', 'First gate high in the row, from enable'),
      f.ext('TS_END', 'timestamp', 'Last gate low in the row, from enable'),
      f.ext('TS_TRIG', 'timestamp', 'The capture trigger, from enable'),
      f.ext('GATE_DURATION', 'samples', 'Gated ticks in the row'),
      ...[0, 1, 2, 3].map((g) => f.ext(`BITS${g}`, 'bits', `Bit bus ${32 * g}..${32 * g + 31}`, g)),
      f.read('HEALTH', 'enum', 'Was the last capture clean?', {
        labels: ['OK', 'Capture events too close together', 'Samples overflow']
      })
    ]
  }
]

/** Time units of `time` fields (`UNITS` attribute) and their length in seconds. */
export const TIME_UNITS: ReadonlyArray<readonly [string, number]> = [['min', 60], ['s', 1], ['ms', 1e-3], ['us', 1e-6]]

/** pos_out capture options in the order the server reports them (`*CAPTURE.OPTIONS?`); StdDev is not simulated. */
export const CAPTURE_OPTIONS = ['Value', 'Diff', 'Sum', 'Min', 'Max', 'Mean'] as const
export type CaptureOption = typeof CAPTURE_OPTIONS[number]

/** The nominal pos_out CAPTURE values `*ENUMS` lists (server/pos_out.c nominal_capture_masks, without StdDev). */
export const CAPTURE_ENUMS = ['No', 'Value', 'Diff', 'Sum', 'Mean', 'Min', 'Max', 'Min Max', 'Min Max Mean']

/** Largest bit_mux DELAY (server/bit_out.c). */
export const MAX_BIT_MUX_DELAY = 31

/** Largest value of a `time` field (48 bits of ticks) and of a `param time` (32 bits). */
export const MAX_TIME_TICKS = 2 ** 48 - 1
export const MAX_PARAM_TIME_TICKS = 2 ** 32 - 1
