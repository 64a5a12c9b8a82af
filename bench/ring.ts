/**
 * bench ring: the SharedArrayBuffer rings across two threads, against ringbuf.js, postMessage (structured clone and
 * transferList) and a plain memcpy (Uint8Array.set) of the same bytes.
 *
 * This file is also its own worker: loaded in a worker thread with workerData.ringBench set, it runs one role.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { RingBuffer } from 'ringbuf.js'
import {
  type RecordReader, type RecordWriter,
  attachRecordReader, attachRecordWriter, attachSlotReader, attachSlotWriter, createRecordRing, createSlotRing,
  waitForData, waitForSpace
} from '../src/shm/index.js'
import { HistogramSet, nowNs } from '../src/metrics/index.js'
import type { LatencySummary } from '../src/metrics/index.js'
import { machineInfo, measure, target } from './harness.js'
import type { BenchResult, Benchmark, Measurement } from './harness.js'

const RECORD_BYTES = 64
const BATCH = 64
const FRAME_BYTES = 8 * 2 ** 20
const WAIT_MS = 30_000

interface Job {
  readonly ringBench: string
  readonly sab?: SharedArrayBuffer
  readonly ack?: SharedArrayBuffer
  readonly count: number
  readonly intervalUs?: number
}

type Reply = Record<string, number | string | Record<string, LatencySummary>>

const sleepMs = (ms: number): void => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms) }

// ---------------- worker roles ----------------

function fillRecord (u32: Uint32Array, base: number, seq: number): void {
  for (let i = 0; i < RECORD_BYTES >> 2; i++) u32[base + i] = seq + i
}

/** Reserves `bytes` in the record ring, blocking (bounded) while it is full. */
function reserveWaiting (w: RecordWriter, bytes: number, who: string): number {
  let off = w.reserveOffset(bytes)
  while (off < 0) {
    if (waitForSpace(w, WAIT_MS, bytes) !== 'ready') throw new Error(`${who}: no space`)
    off = w.reserveOffset(bytes)
  }
  return off
}

/** Drains the record ring until end-of-stream; `onRecord` sees each record (reader fields) and returns rows in it. */
function consumeRecords (r: RecordReader, who: string, onRecord: () => number): number {
  let n = 0
  for (;;) {
    while (r.next()) n += onRecord()
    r.release()
    const res = waitForData(r, WAIT_MS)
    if (res === 'closed') return n
    if (res !== 'ready') throw new Error(`${who}: ${res}`)
  }
}

function runRole (job: Job): Reply {
  const sab = job.sab as SharedArrayBuffer
  switch (job.ringBench) {
    case 'rec-producer': {
      const w = attachRecordWriter(sab)
      const u32 = new Uint32Array(w.data.buffer, w.data.byteOffset, w.data.length >> 2)
      const start = nowNs()
      for (let seq = 0; seq < job.count; seq++) {
        fillRecord(u32, reserveWaiting(w, RECORD_BYTES, 'rec-producer') >> 2, seq)
        w.stage(RECORD_BYTES, 1, 0)
        if ((seq % BATCH) === BATCH - 1) w.publish()
      }
      w.close()
      return { start }
    }
    case 'rec-consumer': {
      const r = attachRecordReader(sab)
      const u32 = new Uint32Array(r.data.buffer, r.data.byteOffset, r.data.length >> 2)
      let sum = 0
      parentPort?.postMessage({ ready: 1 })
      const n = consumeRecords(r, 'rec-consumer', () => {
        sum = (sum + (u32[r.payloadOffset >> 2] as number)) | 0
        return 1
      })
      return { end: nowNs(), n, sum }
    }
    case 'batch-producer': {
      // The PandA ring's use: one ring record carries a batch of BATCH 64-byte rows.
      const w = attachRecordWriter(sab)
      const u32 = new Uint32Array(w.data.buffer, w.data.byteOffset, w.data.length >> 2)
      const start = nowNs()
      for (let seq = 0; seq < job.count; seq += BATCH) {
        const rows = Math.min(BATCH, job.count - seq)
        const bytes = RECORD_BYTES * rows
        const off = reserveWaiting(w, bytes, 'batch-producer')
        for (let k = 0; k < rows; k++) fillRecord(u32, (off >> 2) + k * (RECORD_BYTES >> 2), seq + k)
        w.commit(bytes, 1, 0)
      }
      w.close()
      return { start }
    }
    case 'batch-consumer': {
      const r = attachRecordReader(sab)
      const u32 = new Uint32Array(r.data.buffer, r.data.byteOffset, r.data.length >> 2)
      let sum = 0
      parentPort?.postMessage({ ready: 1 })
      const n = consumeRecords(r, 'batch-consumer', () => {
        const rows = r.payloadLength / RECORD_BYTES
        for (let k = 0; k < rows; k++) sum = (sum + (u32[(r.payloadOffset >> 2) + k * (RECORD_BYTES >> 2)] as number)) | 0
        return rows
      })
      return { end: nowNs(), n, sum }
    }
    case 'rb-producer': {
      const rb = new RingBuffer(sab, Uint8Array)
      const batch = new Uint8Array(RECORD_BYTES * BATCH)
      const u32 = new Uint32Array(batch.buffer)
      const start = nowNs()
      for (let seq = 0; seq < job.count; seq += BATCH) {
        for (let k = 0; k < BATCH; k++) fillRecord(u32, k * (RECORD_BYTES >> 2), seq + k)
        let done = 0
        while (done < batch.length) done += rb.push(batch.subarray(done))
      }
      return { start }
    }
    case 'rb-consumer': {
      const rb = new RingBuffer(sab, Uint8Array)
      const batch = new Uint8Array(RECORD_BYTES * BATCH)
      const u32 = new Uint32Array(batch.buffer)
      parentPort?.postMessage({ ready: 1 })
      let bytes = 0
      let sum = 0
      const total = job.count * RECORD_BYTES
      while (bytes < total) {
        const got = rb.pop(batch)
        if (got === 0) continue
        bytes += got
        sum = (sum + (u32[0] as number)) | 0
      }
      return { end: nowNs(), n: bytes / RECORD_BYTES, sum }
    }
    case 'pm-rec-producer':
    case 'pm-rec-transfer': {
      const transfer = job.ringBench === 'pm-rec-transfer'
      const acked = new Int32Array(job.ack as SharedArrayBuffer)
      const clone = new Uint8Array(RECORD_BYTES * BATCH)
      const start = nowNs()
      let sent = 0
      for (let seq = 0; seq < job.count; seq += BATCH) {
        const batch = transfer ? new Uint8Array(RECORD_BYTES * BATCH) : clone
        const u32 = new Uint32Array(batch.buffer)
        for (let k = 0; k < BATCH; k++) fillRecord(u32, k * (RECORD_BYTES >> 2), seq + k)
        while (sent - Atomics.load(acked, 0) >= 256) Atomics.wait(acked, 0, Atomics.load(acked, 0), 100)
        if (transfer) parentPort?.postMessage(batch, [batch.buffer])
        else parentPort?.postMessage(batch)
        sent++
      }
      return { start }
    }
    case 'slot-producer': {
      const w = attachSlotWriter(sab)
      const src = new Uint8Array(FRAME_BYTES).fill(7)
      const start = nowNs()
      for (let i = 0; i < job.count; i++) {
        let v = w.tryAcquire(FRAME_BYTES)
        while (v === null) {
          if (waitForSpace(w, WAIT_MS) !== 'ready') throw new Error('slot-producer: no space')
          v = w.tryAcquire(FRAME_BYTES)
        }
        v.set(src)
        w.publish(FRAME_BYTES, nowNs(), [i, 728, 544, 2])
      }
      w.close()
      return { start }
    }
    case 'slot-consumer': {
      const r = attachSlotReader(sab)
      parentPort?.postMessage({ ready: 1 })
      let n = 0
      let sum = 0
      for (;;) {
        for (let f = r.tryRead(); f !== null; f = r.tryRead()) {
          sum += (f.payload[0] as number) + (f.payload[f.payload.length - 1] as number)
          n++
          r.release()
        }
        const res = waitForData(r, WAIT_MS)
        if (res === 'closed') break
        if (res !== 'ready') throw new Error(`slot-consumer: ${res}`)
      }
      return { end: nowNs(), n, sum }
    }
    case 'rb-frame-producer': {
      const rb = new RingBuffer(sab, Uint8Array)
      const src = new Uint8Array(FRAME_BYTES).fill(7)
      const start = nowNs()
      for (let i = 0; i < job.count; i++) {
        let done = 0
        while (done < FRAME_BYTES) {
          const k = rb.push(src.subarray(done))
          if (k === 0) sleepMs(0.05)
          done += k
        }
      }
      return { start }
    }
    case 'rb-frame-consumer': {
      const rb = new RingBuffer(sab, Uint8Array)
      const dst = new Uint8Array(FRAME_BYTES)
      parentPort?.postMessage({ ready: 1 })
      let bytes = 0
      const total = job.count * FRAME_BYTES
      while (bytes < total) {
        const k = rb.pop(dst)
        if (k === 0) sleepMs(0.05)
        bytes += k
      }
      return { end: nowNs(), n: job.count, sum: dst[0] as number }
    }
    case 'pm-frame-producer':
    case 'pm-frame-transfer': {
      const transfer = job.ringBench === 'pm-frame-transfer'
      const acked = new Int32Array(job.ack as SharedArrayBuffer)
      const src = new Uint8Array(FRAME_BYTES).fill(7)
      const start = nowNs()
      for (let i = 0; i < job.count; i++) {
        while (i - Atomics.load(acked, 0) >= 4) Atomics.wait(acked, 0, Atomics.load(acked, 0), 100)
        if (transfer) {
          const f = new Uint8Array(FRAME_BYTES)
          f.set(src)
          parentPort?.postMessage(f, [f.buffer])
        } else {
          parentPort?.postMessage(src)
        }
      }
      return { start }
    }
    case 'lat-producer': {
      const w = attachRecordWriter(sab)
      const interval = (job.intervalUs ?? 100) / 1000
      for (let i = 0; i < job.count; i++) {
        sleepMs(interval)
        const v = w.reserve(RECORD_BYTES)
        if (v === null) throw new Error('lat-producer: full')
        v[0] = i & 0xff
        w.commit(RECORD_BYTES, 0, nowNs())
      }
      w.close()
      return { start: 0 }
    }
    case 'lat-consumer': {
      const r = attachRecordReader(sab)
      const h = new HistogramSet()
      parentPort?.postMessage({ ready: 1 })
      for (;;) {
        const res = waitForData(r, WAIT_MS)
        if (res === 'closed') break
        if (res !== 'ready') throw new Error(`lat-consumer: ${res}`)
        const now = nowNs()
        while (r.next()) h.record('ring.handoff_us', (now - r.timestampNs) / 1000)
        r.release()
      }
      return { end: nowNs(), summaries: h.summaries() }
    }
    case 'raw-lat-producer': {
      // The limit: a bare Atomics.notify of a waiting thread, no ring. Each event has its own timestamp slot, so
      // that a consumer that wakes late counts every event it was late for, as the ring's consumer does.
      const i32 = new Int32Array(sab, 0, 2)
      const f64 = new Float64Array(sab, 8, job.count)
      const interval = (job.intervalUs ?? 100) / 1000
      for (let i = 0; i < job.count; i++) {
        sleepMs(interval)
        f64[i] = nowNs()
        Atomics.store(i32, 0, i + 1)
        Atomics.notify(i32, 0)
      }
      Atomics.store(i32, 1, 1)
      Atomics.notify(i32, 0)
      return { start: 0 }
    }
    case 'raw-lat-consumer': {
      const i32 = new Int32Array(sab, 0, 2)
      const f64 = new Float64Array(sab, 8, job.count)
      const h = new HistogramSet()
      parentPort?.postMessage({ ready: 1 })
      let seen = 0
      for (;;) {
        if (Atomics.load(i32, 0) === seen && Atomics.load(i32, 1) === 0 &&
          Atomics.wait(i32, 0, seen, WAIT_MS) === 'timed-out') throw new Error('raw-lat-consumer: timed out')
        const now = nowNs()
        const upto = Atomics.load(i32, 0)
        for (; seen < upto; seen++) h.record('atomics.wake_us', (now - (f64[seen] as number)) / 1000)
        if (Atomics.load(i32, 1) === 1 && seen === Atomics.load(i32, 0)) break
      }
      return { end: nowNs(), summaries: h.summaries() }
    }
    default:
      throw new Error(`unknown role ${job.ringBench}`)
  }
}

if (!isMainThread && (workerData as Partial<Job> | null)?.ringBench !== undefined) {
  const reply = runRole(workerData as Job)
  parentPort?.postMessage({ done: 1, ...reply })
}

// ---------------- main-thread side ----------------

const SELF = new URL(import.meta.url)

function spawn (job: Job): { worker: Worker, ready: Promise<void>, done: Promise<Reply> } {
  const worker = new Worker(SELF, { workerData: job })
  let readyResolve: () => void = () => {}
  const ready = new Promise<void>((resolve) => { readyResolve = resolve })
  const done = new Promise<Reply>((resolve, reject) => {
    worker.on('message', (m: Reply) => {
      if ('ready' in m) readyResolve()
      if ('done' in m) { resolve(m); worker.terminate().then(() => {}, () => {}) }
    })
    worker.once('error', reject)
    worker.once('exit', (code) => { if (code !== 0) reject(new Error(`bench worker ${job.ringBench} exited ${code}`)) })
  })
  return { worker, ready, done }
}

/** Starts the consumer, waits until it is in its loop, starts the producer; returns ns from producer start to consumer end. */
async function pair (consumer: Job, producer: Job): Promise<{ ns: number, c: Reply }> {
  const c = spawn(consumer)
  await c.ready
  const p = spawn(producer)
  const [pr, cr] = await Promise.all([p.done, c.done])
  return { ns: (cr.end as number) - (pr.start as number), c: cr }
}

/** Producer worker → main thread by postMessage; returns ns from producer start to the last message received. */
async function viaPostMessage (role: string, count: number, perMessage: number, bytesPer: number): Promise<number> {
  const ack = new SharedArrayBuffer(4)
  const acked = new Int32Array(ack)
  const messages = Math.ceil(count / perMessage)
  let got = 0
  let end = 0
  const worker = new Worker(SELF, { workerData: { ringBench: role, count, ack } satisfies Job })
  const start = await new Promise<number>((resolve, reject) => {
    let start = 0
    worker.on('message', (m: unknown) => {
      if (m instanceof Uint8Array) {
        if (m.length !== bytesPer) reject(new Error(`got ${m.length} bytes`))
        if (++got === messages) end = nowNs()
        Atomics.store(acked, 0, got)
        Atomics.notify(acked, 0)
      } else if (typeof m === 'object' && m !== null && 'done' in m) {
        start = (m as Reply).start as number
      }
      if (got === messages && start !== 0) resolve(start)
    })
    worker.once('error', reject)
  })
  await worker.terminate()
  return end - start
}

function memcpy (bytes: number, chunk: number): number {
  const src = new Uint8Array(chunk).fill(3)
  const dst = new Uint8Array(Math.max(chunk, Math.min(bytes, 64 * 2 ** 20)))
  const t0 = nowNs()
  let off = 0
  for (let done = 0; done < bytes; done += chunk) {
    if (off + chunk > dst.length) off = 0
    dst.set(src, off)
    off += chunk
  }
  return nowNs() - t0
}

export const bench: Benchmark = {
  name: 'ring',
  description: 'SharedArrayBuffer rings across two threads vs ringbuf.js, postMessage (clone, transfer) and memcpy',
  async run (options) {
    const quick = options.quick
    const records = quick ? 100_000 : 10_000_000
    const frames = quick ? 4 : 200
    const latencyCount = quick ? 300 : 50_000
    const runs = quick ? 1 : 3
    const warmup = quick ? 0 : 1
    const mrec = (ns: number): number => records / ns * 1000 // M records/s
    const gbs = (ns: number): number => frames * FRAME_BYTES / ns // GB/s (10^9)
    const m: Measurement[] = []

    // 64-byte records in batches of 64: every subject moves the same batches (one ring record, one ringbuf.js push,
    // one message per batch), as the PandA ring moves batches of rows.
    m.push(await measure('shm record ring', 'ours', 'records/s (64 B)', 'M/s', runs, async () => {
      const sab = createRecordRing({ name: 'bench-records', policy: 'block', capacityBytes: 2 ** 20 })
      const { ns, c } = await pair({ ringBench: 'batch-consumer', sab, count: records }, { ringBench: 'batch-producer', sab, count: records })
      if (c.n !== records) throw new Error(`record ring moved ${String(c.n)} of ${records}`)
      return mrec(ns)
    }, warmup))
    // The same 64-byte records, one ring record each (batched publication): the ring's per-record cost.
    m.push(await measure('shm record ring, a ring record per record', 'ours', 'records/s (64 B)', 'M/s', runs, async () => {
      const sab = createRecordRing({ name: 'bench-records', policy: 'block', capacityBytes: 2 ** 20 })
      const { ns, c } = await pair({ ringBench: 'rec-consumer', sab, count: records }, { ringBench: 'rec-producer', sab, count: records })
      if (c.n !== records) throw new Error(`record ring moved ${String(c.n)} of ${records}`)
      return mrec(ns)
    }, warmup))
    m.push(await measure('ringbuf.js', 'peer', 'records/s (64 B)', 'M/s', runs, async () => {
      const sab = RingBuffer.getStorageForCapacity(2 ** 20, Uint8Array)
      const { ns } = await pair({ ringBench: 'rb-consumer', sab, count: records }, { ringBench: 'rb-producer', sab, count: records })
      return mrec(ns)
    }, warmup))
    m.push(await measure('postMessage clone', 'peer', 'records/s (64 B)', 'M/s', runs,
      async () => mrec(await viaPostMessage('pm-rec-producer', records, BATCH, RECORD_BYTES * BATCH)), warmup))
    m.push(await measure('postMessage transfer', 'peer', 'records/s (64 B)', 'M/s', runs,
      async () => mrec(await viaPostMessage('pm-rec-transfer', records, BATCH, RECORD_BYTES * BATCH)), warmup))
    m.push(await measure('memcpy (Uint8Array.set)', 'limit', 'records/s (64 B)', 'M/s', runs,
      () => mrec(memcpy(records * RECORD_BYTES, RECORD_BYTES * BATCH)), warmup))

    // 8 MB frames
    m.push(await measure('shm slot ring', 'ours', 'frames GB/s (8 MB)', 'GB/s', runs, async () => {
      const sab = createSlotRing({ name: 'bench-frames', policy: 'block', slots: 8, slotBytes: FRAME_BYTES })
      const { ns, c } = await pair({ ringBench: 'slot-consumer', sab, count: frames }, { ringBench: 'slot-producer', sab, count: frames })
      if (c.n !== frames) throw new Error(`slot ring moved ${String(c.n)} of ${frames}`)
      return gbs(ns)
    }, warmup))
    m.push(await measure('ringbuf.js', 'peer', 'frames GB/s (8 MB)', 'GB/s', runs, async () => {
      const sab = RingBuffer.getStorageForCapacity(8 * FRAME_BYTES, Uint8Array)
      const { ns } = await pair({ ringBench: 'rb-frame-consumer', sab, count: frames }, { ringBench: 'rb-frame-producer', sab, count: frames })
      return gbs(ns)
    }, warmup))
    m.push(await measure('postMessage clone', 'peer', 'frames GB/s (8 MB)', 'GB/s', runs,
      async () => gbs(await viaPostMessage('pm-frame-producer', frames, 1, FRAME_BYTES)), warmup))
    m.push(await measure('postMessage transfer', 'peer', 'frames GB/s (8 MB)', 'GB/s', runs,
      async () => gbs(await viaPostMessage('pm-frame-transfer', frames, 1, FRAME_BYTES)), warmup))
    m.push(await measure('memcpy (Uint8Array.set)', 'limit', 'frames GB/s (8 MB)', 'GB/s', runs,
      () => gbs(memcpy(frames * FRAME_BYTES, FRAME_BYTES)), warmup))

    // handoff latency: one record at a time, consumer blocked in waitForData (wait/notify); a warm-up pass first.
    // The limit: a bare Atomics.wait/notify wake-up between the same two threads, with nothing else.
    const latencyRun = async (): Promise<Record<string, LatencySummary>> => {
      const latSab = createRecordRing({ name: 'bench-latency', policy: 'fail-when-full', capacityBytes: 2 ** 16 })
      const { c } = await pair({ ringBench: 'lat-consumer', sab: latSab, count: latencyCount },
        { ringBench: 'lat-producer', sab: latSab, count: latencyCount, intervalUs: 100 })
      return c.summaries as Record<string, LatencySummary>
    }
    if (!quick) await latencyRun()
    const rawSab = new SharedArrayBuffer(8 + 8 * latencyCount)
    const raw = (await pair({ ringBench: 'raw-lat-consumer', sab: rawSab, count: latencyCount },
      { ringBench: 'raw-lat-producer', sab: rawSab, count: latencyCount, intervalUs: 100 })).c.summaries as Record<string, LatencySummary>
    const latency = { ...await latencyRun(), ...raw }
    const handoff = latency['ring.handoff_us']
    const wake = latency['atomics.wake_us']
    if (handoff !== undefined) {
      m.push({ subject: 'shm record ring handoff', role: 'ours', metric: 'p99.9 handoff', unit: 'us', median: handoff.p999, min: handoff.p999, max: handoff.p999, runs: 1 })
      m.push({ subject: 'shm record ring handoff', role: 'ours', metric: 'p99 handoff', unit: 'us', median: handoff.p99, min: handoff.p99, max: handoff.p99, runs: 1 })
    }
    if (wake !== undefined) {
      m.push({ subject: 'bare Atomics.wait/notify wake-up', role: 'limit', metric: 'p99.9 handoff', unit: 'us', median: wake.p999, min: wake.p999, max: wake.p999, runs: 1 })
      m.push({ subject: 'bare Atomics.wait/notify wake-up', role: 'limit', metric: 'p99 handoff', unit: 'us', median: wake.p99, min: wake.p99, max: wake.p99, runs: 1 })
    }

    const result: BenchResult = {
      name: 'ring',
      description: bench.description,
      workload: {
        ...machineInfo(),
        records,
        recordBytes: RECORD_BYTES,
        batch: BATCH,
        frames,
        frameBytes: FRAME_BYTES,
        latencyRecords: latencyCount,
        latencyIntervalUs: 100,
        quick: quick ? 1 : 0
      },
      measurements: m,
      latency,
      targets: [
        target(m, 'shm record ring', 'records/s (64 B)', '>=', 20, 'M/s'),
        target(m, 'shm slot ring', 'frames GB/s (8 MB)', '>=', 5, 'GB/s'),
        target(m, 'shm record ring handoff', 'p99.9 handoff', '<=', 50, 'us')
      ]
    }
    return result
  }
}
