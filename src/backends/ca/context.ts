/**
 * The Channel Access client context of this thread: one preemptive libca context, created lazily from CaConfig,
 * shared by every channel the thread opens (docs/channel-access.md).
 *
 * libca keeps its context in thread-local storage and tst-fly keeps this object in module state, which is per thread
 * too (each worker has its own module graph): the main thread and every worker get their own context. Preemptive
 * mode is the one that works under koffi: libca's own threads deliver callbacks, and koffi queues each one to this
 * thread's event loop while the libca thread waits (non-preemptive mode would need ca_pend_event polling and
 * deadlocked when tried).
 */
import { accessSync, constants as fsConstants } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { ErrorCode, FlyScanError } from '../../errors.js'
import { defaults } from '../../../config/index.js'
import type { CaConfig } from '../../config/index.js'
import { CaOp, type ConnectionArgs, Eca, type EventArgs, type ExceptionArgs, type LibCa, loadLibca, type RegisteredCallback } from './libca.js'

/** Where an EPICS_CA_* value in force came from. */
export type CaSettingSource = 'config' | 'environment' | 'default'

export interface CaSetting {
  readonly name: string
  readonly value: string
  readonly from: CaSettingSource
}

/** The CaConfig keys that become EPICS_CA_* variables. */
const CONFIG_VARIABLES = [
  ['addrList', 'EPICS_CA_ADDR_LIST'],
  ['autoAddrList', 'EPICS_CA_AUTO_ADDR_LIST'],
  ['serverPort', 'EPICS_CA_SERVER_PORT'],
  ['maxArrayBytes', 'EPICS_CA_MAX_ARRAY_BYTES']
] as const

/** The variables quoted when a search fails. */
const SEARCH_VARIABLES = ['EPICS_CA_ADDR_LIST', 'EPICS_CA_AUTO_ADDR_LIST', 'EPICS_CA_NAME_SERVERS', 'EPICS_CA_SERVER_PORT']

function configValue (config: CaConfig, key: typeof CONFIG_VARIABLES[number][0]): string | undefined {
  const v = config[key]
  if (v === undefined) return undefined
  if (typeof v === 'boolean') return v ? 'YES' : 'NO'
  return String(v)
}

/** For each variable a context set: what the user's environment held before (undefined: unset) and the value set. */
const overridden = new Map<string, { readonly original: string | undefined, applied: string }>()

/** process.env as the user left it: variables tst-fly set for an earlier context show their original values. */
function userEnvironment (): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const [name, { original, applied }] of overridden) {
    if (env[name] !== applied) continue
    if (original === undefined) delete env[name]
    else env[name] = original
  }
  return env
}

/**
 * Put `settings` into the C environment, where libca's getenv reads them (a worker's process.env is a copy that
 * never reaches it), and give back their original values to variables an earlier context set and this one does not.
 */
function applyEnvironment (lib: LibCa, settings: readonly CaSetting[]): void {
  const user = userEnvironment()
  const names = new Set(settings.map((s) => s.name))
  for (const [name, { original }] of overridden) {
    if (names.has(name)) continue
    if (original === undefined) lib.unsetenv(name)
    else lib.setenv(name, original)
    overridden.delete(name)
  }
  for (const s of settings) {
    const entry = overridden.get(s.name)
    if (entry === undefined) overridden.set(s.name, { original: user[s.name], applied: s.value })
    else entry.applied = s.value
    lib.setenv(s.name, s.value)
  }
}

/**
 * The EPICS_CA_* values a context created now would use. Precedence, per variable: the config's key, else the
 * variable already in the user's environment, else tst-fly's default (only EPICS_CA_MAX_ARRAY_BYTES has one). Every
 * other EPICS_CA_* variable of the environment is passed on as it is.
 */
export function caEnvironment (config: CaConfig = {}, env: NodeJS.ProcessEnv = userEnvironment()): CaSetting[] {
  const settings = new Map<string, CaSetting>()
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith('EPICS_CA_') && value !== undefined) settings.set(name, { name, value, from: 'environment' })
  }
  for (const [key, name] of CONFIG_VARIABLES) {
    const value = configValue(config, key)
    if (value !== undefined) settings.set(name, { name, value, from: 'config' })
  }
  if (!settings.has('EPICS_CA_MAX_ARRAY_BYTES')) {
    settings.set('EPICS_CA_MAX_ARRAY_BYTES', { name: 'EPICS_CA_MAX_ARRAY_BYTES', value: String(defaults.ca.maxArrayBytes), from: 'default' })
  }
  return [...settings.values()].sort((a, b) => a.name.localeCompare(b.name))
}

/**
 * The directory holding tst-fly's `caRepeater` (libexec/ at the package root, from build/src/backends/ca/). libca
 * starts a repeater with execlp("caRepeater") when its first channel is created and nothing holds
 * EPICS_CA_REPEATER_PORT; Debian's libca has none, so without this it prints four lines about it and no beacon
 * reaches its clients (docs/channel-access.md, "The CA repeater").
 */
export const CA_REPEATER_DIRECTORY = fileURLToPath(new URL('../../../../libexec/', import.meta.url))

/** Whether CA_REPEATER_DIRECTORY holds an executable caRepeater (checked once per thread; a warning if not). */
let repeaterUsable: boolean | undefined

function repeaterAvailable (): boolean {
  if (repeaterUsable !== undefined) return repeaterUsable
  try {
    accessSync(`${CA_REPEATER_DIRECTORY}caRepeater`, fsConstants.X_OK)
    repeaterUsable = true
  } catch (err) {
    repeaterUsable = false
    process.emitWarning(`${CA_REPEATER_DIRECTORY}caRepeater is missing or not executable ` +
      `(${err instanceof Error ? err.message : String(err)}): libca cannot start a CA repeater, and its clients get no beacons`)
  }
  return repeaterUsable
}

/**
 * Run `fn` (the ca_create_channel that starts libca's UDP side) with CA_REPEATER_DIRECTORY first on the C
 * environment's PATH and TST_FLY_NODE naming this node binary, as libca's fork of a caRepeater will see them; both
 * are put back as they were right after. libca forks inside that call, so nothing else needs them.
 */
function withRepeaterOnPath<R> (lib: LibCa, fn: () => R): R {
  if (!repeaterAvailable()) return fn()
  const path = lib.getenv('PATH')
  const node = lib.getenv('TST_FLY_NODE')
  const dir = CA_REPEATER_DIRECTORY.replace(/\/$/, '')
  lib.setenv('PATH', path === undefined || path === '' ? dir : `${dir}:${path}`)
  lib.setenv('TST_FLY_NODE', process.execPath)
  try {
    return fn()
  } finally {
    restoreVariable(lib, 'PATH', path)
    restoreVariable(lib, 'TST_FLY_NODE', node)
  }
}

function restoreVariable (lib: LibCa, name: string, value: string | undefined): void {
  if (value === undefined) lib.unsetenv(name)
  else lib.setenv(name, value)
}

/** A libca object the context releases when it is destroyed (a channel: its subscriptions, then itself). */
export interface CaResource {
  release: () => Promise<void>
}

let current: CaContext | undefined

/** Period of the check for closed circuits while destroying. */
const CIRCUIT_POLL_MS = 5
/** A timer that only keeps the event loop alive while channels are open (its callback does nothing). */
const KEEP_ALIVE_INTERVAL_MS = 1 << 30

export class CaContext {
  readonly lib: LibCa
  readonly settings: readonly CaSetting[]
  readonly #config: CaConfig
  readonly #connectionHandlers = new Map<bigint, (up: boolean) => void>()
  readonly #eventHandlers = new Map<number, (args: EventArgs) => void>()
  readonly #resources = new Set<CaResource>()
  #keepAlive: ReturnType<typeof setInterval> | undefined
  readonly #connectionCallback: RegisteredCallback
  readonly #eventCallback: RegisteredCallback
  readonly #exceptionCallback: RegisteredCallback
  readonly #exceptionListeners = new Set<(err: FlyScanError) => void>()
  readonly #beforeExit = (): void => { this.destroy().catch((err: unknown) => { process.emitWarning(err instanceof Error ? err : String(err)) }) }
  #nextUsr = 1
  /** Whether a ca_create_channel has succeeded: the first one creates libca's UDP side (and maybe starts a repeater). */
  #searching = false
  #flushQueued = false
  #destroyed: Promise<void> | undefined

  private constructor (config: CaConfig) {
    this.lib = loadLibca(config.libraryPath)
    this.#config = config
    this.settings = caEnvironment(config)
    applyEnvironment(this.lib, this.settings)
    const status = this.lib.contextCreate(true)
    if (status !== Eca.NORMAL) {
      throw new FlyScanError(ErrorCode.CA, `ca_context_create failed: ${this.lib.message(status)}`, { details: { status } })
    }
    if (!this.lib.preemptiveCallbackIsEnabled()) {
      throw new FlyScanError(ErrorCode.CA,
        'this thread already has a non-preemptive libca context (created outside tst-fly); tst-fly needs a preemptive one')
    }
    this.#connectionCallback = this.lib.registerConnectionCallback((args) => { this.#onConnection(args) })
    this.#eventCallback = this.lib.registerEventCallback((args) => { this.#onEvent(args) })
    this.#exceptionCallback = this.lib.registerExceptionCallback((args) => { this.#onException(args) })
    this.lib.addExceptionEvent(this.#exceptionCallback.pointer)
    // A context still alive when the event loop empties crashed the process (SIGSEGV) as Node tore the thread down
    // while libca threads called back: destroy it first (the loop runs on until that is done).
    process.once('beforeExit', this.#beforeExit)
  }

  /**
   * This thread's context, created on first use from `config`. Asking again with a config that would set other
   * EPICS_CA_* values (or another library) is a BAD_INPUT error: libca reads its environment once per context.
   */
  static get (config?: CaConfig): CaContext {
    if (current !== undefined) {
      if (config !== undefined) current.#checkSameConfig(config)
      return current
    }
    current = new CaContext(config ?? {})
    return current
  }

  /** This thread's context if one exists (and is not destroyed). */
  static current (): CaContext | undefined {
    return current
  }

  get destroyed (): boolean { return this.#destroyed !== undefined }

  /** The search settings in force, for error messages: `EPICS_CA_ADDR_LIST="…" EPICS_CA_AUTO_ADDR_LIST=NO …`. */
  describeSearch (): string {
    const parts = this.settings.filter((s) => SEARCH_VARIABLES.includes(s.name)).map((s) => `${s.name}=${JSON.stringify(s.value)}`)
    if (!this.settings.some((s) => s.name === 'EPICS_CA_ADDR_LIST')) parts.unshift('EPICS_CA_ADDR_LIST unset')
    if (!this.settings.some((s) => s.name === 'EPICS_CA_AUTO_ADDR_LIST')) parts.push('EPICS_CA_AUTO_ADDR_LIST unset (YES: broadcast on every interface)')
    return parts.join(' ')
  }

  /**
   * ca_create_channel, with this context's connection callback; returns [status, chid]. The context's first channel
   * creates libca's UDP side, which starts a CA repeater when none runs: tst-fly's, found through the PATH.
   */
  createChannel (name: string, puser: number, priority: number): [number, bigint | null] {
    this.assertAlive(`opening ${name}`)
    if (this.#searching) return this.lib.createChannel(name, this.#connectionCallback.pointer, puser, priority)
    const result = withRepeaterOnPath(this.lib, () => this.lib.createChannel(name, this.#connectionCallback.pointer, puser, priority))
    this.#searching = result[0] === Eca.NORMAL
    return result
  }

  /**
   * Beacon anomalies this context has seen (ca_beacon_anomaly_count): a new or restarted server announcing itself.
   * They reach libca only through a CA repeater, so this stays 0 without one.
   */
  get beaconAnomalyCount (): number {
    return this.#destroyed === undefined ? this.lib.beaconAnomalyCount() : 0
  }

  /** The function pointer every channel gives ca_create_channel. */
  get connectionCallback (): bigint { return this.#connectionCallback.pointer }
  /** The function pointer every get, put and subscription gives libca; `usr` tells them apart. */
  get eventCallback (): bigint { return this.#eventCallback.pointer }

  onConnection (chid: bigint, handler: (up: boolean) => void): void { this.#connectionHandlers.set(chid, handler) }
  offConnection (chid: bigint): void { this.#connectionHandlers.delete(chid) }

  /** Route event callbacks carrying the returned `usr` to `handler` until `removeEventHandler`. */
  addEventHandler (handler: (args: EventArgs) => void): number {
    const usr = this.#nextUsr++
    this.#eventHandlers.set(usr, handler)
    return usr
  }

  removeEventHandler (usr: number): void { this.#eventHandlers.delete(usr) }

  /**
   * `cb` gets every asynchronous error libca reports (a put without completion the server refused, a lost
   * circuit...) as a CA error naming the PV; returns the function that stops it. With no listener, each becomes a
   * process warning.
   */
  onException (cb: (err: FlyScanError) => void): () => void {
    this.#exceptionListeners.add(cb)
    return () => { this.#exceptionListeners.delete(cb) }
  }

  /**
   * Channels register here. While any is open the event loop is kept alive, as an open socket keeps it: libca's
   * threads are invisible to Node, so a put waiting for completion or a monitor would otherwise let the process
   * reach beforeExit and destroy the context under them. Clear channels (or destroy the context) to let it exit.
   */
  track (resource: CaResource): void {
    this.#resources.add(resource)
    this.#keepAlive ??= setInterval(() => {}, KEEP_ALIVE_INTERVAL_MS)
  }

  untrack (resource: CaResource): void {
    this.#resources.delete(resource)
    if (this.#resources.size === 0 && this.#keepAlive !== undefined) {
      clearInterval(this.#keepAlive)
      this.#keepAlive = undefined
    }
  }

  /** Send what was queued: one ca_flush_io after the current synchronous run, however many requests it issued. */
  requestFlush (): void {
    if (this.#flushQueued) return
    this.#flushQueued = true
    queueMicrotask(() => {
      this.#flushQueued = false
      if (this.#destroyed === undefined) this.lib.flushIo()
    })
  }

  /** Fail if this context is destroyed; `what` names the operation. */
  assertAlive (what: string): void {
    if (this.#destroyed !== undefined) {
      throw new FlyScanError(ErrorCode.CANCELLED, `${what}: the Channel Access context of this thread was destroyed`)
    }
  }

  /**
   * Clear every channel and subscription (pending gets and puts reject with CANCELLED), then ca_context_destroy, then
   * release the koffi callbacks. Safe to call twice; the next CaContext.get() creates a new context.
   */
  async destroy (): Promise<void> {
    if (this.#destroyed !== undefined) return await this.#destroyed
    this.#destroyed = this.#destroy()
    return await this.#destroyed
  }

  async #destroy (): Promise<void> {
    if (current === this) current = undefined
    process.off('beforeExit', this.#beforeExit)
    // The clears run on the libuv pool and wait for any callback in progress, which this thread runs meanwhile.
    await Promise.allSettled([...this.#resources].map(async (r) => { await r.release() }))
    this.#resources.clear()
    if (this.#keepAlive !== undefined) clearInterval(this.#keepAlive)
    this.#keepAlive = undefined
    // Clearing a circuit's last channel starts its clean shutdown; ca_context_destroy would wait (up to 30 s) for the
    // server's answer with this thread blocked, which an IOC served from this very thread (tests, the demo) cannot
    // give. So wait here, with the event loop free, for the circuits to close.
    const deadline = Date.now() + defaults.ca.circuitCloseTimeoutMs
    while (this.lib.iocConnectionCount() > 0 && Date.now() < deadline) await sleep(CIRCUIT_POLL_MS)
    // No channel is left, so no connection or event callback can come. An exception still could, while libca shuts
    // down: it goes to a C function that ignores it, since this thread is blocked in ca_context_destroy.
    this.lib.addExceptionEvent(this.lib.ignoreExceptions)
    this.lib.contextDestroy()
    this.#connectionHandlers.clear()
    this.#eventHandlers.clear()
    this.#exceptionListeners.clear()
    this.#connectionCallback.unregister()
    this.#eventCallback.unregister()
    this.#exceptionCallback.unregister()
  }

  #checkSameConfig (config: CaConfig): void {
    const wanted = caEnvironment(config)
    const same = (config.libraryPath === undefined || loadLibca(config.libraryPath) === this.lib) &&
      wanted.length === this.settings.length &&
      wanted.every((s, i) => s.name === this.settings[i]?.name && s.value === this.settings[i]?.value)
    if (!same) {
      throw new FlyScanError(ErrorCode.BAD_INPUT,
        `this thread's Channel Access context was created with ${JSON.stringify(this.#config)}; it cannot be reused with ${JSON.stringify(config)} ` +
        '(destroy it first: libca reads its EPICS_CA_* environment once per context)')
    }
  }

  #onConnection (args: ConnectionArgs): void {
    const handler = this.#connectionHandlers.get(args.chid)
    if (handler !== undefined) runOutsideFfi(handler, args.op === CaOp.CONN_UP)
  }

  #onException (args: ExceptionArgs): void {
    const pv = args.chid === null ? undefined : this.lib.name(args.chid)
    const text = this.lib.message(args.stat)
    const err = new FlyScanError(ErrorCode.CA,
      `Channel Access exception${pv === undefined ? '' : ` on ${pv}`}: ${text}${args.ctx === null ? '' : ` (${args.ctx})`}`,
      { details: { pv: pv ?? null, status: args.stat, eca: text, op: args.op, context: args.ctx } })
    if (this.#exceptionListeners.size === 0) {
      process.emitWarning(err)
      return
    }
    for (const l of [...this.#exceptionListeners]) runOutsideFfi(l, err)
  }

  #onEvent (args: EventArgs): void {
    const handler = this.#eventHandlers.get(args.usr)
    if (handler !== undefined) runOutsideFfi(handler, args)
  }
}

/**
 * Run a handler from inside a koffi callback. An exception must not unwind into the FFI frame (libca would get a
 * zero return and the error would be lost), so it is thrown again from a microtask, as an error in an event
 * listener would be.
 */
function runOutsideFfi<A> (handler: (arg: A) => void, arg: A): void {
  try {
    handler(arg)
  } catch (err) {
    queueMicrotask(() => { throw err })
  }
}

/** Destroy this thread's context, if there is one (tests, clean exit). */
export async function destroyCaContext (): Promise<void> {
  await current?.destroy()
}
