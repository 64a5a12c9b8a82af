/** Time as devices see it, injected so tests run in virtual time (STYLE guideline 18). Milliseconds. */
export interface Clock {
  now (): number
  sleep (ms: number): Promise<void>
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: async (ms: number) => { await new Promise<void>((resolve) => setTimeout(resolve, ms)) }
}

/**
 * A clock whose sleep returns at once (after the event loop has turned, so other tasks interleave) and advances
 * `now` by the time slept.
 */
export class VirtualClock implements Clock {
  private t: number
  constructor (startMs = 0) { this.t = startMs }
  now (): number { return this.t }
  async sleep (ms: number): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve))
    this.t += Math.max(0, ms)
  }
}
