/**
 * SEQ table packing against words and bytes worked out by hand from the layout in PandABlocks-FPGA
 * modules/seq/seq.block.ini (REPEATS 15:0, TRIGGER 19:16, OUTA1..F1 25:20, OUTA2..F2 31:26, POSITION 63:32,
 * TIME1 95:64, TIME2 127:96), the 4096-row limit, and decode as the inverse of encode.
 */
import t, { type Test } from 'tap'
import { ErrorCode, isFlyScanError } from '../../src/errors.js'
import {
  SEQ_OUTPUT_BITS, SEQ_TABLE_MAX_ROWS, SEQ_TRIGGERS, decodeSeqTable, encodeSeqTable, seqRow, type SeqOutput
} from '../../src/panda/index.js'

/** `fn` throws a FlyScanError BAD_INPUT whose message matches `re`. */
function refused (t: Test, fn: () => unknown, re: RegExp): void {
  try {
    fn()
    t.fail(`expected a refusal matching ${re.source}`)
  } catch (err) {
    t.ok(isFlyScanError(err, ErrorCode.BAD_INPUT), 'FLY_ERR_BAD_INPUT')
    t.match((err as Error).message, re)
  }
}

t.test('docs/panda-control-port.md example rows: OUTA1 then OUTB1, position -1', async t => {
  const words = encodeSeqTable([
    seqRow({ repeats: 1, outa1: true, position: -1, time1: 1250, time2: 1250 }),
    seqRow({ repeats: 1, outb1: true, position: 0, time1: 625, time2: 625 })
  ])
  // 1048577 = 0x00100001: REPEATS 1, bit 20 (OUTA1). 4294967295: -1 in two's complement. 2097153 = bit 21 + 1.
  t.same([...words], [1048577, 4294967295, 1250, 1250, 2097153, 0, 625, 625])
  // Little-endian bytes of the first row, as a `<B` (base64) write would carry them.
  t.same([...new Uint8Array(words.buffer, 0, 16)], [
    0x01, 0x00, 0x10, 0x00, 0xff, 0xff, 0xff, 0xff, 0xe2, 0x04, 0x00, 0x00, 0xe2, 0x04, 0x00, 0x00
  ])
})

t.test('every field at its extreme: all outputs, the last trigger, int32 min, uint32 max', async t => {
  const all = Object.fromEntries(Object.keys(SEQ_OUTPUT_BITS).map((k) => [k, true])) as Record<SeqOutput, boolean>
  const words = encodeSeqTable([seqRow({ ...all, repeats: 65535, trigger: 'POSC<=POSITION', position: -2147483648, time1: 4294967295, time2: 1 })])
  // 0xFFF00000 (12 outputs) | 0x000C0000 (trigger 12) | 0x0000FFFF (repeats) = 0xFFFCFFFF
  t.same([...words], [0xFFFCFFFF, 0x80000000, 4294967295, 1])
  t.equal(0xFFFCFFFF, 4294770687)
})

t.test('each output has its own bit, OUTA1 = 20 ... OUTF2 = 31', async t => {
  const expected: Array<[SeqOutput, number]> = [
    ['outa1', 20], ['outb1', 21], ['outc1', 22], ['outd1', 23], ['oute1', 24], ['outf1', 25],
    ['outa2', 26], ['outb2', 27], ['outc2', 28], ['outd2', 29], ['oute2', 30], ['outf2', 31]
  ]
  for (const [out, bit] of expected) {
    const [w0] = encodeSeqTable([seqRow({ repeats: 0, [out]: true })])
    t.equal(w0, 2 ** bit, `${out} is bit ${bit}`)
  }
  // outc2 with REPEATS 1: 2^28 + 1
  t.equal(encodeSeqTable([seqRow({ outc2: true })])[0], 268435457)
})

t.test('trigger codes are the enum order of seq.block.ini', async t => {
  t.equal(SEQ_TRIGGERS.length, 13)
  t.equal(encodeSeqTable([seqRow({ trigger: 'BITA=1' })])[0], (2 << 16) + 1)
  t.equal(encodeSeqTable([seqRow({ trigger: 'POSA>=POSITION' })])[0], (7 << 16) + 1)
  t.equal(encodeSeqTable([seqRow({ trigger: 'BITC=0' })])[0], 327681)
  SEQ_TRIGGERS.forEach((trigger, code) => {
    t.equal((encodeSeqTable([seqRow({ trigger, repeats: 0 })])[0] ?? 0) >>> 16, code, trigger)
  })
})

t.test('seqRow defaults are ophyd-async SeqTable.row(): once, Immediate, everything 0 or low', async t => {
  const r = seqRow()
  t.equal(r.repeats, 1)
  t.equal(r.trigger, 'Immediate')
  t.equal(r.position, 0)
  t.equal(r.time1, 0)
  t.equal(r.time2, 0)
  t.notOk(Object.keys(SEQ_OUTPUT_BITS).some((k) => r[k as SeqOutput]))
  t.same([...encodeSeqTable([r])], [1, 0, 0, 0])
})

t.test('decode is the inverse of encode, negative positions included', async t => {
  const rows = [
    seqRow({ repeats: 3, trigger: 'POSA>=POSITION', position: -123456, time1: 10, outa1: true, time2: 20, outb2: true }),
    seqRow({ repeats: 0, trigger: 'BITB=0', position: 2147483647, time2: 4294967295, outf1: true, outf2: true }),
    seqRow({ repeats: 65535, trigger: 'Immediate', position: -2147483648 })
  ]
  t.same(decodeSeqTable(encodeSeqTable(rows)), rows)
  t.same(decodeSeqTable([1048577, 4294967295, 1250, 1250]), [seqRow({ outa1: true, position: -1, time1: 1250, time2: 1250 })])
  t.same(decodeSeqTable([]), [])
})

t.test('4096 rows fit; 4097 are refused with the numbers', async t => {
  const full = Array.from({ length: SEQ_TABLE_MAX_ROWS }, (_v, i) => seqRow({ time2: i + 1 }))
  t.equal(encodeSeqTable(full).length, 4096 * 4)
  refused(t, () => encodeSeqTable([...full, seqRow()]), /4097 rows, but the SEQ block holds at most 4096/)
})

t.test('values out of range are refused naming the row and field', async t => {
  const cases: Array<[Partial<Parameters<typeof seqRow>[0]>, RegExp]> = [
    [{ repeats: 65536 }, /rows\[1\]\.repeats: 65536 is not an integer from 0 to 65535/],
    [{ repeats: 1.5 }, /rows\[1\]\.repeats: 1\.5/],
    [{ position: 2147483648 }, /rows\[1\]\.position: 2147483648 is not an integer from -2147483648 to 2147483647/],
    [{ time1: -1 }, /rows\[1\]\.time1: -1 is not an integer from 0 to 4294967295/],
    [{ time2: 4294967296 }, /rows\[1\]\.time2: 4294967296/],
    [{ trigger: 'BITD=1' as never }, /rows\[1\]\.trigger: "BITD=1" is not one of Immediate/],
    [{ outa1: 1 as never }, /rows\[1\]\.outa1: 1 is not a boolean/]
  ]
  for (const [bad, re] of cases) {
    refused(t, () => encodeSeqTable([seqRow(), { ...seqRow(), ...bad }]), re)
  }
})

t.test('decode refuses a partial row, a word out of range and a trigger code above 12', async t => {
  refused(t, () => decodeSeqTable([1, 0, 0, 0, 1]), /5 words is not a whole number of 4-word rows/)
  refused(t, () => decodeSeqTable([1, -1, 0, 0]), /rows\[0\]\.word 1: -1 is not an integer from 0 to 4294967295/)
  refused(t, () => decodeSeqTable([0, 0, 0, 0, (13 << 16) | 1, 0, 0, 0]), /rows\[1\]: TRIGGER code 13 is not one of 0\.\.12/)
})
