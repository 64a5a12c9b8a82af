/**
 * `tst-fly caget | caput | camonitor`: Channel Access at a terminal, through the same libca client the devices use
 * (src/backends/ca). Output follows EPICS base's tools closely enough to be familiar: `caget` prints `PV value`,
 * `camonitor` prints `PV date time value [severity status]`. Search settings come from `--config <yaml>`'s `ca`
 * section when given, otherwise from the EPICS_CA_* environment (docs/channel-access.md).
 */
import { parseArgs } from 'node:util'
import { CaChannel, CaContext, type CaMonitor } from '../backends/index.js'
import { loadConfigFile, type CaConfig } from '../config/index.js'
import { ErrorCode, FlyScanError } from '../errors.js'
import {
  DbrBase, DbrClass, convertValue, dbrType, epicsTimeToPosixSeconds, type DbrPayload, type DbrValue
} from '../parsers/index.js'
import { ALARM_STATUS_NAMES, SEVERITY_NAMES } from '../sim/index.js'

export interface CaToolIo {
  readonly stdout: (text: string) => void
  readonly stderr: (text: string) => void
  /** Resolves when the user asks to stop (SIGINT); camonitor runs until then unless bounded. */
  readonly interrupted?: Promise<void>
}

const DEFAULT_TIMEOUT_S = 5
/** Elements of an array printed before `...`; --all prints them all. */
const DEFAULT_MAX_ELEMENTS = 20

function bad (message: string): FlyScanError {
  return new FlyScanError(ErrorCode.BAD_INPUT, message)
}

function seconds (text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback
  const v = Number(text)
  if (!Number.isFinite(v) || v <= 0) throw bad(`${flag} must be a positive number of seconds, got '${text}'`)
  return v
}

/** The options every CA tool takes: --config <yaml>, --timeout <s>, --all (print whole arrays). */
const COMMON_OPTIONS = { config: { type: 'string' }, timeout: { type: 'string' }, all: { type: 'boolean' } } as const

function commonSettings (values: { timeout?: string, all?: boolean }): { timeoutMs: number, maxElements: number } {
  return {
    timeoutMs: seconds(values.timeout, '--timeout', DEFAULT_TIMEOUT_S) * 1000,
    maxElements: values.all === true ? Number.POSITIVE_INFINITY : DEFAULT_MAX_ELEMENTS
  }
}

async function caConfigFrom (file: string | undefined): Promise<CaConfig | undefined> {
  if (file === undefined) return undefined
  return (await loadConfigFile(file)).ca
}

/** Open every PV and wait for all of them; the error names each that did not connect. */
async function connectAll (pvs: readonly string[], timeoutMs: number, config: CaConfig | undefined): Promise<CaChannel[]> {
  const context = CaContext.get(config)
  const channels = pvs.map((pv) => new CaChannel(pv, { context }))
  const results = await Promise.allSettled(channels.map(async (ch) => { await ch.waitConnected(timeoutMs) }))
  const failed = results.flatMap((r, i) => r.status === 'rejected' ? [`${pvs[i] ?? ''}: ${(r.reason as Error).message}`] : [])
  if (failed.length > 0) {
    await closeAll(channels)
    throw new FlyScanError(ErrorCode.NOT_CONNECTED, `${failed.length} of ${pvs.length} PV(s) did not connect:\n  ${failed.join('\n  ')}`)
  }
  return channels
}

/** The enum strings of an ENUM channel (one DBR_CTRL_ENUM get), else undefined. */
async function enumStrings (ch: CaChannel, timeoutMs: number): Promise<readonly string[] | undefined> {
  if (ch.nativeType !== DbrBase.ENUM) return undefined
  const ctrl = await ch.get({ type: dbrType(DbrBase.ENUM, DbrClass.CTRL), timeoutMs })
  return ctrl.metadata?.enumStrings
}

/** A value as caget prints it: a scalar alone, an array as `count v0 v1 ...`. */
export function formatValue (value: DbrValue, choices: readonly string[] | undefined, maxElements: number): string {
  const shown = choices === undefined ? value : convertValue(value, DbrBase.STRING, choices)
  const n = shown.length
  const items: string[] = []
  for (let i = 0; i < Math.min(n, maxElements); i++) items.push(String(shown[i]))
  const text = n > maxElements ? `${items.join(' ')} ...` : items.join(' ')
  return n === 1 ? text : `${n} ${text}`
}

function formatTime (p: DbrPayload): string {
  if (p.stamp === undefined) return ''
  const s = epicsTimeToPosixSeconds(p.stamp)
  return new Date(s * 1000).toISOString().replace('T', ' ').replace('Z', '')
}

function formatAlarm (p: DbrPayload): string {
  if (p.severity === 0 && p.status === 0) return ''
  return ` ${SEVERITY_NAMES[p.severity] ?? p.severity} ${ALARM_STATUS_NAMES[p.status] ?? p.status}`
}

async function closeAll (channels: readonly CaChannel[]): Promise<void> {
  await Promise.allSettled(channels.map(async (ch) => { await ch.clear() }))
  await CaContext.current()?.destroy()
}

/** tst-fly caget <pv...> [--config f] [--timeout s] [--time] [--ctrl] [--all] [--json] */
export async function cagetCommand (args: string[], io: CaToolIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...COMMON_OPTIONS, time: { type: 'boolean' }, ctrl: { type: 'boolean' }, json: { type: 'boolean' } }
  })
  if (positionals.length === 0) throw bad('caget needs at least one PV name')
  const { timeoutMs, maxElements } = commonSettings(values)
  const channels = await connectAll(positionals, timeoutMs, await caConfigFrom(values.config))
  try {
    const json: Record<string, unknown> = {}
    for (const ch of channels) {
      const cls = values.ctrl === true ? DbrClass.CTRL : DbrClass.TIME
      const p = await ch.get({ type: dbrType(ch.nativeType, cls), timeoutMs })
      const choices = values.ctrl === true ? p.metadata?.enumStrings : await enumStrings(ch, timeoutMs)
      if (values.json === true) {
        const v = choices === undefined ? p.value : convertValue(p.value, DbrBase.STRING, choices)
        json[ch.pv] = {
          value: v.length === 1 ? v[0] : Array.from(v as ArrayLike<number | string>),
          severity: p.severity,
          status: p.status,
          ...(p.stamp === undefined ? {} : { timestamp: epicsTimeToPosixSeconds(p.stamp) }),
          ...(p.metadata === undefined ? {} : { metadata: p.metadata })
        }
        continue
      }
      const time = values.time === true && p.stamp !== undefined ? ` ${formatTime(p)}` : ''
      io.stdout(`${ch.pv}${time} ${formatValue(p.value, choices, maxElements)}${values.time === true ? formatAlarm(p) : ''}\n`)
      if (values.ctrl === true && p.metadata !== undefined) {
        for (const [k, v] of Object.entries(p.metadata)) io.stdout(`    ${k}: ${Array.isArray(v) ? v.join(', ') : String(v)}\n`)
      }
    }
    if (values.json === true) io.stdout(JSON.stringify(json) + '\n')
    return 0
  } finally {
    await closeAll(channels)
  }
}

/** Turn command-line words into a value for a channel of `base` holding up to `count` elements. */
export function parsePutValue (words: readonly string[], base: DbrBase, count: number, choices: readonly string[] | undefined, pv: string): DbrValue {
  // A CHAR array given one word that is not a number is a long string (areaDetector's FilePath and friends).
  if (base === DbrBase.CHAR && count > 1 && words.length === 1 && Number.isNaN(Number(words[0]))) {
    const bytes = new TextEncoder().encode(words[0])
    if (bytes.length + 1 > count) throw bad(`'${words[0] ?? ''}' is ${bytes.length} bytes: ${pv} holds at most ${count - 1} characters`)
    const out = new Uint8Array(bytes.length + 1)
    out.set(bytes)
    return out
  }
  if (words.length > count) throw bad(`${words.length} values given: ${pv} holds at most ${count}`)
  if (base === DbrBase.STRING) return [...words]
  try {
    return convertValue([...words], base, choices)
  } catch (err) {
    const hint = choices === undefined ? '' : ` (choices: ${choices.join(', ')})`
    throw bad(`cannot write ${words.join(' ')} to ${pv}: ${(err as Error).message}${hint}`)
  }
}

/** Negative numbers are values, not options: `caput PV -1` writes -1 (parseArgs would take it for a flag). */
const NEGATIVE_NUMBER = /^-(\d|\.\d|inf|nan)/i

/** tst-fly caput <pv> <value...> [--wait] [--config f] [--timeout s] */
export async function caputCommand (args: string[], io: CaToolIo): Promise<number> {
  const negatives = args.filter((a) => NEGATIVE_NUMBER.test(a))
  const parsed = parseArgs({
    args: args.map((a) => NEGATIVE_NUMBER.test(a) ? `\u0000${negatives.indexOf(a)}` : a),
    allowPositionals: true,
    options: { ...COMMON_OPTIONS, wait: { type: 'boolean' } }
  })
  const values = parsed.values
  const positionals = parsed.positionals.map((p) => p.startsWith('\u0000') ? negatives[Number(p.slice(1))] as string : p)
  const [pv, ...words] = positionals
  if (pv === undefined || words.length === 0) throw bad('caput needs a PV name and a value')
  const { timeoutMs, maxElements } = commonSettings(values)
  const channels = await connectAll([pv], timeoutMs, await caConfigFrom(values.config))
  const ch = channels[0] as CaChannel
  try {
    const choices = await enumStrings(ch, timeoutMs)
    const before = await ch.get({ timeoutMs })
    io.stdout(`Old : ${pv} ${formatValue(before.value, choices, maxElements)}\n`)
    const value = parsePutValue(words, ch.nativeType, ch.elementCount, choices, pv)
    await ch.put(dbrType(ch.nativeType, DbrClass.PLAIN), value, values.wait === true)
    const after = await ch.get({ timeoutMs })
    io.stdout(`New : ${pv} ${formatValue(after.value, choices, maxElements)}\n`)
    return 0
  } finally {
    await closeAll(channels)
  }
}

/** tst-fly camonitor <pv...> [--count n] [--seconds s] [--config f] [--timeout s] */
export async function camonitorCommand (args: string[], io: CaToolIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...COMMON_OPTIONS, count: { type: 'string' }, seconds: { type: 'string' } }
  })
  if (positionals.length === 0) throw bad('camonitor needs at least one PV name')
  const { timeoutMs, maxElements } = commonSettings(values)
  const limit = values.count === undefined ? Number.POSITIVE_INFINITY : Number(values.count)
  if (!Number.isInteger(limit) || limit <= 0) throw bad(`--count must be a positive integer, got '${values.count ?? ''}'`)
  const runFor = values.seconds === undefined ? undefined : seconds(values.seconds, '--seconds', 1) * 1000
  const channels = await connectAll(positionals, timeoutMs, await caConfigFrom(values.config))
  const monitors: CaMonitor[] = []
  try {
    let seen = 0
    let stop: () => void = () => {}
    const done = new Promise<void>((resolve) => { stop = resolve })
    for (const ch of channels) {
      const choices = await enumStrings(ch, timeoutMs)
      ch.onConnectionChange((state) => {
        if (state === 'disconnected') io.stdout(`${ch.pv} *** disconnected\n`)
      })
      monitors.push(ch.monitor((p) => {
        if (seen >= limit) return
        seen++
        io.stdout(`${ch.pv} ${formatTime(p)} ${formatValue(p.value, choices, maxElements)}${formatAlarm(p)}\n`)
        if (seen >= limit) stop()
      }))
    }
    const timer = runFor === undefined ? undefined : setTimeout(stop, runFor)
    await Promise.race([done, io.interrupted ?? new Promise<void>(() => {})])
    if (timer !== undefined) clearTimeout(timer)
    return 0
  } finally {
    await Promise.allSettled(monitors.map(async (m) => { await m.close() }))
    await closeAll(channels)
  }
}
