/**
 * One monotonic clock for every thread. `performance.timeOrigin` differs per worker, so timestamps that cross threads
 * use `nowNs()` (process.hrtime.bigint, shared by all threads of a process) as a float of nanoseconds: exact to well
 * below a microsecond for 100 days of uptime.
 */
export function nowNs (): number {
  return Number(process.hrtime.bigint())
}

export function nowUs (): number {
  return Number(process.hrtime.bigint()) / 1000
}
