/**
 * A SimClock that moves only when told to: deterministic time for tests of the simulated records (and for running
 * the simulation faster than real time). `advance(ms)` fires every timer that falls due, in time order, with
 * `nowMs()` equal to each timer's due time while it runs.
 */
import type { SimClock } from './pv.js'

interface Timer {
  readonly id: number
  readonly dueMs: number
  readonly fn: () => void
}

export interface ManualClockOptions {
  /** Starting time (ms since the POSIX epoch). */
  readonly startMs?: number
  /** Shortest delay a timer gets, as Node's setTimeout rounds anything shorter up to 1 ms (default 0). */
  readonly minDelayMs?: number
}

export class ManualClock implements SimClock {
  #now: number
  readonly #minDelayMs: number
  #timers: Timer[] = []
  #nextId = 0
  /** How many timers have fired. */
  fired = 0

  constructor (options: ManualClockOptions = {}) {
    this.#now = options.startMs ?? Date.UTC(2026, 0, 1)
    this.#minDelayMs = options.minDelayMs ?? 0
  }

  nowMs = (): number => this.#now

  setTimer = (fn: () => void, ms: number): (() => void) => {
    const timer = { id: this.#nextId++, dueMs: this.#now + Math.max(ms, this.#minDelayMs, 0), fn }
    this.#timers.push(timer)
    return () => { this.#timers = this.#timers.filter((t) => t !== timer) }
  }

  /** Timers waiting to fire. */
  get pending (): number {
    return this.#timers.length
  }

  /** Move time forward by `ms`, firing every timer due by then (timers set meanwhile included). */
  advance (ms: number): void {
    this.advanceTo(this.#now + ms)
  }

  advanceTo (targetMs: number): void {
    for (;;) {
      const next = this.#earliest()
      if (next === undefined || next.dueMs > targetMs) break
      this.#timers = this.#timers.filter((t) => t !== next)
      this.#now = Math.max(this.#now, next.dueMs)
      this.fired++
      next.fn()
    }
    this.#now = Math.max(this.#now, targetMs)
  }

  /** Fire timers until none is left (bounded, against a timer that always sets another). */
  runAll (maxTimers = 1_000_000): void {
    for (let i = 0; i < maxTimers; i++) {
      const next = this.#earliest()
      if (next === undefined) return
      this.advanceTo(next.dueMs)
    }
  }

  #earliest (): Timer | undefined {
    let best: Timer | undefined
    for (const t of this.#timers) if (best === undefined || t.dueMs < best.dueMs || (t.dueMs === best.dueMs && t.id < best.id)) best = t
    return best
  }
}
