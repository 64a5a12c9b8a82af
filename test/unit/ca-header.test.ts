import t from 'tap'
import {
  CaCommand, EXTENDED_HEADER_SIZE, EcaStatus, HEADER_SIZE, caCommandName, decodeHeader, decodePaddedString,
  encodeHeader, encodeMessage, encodePaddedString, headerSize, padTo8
} from '../../src/parsers/index.js'
import { MESSAGES, bytesOf, EXTENDED_REPLY_HEAD } from '../fixtures/ca/messages.js'
import { hex } from '../fixtures/ca/dbr-layouts.js'

t.test('spec messages decode to their fields and encode back to the same bytes', async t => {
  for (const m of MESSAGES) {
    t.test(m.name, async t => {
      const bytes = bytesOf(m.hex)
      t.equal(bytes.length, m.headerSize + m.header.payloadSize, 'fixture length = header + payload')
      t.equal(bytes.length % 8, 0, 'padded to 8')
      const decoded = decodeHeader(bytes, 0)
      t.same(decoded, { header: m.header, size: m.headerSize })
      t.equal(headerSize(m.header), m.headerSize)
      t.equal(hex(encodeMessage(m.header, bytes.subarray(m.headerSize))), hex(bytes))
      // Every strict prefix of the header is "not yet".
      for (let k = 0; k < m.headerSize; k++) t.equal(decodeHeader(bytes.subarray(0, k), 0), undefined, `prefix of ${k} bytes`)
    })
  }
})

t.test('a header at an offset inside a larger buffer', async t => {
  const m = MESSAGES[9]!
  const buf = new Uint8Array(5 + bytesOf(m.hex).length)
  buf.set(bytesOf(m.hex), 5)
  t.same(decodeHeader(buf.subarray(1), 4)?.header, m.header)
  const out = new Uint8Array(40).fill(0xee)
  t.equal(encodeHeader(m.header, out, 7), HEADER_SIZE)
  t.equal(hex(out.subarray(7, 23)), hex(bytesOf(m.hex).subarray(0, 16)))
  t.equal(out[6], 0xee)
  t.equal(out[23], 0xee)
})

t.test('extended header: chosen when payload size or count reaches 0xFFFF, read whenever the payload size is 0xFFFF', async t => {
  const head = bytesOf(EXTENDED_REPLY_HEAD)
  t.same(decodeHeader(head, 0), {
    header: { command: 15, payloadSize: 8_000_000, dataType: 6, dataCount: 1_000_000, parameter1: 1, parameter2: 9 },
    size: EXTENDED_HEADER_SIZE
  })
  t.equal(decodeHeader(head.subarray(0, 23), 0), undefined, '23 bytes of an extended header are not enough')
  const base = { command: 15, dataType: 6, parameter1: 0, parameter2: 0 }
  t.equal(headerSize({ payloadSize: 0xfffe, dataCount: 1 }), HEADER_SIZE)
  t.equal(headerSize({ payloadSize: 0xfff8, dataCount: 0xfffe }), HEADER_SIZE)
  t.equal(headerSize({ payloadSize: 0xffff, dataCount: 1 }), EXTENDED_HEADER_SIZE)
  t.equal(headerSize({ payloadSize: 0, dataCount: 0xffff }), EXTENDED_HEADER_SIZE, 'a count of 0xFFFF goes extended, as libca does')
  const out = new Uint8Array(24)
  t.equal(encodeHeader({ ...base, payloadSize: 0x10000, dataCount: 0x2000 }, out, 0), 24)
  t.equal(hex(out), '000fffff00060000' + '0000000000000000' + '00010000' + '00002000')
  // libca and rsrv test only the payload size; a nonzero 16-bit count does not turn the extension off.
  const odd = bytesOf('000f ffff 0006 0001 00000000 00000000 00000010 00000002')
  t.same(decodeHeader(odd, 0)?.header, { command: 15, payloadSize: 16, dataType: 6, dataCount: 2, parameter1: 0, parameter2: 0 })
})

t.test('helpers', async t => {
  t.same([0, 1, 7, 8, 9, 16, 17].map(padTo8), [0, 8, 8, 8, 16, 16, 24])
  t.equal(hex(encodePaddedString('T:DBL')), '543a44424c000000')
  t.equal(hex(encodePaddedString('1234567')), '3132333435363700', 'seven characters and the NUL fill 8')
  t.equal(encodePaddedString('12345678').length, 16, 'eight characters need a second block for the NUL')
  t.equal(decodePaddedString(bytesOf('543a44424c000000')), 'T:DBL')
  t.equal(decodePaddedString(bytesOf('4142')), 'AB', 'no NUL: the whole payload')
  t.equal(caCommandName(CaCommand.READ_NOTIFY), 'READ_NOTIFY (15)')
  t.equal(caCommandName(99), 'unknown command 99')
  // (number << 3) | severity, as caerr.h's DEFMSG.
  t.same(EcaStatus, {
    NORMAL: (0 << 3) | 1,
    TOLARGE: (9 << 3) | 0,
    INTERNAL: (17 << 3) | 6,
    BADMONID: (30 << 3) | 2,
    NORDACCESS: (46 << 3) | 0,
    BADTYPE: (14 << 3) | 2,
    BADCOUNT: (22 << 3) | 0,
    NOWTACCESS: (47 << 3) | 0,
    PUTFAIL: (20 << 3) | 0,
    GETFAIL: (19 << 3) | 0,
    BADCHID: (51 << 3) | 2
  })
})
