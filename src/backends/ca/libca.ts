/**
 * libca, the EPICS Channel Access client library, loaded through koffi (docs/decisions/0006-libca-through-koffi.md).
 *
 * This file declares the C prototypes and nothing else: one typed function per libca entry point tst-fly calls, each
 * checked against EPICS base R7.0.3.1 `modules/ca/src/client/cadef.h` (the Debian package libca4.13.5 is that
 * release). On x86-64 Linux `long` and `unsigned long` are 64-bit, `chtype` is `long`, `capri` is `unsigned`, `chid`
 * and `evid` are pointers (BigInt in koffi 3).
 *
 * Rules the callers follow (measured, and read from libca's access.cpp / ca_client_context.cpp):
 * - A libca thread that calls a registered callback blocks until koffi has run it on this thread's event loop, and
 *   it holds the context's callback mutex meanwhile. ca_clear_channel, ca_clear_subscription and ca_context_destroy
 *   take that mutex, so calling them synchronously here while a callback is queued would deadlock: the clears are
 *   therefore declared with koffi's `.async` (they run on the libuv pool), and the context is destroyed only after
 *   every channel is cleared.
 * - The `dbr` pointer of an event callback is valid only during the callback: copy out before returning. `copy`
 *   (libc's memcpy, with the destination passed as a typed array) does that without a new ArrayBuffer per update;
 *   `view` wraps the buffer in one (an external ArrayBuffer, which V8 counts towards its heap and collects).
 */
import { createRequire } from 'node:module'
import type koffiModule from 'koffi'
import type { LibraryHandle, TypeObject } from 'koffi'
import { ErrorCode, FlyScanError } from '../../errors.js'

type Koffi = typeof koffiModule

/** The soname of libca in Debian's libca4.13.5 (EPICS 7.0.3.1). */
export const LIBCA_SONAME = 'libca.so.4.13.5'
/** Where Debian puts it on x86-64. */
export const LIBCA_DEBIAN_PATH = '/usr/lib/x86_64-linux-gnu/libca.so.4.13.5'
/** Environment variable naming libca's path when the config does not. */
export const LIBCA_PATH_ENV = 'TST_FLY_LIBCA'

/** ECA_ status codes tst-fly tests for (caerr.h: message number << 3 | severity). */
export const Eca = {
  NORMAL: 1,
  DISCONN: 192,
  CHANDESTROY: 442
} as const

/** `op` of a connection callback (cadef.h CA_OP_CONN_UP / CA_OP_CONN_DOWN). */
export const CaOp = { CONN_UP: 6, CONN_DOWN: 7 } as const

/** Subscription event masks (caeventmask.h). */
export const Dbe = { VALUE: 1, LOG: 2, ALARM: 4, PROPERTY: 8 } as const

/** enum channel_state. */
export const ChannelState = { NEVER_CONN: 0, PREV_CONN: 1, CONN: 2, CLOSED: 3 } as const

/** `struct connection_handler_args`, as koffi hands it to the callback. */
export interface ConnectionArgs {
  readonly chid: bigint
  readonly op: number
}

/** `struct event_handler_args`; `usr` is the integer tst-fly passed as `void *`, `dbr` is null on errors. */
export interface EventArgs {
  readonly usr: number
  readonly chid: bigint
  readonly type: number
  readonly count: number
  readonly dbr: bigint | null
  readonly status: number
}

/** `struct exception_handler_args` (an asynchronous error libca reports, e.g. a failed put without completion). */
export interface ExceptionArgs {
  readonly chid: bigint | null
  readonly type: number
  readonly count: number
  readonly stat: number
  readonly op: number
  readonly ctx: string | null
  readonly pFile: string | null
  readonly lineNo: number
}

/** A registered callback: the function pointer to give libca, and its release. */
export interface RegisteredCallback {
  readonly pointer: bigint
  unregister: () => void
}

/** The libca entry points tst-fly uses, typed. */
export interface LibCa {
  /** The path or soname that was loaded. */
  readonly path: string
  readonly version: () => string
  readonly message: (status: number) => string
  readonly contextCreate: (preemptive: boolean) => number
  readonly contextDestroy: () => void
  readonly preemptiveCallbackIsEnabled: () => boolean
  /** Returns [status, chid]. */
  readonly createChannel: (name: string, connectionCallback: bigint, puser: number, priority: number) => [number, bigint | null]
  readonly clearChannel: (chid: bigint) => Promise<number>
  readonly fieldType: (chid: bigint) => number
  readonly elementCount: (chid: bigint) => number
  readonly state: (chid: bigint) => number
  readonly hostName: (chid: bigint) => string
  readonly arrayGetCallback: (type: number, count: number, chid: bigint, callback: bigint, usr: number) => number
  readonly arrayPut: (type: number, count: number, chid: bigint, value: Uint8Array) => number
  readonly arrayPutCallback: (type: number, count: number, chid: bigint, value: Uint8Array, callback: bigint, usr: number) => number
  /** Returns [status, evid]. */
  readonly createSubscription: (type: number, count: number, chid: bigint, mask: number, callback: bigint, usr: number) => [number, bigint | null]
  readonly clearSubscription: (evid: bigint) => Promise<number>
  readonly flushIo: () => number
  /** Circuits (TCP connections to servers) of this thread's context. */
  readonly iocConnectionCount: () => number
  readonly name: (chid: bigint) => string
  /**
   * ca_add_exception_event. Without a handler of ours, libca prints an exception and calls abort() when its
   * severity is an error: any server's error reply could kill the process.
   */
  readonly addExceptionEvent: (callback: bigint) => number
  /** ca_beacon_anomaly_count: beacon anomalies (a new or restarted server) this thread's context has seen. */
  readonly beaconAnomalyCount: () => number
  /** ca_beacon_period: the server's estimated beacon period in seconds; negative until two beacons arrived. */
  readonly beaconPeriod: (chid: bigint) => number
  /**
   * A C function that ignores its arguments (libc's getpid), to install as the exception handler while the context
   * is destroyed: a handler queued to this thread then would deadlock, and no handler at all could abort().
   */
  readonly ignoreExceptions: bigint
  /** setenv(3): libca reads EPICS_CA_* with getenv, and a worker's process.env does not reach the C environment. */
  readonly setenv: (name: string, value: string) => void
  readonly unsetenv: (name: string) => void
  /** getenv(3): the C environment, which in a worker differs from its process.env. */
  readonly getenv: (name: string) => string | undefined
  readonly registerConnectionCallback: (fn: (args: ConnectionArgs) => void) => RegisteredCallback
  readonly registerEventCallback: (fn: (args: EventArgs) => void) => RegisteredCallback
  readonly registerExceptionCallback: (fn: (args: ExceptionArgs) => void) => RegisteredCallback
  /** `bytes` bytes at `pointer`, without a copy: valid only while libca's buffer is (inside the callback). */
  readonly view: (pointer: bigint, bytes: number) => Uint8Array
  /**
   * memcpy `bytes` bytes from `pointer + offset` into `dest` (from its first byte). No bounds are checked here: the
   * caller ensures `dest.byteLength >= bytes` and that the source range lies inside libca's buffer.
   */
  readonly copy: (dest: NodeJS.TypedArray, pointer: bigint, offset: number, bytes: number) => void
}

/** The paths to try, in order: an explicit one alone, else the soname then Debian's path. */
export function libcaCandidates (libraryPath: string | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  if (libraryPath !== undefined && libraryPath !== '') return [libraryPath]
  const fromEnv = env[LIBCA_PATH_ENV]
  if (fromEnv !== undefined && fromEnv !== '') return [fromEnv]
  return [LIBCA_SONAME, LIBCA_DEBIAN_PATH]
}

const loaded = new Map<string, LibCa>()

/**
 * Load libca (once per path per thread): `libraryPath` (CaConfig.libraryPath) alone if given, else $TST_FLY_LIBCA
 * alone if set, else the soname through the system loader, then Debian's path. Fails with LIBRARY_MISSING naming
 * every path tried and why.
 */
export function loadLibca (libraryPath?: string): LibCa {
  const candidates = libcaCandidates(libraryPath)
  for (const path of candidates) {
    const cached = loaded.get(path)
    if (cached !== undefined) return cached
  }
  const failures: string[] = []
  let koffi: Koffi
  try {
    koffi = getFfi().koffi
  } catch (err) {
    throw new FlyScanError(ErrorCode.LIBRARY_MISSING,
      `koffi (the FFI package libca is loaded with) could not be loaded: ${err instanceof Error ? err.message : String(err)}; run npm ci`,
      { cause: err })
  }
  for (const path of candidates) {
    let handle: LibraryHandle
    try {
      handle = koffi.load(path)
    } catch (err) {
      failures.push(`${path}: ${err instanceof Error ? err.message : String(err)}`)
      continue
    }
    const lib = bind(handle, path)
    loaded.set(path, lib)
    return lib
  }
  throw new FlyScanError(ErrorCode.LIBRARY_MISSING,
    `libca (the EPICS Channel Access client library) could not be loaded; tried ${failures.join('; ')}. ` +
    'Install the Debian package libca4.13.5 (scripts/setup-dev-env.sh does), or set ca.libraryPath in the config ' +
    `or ${LIBCA_PATH_ENV} to its path`,
    { details: { tried: candidates.join(', ') } })
}

/** koffi and the C types of cadef.h, declared on first use (koffi's type registry is per thread, as this module is). */
interface Ffi {
  readonly koffi: Koffi
  readonly connectionHandlerArgs: TypeObject
  readonly eventHandlerArgs: TypeObject
  readonly exceptionHandlerArgs: TypeObject
  readonly caCh: TypeObject
  readonly caEventCallBackFunc: TypeObject
  readonly caExceptionHandler: TypeObject
}

let ffi: Ffi | undefined

/** Loaded lazily, so that importing the backends (mock mode, tests, workers without CA) never loads koffi. */
function getFfi (): Ffi {
  if (ffi !== undefined) return ffi
  const koffi = createRequire(import.meta.url)('koffi') as Koffi
  const connectionHandlerArgs = koffi.struct('connection_handler_args', { chid: 'void *', op: 'long' })
  const eventHandlerArgs = koffi.struct('event_handler_args', {
    usr: 'uintptr_t', chid: 'void *', type: 'long', count: 'long', dbr: 'const void *', status: 'int'
  })
  const exceptionHandlerArgs = koffi.struct('exception_handler_args', {
    usr: 'uintptr_t',
    chid: 'void *',
    type: 'long',
    count: 'long',
    addr: 'void *',
    stat: 'long',
    op: 'long',
    ctx: 'const char *',
    pFile: 'const char *',
    lineNo: 'unsigned int'
  })
  ffi = {
    koffi,
    connectionHandlerArgs,
    eventHandlerArgs,
    exceptionHandlerArgs,
    caCh: koffi.proto('void caCh (connection_handler_args args)'),
    caEventCallBackFunc: koffi.proto('void caEventCallBackFunc (event_handler_args args)'),
    caExceptionHandler: koffi.proto('void caExceptionHandler (exception_handler_args args)')
  }
  return ffi
}

/** What koffi's `.async` needs: the C arguments, then a Node-style callback. */
interface AsyncCapable {
  async: (...args: unknown[]) => void
}

function toNumber (x: number | bigint): number {
  return typeof x === 'bigint' ? Number(x) : x
}

function asyncCall (fn: AsyncCapable, ...args: unknown[]): Promise<number> {
  return new Promise((resolve, reject) => {
    fn.async(...args, (err: unknown, status: number) => {
      if (err !== null && err !== undefined) reject(err instanceof Error ? err : new Error(String(err)))
      else resolve(status)
    })
  })
}

function bind (lib: LibraryHandle, path: string): LibCa {
  const { koffi, caCh, caEventCallBackFunc, caExceptionHandler } = getFfi()
  const caVersion = lib.func('const char *ca_version ()')
  const caMessage = lib.func('const char *ca_message (long ca_status)')
  const caContextCreate = lib.func('int ca_context_create (int select)')
  const caContextDestroy = lib.func('void ca_context_destroy ()')
  const caPreemptive = lib.func('int ca_preemtive_callback_is_enabled ()')
  const caCreateChannel = lib.func('int ca_create_channel (const char *pChanName, caCh *pConnStateCallback, uintptr_t pUserPrivate, unsigned int priority, _Out_ void **pChanID)')
  const caClearChannel = lib.func('int ca_clear_channel (void *chid)')
  const caFieldType = lib.func('short ca_field_type (void *chan)')
  const caElementCount = lib.func('unsigned long ca_element_count (void *chan)')
  const caState = lib.func('int ca_state (void *chan)')
  const caGetHostName = lib.func('unsigned int ca_get_host_name (void *pChan, _Out_ char *pBuf, unsigned int bufLength)')
  const caArrayGetCallback = lib.func('int ca_array_get_callback (long type, unsigned long count, void *chanId, caEventCallBackFunc *pFunc, uintptr_t pArg)')
  const caArrayPut = lib.func('int ca_array_put (long type, unsigned long count, void *chanId, const void *pValue)')
  const caArrayPutCallback = lib.func('int ca_array_put_callback (long type, unsigned long count, void *chanId, const void *pValue, caEventCallBackFunc *pFunc, uintptr_t pArg)')
  const caCreateSubscription = lib.func('int ca_create_subscription (long type, unsigned long count, void *chanId, long mask, caEventCallBackFunc *pFunc, uintptr_t pArg, _Out_ void **pEventID)')
  const caClearSubscription = lib.func('int ca_clear_subscription (void *eventID)')
  const caFlushIo = lib.func('int ca_flush_io ()')
  const caIocConnectionCount = lib.func('unsigned int ca_get_ioc_connection_count ()')
  const caName = lib.func('const char *ca_name (void *chan)')
  const caAddExceptionEvent = lib.func('int ca_add_exception_event (caExceptionHandler *pfunc, uintptr_t pArg)')
  const caBeaconAnomalyCount = lib.func('unsigned int ca_beacon_anomaly_count ()')
  const caBeaconPeriod = lib.func('double ca_beacon_period (void *chan)')
  const libc = koffi.load(null)
  const getpid = libc.symbol('getpid') as bigint
  const setenv = libc.func('int setenv (const char *name, const char *value, int overwrite)')
  const unsetenv = libc.func('int unsetenv (const char *name)')
  const getenv = libc.func('const char *getenv (const char *name)')
  // A typed array given for a plain `void *` is passed as a pointer to its bytes (no copy in or out), whatever its
  // buffer (SharedArrayBuffer included) and byteOffset. The return value is not wanted: declared void.
  const memcpy = libc.func('void memcpy (void *dest, const void *src, size_t n)')

  return {
    path,
    version: () => caVersion() as string,
    message: (status) => (caMessage(status) as string | null) ?? `ECA status ${status}`,
    contextCreate: (preemptive) => caContextCreate(preemptive ? 1 : 0) as number,
    contextDestroy: () => { caContextDestroy() },
    preemptiveCallbackIsEnabled: () => (caPreemptive() as number) !== 0,
    createChannel: (name, connectionCallback, puser, priority) => {
      const out: [bigint | null] = [null]
      const status = caCreateChannel(name, connectionCallback, puser, priority, out) as number
      return [status, out[0]]
    },
    clearChannel: async (chid) => await asyncCall(caClearChannel, chid),
    fieldType: (chid) => caFieldType(chid) as number,
    elementCount: (chid) => toNumber(caElementCount(chid) as number | bigint),
    state: (chid) => caState(chid) as number,
    hostName: (chid) => {
      const buf = Buffer.alloc(256)
      caGetHostName(chid, buf, buf.length)
      const end = buf.indexOf(0)
      return buf.toString('latin1', 0, end < 0 ? buf.length : end)
    },
    arrayGetCallback: (type, count, chid, callback, usr) => caArrayGetCallback(type, count, chid, callback, usr) as number,
    arrayPut: (type, count, chid, value) => caArrayPut(type, count, chid, value) as number,
    arrayPutCallback: (type, count, chid, value, callback, usr) => caArrayPutCallback(type, count, chid, value, callback, usr) as number,
    createSubscription: (type, count, chid, mask, callback, usr) => {
      const out: [bigint | null] = [null]
      const status = caCreateSubscription(type, count, chid, mask, callback, usr, out) as number
      return [status, out[0]]
    },
    clearSubscription: async (evid) => await asyncCall(caClearSubscription, evid),
    flushIo: () => caFlushIo() as number,
    iocConnectionCount: () => caIocConnectionCount() as number,
    name: (chid) => (caName(chid) as string | null) ?? '',
    addExceptionEvent: (callback) => caAddExceptionEvent(callback, 0) as number,
    beaconAnomalyCount: () => caBeaconAnomalyCount() as number,
    beaconPeriod: (chid) => caBeaconPeriod(chid) as number,
    ignoreExceptions: getpid,
    setenv: (name, value) => { setenv(name, value, 1) },
    unsetenv: (name) => { unsetenv(name) },
    getenv: (name) => (getenv(name) as string | null) ?? undefined,
    registerConnectionCallback: (fn) => {
      const pointer = koffi.register((args: { chid: bigint, op: number | bigint }) => {
        fn({ chid: args.chid, op: toNumber(args.op) })
      }, koffi.pointer(caCh))
      return { pointer, unregister: () => { koffi.unregister(pointer) } }
    },
    registerEventCallback: (fn) => {
      const pointer = koffi.register((args: { usr: number | bigint, chid: bigint, type: number | bigint, count: number | bigint, dbr: bigint | null, status: number }) => {
        fn({ usr: toNumber(args.usr), chid: args.chid, type: toNumber(args.type), count: toNumber(args.count), dbr: args.dbr, status: args.status })
      }, koffi.pointer(caEventCallBackFunc))
      return { pointer, unregister: () => { koffi.unregister(pointer) } }
    },
    registerExceptionCallback: (fn) => {
      const pointer = koffi.register((args: { chid: bigint | null, type: number | bigint, count: number | bigint, stat: number | bigint, op: number | bigint, ctx: string | null, pFile: string | null, lineNo: number }) => {
        fn({
          chid: args.chid,
          type: toNumber(args.type),
          count: toNumber(args.count),
          stat: toNumber(args.stat),
          op: toNumber(args.op),
          ctx: args.ctx,
          pFile: args.pFile,
          lineNo: args.lineNo
        })
      }, koffi.pointer(caExceptionHandler))
      return { pointer, unregister: () => { koffi.unregister(pointer) } }
    },
    view: (pointer, bytes) => new Uint8Array(koffi.view(pointer, bytes)),
    copy: (dest, pointer, offset, bytes) => { memcpy(dest, offset === 0 ? pointer : pointer + BigInt(offset), bytes) }
  }
}

/** The structure layouts koffi computed, for the test against cadef.h (x86-64: 16, 48 and 80 bytes). */
export function structLayout (): Record<string, number> {
  const { koffi, connectionHandlerArgs, eventHandlerArgs, exceptionHandlerArgs } = getFfi()
  return {
    connectionHandlerArgs: koffi.sizeof(connectionHandlerArgs),
    eventHandlerArgs: koffi.sizeof(eventHandlerArgs),
    eventStatusOffset: koffi.offsetof(eventHandlerArgs, 'status'),
    exceptionHandlerArgs: koffi.sizeof(exceptionHandlerArgs),
    exceptionLineNoOffset: koffi.offsetof(exceptionHandlerArgs, 'lineNo')
  }
}
