/**
 * The panda-capture worker's logic, without the thread or the socket: bytes in (with their arrival time), records
 * out into the PandA ring. The worker file wraps this in ~30 lines of socket code.
 *
 * Ring policy (DESIGN §2): the PandA ring never pauses the socket. When a record does not fit, the ring is marked
 * FAILED and a FLY_ERR_PANDA_RING_FULL error naming the sizes is thrown; the writer then closes the file with what
 * it already has, and the scan fails loudly.
 */
import { ErrorCode, FlyScanError, toWire } from '../errors.js'
import type { HistogramSet } from '../metrics/index.js'
import { nowNs } from '../metrics/index.js'
import { ColumnDecoder, EndReason, type EndData, type PandaDataParser, type StartData, type DataRecord } from '../parsers/index.js'
import { PandaRecordTag, type EndRecord } from '../protocol/index.js'
import type { RecordWriter } from '../shm/index.js'
import { columnViews, rowsForBudget, rowsRecordLayout, writeRowsHeader } from './rows-record.js'

export interface CaptureEvents {
  start (acquisition: number, start: StartData): void
  end (acquisition: number, end: EndData, rowsReceived: number): void
}

export interface CaptureLogicOptions {
  readonly ring: RecordWriter
  readonly parser: PandaDataParser
  readonly histograms: HistogramSet
  readonly events: CaptureEvents
  /** Largest ROWS record payload; longer runs of rows are split at row boundaries. */
  readonly maxRecordBytes: number
}

const encoder = new TextEncoder()

export class PandaCaptureLogic {
  readonly #ring: RecordWriter
  readonly #parser: PandaDataParser
  readonly #hist: HistogramSet
  readonly #events: CaptureEvents
  readonly #maxRecordBytes: number
  #acquisition = 0
  #decoder: ColumnDecoder | undefined
  #maxRows = 1
  #rowsReceived = 0
  #inAcquisition = false
  #bytesReceived = 0
  #ended = false

  constructor (options: CaptureLogicOptions) {
    this.#ring = options.ring
    this.#parser = options.parser
    this.#hist = options.histograms
    this.#events = options.events
    this.#maxRecordBytes = Math.min(options.maxRecordBytes, options.ring.maxPayloadBytes)
  }

  get acquisitions (): number { return this.#acquisition }
  get bytesReceived (): number { return this.#bytesReceived }

  /** Feeds one socket read. Throws a FlyScanError on malformed bytes or a full ring (the caller then calls fail()). */
  onChunk (chunk: Uint8Array, arrivalNs: number): void {
    this.#bytesReceived += chunk.length
    let records: DataRecord[]
    try {
      records = this.#parser.push(chunk)
    } catch (err) {
      // Rows parsed before the malformed byte are kept: they go to the ring before the failure is reported.
      for (const r of this.#parser.salvage) this.#handle(r, arrivalNs)
      throw err
    }
    for (const r of records) this.#handle(r, arrivalNs)
  }

  /**
   * The socket closed (by the peer, or by us). An acquisition in progress ends as the parser says (Early
   * disconnect); then the ring is closed so that the writer drains it and finishes.
   */
  onClose (): void {
    if (this.#ended) return
    const arrivalNs = nowNs()
    for (const r of this.#parser.close()) this.#handle(r, arrivalNs)
    this.#finishRing()
  }

  /**
   * Something failed on this side (malformed stream, socket error, full ring). An acquisition in progress is ended
   * in-band with the error, so that the writer records it in the file and closes it; rows already in the ring stay.
   * If the ring itself is full, it is marked FAILED instead (the writer closes the file with what it has).
   */
  fail (err: unknown): void {
    if (this.#ended) return
    const isRingFull = err instanceof FlyScanError && err.code === ErrorCode.PANDA_RING_FULL
    if (!isRingFull && this.#inAcquisition) {
      const end: EndData = { samples: this.#rowsReceived, reason: EndReason.EARLY_DISCONNECT }
      if (this.#writeEnd(end, err)) {
        this.#events.end(this.#acquisition, end, this.#rowsReceived)
        this.#finishRing()
        return
      }
    }
    this.#ended = true
    this.#inAcquisition = false
    this.#ring.fail()
  }

  #finishRing (): void {
    this.#ended = true
    if (this.#ring.stateName() === 'OPEN') this.#ring.close()
  }

  #handle (r: DataRecord, arrivalNs: number): void {
    switch (r.kind) {
      case 'ready':
        return
      case 'start': {
        this.#acquisition++
        this.#rowsReceived = 0
        this.#decoder = new ColumnDecoder(r.start)
        this.#maxRows = rowsForBudget(this.#decoder.columns, this.#maxRecordBytes)
        this.#inAcquisition = true
        this.#writeJson(PandaRecordTag.START, r.start, arrivalNs)
        this.#events.start(this.#acquisition, r.start)
        return
      }
      case 'frame': {
        this.#writeRows(r.frame.bytes, r.frame.rows, arrivalNs)
        return
      }
      case 'end': {
        this.#inAcquisition = false
        const rec: EndRecord = { end: r.end, error: undefined }
        this.#writeJson(PandaRecordTag.END, rec, arrivalNs)
        this.#events.end(this.#acquisition, r.end, this.#rowsReceived)
        return
      }
      default: {
        const never: never = r
        throw new FlyScanError(ErrorCode.PANDA_PROTOCOL, `unknown parser record ${JSON.stringify(never)}`)
      }
    }
  }

  /** Decodes the rows into columns straight into the ring (rows-record.ts), in records of at most #maxRows rows. */
  #writeRows (bytes: Uint8Array, rows: number, arrivalNs: number): void {
    const decoder = this.#decoder
    if (decoder === undefined) throw new FlyScanError(ErrorCode.PANDA_PROTOCOL, 'PandA rows before any header')
    const frame = { rows, bytes }
    for (let first = 0; first < rows; first += this.#maxRows) {
      const n = Math.min(this.#maxRows, rows - first)
      const layout = rowsRecordLayout(decoder.columns, n)
      const payloadBytes = layout.payloadBytes
      const off = this.#reserve(payloadBytes)
      const payload = this.#ring.data.subarray(off, off + payloadBytes)
      decoder.decode(frame, columnViews(decoder.columns, payload, n, layout), 0, first, n)
      const commitNs = nowNs()
      writeRowsHeader(payload, commitNs, n)
      this.#ring.commit(payloadBytes, PandaRecordTag.ROWS, arrivalNs)
      this.#rowsReceived += n
      this.#hist.recordMany('panda.socket_to_ring_us', (commitNs - arrivalNs) / 1000, n)
    }
  }

  #writeJson (tag: PandaRecordTag, value: unknown, arrivalNs: number): void {
    const bytes = encoder.encode(JSON.stringify(value))
    const off = this.#reserve(bytes.length)
    this.#ring.data.set(bytes, off)
    this.#ring.commit(bytes.length, tag, arrivalNs)
  }

  /** Ends the acquisition in band with the error; false when even that record cannot go into the ring. */
  #writeEnd (end: EndData, err: unknown): boolean {
    try {
      this.#writeJson(PandaRecordTag.END, { end, error: toWire(err) } satisfies EndRecord, nowNs())
      return true
    } catch {
      return false
    }
  }

  /** Reserves or throws PANDA_RING_FULL naming the sizes. */
  #reserve (payloadBytes: number): number {
    const off = this.#ring.reserveOffset(payloadBytes)
    if (off >= 0) return off
    const s = this.#ring.stats()
    throw new FlyScanError(ErrorCode.PANDA_RING_FULL,
      `ring ${s.name} full: needed ${payloadBytes} bytes, ${s.usedBytes}/${s.capacityBytes} bytes used by ` +
      `${s.recordsInFlight} records not yet written (the HDF5 writer fell behind; the PandA socket is never paused)`,
      { details: { ring: s.name, neededBytes: payloadBytes, usedBytes: s.usedBytes, capacityBytes: s.capacityBytes, recordsInFlight: s.recordsInFlight } })
  }
}
