/**
 * The simulated PandA's data port, on a manual clock, read with our parser: every format and processing option
 * giving the same rows, the header a real box writes (compared with the shared recordings), BIN blocks of whole
 * rows, the text header, NO_HEADER / NO_STATUS / ONE_SHOT / BARE, a refused options line, several captures on one
 * connection, and every way a capture ends for a client: Disarmed, Ok, Data overrun, Early disconnect; `missed`
 * for a late client; an arm refused while a client still takes data.
 */
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PandaControlClient } from '../../src/panda/index.js'
import { ManualClock, SimPanda, type SimPandaOptions } from '../../src/sim/index.js'
import { pandaFixturesDir } from '../support/h5py.js'
import { trackLeaks } from '../support/leaks.js'
import { DataReader, settle, waitFor, type Acquisition } from './sim-panda-support.js'

interface Rig {
  readonly panda: SimPanda
  readonly client: PandaControlClient
  readonly clock: ManualClock
  /** Advances the clock in 1 ms steps, letting sockets move every `yieldEvery` steps. */
  run: (ms: number, yieldEvery?: number) => Promise<void>
  reader: (options: string) => Promise<DataReader>
}

async function rig (t: Test, options: Partial<SimPandaOptions> = {}): Promise<Rig> {
  trackLeaks(t)
  const clock = new ManualClock()
  const t0 = clock.nowMs()
  const panda = await SimPanda.start({ clock, motor: { positionAt: (ms) => 0.09 * (ms - t0) }, ...options })
  t.teardown(async () => { await panda.close() })
  const client = await PandaControlClient.connect('127.0.0.1', panda.controlPort, 2000)
  t.teardown(async () => { await client.close() })
  const readers: DataReader[] = []
  t.teardown(() => { for (const r of readers) r.close() })
  return {
    panda,
    client,
    clock,
    run: async (ms, yieldEvery = 5) => {
      for (let i = 0; i < ms; i++) {
        clock.advance(1)
        if (i % yieldEvery === yieldEvery - 1) await settle(1)
      }
      await settle(5)
    },
    reader: async (o) => {
      const r = await DataReader.connect(panda.dataPort, o)
      readers.push(r)
      await waitFor(() => r.bytes.length > 0 || r.closed || o.includes('NO_STATUS') || o.includes('BARE'), 2000, () => `a reply to '${o}'`)
      await settle(5)
      return r
    }
  }
}

/** CLOCK1 every ms (high 0.5 ms) gates and triggers PCAP; COUNTER1 counts it; the encoder, an ADC and bits captured. */
async function configure (client: PandaControlClient): Promise<void> {
  const settings: Array<[string, string | number]> = [
    ['CLOCK1.PERIOD', 0.001], ['CLOCK1.WIDTH', 0.0005], ['CLOCK1.ENABLE', 'PCAP.ACTIVE'],
    ['COUNTER1.TRIG', 'CLOCK1.OUT'], ['COUNTER1.ENABLE', 'PCAP.ACTIVE'], ['COUNTER1.START', -3],
    ['PCAP.TRIG', 'CLOCK1.OUT'], ['PCAP.GATE', 'CLOCK1.OUT'], ['PCAP.TRIG_EDGE', 'Falling'], ['PCAP.ENABLE', 'ONE'],
    ['INENC1.VAL.SCALE', 0.045], ['INENC1.VAL.OFFSET', 1.5], ['INENC1.VAL.UNITS', 'deg'],
    ['INENC1.VAL.CAPTURE', 'Min Max Mean'], ['COUNTER1.OUT.CAPTURE', 'Value'], ['FMC_IN.VAL1.CAPTURE', 'Mean'],
    ['PCAP.TS_TRIG.CAPTURE', 'Value'], ['PCAP.BITS0.CAPTURE', 'Value']
  ]
  for (const [target, value] of settings) await client.put(target, value)
}

function byName (a: Acquisition): Array<Map<string, number>> {
  return a.rows.map((row) => new Map(a.start.fields.map((f, i) => [`${f.name}.${f.capture}`, row[i] as number])))
}

t.test('every format and processing gives the same rows, as our parser reads them', async t => {
  const r = await rig(t)
  await configure(r.client)
  const options = ['FRAMED', 'UNFRAMED', 'BASE64', 'ASCII'].flatMap((f) => [`XML ${f} SCALED`, `XML ${f} RAW`])
  const readers = await Promise.all(options.map(async (o) => await r.reader(o)))
  await r.client.arm()
  await r.run(40)
  await r.client.disarm()
  await settle(10)
  const reference = (await readers[0]?.ended(1))?.[0] as Acquisition
  t.equal(reference.rows.length, 40, 'a row per ms')
  t.equal(reference.end?.reason, 'Disarmed')
  t.equal(reference.end?.samples, 40)
  const ref = byName(reference)
  t.same(ref.map((m) => m.get('COUNTER1.OUT.Value')), Array.from({ length: 40 }, (_, k) => k - 2), 'the counter')
  t.same(ref.map((m) => Math.round((m.get('PCAP.TS_TRIG.Value') ?? 0) * 1e7) / 1e7), Array.from({ length: 40 }, (_, k) => (k + 0.5) / 1000), 'TS_TRIG at each falling gate')
  ref.forEach((m, k) => {
    const mean = ((m.get('INENC1.VAL.Mean') ?? 0) - 1.5) / 0.045
    t.ok(Math.abs(mean - (2 * k + 0.5)) <= 0.5, `row ${k}: mean encoder ${mean} counts, halfway through its gate`)
  })
  for (const [i, o] of options.entries()) {
    const acq = (await readers[i]?.ended(1))?.[0] as Acquisition
    const rows = byName(acq)
    t.equal(acq.start.format, { FRAMED: 'Framed', UNFRAMED: 'Unframed', BASE64: 'Base64', ASCII: 'ASCII' }[o.split(' ')[1] as string], `${o}: format`)
    t.equal(acq.start.process, o.endsWith('RAW') ? 'Raw' : 'Scaled')
    t.equal(acq.start.attributes.sample_bytes === undefined, o.includes('ASCII'), `${o}: sample_bytes only when binary`)
    t.equal(acq.end?.reason, 'Disarmed')
    t.equal(rows.length, 40, `${o}: rows`)
    const exact = !o.includes('ASCII SCALED')
    let worst = 0
    rows.forEach((m, k) => {
      for (const [name, v] of ref[k] as Map<string, number>) {
        const w = m.get(name) as number
        worst = Math.max(worst, exact ? Math.abs(w - v) : Math.abs(w - v) / Math.max(1, Math.abs(v)))
      }
    })
    t.ok(exact ? worst === 0 : worst < 1e-9, `${o}: values as FRAMED SCALED (largest difference ${worst})`)
    if (o.endsWith('RAW')) {
      t.same(acq.start.fields[0], { ...acq.start.fields[0], name: 'PCAP.GATE_DURATION', type: 'int32', capture: 'Value', scale: 8e-9 },
        `${o}: the anonymous sample count the Means need comes first`)
    }
  }
})

/** The header part of a stream: from `<header>` to the empty line. */
function headerOf (text: string, from = 0): string {
  const start = text.indexOf('<header>', from)
  return text.slice(start, text.indexOf('</header>\n\n', start) + '</header>\n\n'.length)
}

t.test('the header has the shape of a real box\'s (the shared recordings), and BIN blocks hold whole rows', async t => {
  const r = await rig(t)
  // The fields of fast_dump.bin: PCAP.BITS2, COUNTER1.OUT Min Max Mean, COUNTER2.OUT Mean, COUNTER3.OUT Value, TS_START.
  for (const [target, value] of [
    ['COUNTER1.OUT.CAPTURE', 'Min Max Mean'], ['COUNTER2.OUT.CAPTURE', 'Mean'], ['COUNTER3.OUT.CAPTURE', 'Value'],
    ['PCAP.TS_START.CAPTURE', 'Value'], ['PCAP.BITS2.CAPTURE', 'Value'], ['CLOCK1.PERIOD', 0.0001], ['CLOCK1.ENABLE', 'ONE'],
    ['PCAP.TRIG', 'CLOCK1.OUT'], ['PCAP.GATE', 'ONE'], ['PCAP.ENABLE', 'ONE']
  ] as const) await r.client.put(target, value)
  const reader = await r.reader('XML FRAMED SCALED')
  await r.client.arm()
  await r.run(30)
  await r.client.disarm()
  await reader.ended(1)
  const ours = headerOf(reader.text)
  const data = /^<data( arm_time="[^"]+")( start_time="[^"]+")/m.exec(ours)
  t.ok(data !== null, 'arm_time and start_time first, as PandABlocks-server dd1b8e0 writes them')
  for (const rec of ['fast_dump.bin', 'slow_dump.bin']) {
    const theirs = headerOf(readFileSync(join(pandaFixturesDir(), rec)).toString('latin1'))
    t.equal(ours.replace(data?.[1] ?? '', '').replace(data?.[2] ?? '', ''), theirs, `${rec}: the same header but for the times`)
  }
  const bytes = reader.bytes
  const sampleBytes = reader.acquisitions[0]?.start.sampleBytes ?? 0
  let at = bytes.indexOf('</header>\n\n') + '</header>\n\n'.length
  const blocks: number[] = []
  while (bytes.subarray(at, at + 4).toString('latin1') === 'BIN ') {
    const len = bytes.readUInt32LE(at + 4)
    blocks.push(len - 8)
    at += len
  }
  t.ok(blocks.length > 1)
  t.ok(blocks.every((n) => n > 0 && n % sampleBytes === 0), `every block a whole number of ${sampleBytes}-byte rows: ${blocks.join(', ')}`)
  t.equal(blocks.reduce((a, b) => a + b, 0) / sampleBytes, reader.acquisitions[0]?.rows.length)
  t.match(bytes.subarray(at).toString('latin1'), /^END \d+ Disarmed\n$/)
})

t.test('the text header, and NO_HEADER, NO_STATUS, ONE_SHOT, BARE', async t => {
  const r = await rig(t)
  await configure(r.client)
  const text = await r.reader('FRAMED SCALED')
  const dflt = await r.reader('DEFAULT')
  const noHeader = await r.reader('FRAMED RAW NO_HEADER')
  const noStatus = await r.reader('XML FRAMED SCALED NO_STATUS')
  const oneShot = await r.reader('XML FRAMED SCALED ONE_SHOT')
  const bare = await r.reader('BARE')
  await r.client.arm()
  await r.run(10)
  await r.client.disarm()
  await oneShot.ended(1)
  await waitFor(() => oneShot.closed && bare.closed, 2000, () => 'ONE_SHOT and BARE to close')
  const lines = text.text.split('\n')
  t.same(lines[0], 'OK')
  t.match(lines[1], /^arm_time: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/)
  t.match(lines[2], /^start_time: /)
  t.same(lines.slice(3, 8), ['missed: 0', 'process: Scaled', 'format: Framed', 'sample_bytes: 52', 'fields:'])
  t.same(lines[8], ' PCAP.BITS0 uint32 Value')
  t.same(lines[9], ' INENC1.VAL double Min scale: 0.045 offset: 1.5 units: deg')
  t.match(dflt.text, /\nformat: ASCII\nfields:\n/, 'DEFAULT: ASCII with the text header')
  t.match(dflt.text, /\n\n \d+ [-\d.e]+ /, 'ASCII rows start with a space')
  t.match(dflt.text, /\nEND 10 Disarmed\n$/)
  const layoutBytes = 4 * (1 + 1 + 1 + 2 + 2 + 2 + 2)
  t.ok(noHeader.text.startsWith('OK\nBIN '), 'NO_HEADER: rows right after OK')
  t.match(noHeader.text, /END 10 Disarmed\n$/)
  t.notOk(noStatus.text.startsWith('OK'), 'NO_STATUS: no OK...')
  t.notMatch(noStatus.text, /\nEND \d+/, '...and no END')
  t.equal(noStatus.acquisitions[0]?.rows.length, 10)
  t.equal(oneShot.acquisitions[0]?.end?.reason, 'Disarmed', 'ONE_SHOT: one capture, then the box closes')
  t.equal(bare.bytes.length, 10 * layoutBytes, 'BARE: nothing but 10 raw rows')
  const s = await r.client.pcapStatus()
  t.equal(s.readers, 4, 'the ONE_SHOT and BARE clients are gone')
})

t.test('a bad options line gets ERR and the connection closes', async t => {
  const r = await rig(t)
  const bad = await r.reader('XML FRAMED SOMETIMES')
  await waitFor(() => bad.closed, 2000, () => 'the close')
  t.equal(bad.text, 'ERR Invalid data capture option\n')
  const cr = await r.reader('XML FRAMED\r')
  await waitFor(() => cr.closed, 2000, () => 'the close')
  t.equal(cr.text, 'ERR Cannot process CR character\n')
})

t.test('several captures on one connection, each with its own header', async t => {
  const r = await rig(t)
  await configure(r.client)
  const reader = await r.reader('XML FRAMED SCALED')
  await r.client.arm()
  await r.run(5)
  await r.client.put('PCAP.ENABLE', 'ZERO')
  await reader.ended(1)
  await r.client.put('*CAPTURE', '')
  await r.client.putAttr('PCAP', 'TS_TRIG', 'CAPTURE', 'Value')
  await r.client.put('PCAP.ENABLE', 'ONE')
  await r.client.arm()
  await r.run(3)
  await r.client.disarm()
  const acqs = await reader.ended(2)
  t.equal(acqs[0]?.end?.reason, 'Ok', 'PCAP.ENABLE fell: Ok')
  t.equal(acqs[0]?.rows.length, 5)
  t.same(acqs[1]?.start.fields.map((f) => f.name), ['PCAP.TS_TRIG'])
  t.equal(acqs[1]?.rows.length, 3)
  t.equal(acqs[1]?.end?.reason, 'Disarmed')
  t.equal(reader.text.split('\nOK\n').length, 1, 'OK once, at the start')
})

t.test('a client that stops reading gets Data overrun; the others get every row', async t => {
  // 2 MHz of 44-byte rows: 26 MB in 300 ms of simulated time, against an 8 MB buffer.
  const r = await rig(t, { rateMode: { rowsPerSecond: 2e6 }, bufferBytes: 8 << 20, socketHighWater: 64 * 1024 })
  await configure(r.client)
  const fast = await r.reader('XML FRAMED RAW')
  const slow = await r.reader('XML FRAMED RAW')
  slow.socket.pause()
  await r.client.arm()
  await r.run(300, 1)
  await r.client.disarm()
  await settle(20)
  slow.socket.resume()
  const [f] = await fast.ended(1)
  const [s] = await slow.ended(1, 5000)
  t.equal(f?.end?.reason, 'Disarmed')
  t.equal(f?.rows.length, 600_000, '2 MHz for 300 ms')
  t.equal(s?.end?.reason, 'Data overrun')
  t.equal(s?.end?.samples, s?.rows.length, 'END counts the rows it did send')
  t.ok((s?.rows.length ?? 0) < 600_000)
  const record = r.panda.dataConnections.find((c) => c.captures[0]?.reason === 'Data overrun')
  t.ok(record !== undefined)
  t.same(await r.client.pcapStatus(), { state: 'Idle', readers: 2, takingData: 0 })
})

t.test('a client joining late: every row while the buffer holds them, then `missed`', async t => {
  const r = await rig(t, { rateMode: { rowsPerSecond: 1e6 }, bufferBytes: 256 * 1024 })
  await configure(r.client)
  const early = await r.reader('XML FRAMED SCALED')
  await r.client.arm()
  await r.run(20)
  const late = await r.reader('XML FRAMED SCALED')
  await r.run(5)
  await r.client.disarm()
  const [e] = await early.ended(1)
  const [l] = await late.ended(1)
  const total = e?.rows.length ?? 0
  t.equal(total, 25_000)
  const missed = Number(l?.start.missed)
  t.ok(missed > 0, `missed ${missed}`)
  t.equal(missed + (l?.rows.length ?? 0), total, 'missed + received = every row')
  t.equal(l?.end?.samples, l?.rows.length)
  const r2 = await rig(t, { rateMode: { rowsPerSecond: 1000 } })
  await configure(r2.client)
  await r2.client.arm()
  await r2.run(10)
  const soon = await r2.reader('XML FRAMED SCALED')
  await r2.run(5)
  await r2.client.disarm()
  const [a] = await soon.ended(1)
  t.equal(a?.start.missed, 0, 'joining before the buffer moves on: nothing missed...')
  t.equal(a?.rows.length, 15, '...every row from the start')
})

t.test('Early disconnect is counted; an arm waits for clients still taking data', async t => {
  const r = await rig(t, { rateMode: { rowsPerSecond: 2e6 }, bufferBytes: 256 << 20, socketHighWater: 64 * 1024 })
  await configure(r.client)
  const quitter = await r.reader('XML FRAMED SCALED')
  const slow = await r.reader('XML FRAMED RAW')
  slow.socket.pause()
  await r.client.arm()
  await r.run(5)
  quitter.close()
  await r.run(300)
  await r.client.disarm()
  await settle(20)
  t.same(r.panda.dataConnections[0]?.captures, [{ rows: r.panda.dataConnections[0]?.captures[0]?.rows, missed: 0, reason: 'Early disconnect' }])
  const status = await r.client.pcapStatus()
  t.same(status, { state: 'Busy', readers: 1, takingData: 1 }, 'the slow client still has rows to take')
  t.match(await r.client.arm().then(() => 'armed', (err: Error) => err.message), /Data clients still taking data/)
  slow.socket.resume()
  const [s] = await slow.ended(1, 10_000)
  t.equal(s?.end?.reason, 'Disarmed')
  t.equal(s?.rows.length, 610_000, 'every row, late')
  await r.client.arm()
  t.equal((await r.client.pcapStatus()).state, 'Busy', 'then the next arm goes through')
  await r.client.disarm()
})

t.test('hardware faults end a capture with their reason; a connection cut mid-block has no END', async t => {
  const r = await rig(t)
  await configure(r.client)
  const reader = await r.reader('XML FRAMED SCALED')
  for (const reason of ['DMA data error', 'Driver data overrun'] as const) {
    await r.client.arm()
    await r.run(5)
    r.panda.fault(reason)
    await settle(5)
    t.equal(await r.client.pcapCompletion(), reason, `*PCAP.COMPLETION? ${reason}`)
  }
  // Triggers 2 ticks apart with rows of 11 words.
  await r.client.put('CLOCK1.PERIOD.RAW', 4)
  await r.client.put('CLOCK1.WIDTH.RAW', 2)
  await r.client.arm()
  await r.run(1)
  const acqs = await reader.ended(3)
  t.same(acqs.map((a) => a.end?.reason), ['DMA data error', 'Driver data overrun', 'Framing error'])
  t.same(acqs.map((a) => a.rows.length), [5, 5, 1], 'the rows before the fault are sent')
  t.equal(await r.client.getField('PCAP', 'HEALTH'), 'Capture events too close together')

  await r.client.put('CLOCK1.PERIOD', 0.001)
  await r.client.put('CLOCK1.WIDTH', 0.0005)
  await r.client.arm()
  await r.run(5)
  r.panda.cutDataConnections()
  await waitFor(() => reader.closed, 2000, () => 'the cut')
  const last = reader.acquisitions[3]
  t.equal(last?.rows.length, 5)
  t.equal(last?.end?.reason, 'Early disconnect', 'no END line: the parser ends it as Early disconnect')
  t.ok((last?.end?.droppedBytes ?? 0) > 0, `the half row of the cut block was dropped (${last?.end?.droppedBytes} bytes)`)
  await r.client.disarm()
})

t.test('rate mode: rows at the asked rate from one prebuilt block, ending Ok after `rows`', async t => {
  const r = await rig(t, { rateMode: { rowsPerSecond: 1e6, rows: 2500, blockRows: 1000 } })
  await r.client.putAttr('PCAP', 'TS_TRIG', 'CAPTURE', 'Value')
  await r.client.putAttr('INENC1', 'VAL', 'CAPTURE', 'Value')
  const reader = await r.reader('XML FRAMED SCALED')
  await r.client.arm()
  t.equal(await r.client.getField('PCAP', 'ACTIVE'), '1')
  await r.run(1)
  t.equal(await r.client.pcapCaptured(), 1000, 'a block of 1000 rows after 1 ms at 1 MHz')
  await r.run(3)
  const [a] = await reader.ended(1)
  t.equal(a?.end?.reason, 'Ok')
  t.equal(a?.rows.length, 2500)
  t.same(a?.start.fields.map((f) => f.name), ['INENC1.VAL', 'PCAP.TS_TRIG'])
  t.same(a?.rows.slice(0, 3).map((row) => row[0]), [0, 1, 2], 'positions count up through the block...')
  t.same(a?.rows.slice(1000, 1002).map((row) => row[0]), [0, 1], '...and repeat with it')
  t.ok(Math.abs((a?.rows[2]?.[1] ?? 0) - 3e-6) < 1e-12, 'TS_TRIG: row i of a block at (i + 1) µs')
  t.equal(await r.client.getField('PCAP', 'ACTIVE'), '0')
  t.equal(await r.client.pcapCompletion(), 'Ok')
  t.throws(() => r.panda.setRateMode({ rowsPerSecond: 0 }), /rowsPerSecond must be a positive number/)
})
