import type { Reading } from '../../devices/index.js'
import { type ReadingCallback, type SignalBackend } from '../types.js'
import { SoftSignalBackend } from './soft-backend.js'

export type PutCallback<T> = (value: T | undefined, wait: boolean) => void | Promise<void>

/**
 * The backend a signal gets in mock mode (ophyd-async's MockSignalBackend). It holds the value in memory (sharing the
 * store of a soft backend, so soft signals keep their values), records every put, runs put callbacks, and can be
 * told to hold puts until released (`setPutProceeds(false)`), so tests script "arm ⇒ active" behaviour.
 */
export class MockSignalBackend<T> implements SignalBackend<T> {
  readonly soft: SoftSignalBackend<T>
  readonly putCalls: Array<{ value: T | undefined, wait: boolean }> = []
  private readonly putCallbacks: Array<PutCallback<T>> = []
  private proceeds = true
  private readonly waiting: Array<() => void> = []
  private readonly realSource: ((name: string) => string) | undefined

  constructor (initial: SignalBackend<T>) {
    this.soft = initial instanceof SoftSignalBackend
      ? initial
      : new SoftSignalBackend<T>(initial.dtype, undefined, initial.metadata)
    this.realSource = initial instanceof SoftSignalBackend ? undefined : (name) => initial.source(name)
  }

  get dtype () { return this.soft.dtype }
  get metadata () { return this.soft.metadata }
  source (name: string): string { return `mock+${this.realSource?.(name) ?? this.soft.source(name)}` }
  async connect (): Promise<void> {}

  async put (value: T | undefined, wait: boolean): Promise<void> {
    this.putCalls.push({ value, wait })
    for (const cb of this.putCallbacks) await cb(value, wait)
    if (!this.proceeds) await new Promise<void>((resolve) => { this.waiting.push(resolve) })
    await this.soft.put(value, wait)
  }

  /** Hold (false) or release (true) puts; releasing lets every held put finish. */
  setPutProceeds (proceeds: boolean): void {
    this.proceeds = proceeds
    if (proceeds) for (const release of this.waiting.splice(0)) release()
  }

  addPutCallback (cb: PutCallback<T>): () => void {
    this.putCallbacks.push(cb)
    return () => {
      const i = this.putCallbacks.indexOf(cb)
      if (i >= 0) this.putCallbacks.splice(i, 1)
    }
  }

  setValue (value: T): void { this.soft.setValue(value) }
  async getDatakey (source: string) { return await this.soft.getDatakey(source) }
  async getReading (): Promise<Reading<T>> { return await this.soft.getReading() }
  async getValue (): Promise<T> { return await this.soft.getValue() }
  async getSetpoint (): Promise<T> { return await this.soft.getSetpoint() }
  setCallback (cb: ReadingCallback<T> | undefined): void { this.soft.setCallback(cb) }
}
