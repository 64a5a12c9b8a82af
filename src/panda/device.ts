/**
 * HDFPanda: the PandABox as a flyer that writes its own HDF5 file (ophyd-async's HDFPanda, over the box's TCP ports
 * instead of an IOC). Stageable, Preparable<PandaFlyInfo>, Flyable, Stoppable and Collectable with stream assets.
 *
 * - connect: the control port (PandaControlClient), `*IDN?` and `*BLOCKS?`.
 * - prepare(info): trigger logic → validation (nothing is written if the request is impossible) → disarm if armed →
 *   the setup's writes in one pipelined batch → the data-port pipeline (capture worker + HDF5 writer) started on a
 *   new file from the path provider.
 * - kickoff: `*PCAP.ARM=`, wait for PCAP.ACTIVE = 1 (armTimeoutMs), then the setup's kickoff writes (the trigger
 *   source's ENABLE = ONE).
 * - complete: wait for the data port's END line (bounded by the scan's complete timeout), PCAP.ACTIVE = 0, the stop
 *   writes, the file closed; fails unless the capture ended `Ok` with the expected rows.
 * - collect: a stream_resource per dataset (`/INENC1.VAL.Value`), stream_datum as the writer reports rows on disk.
 *
 * Every wait is bounded by a named timeout from config/defaults.ts `panda` (../../docs/panda-device.md).
 */
import { randomUUID } from 'node:crypto'
import { defaults } from '../../config/index.js'
import { ErrorCode, FlyScanError } from '../errors.js'
import {
  AsyncStatus, Device, StreamDatumCursor, hdf5Resource, realClock, withTimeout,
  type Clock, type Collectable, type ConnectFailure, type ConnectOptions, type DataKey, type Flyable, type Preparable,
  type Stageable, type Stoppable, type StreamAsset, type Watcher
} from '../devices/index.js'
import type { PandaIdentification } from '../parsers/index.js'
import type { PathProvider, RunMetadata } from '../paths/index.js'
import { blockRowsFor, CLEAN_END_REASONS, PandaPipeline, type PipelineResult } from '../pipeline/index.js'
import { blockInstance } from './blocks.js'
import { PandaControlClient } from './control-client.js'
import {
  completeTimeoutMs, triggerSetup, writeLine,
  type CapturedDataset, type PandaFlyInfo, type PandaTriggerSetup, type PandaWrite
} from './trigger-logic.js'
import { defaultTriggerContext, type TriggerContext } from './validate.js'

/** The named waits of HDFPanda (defaults: config/defaults.ts `panda`). */
export interface PandaTimeouts {
  readonly controlReplyTimeoutMs: number
  readonly armTimeoutMs: number
  readonly disarmTimeoutMs: number
  readonly dataClientTimeoutMs: number
  readonly activePollPeriodMs: number
  readonly completeMarginMs: number
  readonly pipelineCloseTimeoutMs: number
}

export function defaultPandaTimeouts (): PandaTimeouts {
  const p = defaults.panda
  return {
    controlReplyTimeoutMs: p.controlReplyTimeoutMs,
    armTimeoutMs: p.armTimeoutMs,
    disarmTimeoutMs: p.disarmTimeoutMs,
    dataClientTimeoutMs: p.dataClientTimeoutMs,
    activePollPeriodMs: p.activePollPeriodMs,
    completeMarginMs: p.completeMarginMs,
    pipelineCloseTimeoutMs: p.pipelineCloseTimeoutMs
  }
}

export interface HDFPandaOptions {
  readonly name?: string
  readonly host: string
  readonly controlPort?: number
  readonly dataPort?: number
  /** Where each prepare's file goes; setPathProvider() may give it later (before prepare). */
  readonly pathProvider?: PathProvider
  readonly runMetadata?: RunMetadata
  /** Encoder geometry and data-rate limit (defaults: 8000 counts/rev, polarity +1, config's data rate). */
  readonly trigger?: Partial<TriggerContext>
  readonly timeouts?: Partial<PandaTimeouts>
  readonly clock?: Clock
  /** Passed on to the PandaPipeline (flush period, ring size, rows per block). */
  readonly pipeline?: { readonly flushPeriodMs?: number, readonly ringBytes?: number, readonly blockRows?: number }
}

/** What the data port has said about the current acquisition. */
interface Acquisition {
  started: boolean
  fields: readonly string[]
  file: string | undefined
  rowsWritten: number
  end: { reason: string, samples: number } | undefined
  readonly ended: Promise<void>
  readonly markEnded: () => void
}

interface Resource {
  readonly dataset: CapturedDataset
  readonly datums: StreamDatumCursor
}

function newAcquisition (): Acquisition {
  let markEnded = (): void => {}
  const ended = new Promise<void>((resolve) => { markEnded = resolve })
  return { started: false, fields: [], file: undefined, rowsWritten: 0, end: undefined, ended, markEnded }
}

function message (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

export class HDFPanda extends Device implements Stageable, Preparable<PandaFlyInfo>, Flyable, Stoppable, Collectable {
  readonly host: string
  readonly controlPort: number
  readonly dataPort: number
  readonly timeouts: PandaTimeouts
  readonly triggerContext: TriggerContext
  readonly #clock: Clock
  readonly #pipelineOptions: HDFPandaOptions['pipeline']
  #pathProvider: PathProvider | undefined
  #runMetadata: RunMetadata | undefined
  #client: PandaControlClient | undefined
  #idn: PandaIdentification | undefined
  #boxBlocks = new Map<string, number>()
  #setup: PandaTriggerSetup | undefined
  #completeTimeoutMs = 0
  #pipeline: PandaPipeline | undefined
  #acq: Acquisition = newAcquisition()
  #armed = false
  #kickedOff = false
  #completed = false
  #staged = false
  #resources: Resource[] | undefined
  #report: Watcher | undefined
  #lastResult: PipelineResult | undefined

  constructor (options: HDFPandaOptions) {
    super()
    this.host = options.host
    this.controlPort = options.controlPort ?? defaults.panda.controlPort
    this.dataPort = options.dataPort ?? defaults.panda.dataPort
    this.timeouts = { ...defaultPandaTimeouts(), ...options.timeouts }
    this.triggerContext = { ...defaultTriggerContext(), ...options.trigger }
    this.#clock = options.clock ?? realClock
    this.#pipelineOptions = options.pipeline
    this.#pathProvider = options.pathProvider
    this.#runMetadata = options.runMetadata
    this.setName(options.name ?? '')
  }

  /** `*IDN?` of the box, once connected. */
  get identification (): PandaIdentification | undefined { return this.#idn }
  /** `*BLOCKS?` of the box, once connected. */
  get boxBlocks (): ReadonlyMap<string, number> { return this.#boxBlocks }
  /** The setup of the last prepare. */
  get setup (): PandaTriggerSetup | undefined { return this.#setup }
  get staged (): boolean { return this.#staged }
  /**
   * What the data pipeline of the last capture reported when it finished (files, rows, errors, latency histograms
   * including `panda.ts_trig_delta_us`); undefined until a capture has finished or been stopped.
   */
  get lastResult (): PipelineResult | undefined { return this.#lastResult }
  /** Rows on disk in the current capture (what the writer last reported). */
  get rowsWritten (): number { return this.#acq.rowsWritten }

  /** Where the next prepare's file goes (e.g. `pathProviderFor(config.data)` and the run's metadata). */
  setPathProvider (provider: PathProvider, runMetadata?: RunMetadata): void {
    this.#pathProvider = provider
    this.#runMetadata = runMetadata
  }

  #label (): string {
    return this.name === '' ? `HDFPanda ${this.host}:${this.controlPort}` : this.name
  }

  #fail (code: ErrorCode, text: string, details: Record<string, string | number> = {}, cause?: unknown): FlyScanError {
    return new FlyScanError(code, `${this.#label()}: ${text}`, { details: { device: this.#label(), ...details }, cause })
  }

  // -------------------------------------------------------------------------------------------------------------
  // Connection

  /** Connects the control port (`options.timeout` bounds it); there is no mock mode. */
  override async connectParts (options: Required<ConnectOptions>): Promise<ConnectFailure[]> {
    if (options.mock) {
      return [{
        name: this.#label(),
        cause: new FlyScanError(ErrorCode.BAD_INPUT, 'HDFPanda has no mock mode: it talks to a PandA over TCP (run `tst-fly sim-panda` and point host at it)')
      }]
    }
    if (this.#client !== undefined && this.#client.error === undefined) return []
    try {
      const client = await PandaControlClient.connect(this.host, this.controlPort, options.timeout, { replyTimeoutMs: this.timeouts.controlReplyTimeoutMs })
      try {
        const [idn, blocks] = await Promise.all([client.idn(), client.blocks()])
        this.#idn = idn
        this.#boxBlocks = blocks
      } catch (err) {
        await client.close()
        throw err
      }
      this.#client = client
      return []
    } catch (err) {
      return [{ name: this.#label(), cause: err }]
    }
  }

  #control (what: string): PandaControlClient {
    const c = this.#client
    if (c === undefined) throw this.#fail(ErrorCode.NOT_CONNECTED, `${what}: not connected (call connect() first)`)
    if (c.error !== undefined) throw this.#fail(ErrorCode.NOT_CONNECTED, `${what}: the control connection has ended: ${c.error.message}`, {}, c.error)
    return c
  }

  /** Closes the data pipeline and the control connection. Idempotent. */
  async close (): Promise<void> {
    await this.#pipeline?.destroy('HDFPanda closed')
    this.#pipeline = undefined
    await this.#client?.close()
  }

  // -------------------------------------------------------------------------------------------------------------
  // Writes and waits

  /** Sends `writes` back to back (pipelined); reports every write that failed, with the box's message. */
  async #writeBatch (writes: readonly PandaWrite[], phase: string): Promise<void> {
    if (writes.length === 0) return
    const client = this.#control(phase)
    const results = await Promise.allSettled(writes.map(async (w) => {
      if (w.kind === 'put') return await client.put(w.target, w.value)
      const [block = '', field = ''] = w.target.split('.')
      return await client.putTable(block, field, w.words)
    }))
    const failed: string[] = []
    let first: unknown
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') return
      first ??= r.reason
      failed.push(`${writeLine(writes[i] as PandaWrite)}: ${message(r.reason)}`)
    })
    if (failed.length === 0) return
    const code = first instanceof FlyScanError ? first.code : ErrorCode.PANDA_CONTROL_ERR
    throw this.#fail(code, `${phase}: ${failed.length} of ${writes.length} writes failed: ${failed.join('; ')}`,
      { phase, failed: failed.length, writes: writes.length }, first)
  }

  /**
   * Polls PCAP.ACTIVE until it reads `want`, every activePollPeriodMs, for at most `timeoutMs` (the config key
   * `bound` names it in the error). `early` ends the wait when other evidence says the change happened.
   */
  async #waitActive (want: 0 | 1, timeoutMs: number, bound: string, after: string, early?: () => boolean): Promise<void> {
    const client = this.#control(`waiting for PCAP.ACTIVE=${want}`)
    const t0 = this.#clock.now()
    for (;;) {
      if (early?.() === true) return
      const v = await client.getField('PCAP', 'ACTIVE')
      if (v === String(want)) return
      const waited = this.#clock.now() - t0
      if (waited >= timeoutMs) {
        throw this.#fail(ErrorCode.TIMEOUT, `PCAP.ACTIVE was still ${v} ${Math.round(waited)} ms ${after} (${bound} = ${timeoutMs} ms)`,
          { target: 'PCAP.ACTIVE', want, timeoutMs, bound })
      }
      await this.#clock.sleep(this.timeouts.activePollPeriodMs)
    }
  }

  /** `*PCAP.DISARM=`, then waits for PCAP.ACTIVE = 0 (disarmTimeoutMs). */
  async disarm (): Promise<void> {
    await this.#control('disarm').disarm()
    await this.#waitActive(0, this.timeouts.disarmTimeoutMs, 'disarmTimeoutMs', 'after *PCAP.DISARM=')
    this.#armed = false
  }

  async #disarmIfActive (): Promise<void> {
    if (await this.#control('checking PCAP.ACTIVE').getField('PCAP', 'ACTIVE') !== '0') await this.disarm()
  }

  /** Every block instance a write names (targets and mux sources) must exist on this box (`*BLOCKS?`). */
  #checkBoxHasBlocks (setup: PandaTriggerSetup): void {
    if (this.#boxBlocks.size === 0) return
    const missing = new Set<string>()
    for (const w of [...setup.writes, ...setup.kickoffWrites, ...setup.stopWrites]) {
      const names = [w.target.split('.')[0] ?? '']
      if (w.kind === 'put' && /^[A-Z_]+\d*\.[A-Z_0-9]+$/.test(w.value)) names.push(w.value.split('.')[0] ?? '')
      for (const name of names) {
        if (name.startsWith('*')) continue
        const { spec, number } = blockInstance(name)
        const have = this.#boxBlocks.get(spec.name) ?? 0
        if (number > have) missing.add(`${name} (the box has ${have === 0 ? 'no ' + spec.name : `${spec.name}1..${spec.name}${have}`})`)
      }
    }
    if (missing.size > 0) {
      throw this.#fail(ErrorCode.BAD_INPUT, `${setup.logic} needs blocks this PandA does not have (*BLOCKS?): ${[...missing].join(', ')}`,
        { logic: setup.logic })
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Stageable, Preparable, Flyable, Stoppable

  /** Makes sure no capture is running (disarms one that is). */
  async stage (): Promise<void> {
    await this.#disarmIfActive()
    this.#staged = true
  }

  /** Stops what is running, disables the trigger source, closes the pipeline. Safe to call at any point. */
  async unstage (): Promise<void> {
    try {
      if (this.#armed || (this.#kickedOff && !this.#completed)) await this.stop()
      else await this.#dropPipeline('unstaged')
    } finally {
      this.#staged = false
    }
  }

  prepare (info: PandaFlyInfo): AsyncStatus {
    return new AsyncStatus(this.#prepare(info))
  }

  async #prepare (info: PandaFlyInfo): Promise<void> {
    // Validation first: an impossible request writes nothing.
    let setup: PandaTriggerSetup
    try {
      setup = triggerSetup(info, this.triggerContext)
    } catch (err) {
      if (err instanceof FlyScanError) throw new FlyScanError(err.code, `${this.#label()}: ${err.message.replace(/^PandA: /, '')}`, { details: err.details, cause: err })
      throw err
    }
    this.#checkBoxHasBlocks(setup)
    const provider = this.#pathProvider
    if (provider === undefined) {
      throw this.#fail(ErrorCode.BAD_INPUT, 'prepare: no path provider, so no file to write (give pathProvider, or call setPathProvider)')
    }
    const where = provider.getPath(this.name === '' ? 'panda' : this.name, this.#runMetadata)
    if (this.#kickedOff && !this.#completed) throw this.#fail(ErrorCode.BAD_INPUT, 'prepare: a capture is under way (complete or stop it first)')
    await this.#disarmIfActive()
    await this.#dropPipeline('prepared again')
    await this.#writeBatch(setup.writes, `prepare (${setup.logic})`)

    this.#setup = setup
    this.#completeTimeoutMs = info.completeTimeoutMs ?? completeTimeoutMs(setup, this.timeouts.completeMarginMs)
    this.#acq = newAcquisition()
    this.#lastResult = undefined
    this.#resources = undefined
    this.#kickedOff = false
    this.#completed = false
    const acq = this.#acq
    const readersBefore = (await this.#control('prepare').pcapStatus()).readers
    try {
      this.#pipeline = await this.#startPipeline(where.directoryPath, where.filename, acq)
    } catch (err) {
      throw this.#fail(err instanceof FlyScanError ? err.code : ErrorCode.NOT_CONNECTED, `prepare: ${message(err)}`, {}, err)
    }
    await this.#waitForReader(readersBefore)
  }

  /**
   * Waits until `*PCAP.STATUS?` counts one more data reader than before the pipeline connected (the box registers
   * a reader once it has read the options line; a capture armed before that would not send it the header).
   */
  async #waitForReader (before: number): Promise<void> {
    const client = this.#control('prepare')
    const t0 = this.#clock.now()
    for (;;) {
      const { readers } = await client.pcapStatus()
      if (readers > before) return
      const waited = this.#clock.now() - t0
      if (waited >= this.timeouts.dataClientTimeoutMs) {
        throw this.#fail(ErrorCode.TIMEOUT,
          `prepare: *PCAP.STATUS? still counts ${readers} data reader${readers === 1 ? '' : 's'} ${Math.round(waited)} ms after the data port ` +
          `${this.host}:${this.dataPort} was connected (${before} before it; dataClientTimeoutMs = ${this.timeouts.dataClientTimeoutMs} ms)`,
          { readers, before, timeoutMs: this.timeouts.dataClientTimeoutMs, bound: 'dataClientTimeoutMs' })
      }
      await this.#clock.sleep(this.timeouts.activePollPeriodMs)
    }
  }

  async #startPipeline (outDir: string, fileStem: string, acq: Acquisition): Promise<PandaPipeline> {
    return await PandaPipeline.start({
      host: this.host,
      port: this.dataPort,
      options: { format: 'FRAMED', process: 'SCALED', xml: true },
      outDir,
      fileStem,
      ...this.#pipelineOptions
    }, {
      start: (n, fields) => { if (n === 1) { acq.started = true; acq.fields = fields } },
      fileOpened: (n, file) => { if (n === 1) acq.file = file },
      progress: (n, rows) => {
        if (n !== 1) return
        acq.rowsWritten = rows
        this.#progress(rows)
      },
      end: (n, end) => {
        if (n !== 1) return
        acq.end = { reason: end.reason, samples: end.samples }
        acq.markEnded()
      },
      fileClosed: (f) => {
        if (f.acquisition !== 1) return
        acq.rowsWritten = f.rows
        this.#progress(f.rows)
      }
    })
  }

  #progress (rows: number): void {
    const target = this.#setup?.expectedRows
    this.#report?.({
      name: this.name,
      current: rows,
      initial: 0,
      unit: 'rows',
      ...(target === undefined ? {} : { target, fraction: target === 0 ? 1 : Math.min(1, rows / target) })
    })
  }

  async #dropPipeline (reason: string): Promise<void> {
    const p = this.#pipeline
    this.#pipeline = undefined
    if (p === undefined) return
    p.stop()
    try {
      this.#lastResult = await withTimeout(p.result(), this.timeouts.pipelineCloseTimeoutMs, `${this.#label()}: closing the data pipeline (${reason})`)
    } catch {
      await p.destroy(reason)
    }
  }

  #needPrepared (what: string): PandaTriggerSetup {
    if (this.#setup === undefined || this.#pipeline === undefined) throw this.#fail(ErrorCode.BAD_INPUT, `${what}: prepare first (it sets up the triggers and the file)`)
    return this.#setup
  }

  /** Arms PCAP, waits for PCAP.ACTIVE = 1 (armTimeoutMs), then starts the trigger source. */
  kickoff (): AsyncStatus {
    return new AsyncStatus((async () => {
      const setup = this.#needPrepared('kickoff')
      if (this.#kickedOff) throw this.#fail(ErrorCode.BAD_INPUT, 'kickoff: already kicked off (prepare again for a new capture)')
      const acq = this.#acq
      await this.#control('kickoff').arm()
      this.#armed = true
      // A capture may start and end between two polls; its header on the data port proves the arm.
      await this.#waitActive(1, this.timeouts.armTimeoutMs, 'armTimeoutMs', 'after *PCAP.ARM=', () => acq.started)
      this.#kickedOff = true
      await this.#writeBatch(setup.kickoffWrites, `kickoff (${setup.logic})`)
    })())
  }

  /**
   * Waits for the capture to end: the END line on the data port (within the scan's complete timeout), PCAP.ACTIVE
   * = 0 (disarmTimeoutMs), then the stop writes and the file closed (pipelineCloseTimeoutMs). Fails with
   * FLY_ERR_PANDA_ACQUISITION_FAILED unless the capture ended `Ok` with the expected rows. Reports rows on disk.
   */
  complete (): AsyncStatus {
    return AsyncStatus.watchable(async (report) => {
      const setup = this.#needPrepared('complete')
      if (!this.#kickedOff) throw this.#fail(ErrorCode.BAD_INPUT, 'complete: kickoff first')
      const pipeline = this.#pipeline as PandaPipeline
      const acq = this.#acq
      this.#report = report
      this.#progress(acq.rowsWritten)
      try {
        const gone = pipeline.result().then(() => undefined)
        await withTimeout(Promise.race([acq.ended, gone]), this.#completeTimeoutMs,
          `${this.#label()}: the ${setup.logic} capture ending (END on the data port; the bound is twice the scan's ${setup.captureTimeS} s plus completeMarginMs)`)
        if (acq.end !== undefined && CLEAN_END_REASONS.has(acq.end.reason)) {
          await this.#waitActive(0, this.timeouts.disarmTimeoutMs, 'disarmTimeoutMs', 'after the capture ended on the data port')
          this.#armed = false
          await this.#writeBatch(setup.stopWrites, `complete (${setup.logic})`)
        } else {
          // The data port ended badly (Data overrun, a connection closed without END...): stop the capture on the box
          // too if it is still there (best effort: the box may be gone); the check below reports how it ended.
          await this.disarm().catch(() => {})
          await this.#writeBatch(setup.stopWrites, `complete (${setup.logic})`).catch(() => {})
        }
        const result = await this.#finishPipeline(pipeline)
        this.#completed = true
        this.#check(setup, acq, result)
      } finally {
        this.#report = undefined
      }
    })
  }

  async #finishPipeline (pipeline: PandaPipeline): Promise<PipelineResult> {
    pipeline.stop()
    try {
      const result = await withTimeout(pipeline.result(), this.timeouts.pipelineCloseTimeoutMs, `${this.#label()}: the data pipeline closing its file`)
      this.#lastResult = result
      return result
    } catch (err) {
      await pipeline.destroy('did not close in time')
      throw err
    }
  }

  #check (setup: PandaTriggerSetup, acq: Acquisition, result: PipelineResult): void {
    const failed = (text: string, details: Record<string, string | number> = {}, cause?: unknown): FlyScanError =>
      this.#fail(ErrorCode.PANDA_ACQUISITION_FAILED, text, { logic: setup.logic, ...details }, cause)
    const err = result.errors[0]
    if (err !== undefined) throw new FlyScanError(err.code, `${this.#label()}: ${err.message}`, { details: err.details, cause: err })
    const a = result.acquisitions.find((x) => x.acquisition === 1)
    if (a === undefined) throw failed('no capture reached the data port (no header after *PCAP.ARM=)')
    if (a.endReason !== 'Ok') {
      const why = CLEAN_END_REASONS.has(a.endReason) ? ' (disarmed before the trigger source finished)' : ''
      throw failed(`the capture ended with '${a.endReason}'${why} after ${a.rows} rows; file ${a.file}`, { endReason: a.endReason, rows: a.rows })
    }
    const missing = setup.datasets.filter((d) => !acq.fields.includes(d.name)).map((d) => d.name)
    if (missing.length > 0) throw failed(`the data port did not send ${missing.join(', ')} (it sent ${acq.fields.join(', ')})`)
    const expected = setup.expectedRows
    if (expected !== undefined && Math.abs(a.rows - expected) > setup.rowTolerance) {
      throw failed(`captured ${a.rows} rows, but the ${setup.logic} setup expects ${expected}` +
        (setup.rowTolerance > 0 ? ` ± ${setup.rowTolerance}` : '') + `; file ${a.file}`, { rows: a.rows, expected })
    }
  }

  /** Disarms, disables the trigger source and stops the data pipeline (rows received so far stay on disk). */
  async stop (): Promise<void> {
    const errors: unknown[] = []
    const step = async (fn: () => Promise<void>): Promise<void> => { try { await fn() } catch (err) { errors.push(err) } }
    if (this.#client?.error === undefined && this.#client !== undefined) {
      await step(async () => { if (this.#armed || this.#kickedOff) await this.disarm() })
      const setup = this.#setup
      if (setup !== undefined) await step(async () => await this.#writeBatch(setup.stopWrites, `stop (${setup.logic})`))
    }
    await step(async () => await this.#dropPipeline('stopped'))
    this.#armed = false
    this.#completed = true
    if (errors.length > 0) {
      throw this.#fail(ErrorCode.CONNECTION, `stop: ${errors.map(message).join('; ')}`, {}, errors[0])
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Collectable

  #dataKey (d: CapturedDataset): string {
    return `${this.name === '' ? 'panda' : this.name}-${d.field.replace('.', '_').toLowerCase()}-${d.capture.toLowerCase()}`
  }

  /** One external data key per captured dataset (`panda1-inenc1_val-value`), known from prepare. */
  async describeCollect (): Promise<Record<string, DataKey>> {
    const setup = this.#setup
    if (setup === undefined) throw this.#fail(ErrorCode.BAD_INPUT, 'describeCollect: prepare first (it decides what is captured)')
    const keys: Record<string, DataKey> = {}
    for (const d of setup.datasets) {
      const units = /^PCAP\.TS_/.test(d.field) ? 's' : /^FMC_IN\.VAL/.test(d.field) ? 'V' : undefined
      keys[this.#dataKey(d)] = {
        source: `panda://${this.host}:${this.controlPort}/${d.name}`,
        dtype: d.dtype === 'uint32' ? 'integer' : 'number',
        dtype_numpy: d.dtype === 'uint32' ? '<u4' : '<f8',
        shape: [],
        external: 'STREAM:',
        ...(units === undefined ? {} : { units })
      }
    }
    return keys
  }

  /** Rows on disk so far (what the writer has flushed). */
  async getIndex (): Promise<number> {
    return this.#acq.rowsWritten
  }

  /**
   * A stream_resource per dataset once the file exists, then stream_datum for rows [last index, `index`) (default:
   * every row on disk), one per dataset.
   */
  async * collectAssetDocs (index?: number): AsyncIterable<StreamAsset> {
    const acq = this.#acq
    const setup = this.#setup
    if (setup === undefined || acq.file === undefined) return
    if (this.#resources === undefined) {
      const h = defaults.hdf5
      const sizing = { rows: this.#pipelineOptions?.blockRows, bytes: h.blockBytes, minRows: h.minBlockRows, maxRows: h.maxBlockRows, chunkRows: h.chunkRows }
      // The writer's chunk: chunkRows capped at the block length (src/pipeline/writer-logic.ts).
      const chunk = Math.min(blockRowsFor(sizing, setup.rowBytes), h.chunkRows)
      this.#resources = setup.datasets.map((dataset) => ({ dataset, datums: new StreamDatumCursor(randomUUID()) }))
      for (const r of this.#resources) {
        yield ['stream_resource', hdf5Resource(r.datums.resource, this.#dataKey(r.dataset), acq.file, `/${r.dataset.name}`, [chunk])]
      }
    }
    const stop = Math.min(index ?? acq.rowsWritten, acq.rowsWritten)
    for (const r of this.#resources) {
      const datum = r.datums.next(stop)
      if (datum !== undefined) yield ['stream_datum', datum]
    }
  }
}
