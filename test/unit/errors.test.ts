// Coded errors across a thread boundary: toWire → structured clone (structuredClone and a real MessageChannel) →
// fromWire keeps code, message, details, stack and the chain of causes.
import t from 'tap'
import { MessageChannel } from 'node:worker_threads'
import { ErrorCode, FlyScanError, fromWire, isFlyScanError, toWire, type WireError } from '../../src/errors.js'

async function viaPort (value: unknown): Promise<unknown> {
  const { port1, port2 } = new MessageChannel()
  try {
    const received = new Promise<unknown>((resolve) => port2.once('message', resolve))
    port1.postMessage(value)
    return await received
  } finally {
    port1.close()
    port2.close()
  }
}

const clones: ReadonlyArray<readonly [string, (w: WireError) => Promise<unknown>]> = [
  ['structuredClone', async (w) => structuredClone(w)],
  ['MessageChannel', viaPort]
]

function chain (): FlyScanError {
  const root = Object.assign(new Error('connect ECONNREFUSED 10.68.1.5:8889'), { code: 'ECONNREFUSED' })
  const middle = new FlyScanError(ErrorCode.CONNECTION, 'PandA data port 10.68.1.5:8889 refused the connection',
    { details: { host: '10.68.1.5', port: 8889 }, cause: root })
  return new FlyScanError(ErrorCode.NOT_CONNECTED, 'panda-capture did not connect within 5000 ms',
    { details: { worker: 'panda-capture', timeoutMs: 5000, retried: false, last: null }, cause: middle })
}

t.test('what a plain structured clone loses (why WireError exists)', async (t) => {
  const err = chain()
  const cloned = await viaPort(err) as Error & { code?: unknown }
  t.notOk(cloned instanceof FlyScanError, 'the subclass is gone')
  t.equal(cloned.code, undefined, 'the code is gone')
  t.equal(cloned.message, err.message, 'the message survives')
})

for (const [how, clone] of clones) {
  t.test(`round trip through ${how} keeps code, message, details, stack and causes`, async (t) => {
    const err = chain()
    const wire = await clone(toWire(err)) as WireError
    const back = fromWire(wire)
    t.ok(back instanceof FlyScanError)
    t.ok(isFlyScanError(back, ErrorCode.NOT_CONNECTED))
    t.equal(back.name, 'FlyScanError')
    t.equal(back.code, ErrorCode.NOT_CONNECTED)
    t.equal(back.message, err.message)
    t.same(back.details, { worker: 'panda-capture', timeoutMs: 5000, retried: false, last: null })
    t.equal(back.stack, err.stack, 'the original stack, not one from fromWire')
    t.match(back.stack, /errors\.test\.(?:ts|js)/)

    const middle = back.cause
    t.ok(middle instanceof FlyScanError)
    if (!(middle instanceof FlyScanError)) return
    t.equal(middle.code, ErrorCode.CONNECTION)
    t.equal(middle.message, 'PandA data port 10.68.1.5:8889 refused the connection')
    t.same(middle.details, { host: '10.68.1.5', port: 8889 })
    t.equal(middle.stack, (err.cause as Error).stack)

    const root = middle.cause
    t.ok(root instanceof FlyScanError, 'a plain Error cause comes back as a FlyScanError too')
    if (!(root instanceof FlyScanError)) return
    t.equal(root.code, ErrorCode.UNKNOWN)
    t.equal(root.message, 'ECONNREFUSED: connect ECONNREFUSED 10.68.1.5:8889')
    t.equal(root.cause, undefined)
  })
}

t.test('a plain Error with a Node code becomes FLY_ERR_UNKNOWN with the code in the message', async (t) => {
  const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED', errno: -111 })
  const wire = toWire(err)
  t.equal(wire.code, ErrorCode.UNKNOWN)
  t.equal(wire.message, 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:1')
  t.same(wire.details, {})
  t.equal(wire.stack, err.stack)
  const back = fromWire(await viaPort(wire) as WireError)
  t.equal(back.code, ErrorCode.UNKNOWN)
  t.equal(back.message, 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:1')
})

t.test('a plain Error carrying one of our codes keeps it', async (t) => {
  // What Node's own error serialization of a worker 'error' event produces: an Error with code as a field.
  const err = Object.assign(new Error('bad worker configuration'), { code: 'FLY_ERR_BAD_INPUT' })
  const wire = toWire(err)
  t.equal(wire.code, ErrorCode.BAD_INPUT)
  t.equal(wire.message, 'bad worker configuration', 'no prefix for a known code')
})

t.test('a plain Error without a code, and a numeric code', async (t) => {
  t.match(toWire(new TypeError('x is not a function')), { code: ErrorCode.UNKNOWN, message: 'x is not a function' })
  const numeric = Object.assign(new Error('exit'), { code: 3 })
  t.equal(toWire(numeric).message, 'exit', 'a non-string code is not quoted')
  t.equal(toWire(numeric).code, ErrorCode.UNKNOWN)
})

t.test('non-Error values', async (t) => {
  for (const [value, message] of [
    ['just a string', 'just a string'],
    [42, '42'],
    [undefined, 'undefined'],
    [null, 'null'],
    [{ toString: () => 'custom' }, 'custom']
  ] as const) {
    const wire = toWire(value)
    t.same(wire, { code: ErrorCode.UNKNOWN, message, stack: undefined, details: {}, cause: undefined }, `toWire(${message})`)
    const back = fromWire(await viaPort(wire) as WireError)
    t.equal(back.code, ErrorCode.UNKNOWN)
    t.equal(back.message, message)
  }
})

t.test('unknown codes from the wire become FLY_ERR_UNKNOWN', async (t) => {
  const wire = { code: 'FLY_ERR_FROM_THE_FUTURE', message: 'newer peer', stack: undefined, details: { a: 1 }, cause: undefined }
  const back = fromWire(await viaPort(wire) as WireError)
  t.equal(back.code, ErrorCode.UNKNOWN)
  t.equal(back.message, 'newer peer')
  t.same(back.details, { a: 1 })
  t.type(back.stack, 'string', 'a wire error without a stack gets the local one')
})

t.test('a cycle of causes is cut, not followed forever', async (t) => {
  const a = new FlyScanError(ErrorCode.HDF5, 'a')
  const b = new FlyScanError(ErrorCode.HDF5, 'b', { cause: a })
  Object.defineProperty(a, 'cause', { value: b })
  const wire = toWire(a)
  let depth = 0
  for (let w: WireError | undefined = wire; w !== undefined; w = w.cause) depth++
  t.ok(depth > 1 && depth <= 6, `depth ${depth}`)
  t.equal(fromWire(await viaPort(wire) as WireError).message, 'a')
})
