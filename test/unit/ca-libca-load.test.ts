import t from 'tap'
// Backends first, devices after: the CA signal factories import devices, which import backends (see the
// integration test for the other order).
import {
  caEnvironment, caSignalRW, getMockPutCalls, LIBCA_DEBIAN_PATH, LIBCA_PATH_ENV, LIBCA_SONAME, libcaCandidates, loadLibca, makeConverter,
  naturalDtype
} from '../../src/backends/index.js'
import { structLayout } from '../../src/backends/ca/libca.js'
import { CA_REPEATER_DIRECTORY } from '../../src/backends/ca/context.js'
import { accessSync, constants as fsConstants, existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, sep } from 'node:path'
import { SignalRW } from '../../src/devices/index.js'
import { DbrBase } from '../../src/parsers/index.js'
import { ErrorCode, FlyScanError, isFlyScanError } from '../../src/errors.js'
import { defaults } from '../../config/index.js'

t.test('libca loads through the system loader and answers', async t => {
  const lib = loadLibca()
  t.equal(lib.path, LIBCA_SONAME)
  t.equal(lib.version(), '4.13', 'ca_version of EPICS 7.0.3.1')
  t.equal(lib.message(1), 'Normal successful completion', 'ca_message(ECA_NORMAL)')
  t.equal(lib.message(192), 'Virtual circuit disconnect', 'ca_message(ECA_DISCONN)')
  t.equal(loadLibca(), lib, 'loaded once per path')
})

t.test('the callback argument structures have cadef.h\'s x86-64 layout', async t => {
  const structSizes = structLayout()
  // struct connection_handler_args { chid; long op; } and struct event_handler_args { void *usr; chid; long type;
  // long count; const void *dbr; int status; }: pointers and longs are 8 bytes, so 16 and 48 (status at 40, padded).
  t.equal(structSizes.connectionHandlerArgs, 16)
  t.equal(structSizes.eventHandlerArgs, 48)
  t.equal(structSizes.eventStatusOffset, 40)
  // struct exception_handler_args { void *usr; chid; long type; long count; void *addr; long stat; long op;
  // const char *ctx; const char *pFile; unsigned lineNo; }: lineNo at 72, 80 bytes.
  t.equal(structSizes.exceptionLineNoOffset, 72)
  t.equal(structSizes.exceptionHandlerArgs, 80)
})

t.test('a missing library is LIBRARY_MISSING naming the path and the Debian package', async t => {
  const bogus = '/nonexistent/tst-fly/libca.so.4.13.5'
  let err: unknown
  try {
    loadLibca(bogus)
  } catch (e) {
    err = e
  }
  t.ok(isFlyScanError(err, ErrorCode.LIBRARY_MISSING), 'coded LIBRARY_MISSING')
  const message = (err as FlyScanError).message
  t.match(message, bogus, 'names the path tried')
  t.match(message, 'libca4.13.5', 'names the Debian package')
  t.match(message, 'scripts/setup-dev-env.sh', 'names the setup script')
  t.match(message, LIBCA_PATH_ENV, 'names the environment variable')
  t.equal((err as FlyScanError).details.tried, bogus)
})

t.test('$TST_FLY_LIBCA is used alone when the config names no path', async t => {
  const saved = process.env[LIBCA_PATH_ENV]
  t.teardown(() => {
    if (saved === undefined) delete process.env[LIBCA_PATH_ENV]
    else process.env[LIBCA_PATH_ENV] = saved
  })
  process.env[LIBCA_PATH_ENV] = '/nonexistent/from-env/libca.so'
  t.throws(() => loadLibca(), { code: ErrorCode.LIBRARY_MISSING, message: /from-env\/libca\.so/ })
})

t.test('library candidates: config path, else environment, else soname then Debian path', async t => {
  t.same(libcaCandidates('/opt/epics/libca.so', { [LIBCA_PATH_ENV]: '/env/libca.so' }), ['/opt/epics/libca.so'])
  t.same(libcaCandidates(undefined, { [LIBCA_PATH_ENV]: '/env/libca.so' }), ['/env/libca.so'])
  t.same(libcaCandidates(undefined, {}), [LIBCA_SONAME, LIBCA_DEBIAN_PATH])
})

t.test('EPICS_CA_* precedence: config, then the environment, then the default', async t => {
  const env = {
    EPICS_CA_ADDR_LIST: '10.0.0.255',
    EPICS_CA_AUTO_ADDR_LIST: 'YES',
    EPICS_CA_CONN_TMO: '5',
    PATH: '/usr/bin'
  }
  const byName = (config: Parameters<typeof caEnvironment>[0], e: NodeJS.ProcessEnv): Record<string, [string, string]> =>
    Object.fromEntries(caEnvironment(config, e).map((s) => [s.name, [s.value, s.from]]))
  t.same(byName({ addrList: '127.0.0.1:5064', autoAddrList: false, serverPort: 5070 }, env), {
    EPICS_CA_ADDR_LIST: ['127.0.0.1:5064', 'config'],
    EPICS_CA_AUTO_ADDR_LIST: ['NO', 'config'],
    EPICS_CA_CONN_TMO: ['5', 'environment'],
    EPICS_CA_MAX_ARRAY_BYTES: [String(defaults.ca.maxArrayBytes), 'default'],
    EPICS_CA_SERVER_PORT: ['5070', 'config']
  }, 'the config wins; other EPICS_CA_* pass through; PATH does not')
  t.same(byName({}, env).EPICS_CA_ADDR_LIST, ['10.0.0.255', 'environment'], 'the environment fills what the config leaves out')
  t.same(byName({}, { EPICS_CA_MAX_ARRAY_BYTES: '2000000' }).EPICS_CA_MAX_ARRAY_BYTES, ['2000000', 'environment'])
  t.same(byName({ maxArrayBytes: 50_000_000 }, { EPICS_CA_MAX_ARRAY_BYTES: '2000000' }).EPICS_CA_MAX_ARRAY_BYTES, ['50000000', 'config'])
  t.same(byName({}, { EPICS_CA_REPEATER_PORT: '15065' }).EPICS_CA_REPEATER_PORT, ['15065', 'environment'],
    'EPICS_CA_REPEATER_PORT reaches libca (and the repeater it starts) from the environment')
  t.ok(defaults.ca.maxArrayBytes >= 8 * 1024 * 1024 + 16 && defaults.ca.maxArrayBytes >= 8_000_016,
    'the default holds an 8 MiB frame and 1M doubles with their DBR_TIME header')
})

t.test('libexec/caRepeater, the repeater libca starts, ships executable and names an entry point that exists', async t => {
  t.ok(CA_REPEATER_DIRECTORY.endsWith(`${sep}libexec${sep}`), CA_REPEATER_DIRECTORY)
  const script = join(CA_REPEATER_DIRECTORY, 'caRepeater')
  t.doesNotThrow(() => { accessSync(script, fsConstants.X_OK) }, 'executable (git keeps the mode: 100755)')
  t.same(readdirSync(CA_REPEATER_DIRECTORY), ['caRepeater'], 'alone in its directory, which goes first on libca\'s PATH')
  const text = readFileSync(script, 'utf8')
  t.match(text, /^#!\/bin\/sh\n/)
  const entry = /entry="\$\{0%\/\*\}\/([^"]+)"/.exec(text)?.[1]
  t.equal(entry, '../build/src/cli/ca-repeater-main.js')
  t.ok(existsSync(join(CA_REPEATER_DIRECTORY, entry ?? '')), 'the built entry point exists')
})

t.test('natural dtypes follow the native type and the element count', async t => {
  t.equal(naturalDtype(DbrBase.DOUBLE, 1), 'number')
  t.equal(naturalDtype(DbrBase.FLOAT, 1), 'number')
  t.equal(naturalDtype(DbrBase.LONG, 1), 'integer')
  t.equal(naturalDtype(DbrBase.SHORT, 1), 'integer')
  t.equal(naturalDtype(DbrBase.CHAR, 1), 'integer')
  t.equal(naturalDtype(DbrBase.STRING, 1), 'string')
  t.equal(naturalDtype(DbrBase.ENUM, 1), 'string')
  t.equal(naturalDtype(DbrBase.DOUBLE, 1_000_000), 'array')
  t.equal(naturalDtype(DbrBase.CHAR, 728 * 544), 'array')
})

t.test('converters: data keys and values both ways', async t => {
  const ctrl = {
    units: 'deg',
    precision: 4,
    upperDispLimit: 360,
    lowerDispLimit: -360,
    upperAlarmLimit: Number.NaN,
    lowerAlarmLimit: Number.NaN,
    upperWarningLimit: 350,
    lowerWarningLimit: -350,
    upperCtrlLimit: 180,
    lowerCtrlLimit: -180
  }
  const d = makeConverter('M:RBV', DbrBase.DOUBLE, 1, ctrl)
  t.same(d.metadata, {
    shape: [],
    dtypeNumpy: '<f8',
    units: 'deg',
    precision: 4,
    limits: {
      control: { low: -180, high: 180 },
      display: { low: -360, high: 360 },
      warning: { low: -350, high: 350 },
      alarm: { low: null, high: null }
    }
  }, 'NaN limits (unset) are null, as event-model allows')
  t.equal(d.fromDbr(new Float64Array([1.25])), 1.25)
  t.same(d.toDbr(2.5), new Float64Array([2.5]))
  t.throws(() => d.toDbr('fast'), { code: ErrorCode.BAD_INPUT, message: /M:RBV/ })

  const l = makeConverter('L', DbrBase.LONG, 1, { units: 'counts' })
  t.equal(l.dtype, 'integer')
  t.equal(l.metadata.dtypeNumpy, '<i4')
  t.equal(l.metadata.precision, undefined, 'no precision for integers')
  t.same(l.toDbr(-7), new Int32Array([-7]))

  const e = makeConverter('E', DbrBase.ENUM, 1, { enumStrings: ['Off', 'On'] })
  t.equal(e.dtype, 'string')
  t.same(e.metadata.choices, ['Off', 'On'])
  t.equal(e.fromDbr(new Uint16Array([1])), 'On')
  t.same(e.toDbr('Off'), new Uint16Array([0]))
  t.same(e.toDbr(1), new Uint16Array([1]), 'an index is accepted too')
  t.throws(() => e.toDbr('Maybe'), { code: ErrorCode.BAD_INPUT, message: /"Maybe" is not a choice of E: \["Off","On"\]/ })

  const b = makeConverter('BO', DbrBase.ENUM, 1, { enumStrings: ['Off', 'On'] }, 'boolean')
  t.equal(b.dtype, 'boolean')
  t.equal(b.fromDbr(new Uint16Array([1])), true)
  t.same(b.toDbr(false), new Uint16Array([0]))

  const i = makeConverter('E', DbrBase.ENUM, 1, { enumStrings: ['A', 'B', 'C'] }, 'integer')
  t.equal(i.fromDbr(new Uint16Array([2])), 2)
  t.same(i.toDbr('B'), new Uint16Array([1]))

  const s = makeConverter('S', DbrBase.STRING, 1, {})
  t.equal(s.fromDbr(['hello']), 'hello')
  t.same(s.toDbr('bye'), ['bye'])

  const path = makeConverter('HDF1:FilePath', DbrBase.CHAR, 8, {}, 'string')
  t.equal(path.dtype, 'string')
  t.equal(path.fromDbr(new Uint8Array([47, 116, 109, 112, 0, 120, 0, 0])), '/tmp', 'read up to the first NUL')
  t.same(path.toDbr('/tmp'), new Uint8Array([47, 116, 109, 112, 0]), 'written NUL-terminated')
  t.same(path.toDbr('/a/very/long/path'), new Uint8Array([47, 97, 47, 118, 101, 114, 121, 0]), 'truncated to the element count')

  const w = makeConverter('W', DbrBase.DOUBLE, 1000, { units: 'V', precision: 2 })
  t.equal(w.dtype, 'array')
  t.same(w.metadata.shape, [1000])
  t.equal(w.metadata.dtypeNumpy, '<f8')
  t.same(w.toDbr([1, 2, 3]), new Float64Array([1, 2, 3]))
  const f = makeConverter('F', DbrBase.CHAR, 728 * 544, {})
  t.equal(f.metadata.dtypeNumpy, '|u1')
  t.same(f.metadata.shape, [728 * 544])

  t.throws(() => makeConverter('D', DbrBase.DOUBLE, 1, {}, 'boolean'), { code: ErrorCode.BAD_INPUT, message: /D is DBR_DOUBLE with 1 element\(s\): it cannot be read as 'boolean'/ })
  t.throws(() => makeConverter('D', DbrBase.DOUBLE, 1, {}, 'string'), { code: ErrorCode.BAD_INPUT })
  t.throws(() => makeConverter('W', DbrBase.DOUBLE, 10, {}, 'number'), { code: ErrorCode.BAD_INPUT })
})

t.test('CA signals connect in mock mode without touching libca', async t => {
  const sig = caSignalRW<number>('XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr.VELO', { datatype: 'number', name: 'velo' })
  t.ok(sig instanceof SignalRW)
  t.equal(sig.source, 'ca://XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr.VELO')
  await sig.connect({ mock: true })
  await sig.set(90)
  t.same(getMockPutCalls(sig), [{ value: 90, wait: true }])
  t.equal(await sig.getValue(), 90)
})
