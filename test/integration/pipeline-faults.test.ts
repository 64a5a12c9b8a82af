import t, { type Test } from 'tap'
import net from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PandaPipeline } from '../../src/pipeline/index.js'
import { PandaReplayServer, syntheticStreamBytes, syntheticValue } from '../../src/sim/index.js'
import { h5dump, readWithH5py, requireHdf5Tools } from '../support/h5py.js'

// Faults in the real pipeline: each ends with a coded error naming the fault, and the file already written stays
// readable by h5py and h5dump with the rows that reached it.
requireHdf5Tools()
const dir = mkdtempSync(join(tmpdir(), 'tst-fly-faults-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const options = { format: 'FRAMED', process: 'SCALED', xml: true } as const

/** Every value h5py read equals what the synthetic stream sent for that row. */
function checkRows (t: Test, file: string, minRows: number): number {
  const f = readWithH5py(file, { swmr: true })
  const bits = f.datasets['PCAP.BITS1.Value']
  const calc = f.datasets['CALC1.OUT.Mean']
  if (bits === undefined || calc === undefined) throw new Error(`datasets missing in ${file}`)
  const n = bits.values.length
  t.ok(n >= minRows, `${n} rows on disk (at least ${minRows})`)
  let bad = 0
  for (let i = 0; i < n; i++) {
    if (bits.values[i] !== syntheticValue(i, 0) || calc.values[i] !== syntheticValue(i, 1)) bad++
  }
  t.equal(bad, 0, 'every row on disk holds the values sent')
  t.equal(h5dump(file, ['-H']).status, 0, 'h5dump reads the file')
  return n
}

t.test('a full PandA ring fails loudly with FLY_ERR_PANDA_RING_FULL naming the sizes; the file stays readable', async t => {
  const stream = syntheticStreamBytes({ rows: 400_000 })
  const server = await PandaReplayServer.start({ source: stream })
  t.teardown(() => server.close())
  // 64 KiB cannot absorb a 14 MB burst while the writer opens its file.
  const p = await PandaPipeline.start({ host: server.host, port: server.port, options, outDir: join(dir, 'full'), fileStem: 'full', ringBytes: 65536 })
  const r = await p.result()
  const full = r.errors.find((e) => e.code === 'FLY_ERR_PANDA_RING_FULL')
  t.ok(full !== undefined, `PANDA_RING_FULL reported: ${r.errors.map((e) => e.code).join(', ')}`)
  t.match(full?.message, /full: needed \d+ bytes, \d+\/65536 bytes used/)
  const acq = r.acquisitions[0]
  if (acq === undefined) throw new Error('no file listed')
  t.match(acq.error, /FAILED/, 'the file records the failure')
  checkRows(t, acq.file, 0)
  t.match(readWithH5py(acq.file).attrs.error, /FLY_ERR_RING_FAILED/)
})

t.test('the capture worker dies mid-stream: the writer closes the file with what it had', async t => {
  const stream = syntheticStreamBytes({ rows: 200_000 })
  const server = await PandaReplayServer.start({ source: stream, rateBytesPerSec: 4e6 })
  t.teardown(() => server.close())
  const p = await PandaPipeline.start({ host: server.host, port: server.port, options, outDir: join(dir, 'capture'), fileStem: 'cap', flushPeriodMs: 50 })
  await new Promise<void>((resolve) => {
    const off = p.writer.on((m) => { if (m.kind === 'progress' && m.rowsWritten > 5000) { off(); resolve() } })
  })
  await p.capture.destroy('test kills it')
  const r = await p.result()
  const death = r.errors.find((e) => e.code === 'FLY_ERR_WORKER_EXIT')
  t.match(death?.message, /worker panda-capture was destroyed \(test kills it\)/)
  const acq = r.acquisitions[0]
  if (acq === undefined) throw new Error('no file listed')
  t.equal(acq.endReason, 'Early disconnect')
  const n = checkRows(t, acq.file, 5000)
  t.equal(n, acq.rows, 'the listed row count is what is on disk')
  t.ok(n < 200_000, 'the stream was cut')
})

t.test('the writer worker dies mid-stream: the scan fails, flushed rows stay readable by h5py and h5dump', async t => {
  const stream = syntheticStreamBytes({ rows: 200_000 })
  const server = await PandaReplayServer.start({ source: stream, rateBytesPerSec: 4e6 })
  t.teardown(() => server.close())
  const p = await PandaPipeline.start({ host: server.host, port: server.port, options, outDir: join(dir, 'writer'), fileStem: 'wr', flushPeriodMs: 50, blockRows: 1000 })
  let flushed = 0
  await new Promise<void>((resolve) => {
    const off = p.writer.on((m) => { if (m.kind === 'progress' && m.rowsWritten > 5000) { flushed = m.rowsWritten; off(); resolve() } })
  })
  await p.writer.destroy('test kills it')
  const r = await p.result()
  t.ok(r.errors.some((e) => e.code === 'FLY_ERR_WORKER_EXIT' && /hdf5-writer was destroyed/.test(e.message)),
    `writer death reported: ${r.errors.map((e) => e.message).join(' | ')}`)
  const acq = r.acquisitions[0]
  if (acq === undefined) throw new Error('no file listed')
  t.match(acq.error, /died with this file open/, JSON.stringify(r.acquisitions))
  checkRows(t, acq.file, flushed)
})

t.test('nothing listening on the data port: start fails with FLY_ERR_NOT_CONNECTED naming host and port', async t => {
  const probe = net.createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const addr = probe.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  await t.rejects(PandaPipeline.start({ host: '127.0.0.1', port, options, outDir: join(dir, 'refused'), fileStem: 'x' }),
    { code: 'FLY_ERR_NOT_CONNECTED', message: new RegExp(`127\\.0\\.0\\.1:${port}.*ECONNREFUSED`) })
})

t.test('stop() mid-acquisition disconnects: the acquisition ends as Early disconnect with every row received on disk', async t => {
  const stream = syntheticStreamBytes({ rows: 200_000 })
  const server = await PandaReplayServer.start({ source: stream, rateBytesPerSec: 4e6 })
  t.teardown(() => server.close())
  const p = await PandaPipeline.start({ host: server.host, port: server.port, options, outDir: join(dir, 'stop'), fileStem: 'stop', flushPeriodMs: 50 })
  let received = -1
  await new Promise<void>((resolve) => {
    const off = p.writer.on((m) => { if (m.kind === 'progress' && m.rowsWritten > 5000) { off(); resolve() } })
  })
  p.capture.on((m) => { if (m.kind === 'end') received = m.rowsReceived })
  p.stop()
  const r = await p.result()
  t.same(r.errors, [], 'a requested stop is not an error')
  const acq = r.acquisitions[0]
  if (acq === undefined) throw new Error('no file listed')
  t.equal(acq.endReason, 'Early disconnect')
  t.equal(acq.rows, received, 'every row the capture worker received is in the file')
  t.equal(checkRows(t, acq.file, 5000), received)
})
