/**
 * The supervisor's side of a PandA capture: creates the PandA ring, spawns the hdf5-writer and panda-capture
 * workers, waits for both to be ready, relays their events, and when both have exited returns what was written,
 * how each acquisition ended, every error, and the latency histograms merged from both threads.
 *
 * A worker that dies is turned into an outcome, never respawned: the ring is marked FAILED so that the other side
 * wakes, and the writer closes the open file with what it has.
 */
import { mkdir, stat } from 'node:fs/promises'
import path from 'node:path'
import { defaults } from '../../config/index.js'
import { ErrorCode, FlyScanError, fromWire } from '../errors.js'
import { HistogramSet, type LatencySummary } from '../metrics/index.js'
import type { DataOptions, EndData } from '../parsers/index.js'
import {
  WorkerHandle, type FileSummary, type Hdf5WriterData, type Hdf5WriterDown, type Hdf5WriterUp,
  type PandaCaptureData, type PandaCaptureDown, type PandaCaptureUp
} from '../protocol/index.js'
import { clearWriterFlags } from '../hdf5/index.js'
import { attachRingControl, createRecordRing } from '../shm/index.js'

export interface PandaPipelineOptions {
  readonly host: string
  readonly port: number
  readonly options: DataOptions
  readonly outDir: string
  readonly fileStem: string
  readonly ringBytes?: number
  /** Rows per HDF5 block; default: sized by config's blockBytes. */
  readonly blockRows?: number
  readonly flushPeriodMs?: number
  readonly readyTimeoutMs?: number
  readonly closeTimeoutMs?: number
}

export interface AcquisitionSummary {
  readonly acquisition: number
  readonly file: string
  readonly rows: number
  readonly endReason: string
  readonly fields: readonly string[]
  readonly error: string | undefined
}

export interface PipelineResult {
  readonly files: readonly string[]
  readonly acquisitions: readonly AcquisitionSummary[]
  readonly errors: readonly FlyScanError[]
  readonly latency: Readonly<Record<string, LatencySummary>>
  readonly bytesReceived: number
  readonly counters: Readonly<Record<string, number>>
}

export interface PipelineEvents {
  start?: (acquisition: number, fields: readonly string[]) => void
  end?: (acquisition: number, end: EndData, rowsReceived: number) => void
  fileOpened?: (acquisition: number, path: string) => void
  progress?: (acquisition: number, rowsWritten: number) => void
  fileClosed?: (file: FileSummary) => void
}

/** The reasons that end an acquisition cleanly (panda-protocol.md §2.3). */
export const CLEAN_END_REASONS: ReadonlySet<string> = new Set(['Ok', 'Disarmed'])

/**
 * Creates `dir` and its missing parents, one level at a time (Node's recursive mkdir was seen to spin forever on
 * a path under /proc). Throws FLY_ERR_BAD_INPUT naming the directory and the reason.
 */
export async function ensureDirectory (dir: string): Promise<void> {
  const missing: string[] = []
  let at = path.resolve(dir)
  for (;;) {
    try {
      const s = await stat(at)
      if (!s.isDirectory()) throw Object.assign(new Error(`${at} is not a directory`), { code: 'ENOTDIR' })
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || path.dirname(at) === at) {
        throw new FlyScanError(ErrorCode.BAD_INPUT, `output directory ${dir}: ${(err as Error).message}`, { details: { dir }, cause: err })
      }
      missing.unshift(at)
      at = path.dirname(at)
    }
  }
  for (const d of missing) {
    try {
      await mkdir(d)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue
      throw new FlyScanError(ErrorCode.BAD_INPUT, `output directory ${dir}: cannot create ${d}: ${(err as Error).message}`, { details: { dir }, cause: err })
    }
  }
}

const workerUrl = (name: string): URL => new URL(`../../workers/${name}.js`, import.meta.url)

export class PandaPipeline {
  #capture: WorkerHandle<PandaCaptureUp, PandaCaptureDown> | undefined
  readonly #captureData: PandaCaptureData
  readonly #events: PipelineEvents
  readonly #readyTimeoutMs: number
  readonly #closeTimeoutMs: number
  readonly writer: WorkerHandle<Hdf5WriterUp, Hdf5WriterDown>
  readonly #ring: SharedArrayBuffer
  readonly #errors: FlyScanError[] = []
  readonly #histograms = new HistogramSet()
  readonly #counters: Record<string, number> = {}
  readonly #files: FileSummary[] = []
  /** Files opened and not (yet) reported closed: after a writer crash, these are left open-for-write. */
  readonly #openFiles = new Map<number, string>()
  /** Rows the writer last reported flushed, per acquisition. */
  readonly #progress = new Map<number, number>()
  #bytesReceived = 0
  #result: Promise<PipelineResult> | undefined

  private constructor (opts: PandaPipelineOptions, events: PipelineEvents) {
    const readyTimeoutMs = opts.readyTimeoutMs ?? defaults.workers.readyTimeoutMs
    const closeTimeoutMs = opts.closeTimeoutMs ?? defaults.workers.closeTimeoutMs
    this.#ring = createRecordRing({ name: 'panda→writer', policy: 'fail-when-full', capacityBytes: opts.ringBytes ?? defaults.ring.pandaBytes })
    const writerData: Hdf5WriterData = {
      kind: 'hdf5-writer',
      ring: this.#ring,
      outDir: opts.outDir,
      fileStem: opts.fileStem,
      blockRows: opts.blockRows,
      blockBytes: defaults.hdf5.blockBytes,
      minBlockRows: defaults.hdf5.minBlockRows,
      maxBlockRows: defaults.hdf5.maxBlockRows,
      chunkRows: defaults.hdf5.chunkRows,
      flushPeriodMs: opts.flushPeriodMs ?? defaults.hdf5.flushPeriodMs,
      waitSliceMs: defaults.hdf5.waitSliceMs
    }
    this.writer = new WorkerHandle<Hdf5WriterUp, Hdf5WriterDown>({ name: 'hdf5-writer', url: workerUrl('hdf5-writer'), workerData: writerData, readyTimeoutMs, closeTimeoutMs })
    const captureData: PandaCaptureData = {
      kind: 'panda-capture',
      host: opts.host,
      port: opts.port,
      options: opts.options,
      ring: this.#ring,
      connectTimeoutMs: defaults.panda.connectTimeoutMs,
      readBufferBytes: defaults.panda.readBufferBytes,
      maxRecordBytes: defaults.ring.pandaMaxRecordBytes
    }
    this.#captureData = captureData
    this.#events = events
    this.#readyTimeoutMs = readyTimeoutMs
    this.#closeTimeoutMs = closeTimeoutMs
    this.writer.on((msg) => {
      switch (msg.kind) {
        case 'file-opened': this.#openFiles.set(msg.acquisition, msg.path); events.fileOpened?.(msg.acquisition, msg.path); break
        case 'progress': this.#progress.set(msg.acquisition, msg.rowsWritten); events.progress?.(msg.acquisition, msg.rowsWritten); break
        case 'file-closed': this.#openFiles.delete(msg.file.acquisition); this.#files.push(msg.file); events.fileClosed?.(msg.file); break
        case 'error': this.#errors.push(fromWire(msg.error)); break
        case 'stats': if (msg.id === 0) this.#addStats('writer', msg.histograms, msg.counters); break
        case 'ready': case 'flushed': case 'closed': break
      }
    })
    this.writer.done.catch(() => this.#onDeath())
  }

  /** The capture worker (it exists once start() has seen the writer ready). */
  get capture (): WorkerHandle<PandaCaptureUp, PandaCaptureDown> {
    if (this.#capture === undefined) throw new FlyScanError(ErrorCode.NOT_CONNECTED, 'the PandA capture worker has not been started')
    return this.#capture
  }

  /** A worker that dies fails the ring so that the other one wakes and finishes. */
  #onDeath (): void {
    attachRingControl(this.#ring).fail()
  }

  /**
   * Spawns the capture worker. Called once the writer is ready, so that the first rows never wait in the ring for
   * the writer to load (h5wasm compiles for ~100 ms).
   */
  #spawnCapture (): WorkerHandle<PandaCaptureUp, PandaCaptureDown> {
    const events = this.#events
    const capture = new WorkerHandle<PandaCaptureUp, PandaCaptureDown>({
      name: 'panda-capture', url: workerUrl('panda-capture'), workerData: this.#captureData, readyTimeoutMs: this.#readyTimeoutMs, closeTimeoutMs: this.#closeTimeoutMs
    })
    capture.on((msg) => {
      switch (msg.kind) {
        case 'start': events.start?.(msg.acquisition, msg.fields); break
        case 'end': events.end?.(msg.acquisition, msg.end, msg.rowsReceived); break
        case 'error': this.#errors.push(fromWire(msg.error)); break
        case 'stats': if (msg.id === 0) this.#addStats('capture', msg.histograms, msg.counters); break
        case 'closed': this.#bytesReceived = msg.bytesReceived; break
        case 'ready': break
      }
    })
    capture.done.catch(() => this.#onDeath())
    this.#capture = capture
    return capture
  }

  /** Spawns both workers and waits until the writer is ready and the capture socket is connected. */
  static async start (opts: PandaPipelineOptions, events: PipelineEvents = {}): Promise<PandaPipeline> {
    await ensureDirectory(opts.outDir)
    const p = new PandaPipeline(opts, events)
    try {
      await p.writer.ready
      await p.#spawnCapture().ready
    } catch (err) {
      await p.destroy('start failed')
      const causes = [p.writer.lastError, p.#capture?.lastError].filter((e) => e !== undefined)
      throw new FlyScanError(ErrorCode.NOT_CONNECTED,
        `PandA pipeline did not start: ${[err instanceof Error ? err.message : String(err), ...causes.map((c) => c.message)].join('; ')}`,
        { cause: err })
    }
    return p
  }

  #addStats (side: string, histograms: Readonly<Record<string, string>>, counters: Readonly<Record<string, number>>): void {
    this.#histograms.addEncoded(histograms)
    for (const [k, v] of Object.entries(counters)) this.#counters[`${side}.${k}`] = v
  }

  /** Asks the capture worker to disconnect now (an acquisition in progress ends as Early disconnect). */
  stop (): void {
    this.capture.post({ kind: 'close' })
  }

  /** Waits for both workers to finish (the data stream ended) and returns the outcome. Never rejects. */
  result (): Promise<PipelineResult> {
    this.#result ??= this.#collect()
    return this.#result
  }

  async #collect (): Promise<PipelineResult> {
    const outcomes = await Promise.allSettled([this.capture.done, this.writer.done])
    for (const o of outcomes) {
      if (o.status === 'rejected') this.#errors.push(o.reason instanceof FlyScanError ? o.reason : new FlyScanError(ErrorCode.WORKER_EXIT, String(o.reason)))
    }
    this.#recoverOpenFiles()
    const acquisitions = this.#files.map((f) => ({
      acquisition: f.acquisition, file: f.path, rows: f.rows, endReason: f.endReason, fields: f.fields, error: f.error
    }))
    const latency = this.#histograms.summaries()
    this.#histograms.destroy()
    return {
      files: acquisitions.map((a) => a.file),
      acquisitions,
      errors: this.#errors,
      latency,
      bytesReceived: this.#bytesReceived,
      counters: { ...this.#counters }
    }
  }

  /**
   * A writer that died left its open file flagged open-for-write: SWMR readers still see every flushed row, but
   * h5dump and plain readers refuse it. Clear the flag (like `h5clear -s`) and list the file with the failure.
   */
  #recoverOpenFiles (): void {
    for (const [acquisition, file] of this.#openFiles) {
      let note = 'the hdf5-writer worker died with this file open; rows after its last flush are lost'
      try {
        clearWriterFlags(file)
      } catch (err) {
        note += `; clearing its open-for-write flag failed: ${err instanceof Error ? err.message : String(err)}`
      }
      this.#files.push({ acquisition, path: file, rows: this.#progress.get(acquisition) ?? 0, fields: [], endReason: 'Early disconnect', error: note })
    }
    this.#openFiles.clear()
  }

  /** Terminates both workers now. Idempotent. */
  async destroy (reason = 'destroyed'): Promise<void> {
    attachRingControl(this.#ring).fail()
    await Promise.all([this.#capture?.destroy(reason), this.writer.destroy(reason)])
  }
}
