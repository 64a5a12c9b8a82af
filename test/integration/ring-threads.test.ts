import tap from 'tap'
import { Worker } from 'node:worker_threads'
import { ErrorCode, FlyScanError } from '../../src/errors.js'
import {
  attachRecordReader, attachRecordWriter, attachRingControl, attachSlotWriter, createRecordRing, createSlotRing,
  waitForDataAsync
} from '../../src/shm/index.js'

const PEER = new URL('../fixtures/workers/ring-peer.js', import.meta.url)

type Msg = Record<string, unknown>

interface Peer {
  readonly worker: Worker
  /** Resolves with the next message matching `pred`. */
  next (pred: (m: Msg) => boolean): Promise<Msg>
  readonly exited: Promise<number>
  errors: Error[]
}

function spawn (t: Pick<typeof tap, 'teardown'>, data: Record<string, unknown>): Peer {
  const worker = new Worker(PEER, { workerData: data })
  const inbox: Msg[] = []
  const waiters: Array<{ pred: (m: Msg) => boolean, resolve: (m: Msg) => void }> = []
  const peer: Peer = {
    worker,
    errors: [],
    exited: new Promise((resolve) => worker.once('exit', resolve)),
    next (pred) {
      const i = inbox.findIndex(pred)
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0] as Msg)
      return new Promise((resolve) => waiters.push({ pred, resolve }))
    }
  }
  worker.on('message', (m: Msg) => {
    const i = waiters.findIndex((w) => w.pred(m))
    if (i >= 0) waiters.splice(i, 1)[0]?.resolve(m)
    else inbox.push(m)
  })
  worker.on('error', (err) => { peer.errors.push(err) })
  t.teardown(async () => { await worker.terminate() })
  return peer
}

const has = (k: string) => (m: Msg): boolean => k in m

tap.test('two threads move 10^7 64-byte records with sequence and checksum checks', async (t) => {
  const N = 10_000_000
  const sab = createRecordRing({ name: 'stress', policy: 'block', capacityBytes: 2 ** 20 })
  const consumer = spawn(t, { role: 'stress-consumer', sab, timeoutMs: 10_000 })
  const producer = spawn(t, { role: 'stress-producer', sab, records: N, payloadBytes: 64, timeoutMs: 10_000 })
  const t0 = performance.now()
  const [p, c] = await Promise.all([producer.next(has('records')), consumer.next(has('result'))])
  const ms = performance.now() - t0
  t.equal(p.error, undefined)
  t.equal(c.result, 'closed', 'the consumer saw end-of-stream after draining')
  t.equal(c.records, N, `all ${N} records arrived in order`)
  t.equal(c.errors, 0, `no sequence/payload errors ${String(c.firstError)}`)
  t.equal(c.checksum, p.checksum, 'checksums match')
  const s = attachRingControl(sab).stats()
  t.equal(s.state, 'CLOSED')
  t.equal(s.totalRecords, N)
  t.equal(s.readRecords, N)
  t.equal(s.totalBytes, N * 64)
  t.ok(s.highWaterBytes > 0 && s.highWaterBytes <= 2 ** 20)
  t.comment(`${(N / ms / 1000).toFixed(1)} M records/s (info only), producer full-waits ${String(p.fullWaits)}, consumer waits ${String(c.waits)}`)
})

tap.test('slow consumer: the PandA-policy producer sees a full ring and fails it with a message naming the sizes', async (t) => {
  const sab = createRecordRing({ name: 'panda→writer', policy: 'fail-when-full', capacityBytes: 4096 })
  const consumer = spawn(t, { role: 'slow-record-consumer', sab, delayMs: 2, timeoutMs: 10_000 })
  const w = attachRecordWriter(sab)
  let written = 0
  let error: FlyScanError | undefined
  const deadline = performance.now() + 10_000
  while (error === undefined && performance.now() < deadline) {
    const v = w.reserve(100)
    if (v === null) {
      const d = w.describe()
      w.fail()
      error = new FlyScanError(ErrorCode.PANDA_RING_FULL,
        `ring ${d.name} full: needed 100 bytes, ${d.usedBytes}/${d.capacityBytes} used, ${d.recordsInFlight} records in flight`)
      break
    }
    w.commit(100, 0, written++)
  }
  t.ok(error, 'reserve returned null once the consumer fell behind')
  t.match(error?.message, /^ring panda→writer full: needed 100 bytes, \d+\/4096 used, \d+ records in flight$/)
  t.ok(written >= 4096 / 128 - 1, `at least a ring's worth written (${written})`)
  const c = await consumer.next(has('result'))
  t.equal(c.result, 'failed', 'the consumer learns the ring FAILED')
  t.equal(c.errors, 0)
  t.equal(c.records, written, 'FAILED stops the producer only: the consumer still read every record committed before it')
  t.equal(attachRingControl(sab).failedBy(), 'producer')
})

tap.test('slow consumer on the frame ring: drops are counted exactly, kept frames arrive in order', async (t) => {
  const sab = createSlotRing({ name: 'manta1→writer', policy: 'drop-newest', slots: 4, slotBytes: 4096 })
  const consumer = spawn(t, { role: 'slow-slot-consumer', sab, delayMs: 3, timeoutMs: 10_000 })
  const w = attachSlotWriter(sab)
  const attempts = 300
  let published = 0
  let nulls = 0
  for (let id = 0; id < attempts; id++) {
    const v = w.tryAcquire(4096)
    if (v === null) nulls++
    else {
      v.fill(id & 0xff)
      w.publish(4096, id, [id, 64, 64, 1])
      published++
    }
    await new Promise((resolve) => setImmediate(resolve))
  }
  w.close()
  const c = await consumer.next(has('result'))
  t.equal(c.result, 'closed')
  t.ok(nulls > 0, `some frames were dropped (${nulls})`)
  t.equal(w.dropped, nulls, 'DROPPED equals the number of failed acquires')
  t.equal(attachRingControl(sab).stats().dropped, nulls)
  t.equal(published + nulls, attempts)
  const seqs = c.seqs as number[]
  const ids = c.ids as number[]
  t.equal(seqs.length, published, 'every published frame was read')
  t.same(seqs, Array.from({ length: published }, (_, i) => i), 'sequence numbers are consecutive over published frames')
  t.notOk(ids.includes(-1), 'payload matches the frame id')
  t.ok(ids.every((id, i) => i === 0 || id > (ids[i - 1] as number)), 'frame ids increase')
})

tap.test('a producer that dies mid-stream: the consumer times out within its bound, then sees FAILED from the supervisor', async (t) => {
  const sab = createRecordRing({ name: 'dying', policy: 'fail-when-full', capacityBytes: 4096 })
  const producer = spawn(t, { role: 'dying-producer', sab, dieAfter: 20 })
  const r = attachRecordReader(sab)
  const code = await producer.exited
  t.not(code, 0, 'the producer worker died')
  t.match(producer.errors[0]?.message, /crashed mid-stream/)
  let n = 0
  while (r.next()) n++
  r.release()
  t.equal(n, 20, 'what was committed before the crash is readable')
  const t0 = performance.now()
  t.equal(await waitForDataAsync(r, 200), 'timeout', 'no hang: the wait ends at its bound')
  const waited = performance.now() - t0
  t.ok(waited >= 190 && waited < 2000, `waited ${waited.toFixed(0)} ms for a 200 ms bound`)
  // the supervisor turns the worker exit into a FAILED ring; a consumer blocked in Atomics.wait wakes
  const consumer = spawn(t, { role: 'blocked-consumer', sab, timeoutMs: 30_000 })
  await consumer.next(has('waiting'))
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(attachRingControl(sab).fail(), true)
  const c = await consumer.next(has('result'))
  t.equal(c.result, 'failed', 'the blocked consumer woke and learned FAILED')
  t.ok((c.ms as number) < 5000, `woke after ${(c.ms as number).toFixed(0)} ms of a 30 s bound`)
  t.equal(r.failedBy(), 'supervisor')
})

tap.test('a consumer that is terminated: the blocked producer wakes when the supervisor marks FAILED', async (t) => {
  const sab = createRecordRing({ name: 'orphan', policy: 'block', capacityBytes: 4096 })
  const consumer = spawn(t, { role: 'slow-record-consumer', sab, delayMs: 1000, timeoutMs: 30_000 })
  const producer = spawn(t, { role: 'blocked-producer', sab, payloadBytes: 32, timeoutMs: 30_000 })
  await producer.next(has('waiting'))
  await consumer.worker.terminate()
  await new Promise((resolve) => setTimeout(resolve, 50))
  attachRingControl(sab).fail()
  const p = await producer.next(has('result'))
  t.equal(p.result, 'failed', 'the producer blocked in Atomics.wait woke and learned FAILED')
  t.ok((p.ms as number) < 5000)
})

tap.test('a blocked producer with nobody to fail the ring times out within its bound', async (t) => {
  const sab = createRecordRing({ name: 'stalled', policy: 'block', capacityBytes: 1024 })
  const producer = spawn(t, { role: 'blocked-producer', sab, payloadBytes: 32, timeoutMs: 300 })
  const p = await producer.next(has('result'))
  t.equal(p.result, 'timeout')
  t.ok((p.ms as number) >= 290 && (p.ms as number) < 3000, `waited ${(p.ms as number).toFixed(0)} ms for a 300 ms bound`)
})
