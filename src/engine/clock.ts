/**
 * The engine's clock: wall time in seconds (event-model `time` fields) and an abortable sleep. Injected so that
 * engine and device tests run in virtual time (STYLE guideline 18).
 */
export interface Clock {
  /** Seconds since the epoch (float), as event-model documents carry them. */
  now (): number
  /** Resolves after `seconds`; rejects with the signal's reason when aborted (and frees its timer). */
  sleep (seconds: number, signal?: AbortSignal): Promise<void>
}

function abortReason (signal: AbortSignal): unknown {
  return signal.reason ?? new Error('sleep aborted')
}

export const realClock: Clock = {
  now: () => Date.now() / 1000,
  sleep: (seconds, signal) => new Promise<void>((resolve, reject) => {
    if (signal?.aborted === true) { reject(abortReason(signal)); return }
    const onAbort = (): void => { clearTimeout(timer); reject(abortReason(signal as AbortSignal)) }
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, Math.max(0, seconds * 1000))
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

interface Timer { at: number, seq: number, resolve: () => void }

/**
 * Virtual time. `advance(s)` fires due timers in order. With `autoAdvance` (the default), whenever timers are
 * pending and the event loop has drained (a setImmediate turn), time jumps to the earliest timer: every delay of a
 * test that goes through this clock then takes no wall time, and orderings stay exact.
 */
export class VirtualClock implements Clock {
  #now: number
  #seq = 0
  #timers: Timer[] = []
  #scheduled = false
  readonly #autoAdvance: boolean

  constructor (options: { start?: number, autoAdvance?: boolean } = {}) {
    this.#now = options.start ?? 1_700_000_000
    this.#autoAdvance = options.autoAdvance ?? true
  }

  now (): number { return this.#now }

  get pendingTimers (): number { return this.#timers.length }

  sleep (seconds: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) { reject(abortReason(signal)); return }
      const timer: Timer = { at: this.#now + Math.max(0, seconds), seq: this.#seq++, resolve: () => {} }
      const onAbort = (): void => {
        this.#timers = this.#timers.filter((x) => x !== timer)
        reject(abortReason(signal as AbortSignal))
      }
      timer.resolve = () => { signal?.removeEventListener('abort', onAbort); resolve() }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#timers.push(timer)
      this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq)
      this.#schedule()
    })
  }

  /** Moves time forward by `seconds`, firing every timer that falls due, in order. */
  advance (seconds: number): void {
    const end = this.#now + seconds
    for (;;) {
      const first = this.#timers[0]
      if (first === undefined || first.at > end) break
      this.#timers.shift()
      this.#now = first.at
      first.resolve()
    }
    this.#now = end
  }

  #schedule (): void {
    if (!this.#autoAdvance || this.#scheduled) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      const first = this.#timers[0]
      if (first === undefined) return
      this.advance(first.at - this.#now)
      if (this.#timers.length > 0) this.#schedule()
    })
  }
}
