/**
 * The SEQ block's table (ophyd-async's SeqTable, camelCased): rows, and their packed form of four 32-bit words per
 * row as the FPGA reads them (PandABlocks-FPGA `modules/seq/seq.block.ini`, commit 916fb9a6; ../../docs/panda-device.md):
 *
 * | word | bits  | field                                   |
 * |------|-------|-----------------------------------------|
 * | 0    | 15:0  | REPEATS (0: forever)                    |
 * | 0    | 19:16 | TRIGGER (the index in SEQ_TRIGGERS)     |
 * | 0    | 25:20 | OUTA1..OUTF1 (bit 20 is OUTA1)          |
 * | 0    | 31:26 | OUTA2..OUTF2                            |
 * | 1    | 31:0  | POSITION (int32, two's complement)      |
 * | 2    | 31:0  | TIME1 (PRESCALE units; 0 skips phase 1) |
 * | 3    | 31:0  | TIME2 (PRESCALE units)                  |
 *
 * A table holds at most SEQ_TABLE_MAX_ROWS rows (`lines: 4096`).
 */
import { ErrorCode, FlyScanError } from '../errors.js'

export const SEQ_TRIGGERS = [
  'Immediate', 'BITA=0', 'BITA=1', 'BITB=0', 'BITB=1', 'BITC=0', 'BITC=1',
  'POSA>=POSITION', 'POSA<=POSITION', 'POSB>=POSITION', 'POSB<=POSITION', 'POSC>=POSITION', 'POSC<=POSITION'
] as const
export type SeqTrigger = typeof SEQ_TRIGGERS[number]

export const SEQ_TABLE_MAX_ROWS = 4096
export const SEQ_ROW_WORDS = 4

/** The six outputs, phase 1 then phase 2, with their bit in word 0. */
export const SEQ_OUTPUT_BITS = { outa1: 20, outb1: 21, outc1: 22, outd1: 23, oute1: 24, outf1: 25, outa2: 26, outb2: 27, outc2: 28, outd2: 29, oute2: 30, outf2: 31 } as const
export type SeqOutput = keyof typeof SEQ_OUTPUT_BITS
const OUTPUTS = Object.keys(SEQ_OUTPUT_BITS) as SeqOutput[]

export interface SeqRow extends Readonly<Record<SeqOutput, boolean>> {
  /** Times the row runs, 0..65535; 0 means forever. */
  readonly repeats: number
  readonly trigger: SeqTrigger
  /** Compared by the POS* triggers; int32. */
  readonly position: number
  /** Phase 1 length in PRESCALE units, 0..2³²−1 (0 skips phase 1). */
  readonly time1: number
  /** Phase 2 length in PRESCALE units, 0..2³²−1. */
  readonly time2: number
}

/** A row with ophyd-async's defaults (`SeqTable.row()`): runs once, immediately, every output low, both times 0. */
export function seqRow (fields: Partial<SeqRow> = {}): SeqRow {
  const outs = Object.fromEntries(OUTPUTS.map((o) => [o, fields[o] ?? false])) as Record<SeqOutput, boolean>
  return {
    repeats: fields.repeats ?? 1,
    trigger: fields.trigger ?? 'Immediate',
    position: fields.position ?? 0,
    time1: fields.time1 ?? 0,
    time2: fields.time2 ?? 0,
    ...outs
  }
}

function bad (message: string, details: Record<string, string | number> = {}): FlyScanError {
  return new FlyScanError(ErrorCode.BAD_INPUT, message, { details })
}

function checkInt (row: number, field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw bad(`SEQ table rows[${row}].${field}: ${String(value)} is not an integer from ${min} to ${max}`, { row, field })
  }
  return value
}

/**
 * Packs rows into the words a `SEQ1.TABLE<` write sends, SEQ_ROW_WORDS per row. Throws FLY_ERR_BAD_INPUT naming
 * the row and field of the first value out of range, or the row count when there are more than 4096 rows.
 */
export function encodeSeqTable (rows: readonly SeqRow[]): Uint32Array {
  if (rows.length > SEQ_TABLE_MAX_ROWS) {
    throw bad(`SEQ table: ${rows.length} rows, but the SEQ block holds at most ${SEQ_TABLE_MAX_ROWS}`, { rows: rows.length, limit: SEQ_TABLE_MAX_ROWS })
  }
  const words = new Uint32Array(rows.length * SEQ_ROW_WORDS)
  rows.forEach((r, i) => {
    const trigger = SEQ_TRIGGERS.indexOf(r.trigger)
    if (trigger < 0) throw bad(`SEQ table rows[${i}].trigger: ${JSON.stringify(r.trigger)} is not one of ${SEQ_TRIGGERS.join(', ')}`, { row: i, field: 'trigger' })
    let w0 = checkInt(i, 'repeats', r.repeats, 0, 0xffff) | (trigger << 16)
    for (const o of OUTPUTS) {
      const v = r[o]
      if (typeof v !== 'boolean') throw bad(`SEQ table rows[${i}].${o}: ${String(v)} is not a boolean`, { row: i, field: o })
      if (v) w0 |= 1 << SEQ_OUTPUT_BITS[o]
    }
    const at = i * SEQ_ROW_WORDS
    words[at] = w0 >>> 0
    words[at + 1] = checkInt(i, 'position', r.position, -0x8000_0000, 0x7fff_ffff) >>> 0
    words[at + 2] = checkInt(i, 'time1', r.time1, 0, 0xffff_ffff)
    words[at + 3] = checkInt(i, 'time2', r.time2, 0, 0xffff_ffff)
  })
  return words
}

/**
 * Unpacks the words of a table read (`SEQ1.TABLE?`) into rows. Throws FLY_ERR_BAD_INPUT when the length is not a
 * whole number of rows, a word is not a uint32, or a row's TRIGGER code is above 12.
 */
export function decodeSeqTable (words: ArrayLike<number>): SeqRow[] {
  if (words.length % SEQ_ROW_WORDS !== 0) {
    throw bad(`SEQ table: ${words.length} words is not a whole number of ${SEQ_ROW_WORDS}-word rows`, { words: words.length })
  }
  const rows: SeqRow[] = []
  for (let at = 0; at < words.length; at += SEQ_ROW_WORDS) {
    const i = at / SEQ_ROW_WORDS
    const w = [0, 1, 2, 3].map((k) => checkInt(i, `word ${k}`, words[at + k], 0, 0xffff_ffff))
    const w0 = w[0] ?? 0
    const code = (w0 >>> 16) & 0xf
    const trigger = SEQ_TRIGGERS[code]
    if (trigger === undefined) throw bad(`SEQ table rows[${i}]: TRIGGER code ${code} is not one of 0..${SEQ_TRIGGERS.length - 1}`, { row: i, code })
    const outs = Object.fromEntries(OUTPUTS.map((o) => [o, ((w0 >>> SEQ_OUTPUT_BITS[o]) & 1) === 1])) as Record<SeqOutput, boolean>
    rows.push({ repeats: w0 & 0xffff, trigger, position: (w[1] ?? 0) | 0, time1: w[2] ?? 0, time2: w[3] ?? 0, ...outs })
  }
  return rows
}
