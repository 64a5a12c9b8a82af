/**
 * The PandA blocks tst-fly writes to, typed: each block's fields with their kind, enum labels, limits and units, as
 * the FPGA declares them in PandABlocks-FPGA `modules/<block>/<block>.block.ini` (commit 916fb9a6) and as the server
 * prints them (`BLOCK.*?`, ../../docs/panda-device.md). Instance counts are those of a standard PandABox with TST's
 * ACQ427 FMC (`apps/pandabox-fmc-acq427.app.ini`, `includes/common_soft_blocks.include.ini`); the box's own
 * `*BLOCKS?` answer is the truth, and HDFPanda checks it at connect.
 *
 * `checkWrite` refuses, before anything is sent, a write the box would refuse: an unknown block instance or field, a
 * read-only field, an enum label the field does not have, a mux source that is not an output, a number out of range.
 */
import { ErrorCode, FlyScanError } from '../errors.js'

/** The FPGA clock of a PandABox (`*CLOCK_FREQ?`): one tick is 8 ns. */
export const PANDA_CLOCK_HZ = 125_000_000

/** How a field behaves, as `BLOCK.*?` prints its type (`param enum` → `param_enum`). */
export type FieldKind =
  | 'bit_mux' | 'pos_mux' | 'bit_out' | 'pos_out' | 'ext_out'
  | 'param_enum' | 'param_int' | 'param_uint' | 'param_bit' | 'param_time' | 'time'
  | 'read_uint' | 'read_enum' | 'read_bit' | 'write_int' | 'table'

export interface FieldSpec {
  readonly kind: FieldKind
  readonly description: string
  /** The labels of an enum, in the order of their numbers. */
  readonly labels?: readonly string[]
  /** The largest value of a uint. */
  readonly max?: number
  /** Units and scale a pos_out has on a fresh box (the ADC channels: V, 4.65661287e-9 V per count). */
  readonly units?: string
  readonly scale?: number
}

export interface BlockSpec {
  readonly name: string
  /** Instances on a standard PandABox (`PCOMP1`, `PCOMP2`); 1 means the number may be left out (`PCAP`). */
  readonly count: number
  readonly description: string
  readonly fields: Readonly<Record<string, FieldSpec>>
}

/** `UNITS` of a time field (`CLOCK1.PERIOD.UNITS=ms`). */
export const TIME_UNITS = ['min', 's', 'ms', 'us'] as const
export type TimeUnits = typeof TIME_UNITS[number]

/** Seconds per unit of each time unit. */
export const SECONDS_PER_UNIT: Readonly<Record<TimeUnits, number>> = { min: 60, s: 1, ms: 1e-3, us: 1e-6 }

/** `CAPTURE` of a pos_out (the box also lists StdDev variants where the firmware has them). */
export const POS_CAPTURE = ['No', 'Value', 'Diff', 'Sum', 'Mean', 'Min', 'Max', 'Min Max', 'Min Max Mean'] as const
export type PosCapture = typeof POS_CAPTURE[number]

/** `CAPTURE` of an ext_out (timestamps, sample counts, bit words). */
export const EXT_CAPTURE = ['No', 'Value'] as const

export const TRIG_EDGE = ['Rising', 'Falling', 'Either'] as const
export type TrigEdge = typeof TRIG_EDGE[number]

export const PCOMP_DIR = ['Positive', 'Negative', 'Either'] as const
export type PcompDir = typeof PCOMP_DIR[number]

export const PCOMP_RELATIVE = ['Absolute', 'Relative'] as const
export type PcompRelative = typeof PCOMP_RELATIVE[number]

export const CALC_TYPE = ['Value', '-Value'] as const
export type CalcType = typeof CALC_TYPE[number]

const bitMux = (description: string): FieldSpec => ({ kind: 'bit_mux', description })
const posMux = (description: string): FieldSpec => ({ kind: 'pos_mux', description })
const bitOut = (description: string): FieldSpec => ({ kind: 'bit_out', description })
const posOut = (description: string, units?: string, scale?: number): FieldSpec => ({ kind: 'pos_out', description, units, scale })
const extOut = (description: string): FieldSpec => ({ kind: 'ext_out', description })
const paramEnum = (description: string, labels: readonly string[]): FieldSpec => ({ kind: 'param_enum', description, labels })
const readEnum = (description: string, labels: readonly string[]): FieldSpec => ({ kind: 'read_enum', description, labels })
const paramInt = (description: string): FieldSpec => ({ kind: 'param_int', description })
const paramUint = (description: string, max = 0xffff_ffff): FieldSpec => ({ kind: 'param_uint', description, max })
const paramTime = (description: string): FieldSpec => ({ kind: 'param_time', description })
const time = (description: string): FieldSpec => ({ kind: 'time', description })
const readUint = (description: string, max = 0xffff_ffff): FieldSpec => ({ kind: 'read_uint', description, max })

function numbered (count: number, make: (n: number) => [string, FieldSpec]): Record<string, FieldSpec> {
  return Object.fromEntries(Array.from({ length: count }, (_v, i) => make(i + 1)))
}

const ADC_SCALE = 4.65661287e-9

/** The blocks tst-fly uses, by name. TTLIN is here so that `TTLIN1.VAL` is a known bit_mux source. */
export const BLOCKS = {
  PCAP: {
    name: 'PCAP',
    count: 1,
    description: 'Position capture control',
    fields: {
      ENABLE: bitMux('After arm, when high start capture, when low disarm'),
      GATE: bitMux('After enable, only process gated values if high'),
      TRIG: bitMux('On selected edge capture current value and gated data'),
      TRIG_EDGE: paramEnum('Which edge of capture input signal triggers capture', TRIG_EDGE),
      SHIFT_SUM: paramUint('Shift sum/samples data, use if > 2**32 samples required in sum/average', 8),
      ACTIVE: bitOut('Data capture in progress'),
      TS_START: extOut('Timestamp of first gate high in current capture relative to enable'),
      TS_END: extOut('Timestamp of last gate high +1 in current capture relative to enable'),
      TS_TRIG: extOut('Timestamp of capture event relative to enable'),
      GATE_DURATION: extOut('Number of gated samples in the current capture'),
      BITS0: extOut('Quadrant 0 of bit_bus'),
      BITS1: extOut('Quadrant 1 of bit_bus'),
      BITS2: extOut('Quadrant 2 of bit_bus'),
      BITS3: extOut('Quadrant 3 of bit_bus'),
      HEALTH: readEnum('Was last capture successful?', ['OK', 'Capture events too close together', 'Samples overflow'])
    }
  },
  PCOMP: {
    name: 'PCOMP',
    count: 2,
    description: 'Position compare',
    fields: {
      ENABLE: bitMux('Stop on falling edge, reset and enable on rising edge'),
      INP: posMux('Position data from position-data bus'),
      PRE_START: paramInt('INP must be this far from START before waiting for START'),
      START: paramInt('Pulse absolute/relative start position value'),
      WIDTH: paramInt('The relative distance between a rising and falling edge'),
      STEP: paramInt('The relative distance between successive rising edges'),
      PULSES: paramUint('The number of pulses to produce, 0 means infinite'),
      RELATIVE: paramEnum('If 1 then START is relative to the position of INP at enable', PCOMP_RELATIVE),
      DIR: paramEnum('Direction to apply all relative offsets to', PCOMP_DIR),
      ACTIVE: bitOut('Active output is high while block is in operation'),
      OUT: bitOut('Output pulse train'),
      HEALTH: readEnum('Error details if anything goes wrong',
        ['OK', 'Position jumped by more than STEP', "Can't guess DIR when RELATIVE and PRE_START=0 and START=0"]),
      PRODUCED: readUint('The number of pulses produced'),
      STATE: readEnum('The internal statemachine state', ['WAIT_ENABLE', 'WAIT_DIR', 'WAIT_PRE_START', 'WAIT_RISING', 'WAIT_FALLING'])
    }
  },
  CLOCK: {
    name: 'CLOCK',
    count: 2,
    description: 'Configurable clocks',
    fields: {
      ENABLE: bitMux('Halt and reset on falling edge, enable on rising'),
      PERIOD: paramTime('Period of clock output'),
      WIDTH: paramTime('Width of clock output'),
      OUT: bitOut('Clock output')
    }
  },
  SEQ: {
    name: 'SEQ',
    count: 2,
    description: 'Sequencer',
    fields: {
      ENABLE: bitMux('Stop on falling edge, reset and enable on rising edge'),
      BITA: bitMux('BITA for optional trigger condition'),
      BITB: bitMux('BITB for optional trigger condition'),
      BITC: bitMux('BITC for optional trigger condition'),
      POSA: posMux('POSA for optional trigger condition'),
      POSB: posMux('POSB for optional trigger condition'),
      POSC: posMux('POSC for optional trigger condition'),
      TABLE: { kind: 'table', description: 'Sequencer table of lines (4 words per row, at most 4096 rows)' },
      PRESCALE: paramTime('Prescalar for sequencer table times'),
      REPEATS: paramUint('Number of times the table will repeat'),
      ACTIVE: bitOut('Sequencer active flag'),
      OUTA: bitOut('Output A for phase outputs'),
      OUTB: bitOut('Output B for phase outputs'),
      OUTC: bitOut('Output C for phase outputs'),
      OUTD: bitOut('Output D for phase outputs'),
      OUTE: bitOut('Output E for phase outputs'),
      OUTF: bitOut('Output F for phase outputs'),
      TABLE_REPEAT: readUint('Current iteration through the entire table'),
      TABLE_LINE: readUint('Current line in the table that is active'),
      LINE_REPEAT: readUint('Current iteration of the active table line'),
      STATE: readEnum('Internal statemachine state', ['UNREADY', 'WAIT_ENABLE', 'WAIT_TRIGGER', 'PHASE1', 'PHASE2']),
      HEALTH: readEnum('Was last run successful?', ['OK', 'Next table not written in time', 'Table overwritten while in used']),
      CAN_WRITE_NEXT: readUint('Next table can be written in continuous mode', 1)
    }
  },
  PULSE: {
    name: 'PULSE',
    count: 4,
    description: 'One-shot pulse delay and stretch',
    fields: {
      ENABLE: bitMux('Reset on falling edge, enable on rising'),
      TRIG: bitMux('Input pulse train'),
      DELAY: time('Output pulse delay (0 for no delay)'),
      WIDTH: time('Output pulse width (0 for input pulse width)'),
      PULSES: paramUint('The number of pulses to produce on each trigger, 0 means 1'),
      STEP: time('If pulses > 1, the time between successive pulse rising edges'),
      TRIG_EDGE: paramEnum('INP trigger edge', TRIG_EDGE),
      OUT: bitOut('Output pulse train'),
      QUEUED: readUint('Length of the delay queue', 1023),
      DROPPED: readUint('Number of pulses not produced because of an ERR condition')
    }
  },
  INENC: {
    name: 'INENC',
    count: 4,
    description: 'Input encoder',
    fields: {
      CLK: bitMux('Clock output to slave encoder'),
      PROTOCOL: paramEnum('Type of absolute/incremental protocol', ['Quadrature', 'SSI', 'BISS', 'enDat']),
      ENCODING: paramEnum('Position encoding (for absolute encoders)', ['Unsigned Binary', 'Unsigned Gray', 'Signed Binary', 'Signed Gray']),
      CLK_SRC: paramEnum('Bypass/Pass Through encoder signals', ['Internally Generated', 'From CLK']),
      CLK_PERIOD: paramTime('Clock rate'),
      FRAME_PERIOD: paramTime('Frame rate'),
      BITS: paramUint('Number of bits', 63),
      LSB_DISCARD: paramUint('Number of LSB bits to discard', 31),
      MSB_DISCARD: paramUint('Number of MSB bits to discard', 31),
      SETP: { kind: 'write_int', description: 'Set point' },
      RST_ON_Z: { kind: 'param_bit', description: 'Zero position on Z rising edge' },
      A: bitOut('Quadrature A if in incremental mode'),
      B: bitOut('Quadrature B if in incremental mode'),
      Z: bitOut('Z index channel if in incremental mode'),
      DATA: bitOut('Data input from slave encoder'),
      CONN: bitOut('Signal detected'),
      HOMED: { kind: 'read_bit', description: 'Quadrature homed status' },
      HEALTH: readEnum('Table status', ['OK', 'Linkup error (=not CONN)', 'Timeout error (for BISS, SSI)', 'CRC error (for BISS)',
        'Error bit active (for BISS)', 'ENDAT not implemented', 'Protocol readback error']),
      VAL: posOut('Current position'),
      DCARD_TYPE: readEnum('Daughter card jumper mode', ['DCARD id 0', 'Encoder Control', 'DCARD id 2', 'Encoder Monitor',
        'DCARD id 3', 'DCARD id 4', 'DCARD id 5', 'Unplugged'])
    }
  },
  TTLIN: {
    name: 'TTLIN',
    count: 6,
    description: 'TTL input',
    fields: {
      TERM: paramEnum('Select TTL input termination', ['High-Z', '50-Ohm']),
      VAL: bitOut('TTL input value')
    }
  },
  TTLOUT: {
    name: 'TTLOUT',
    count: 10,
    description: 'TTL output',
    fields: {
      VAL: bitMux('TTL output value')
    }
  },
  CALC: {
    name: 'CALC',
    count: 2,
    description: 'Position calc',
    fields: {
      INPA: posMux('Position input A'),
      INPB: posMux('Position input B'),
      INPC: posMux('Position input C'),
      INPD: posMux('Position input D'),
      TYPEA: paramEnum('Source of the value of A for calculation', CALC_TYPE),
      TYPEB: paramEnum('Source of the value of B for calculation', CALC_TYPE),
      TYPEC: paramEnum('Source of the value of C for calculation', CALC_TYPE),
      TYPED: paramEnum('Source of the value of D for calculation', CALC_TYPE),
      SHIFT: paramUint('Number of places to right shift calculation result before output', 2),
      OUT: posOut('Position output')
    }
  },
  COUNTER: {
    name: 'COUNTER',
    count: 8,
    description: 'Up/Down pulse counter',
    fields: {
      ENABLE: bitMux('Halt on falling edge, reset and enable on rising'),
      TRIG: bitMux('Rising edge ticks the counter up/down by STEP'),
      DIR: bitMux('Up/Down direction (0 = Up, 1 = Down)'),
      TRIG_EDGE: paramEnum('INP trigger edge', TRIG_EDGE),
      OUT_MODE: paramEnum('Counter OUT update mode (on internal counter value change or on ENABLE falling edge)', ['On-Change', 'On-Disable']),
      SET: paramInt('set current value of a counter'),
      START: paramInt('Counter start value'),
      STEP: paramUint('Up/Down step value'),
      MAX: paramInt('Rollover value'),
      MIN: paramInt('Value to which counter should rollover to'),
      CARRY: bitOut('Internal counter overflow status'),
      OUT: posOut('Current counter value')
    }
  },
  BITS: {
    name: 'BITS',
    count: 1,
    description: 'Soft inputs and constant bits',
    fields: {
      A: { kind: 'param_bit', description: 'The value that output A should take' },
      B: { kind: 'param_bit', description: 'The value that output B should take' },
      C: { kind: 'param_bit', description: 'The value that output C should take' },
      D: { kind: 'param_bit', description: 'The value that output D should take' },
      OUTA: bitOut('The value of A on the bit bus'),
      OUTB: bitOut('The value of B on the bit bus'),
      OUTC: bitOut('The value of C on the bit bus'),
      OUTD: bitOut('The value of D on the bit bus')
    }
  },
  FMC_IN: {
    name: 'FMC_IN',
    count: 1,
    description: 'FMC ACQ427 Module (ADC inputs)',
    fields: {
      ...numbered(8, (n) => [`GAIN${n}`, paramEnum('ADC input gain', ['10V', '5V', '2.5V', '1.25V'])]),
      ...numbered(8, (n) => [`VAL${n}`, posOut(`ADC Channel ${n} Data`, 'V', ADC_SCALE)]),
      TTL: bitOut('5V TTL input (CLOCK)'),
      ADC_B_FITTED: readEnum('Whether ADC B inputs are connected', ['ADC B input fitted', 'Not fitted'])
    }
  }
} as const satisfies Readonly<Record<string, BlockSpec>>

export type BlockName = keyof typeof BLOCKS

function badWrite (message: string, target: string): FlyScanError {
  return new FlyScanError(ErrorCode.BAD_INPUT, message, { details: { target } })
}

function isBlockName (name: string): name is BlockName {
  return Object.hasOwn(BLOCKS, name)
}

/** A block instance by its name as the box writes it: `PCOMP1` → PCOMP #1; `PCAP` and `PCAP1` → PCAP #1. */
export function blockInstance (instance: string): { readonly spec: BlockSpec, readonly number: number } {
  const m = /^([A-Z][A-Z_]*?)(\d*)$/.exec(instance)
  const name = m?.[1] ?? ''
  if (m === null || !isBlockName(name)) {
    throw badWrite(`PandA block ${JSON.stringify(instance)}: tst-fly knows ${Object.keys(BLOCKS).join(', ')}`, instance)
  }
  const spec: BlockSpec = BLOCKS[name]
  const digits = m[2] ?? ''
  const number = digits === '' ? 1 : Number(digits)
  if (digits === '' && spec.count > 1) {
    throw badWrite(`PandA block ${instance}: ${name} has ${spec.count} instances, so it needs a number (${name}1..${name}${spec.count})`, instance)
  }
  if (number < 1 || number > spec.count) {
    throw badWrite(`PandA block ${instance}: a PandABox has ${name}1..${name}${spec.count}`, instance)
  }
  return { spec, number }
}

/** The field spec of `BLOCKn.FIELD`. */
export function fieldSpec (target: string): FieldSpec {
  const [block, field, ...rest] = target.split('.')
  if (block === undefined || field === undefined || rest.length > 0) {
    throw badWrite(`PandA field ${JSON.stringify(target)}: expected BLOCK.FIELD`, target)
  }
  const { spec } = blockInstance(block)
  const f = spec.fields[field]
  if (f === undefined) throw badWrite(`PandA field ${target}: ${spec.name} has no field ${field} (it has ${Object.keys(spec.fields).join(', ')})`, target)
  return f
}

/** Every `BLOCKn.FIELD` of the given kind on a standard PandABox (`PCOMP1.OUT`, ..., in block order). */
export function outputsOfKind (kind: 'bit_out' | 'pos_out'): string[] {
  const out: string[] = []
  for (const spec of Object.values(BLOCKS) as BlockSpec[]) {
    for (const [field, f] of Object.entries(spec.fields)) {
      if (f.kind !== kind) continue
      if (spec.count === 1) out.push(`${spec.name}.${field}`)
      else for (let n = 1; n <= spec.count; n++) out.push(`${spec.name}${n}.${field}`)
    }
  }
  return out
}

const WRITABLE: ReadonlySet<FieldKind> = new Set<FieldKind>(['bit_mux', 'pos_mux', 'param_enum', 'param_int', 'param_uint', 'param_bit', 'param_time', 'time', 'write_int'])

function muxSourceOk (value: string, kind: 'bit_out' | 'pos_out'): boolean {
  if (value === 'ZERO' || (kind === 'bit_out' && value === 'ONE')) return true
  const [block, field] = value.split('.')
  if (block === undefined || field === undefined) return false
  try {
    return fieldSpec(`${block}.${field}`).kind === kind && value.split('.').length === 2
  } catch {
    return false
  }
}

function checkInteger (target: string, value: string, min: number, max: number): void {
  const n = Number(value)
  if (!/^-?\d+$/.test(value) || n < min || n > max) {
    throw badWrite(`PandA ${target}=${value}: expected an integer from ${min} to ${max}`, target)
  }
}

function checkNumber (target: string, value: string, min: number): void {
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n < min) {
    throw badWrite(`PandA ${target}=${value}: expected a finite number${min === 0 ? ' ≥ 0' : ''}`, target)
  }
}

function checkLabel (target: string, value: string, labels: readonly string[]): void {
  if (!labels.includes(value)) throw badWrite(`PandA ${target}=${value}: expected one of ${labels.map((l) => JSON.stringify(l)).join(', ')}`, target)
}

function checkFieldValue (target: string, f: FieldSpec, value: string): void {
  switch (f.kind) {
    case 'bit_mux':
    case 'pos_mux': {
      const kind = f.kind === 'bit_mux' ? 'bit_out' : 'pos_out'
      if (!muxSourceOk(value, kind)) {
        throw badWrite(`PandA ${target}=${value}: a ${f.kind} takes ${kind === 'bit_out' ? 'ZERO, ONE' : 'ZERO'} or a ${kind} such as ${kind === 'bit_out' ? 'PCOMP1.OUT' : 'INENC1.VAL'}`, target)
      }
      return
    }
    case 'param_enum': return checkLabel(target, value, f.labels ?? [])
    case 'param_int': case 'write_int': return checkInteger(target, value, -0x8000_0000, 0x7fff_ffff)
    case 'param_uint': return checkInteger(target, value, 0, f.max ?? 0xffff_ffff)
    case 'param_bit': return checkInteger(target, value, 0, 1)
    case 'param_time': case 'time': return checkNumber(target, value, 0)
    default: throw badWrite(`PandA ${target}: a ${f.kind} field cannot be written`, target)
  }
}

function checkAttrValue (target: string, f: FieldSpec, attr: string, value: string): void {
  const timeField = f.kind === 'param_time' || f.kind === 'time'
  if (timeField && attr === 'UNITS') return checkLabel(target, value, TIME_UNITS)
  if (timeField && attr === 'RAW') return checkInteger(target, value, 0, Number.MAX_SAFE_INTEGER)
  if (f.kind === 'pos_out' && attr === 'CAPTURE') return checkLabel(target, value, POS_CAPTURE)
  if (f.kind === 'pos_out' && (attr === 'SCALE' || attr === 'OFFSET')) return checkNumber(target, value, -Infinity)
  if (f.kind === 'pos_out' && attr === 'UNITS') return
  if (f.kind === 'ext_out' && attr === 'CAPTURE') return checkLabel(target, value, EXT_CAPTURE)
  if ((f.kind === 'bit_mux' || f.kind === 'pos_mux') && attr === 'DELAY') return checkInteger(target, value, 0, 0xffff_ffff)
  throw badWrite(`PandA ${target}: tst-fly does not write the ${attr} attribute of a ${f.kind} field`, target)
}

/**
 * Refuses (FLY_ERR_BAD_INPUT naming the target, the value and what is allowed) a `target=value` write the box would
 * refuse. Targets: `BLOCKn.FIELD`, `BLOCKn.FIELD.ATTR`, and the system write `*CAPTURE` (with an empty value).
 */
export function checkWrite (target: string, value: string): void {
  if (target === '*CAPTURE') {
    if (value !== '') throw badWrite(`PandA *CAPTURE=${value}: *CAPTURE= takes no value (it sets every CAPTURE to No)`, target)
    return
  }
  const parts = target.split('.')
  if (parts.length < 2 || parts.length > 3) throw badWrite(`PandA target ${JSON.stringify(target)}: expected BLOCK.FIELD or BLOCK.FIELD.ATTR`, target)
  const f = fieldSpec(`${parts[0] ?? ''}.${parts[1] ?? ''}`)
  const attr = parts[2]
  if (attr !== undefined) return checkAttrValue(target, f, attr, value)
  if (!WRITABLE.has(f.kind)) throw badWrite(`PandA ${target}: a ${f.kind} field is read-only`, target)
  checkFieldValue(target, f, value)
}

/** Refuses a table write to anything but a table field. */
export function checkTableWrite (target: string): void {
  if (fieldSpec(target).kind !== 'table') throw badWrite(`PandA ${target}: not a table field`, target)
}
