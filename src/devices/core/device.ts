/**
 * Device: a named tree of child devices and signals (ophyd-async's Device). A child is any own property holding a
 * Device; its name is `${parent.name}-${attribute}`. Concrete devices call `this.setName(name)` as the last line of
 * their constructor (the children exist only then, as ophyd-async calls `super().__init__(name)` last).
 */
import { ErrorCode, FlyScanError } from '../../errors.js'
import { DEFAULT_TIMEOUT_MS, type HasName } from './protocols.js'

export interface ConnectOptions {
  /** Swap every signal's backend for an in-memory MockSignalBackend. */
  mock?: boolean
  /** Milliseconds; DEFAULT_TIMEOUT_MS when absent. */
  timeout?: number
}

/** One part that failed to connect. */
export interface ConnectFailure {
  readonly name: string
  readonly cause: unknown
}

function causeText (cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause)
}

export class Device implements HasName {
  #name: string
  #parent: Device | undefined

  constructor (name = '') {
    this.#name = name
  }

  get name (): string { return this.#name }
  get parent (): Device | undefined { return this.#parent }

  /** The child devices and signals, with their attribute names, in declaration order. */
  children (): Array<[string, Device]> {
    const out: Array<[string, Device]> = []
    for (const [attr, value] of Object.entries(this)) {
      if (value instanceof Device && value !== this) out.push([attr, value])
    }
    return out
  }

  /** Name this device and, recursively, its children `${name}-${attr}`. */
  setName (name: string): void {
    this.#name = name
    for (const [attr, child] of this.children()) {
      child.#parent = this
      child.setName(name === '' ? '' : `${name}-${attr}`)
    }
  }

  /**
   * Connect every child in parallel. Rejects with one FlyScanError NOT_CONNECTED whose message names each signal that
   * failed and why (details.failed holds how many).
   */
  async connect (options: ConnectOptions = {}): Promise<void> {
    const failures = await this.connectParts({ mock: options.mock ?? false, timeout: options.timeout ?? DEFAULT_TIMEOUT_MS })
    if (failures.length === 0) return
    const label = this.name === '' ? `${this.constructor.name} (unnamed)` : this.name
    const list = failures.map((f) => `${f.name}: ${causeText(f.cause)}`).join('; ')
    throw new FlyScanError(ErrorCode.NOT_CONNECTED,
      `${label}: ${failures.length} part${failures.length === 1 ? '' : 's'} failed to connect: ${list}`,
      { details: { device: label, failed: failures.length }, cause: new AggregateError(failures.map((f) => f.cause), list) })
  }

  /** Connect the children and return every leaf failure (signals override this to connect their backend). */
  async connectParts (options: Required<ConnectOptions>): Promise<ConnectFailure[]> {
    const results = await Promise.all(this.children().map(async ([, child]) => await child.connectParts(options)))
    return results.flat()
  }
}
