/**
 * Fails a test that leaves worker threads, sockets, servers or timers alive (STYLE.md guideline 20).
 *
 *   t.test('...', async (t) => {
 *     trackLeaks(t)          // first, so that its teardown runs after the test's own teardowns (tap runs them LIFO)
 *     ...
 *   })
 *
 * How it sees things:
 * - Workers: while a tracker is active, `worker_threads.Worker` is replaced by a subclass that registers every
 *   instance (`syncBuiltinESMExports()` updates the live `import { Worker } from 'node:worker_threads'` bindings of
 *   every ES module, src/protocol/worker-handle.ts included). A worker is alive until it emits 'exit'.
 * - Handles: `process.getActiveResourcesInfo()` is counted by type (TCP sockets and servers, pipes, UDP, child
 *   processes, timers) when the tracker starts and again at teardown; a type whose count grew is a leak.
 *
 * Limits (keep them in mind when a test passes):
 * - Only Workers constructed through an ES-module binding or `require('node:worker_threads').Worker` looked up at
 *   call time are seen; a module that copied the class into its own variable before tracking began is not.
 * - Handles are counted, not identified: a handle the test closed and an unrelated one opened meanwhile cancel out,
 *   and a handle that something else in the process opened during the test is blamed on the test. Tests in one file
 *   run sequentially, so this is reliable for them, but not for subtests run in parallel (`t.jobs > 1`).
 * - `getActiveResourcesInfo()` lists only ref'ed handles: an unref'ed socket or timer (which cannot keep the process
 *   alive) is not reported. Open fs FileHandles are not listed by Node at all, so they are not tracked.
 * - Closing is asynchronous, so the check waits up to `settleMs` for counts to come back before it fails.
 * On failure it terminates the workers it saw alive (so that the run can still end) and throws from the teardown,
 * which tap reports as a failure of the test.
 */
import module, { createRequire } from 'node:module'
import type { Worker, WorkerOptions } from 'node:worker_threads'

const require = createRequire(import.meta.url)
const workerThreads = require('node:worker_threads') as { Worker: typeof Worker }
const OriginalWorker = workerThreads.Worker

/** Resource types (as `process.getActiveResourcesInfo()` names them) whose count must not grow. */
export const TRACKED_RESOURCES = [
  'TCPServerWrap', 'TCPSocketWrap', 'ConnectWrap', 'PipeServerWrap', 'PipeWrap', 'UDPWrap', 'ProcessWrap', 'Timeout'
] as const

export interface LeakTracker {
  /** Workers created since the tracker started that have not exited yet. */
  liveWorkers (): Worker[]
  /** What is alive now that was not when the tracker started, after waiting up to `settleMs` for it to go away. */
  check (settleMs?: number): Promise<string[]>
}

interface Tracker {
  readonly workers: Set<Worker>
}

const active = new Set<Tracker>()

class TrackedWorker extends OriginalWorker {
  constructor (filename: string | URL, options?: WorkerOptions) {
    super(filename, options)
    const live = [...active].map((t) => t.workers)
    for (const set of live) set.add(this)
    this.once('exit', () => { for (const set of live) set.delete(this) })
  }
}

function install (): void {
  workerThreads.Worker = TrackedWorker
  module.syncBuiltinESMExports()
}

function uninstall (): void {
  workerThreads.Worker = OriginalWorker
  module.syncBuiltinESMExports()
}

function countResources (): Map<string, number> {
  const counts = new Map<string, number>()
  for (const type of process.getActiveResourcesInfo()) counts.set(type, (counts.get(type) ?? 0) + 1)
  return counts
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export interface TrackLeaksOptions {
  /** How long the teardown check waits for closing handles and exiting workers (default 500 ms). */
  readonly settleMs?: number
}

export function trackLeaks (t: { teardown (fn: () => unknown): void }, options: TrackLeaksOptions = {}): LeakTracker {
  const tracker: Tracker = { workers: new Set() }
  if (active.size === 0) install()
  active.add(tracker)
  const baseline = countResources()

  const grown = (): string[] => {
    const now = countResources()
    const out: string[] = []
    for (const type of TRACKED_RESOURCES) {
      const before = baseline.get(type) ?? 0
      const after = now.get(type) ?? 0
      if (after > before) out.push(`${after - before} ${type} (${before} before the test, ${after} after)`)
    }
    return out
  }
  const leaks = (): string[] => [
    ...[...tracker.workers].map((w) => `worker thread ${w.threadId} still alive`),
    ...grown()
  ]
  const check = async (settleMs = options.settleMs ?? 500): Promise<string[]> => {
    const deadline = Date.now() + settleMs
    let found = leaks()
    while (found.length > 0 && Date.now() < deadline) {
      await sleep(10)
      found = leaks()
    }
    return found
  }

  t.teardown(async () => {
    try {
      const found = await check()
      if (found.length > 0) {
        await Promise.all([...tracker.workers].map((w) => w.terminate()))
        throw new Error(`leaked resources: ${found.join('; ')}`)
      }
    } finally {
      active.delete(tracker)
      if (active.size === 0) uninstall()
    }
  })
  return { liveWorkers: () => [...tracker.workers], check }
}
