// Local test doubles for the engine tests: plain objects implementing the device protocol shapes, timed by a
// VirtualClock, that log every call.
import { AsyncStatus, type DataKey, type PartialEventPage, type Reading, type StreamAsset } from '../../src/devices/index.js'
import type { Clock } from '../../src/engine/index.js'

export class FakeMotor {
  readonly calls: string[]
  position = 0
  failNextSet: Error | null = null
  constructor (readonly name: string, private readonly clock: Clock, calls: string[], readonly moveTime = 1) { this.calls = calls }
  set (value: unknown): AsyncStatus {
    this.calls.push(`${this.name}.set(${String(value)})`)
    const fail = this.failNextSet
    this.failNextSet = null
    return new AsyncStatus(this.clock.sleep(this.moveTime).then(() => {
      if (fail !== null) throw fail
      this.position = Number(value)
    }))
  }

  async stop (success = true): Promise<void> { this.calls.push(`${this.name}.stop(${String(success)})`) }
  async stage (): Promise<void> { this.calls.push(`${this.name}.stage`) }
  async unstage (): Promise<void> { this.calls.push(`${this.name}.unstage`) }
  async read (): Promise<Record<string, Reading>> { return { [this.name]: { value: this.position, timestamp: this.clock.now() } } }
  async describe (): Promise<Record<string, DataKey>> { return { [this.name]: { dtype: 'number', shape: [], source: `sim:${this.name}` } } }
  async locate (): Promise<{ setpoint: number, readback: number }> { return { setpoint: this.position, readback: this.position } }
}

export class FakeDetector {
  count = 0
  constructor (readonly name: string, private readonly clock: Clock, readonly calls: string[]) {}
  trigger (): AsyncStatus {
    this.calls.push(`${this.name}.trigger`)
    return new AsyncStatus(this.clock.sleep(0.1).then(() => { this.count++ }))
  }

  prepare (value: unknown): AsyncStatus {
    this.calls.push(`${this.name}.prepare(${JSON.stringify(value)})`)
    return AsyncStatus.resolved<void>(undefined)
  }

  async stage (): Promise<void> { this.calls.push(`${this.name}.stage`) }
  async unstage (): Promise<void> { this.calls.push(`${this.name}.unstage`) }
  async read (): Promise<Record<string, Reading>> { return { [this.name]: { value: this.count, timestamp: this.clock.now() } } }
  async describe (): Promise<Record<string, DataKey>> { return { [this.name]: { dtype: 'integer', shape: [], source: `sim:${this.name}` } } }
}

/** A flyer that collects pages (mode 'pages') or stream assets (mode 'assets'). */
export class FakeFlyer {
  constructor (readonly name: string, private readonly clock: Clock, readonly calls: string[], readonly mode: 'pages' | 'assets' = 'pages') {}
  kickoff (): AsyncStatus { this.calls.push(`${this.name}.kickoff`); return AsyncStatus.resolved<void>(undefined) }
  complete (): AsyncStatus {
    this.calls.push(`${this.name}.complete`)
    return new AsyncStatus(this.clock.sleep(2))
  }

  async describeCollect (): Promise<Record<string, DataKey>> {
    return this.mode === 'pages'
      ? { [`${this.name}-x`]: { dtype: 'number', shape: [], source: `sim:${this.name}` } }
      : { [`${this.name}-image`]: { dtype: 'array', shape: [4, 4], source: `sim:${this.name}`, external: 'STREAM:' } }
  }

  collectPages?: () => AsyncIterable<PartialEventPage>
  collectAssetDocs?: () => AsyncIterable<StreamAsset>
}

export function pagesFlyer (name: string, clock: Clock, calls: string[]): FakeFlyer {
  const f = new FakeFlyer(name, clock, calls, 'pages')
  f.collectPages = async function * () {
    calls.push(`${name}.collect`)
    const t = clock.now()
    yield { data: { [`${name}-x`]: [1, 2, 3] }, timestamps: { [`${name}-x`]: [t, t, t] }, time: [t, t, t] }
  }
  return f
}

export function assetsFlyer (name: string, clock: Clock, calls: string[]): FakeFlyer {
  const f = new FakeFlyer(name, clock, calls, 'assets')
  f.collectAssetDocs = async function * () {
    calls.push(`${name}.collect`)
    yield ['stream_resource', { uid: 'res-1', data_key: `${name}-image`, mimetype: 'application/x-hdf5', uri: 'file://localhost/tmp/x.h5', parameters: { dataset: '/entry/data', chunk_shape: [1, 4, 4] } }]
    yield ['stream_datum', { uid: 'res-1/0', stream_resource: 'res-1', indices: { start: 0, stop: 5 }, seq_nums: { start: 1, stop: 6 } }]
  }
  return f
}

/** A value a suspender can watch. */
export class FakeSignal {
  value: number
  readonly #subs = new Set<(v: unknown) => void>()
  constructor (readonly name: string, value: number) { this.value = value }
  subscribeValue (cb: (v: unknown) => void): () => void {
    this.#subs.add(cb)
    cb(this.value)
    return () => { this.#subs.delete(cb) }
  }

  put (v: number): void {
    this.value = v
    for (const cb of [...this.#subs]) cb(v)
  }

  get subscribers (): number { return this.#subs.size }
}
