/**
 * A simulated point detector (Readable, Triggerable, Stageable, Configurable): each trigger "exposes" for
 * `acquireTime` seconds of the injected clock and publishes a count from `countFn` (default: 1000 + the event number).
 */
import {
  AsyncStatus, Device, realClock, softSignalRAndSetter, softSignalRW,
  type Clock, type Configurable, type DataKey, type Hints, type Readable, type Reading, type SignalR, type Stageable, type Triggerable
} from '../core/index.js'

export interface SimDetectorOptions {
  name?: string
  /** seconds */
  acquireTime?: number
  countFn?: (eventNumber: number) => number
  clock?: Clock
}

export class SimDetector extends Device implements Readable, Triggerable, Stageable, Configurable {
  readonly acquireTime
  readonly value: SignalR<number>
  readonly #setValue: (v: number) => void
  readonly #countFn: (eventNumber: number) => number
  readonly #clock: Clock
  #eventNumber = 0
  #staged = false

  constructor (options: SimDetectorOptions = {}) {
    super()
    this.acquireTime = softSignalRW<number>('number', options.acquireTime ?? 0.01, { units: 's' })
    const [value, setValue] = softSignalRAndSetter<number>('integer', 0, { units: 'counts' })
    this.value = value
    this.#setValue = setValue
    this.#countFn = options.countFn ?? ((n) => 1000 + n)
    this.#clock = options.clock ?? realClock
    this.setName(options.name ?? '')
  }

  /** The value's data key is the detector's own name. */
  override setName (name: string): void {
    super.setName(name)
    this.value.setName(name)
  }

  get hints (): Hints { return { fields: [this.name] } }
  get staged (): boolean { return this.#staged }

  async stage (): Promise<void> {
    this.#staged = true
    this.#eventNumber = 0
  }

  async unstage (): Promise<void> { this.#staged = false }

  trigger (): AsyncStatus {
    return new AsyncStatus((async () => {
      const seconds = await this.acquireTime.getValue()
      await this.#clock.sleep(seconds * 1000)
      this.#eventNumber += 1
      this.#setValue(this.#countFn(this.#eventNumber))
    })())
  }

  async read (): Promise<Record<string, Reading>> { return await this.value.read() }
  async describe (): Promise<Record<string, DataKey>> { return await this.value.describe() }
  async readConfiguration (): Promise<Record<string, Reading>> { return await this.acquireTime.read() }
  async describeConfiguration (): Promise<Record<string, DataKey>> { return await this.acquireTime.describe() }
}
