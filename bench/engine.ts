/**
 * bench `engine` (issue 3 item 7): the RunEngine's cost per message.
 *
 * The plan: open_run, then groups of create('primary') / read(det) / save / null, padded with null to exactly
 * `messages` messages, then close_run. `det` is a mock-connected SimDetector (a real device: read() goes through its
 * soft signal and the mock backend, two awaits); it is never triggered, so every event carries the same value. Every
 * save composes a schema-checked event (the first one a descriptor too) and routes it to one no-op subscriber.
 *
 * The floor ('limit') runs the same generator over the same Msg objects, consumed by a plain for-of loop with one
 * `await` per message (on the Msg itself, a non-thenable: one microtask turn, as the engine's loop awaits its
 * dispatch once per message). It includes generator resumption and that microtask turn; it excludes everything the
 * engine adds: state and request checks, the command registry lookup, the msgHook and replay cache, the per-message
 * interrupt race, the handlers (bundling, device reads, describe cache, composing and routing documents).
 *
 * Latency: a separate run with `msgHook` recording, in `engine.msg_us`, the time between consecutive hook calls, i.e.
 * one full engine cycle per message (dispatch and handler of the previous message, generator step). The hook costs
 * an hrtime read and a histogram record per message, so throughput is measured in runs without it.
 */
import { SimDetector } from '../src/devices/index.js'
import { RunEngine, msg, type Msg, type Plan } from '../src/engine/index.js'
import { HistogramSet, nowNs } from '../src/metrics/index.js'
import { median, target, type Benchmark, type BenchResult, type Measurement, type Role } from './harness.js'

const ENGINE = 'RunEngine null/read/save plan'
const FLOOR = 'bare generator + await'
const ABOVE = 'RunEngine above floor'
const TARGET_ABOVE_FLOOR_US = 5

/** The message list: open_run, [create, read, save, null]*, null padding, close_run; exactly `count` messages. */
export function engineMessages (det: SimDetector, count: number): Msg[] {
  if (count < 6) throw new Error(`engine bench: at least 6 messages (got ${count})`)
  const out: Msg[] = [msg.openRun({ plan_name: 'bench_engine' })]
  const groups = Math.floor((count - 2) / 4)
  for (let i = 0; i < groups; i++) out.push(msg.create('primary'), msg.read(det), msg.save(), msg.null())
  while (out.length < count - 1) out.push(msg.null())
  out.push(msg.closeRun())
  return out
}

function * replayPlan (messages: readonly Msg[]): Plan {
  for (const m of messages) yield m
}

/** The floor: the same generator and Msg objects, a plain for-of loop and one await per message. Returns ns. */
async function floorRun (messages: readonly Msg[]): Promise<number> {
  const t0 = nowNs()
  let n = 0
  for (const m of replayPlan(messages)) {
    await m
    n++
  }
  const ns = nowNs() - t0
  if (n !== messages.length) throw new Error(`engine bench floor: consumed ${n} of ${messages.length} messages`)
  return ns
}

async function engineRun (RE: RunEngine, messages: readonly Msg[]): Promise<number> {
  const t0 = nowNs()
  const result = await RE.run(replayPlan(messages))
  const ns = nowNs() - t0
  if (result.outcome !== 'completed') throw new Error(`engine bench: the plan ended ${result.outcome} (${result.reason ?? ''})`)
  return ns
}

function fromValues (subject: string, role: Role, metric: string, unit: string, values: readonly number[]): Measurement {
  return { subject, role, metric, unit, median: median(values), min: Math.min(...values), max: Math.max(...values), runs: values.length }
}

export const bench: Benchmark = {
  name: 'engine',
  description: 'RunEngine messages/s and us/message on a null/read/save plan, against a bare generator loop (floor)',
  async run ({ quick }): Promise<BenchResult> {
    const count = quick ? 1_000 : 100_000
    const runs = quick ? 3 : 9
    const det = new SimDetector({ name: 'det', acquireTime: 0 })
    await det.connect({ mock: true })
    const messages = engineMessages(det, count)
    let events = 0
    const RE = new RunEngine()
    RE.subscribe((name) => { if (name === 'event') events++ })

    // Warm-up (JIT) of both loops, unrecorded.
    await floorRun(messages)
    await engineRun(RE, messages)

    const floorNs: number[] = []
    const engineNs: number[] = []
    for (let i = 0; i < runs; i++) {
      // Interleaved so both see the same machine state; the difference is taken per pair.
      floorNs.push(await floorRun(messages))
      engineNs.push(await engineRun(RE, messages))
    }
    const groups = Math.floor((count - 2) / 4)
    const expectedEvents = groups * (runs + 1)
    if (events !== expectedEvents) throw new Error(`engine bench: ${events} events, expected ${expectedEvents}`)

    // Latency run: msgHook timestamps every dispatch; the gap between two is one engine cycle.
    const hist = new HistogramSet()
    let last = 0
    const timed = new RunEngine({
      msgHook: () => {
        const t = nowNs()
        if (last !== 0) hist.record('engine.msg_us', (t - last) / 1000)
        last = t
      }
    })
    await engineRun(timed, messages)
    const latency = hist.summaries()
    hist.destroy()

    const usPer = (ns: number): number => ns / 1000 / count
    const perSecond = (ns: number): number => count / (ns / 1e9)
    const measurements: Measurement[] = [
      fromValues(ENGINE, 'ours', 'messages/s', 'msg/s', engineNs.map(perSecond)),
      fromValues(ENGINE, 'ours', 'us/message', 'us', engineNs.map(usPer)),
      fromValues(ABOVE, 'ours', 'us/message', 'us', engineNs.map((ns, i) => usPer(ns) - usPer(floorNs[i] as number))),
      fromValues(FLOOR, 'limit', 'messages/s', 'msg/s', floorNs.map(perSecond)),
      fromValues(FLOOR, 'limit', 'us/message', 'us', floorNs.map(usPer))
    ]
    return {
      name: 'engine',
      description: bench.description,
      workload: {
        messages: count,
        mix: `open_run + ${groups}x(create,read,save,null) + ${count - 2 - 4 * groups} null + close_run`,
        readable: 'SimDetector (mock)',
        subscribers: 1,
        runs
      },
      measurements,
      latency,
      targets: [target(measurements, ABOVE, 'us/message', '<=', TARGET_ABOVE_FLOOR_US, 'us')]
    }
  }
}
