import t from 'tap'
import { composeRun, DocumentRouter, isDocument } from '../../src/documents/index.js'
import type { DocumentName, SubscriberError } from '../../src/documents/index.js'

function someDocs (router: DocumentRouter): string[] {
  const run = composeRun({ metadata: { plan_name: 'count' } })
  router.emit('start', run.startDoc)
  const d = run.composeDescriptor({ name: 'primary', dataKeys: { det: { dtype: 'number', shape: [], source: 'sim' } } })
  router.emit('descriptor', d.descriptorDoc)
  const e1 = d.composeEvent({ data: { det: 1 }, timestamps: { det: 1 } })
  router.emit('event', e1)
  const e2 = d.composeEvent({ data: { det: 2 }, timestamps: { det: 2 } })
  router.emit('event', e2)
  const stop = run.composeStop({ exitStatus: 'success' })
  router.emit('stop', stop)
  return [run.startDoc.uid, d.descriptorDoc.uid, e1.uid, e2.uid, stop.uid]
}

t.test('delivers every document in order, and filters by name', async t => {
  const router = new DocumentRouter()
  const all: Array<[DocumentName, string]> = []
  const events: number[] = []
  router.subscribe((name, doc) => { all.push([name, isDocument('event_page', name, doc) ? doc.descriptor : (doc as { uid: string }).uid]) })
  router.subscribe((name, doc) => {
    if (isDocument('event', name, doc)) events.push(doc.seq_num) // narrowed to Event
  }, 'event')
  const uids = someDocs(router)
  t.same(all, [['start', uids[0]], ['descriptor', uids[1]], ['event', uids[2]], ['event', uids[3]], ['stop', uids[4]]])
  t.same(events, [1, 2])
  t.equal(router.subscriberCount, 2)
})

t.test('unsubscribe stops delivery, also from inside a delivery', async t => {
  const router = new DocumentRouter()
  const a: DocumentName[] = []
  const b: DocumentName[] = []
  const tokenA = router.subscribe((name) => { a.push(name) })
  let tokenB = 0
  router.subscribe((name) => { if (name === 'descriptor') router.unsubscribe(tokenB) })
  tokenB = router.subscribe((name) => { b.push(name) })
  t.not(tokenA, tokenB, 'tokens are distinct')
  someDocs(router)
  t.same(a, ['start', 'descriptor', 'event', 'event', 'stop'])
  t.same(b, ['start'], 'unsubscribed by an earlier subscriber before it got the descriptor')
  router.unsubscribe(tokenA)
  router.unsubscribe(12345) // unknown: ignored
  someDocs(router)
  t.equal(a.length, 5)
  t.equal(router.subscriberCount, 1)
})

t.test('a throwing subscriber does not stop the others; its errors are reported and kept', async t => {
  const reported: SubscriberError[] = []
  const router = new DocumentRouter({ onError: (e) => { reported.push(e) } })
  const before: DocumentName[] = []
  const after: DocumentName[] = []
  router.subscribe((name) => { before.push(name) })
  const bad = router.subscribe((name) => { if (name === 'event') throw new Error('plot failed') })
  router.subscribe((name) => { after.push(name) })
  const uids = someDocs(router)
  t.same(before, ['start', 'descriptor', 'event', 'event', 'stop'])
  t.same(after, ['start', 'descriptor', 'event', 'event', 'stop'], 'subscribers after the thrower get every document')
  t.equal(reported.length, 2)
  t.same(reported.map(e => [e.token, e.name, e.uid]), [[bad, 'event', uids[2]], [bad, 'event', uids[3]]])
  t.match((reported[0]?.error as Error).message, 'plot failed')
  t.equal(router.errors.length, 2)
  t.equal(router.errorCount, 2)
})

t.test('an onError that throws does not stop delivery either', async t => {
  const router = new DocumentRouter({ onError: () => { throw new Error('bad reporter') } })
  const got: DocumentName[] = []
  router.subscribe(() => { throw new Error('x') })
  router.subscribe((name) => { got.push(name) })
  someDocs(router)
  t.equal(got.length, 5)
  t.equal(router.errorCount, 5)
})

t.test('the default reporter is a process warning', async t => {
  const warnings: string[] = []
  const onWarning = (w: Error): void => { warnings.push(`${w.name}: ${w.message}`) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  const router = new DocumentRouter()
  router.subscribe((name) => { if (name === 'stop') throw new Error('boom') })
  someDocs(router)
  await new Promise(resolve => setImmediate(resolve))
  t.equal(warnings.length, 1)
  t.match(warnings[0], /DocumentSubscriberWarning: document subscriber 1 threw on stop .*: boom/)
})

t.test('documents emitted from a subscriber are queued: every subscriber sees one order', async t => {
  const router = new DocumentRouter()
  const run = composeRun()
  const d = run.composeDescriptor({ name: 'primary', dataKeys: { det: { dtype: 'number', shape: [], source: 'sim' } } })
  const first: string[] = []
  const second: string[] = []
  router.subscribe((name) => {
    first.push(name)
    if (name === 'start') router.emit('descriptor', d.descriptorDoc)
  })
  router.subscribe((name) => { second.push(name) })
  router.emit('start', run.startDoc)
  t.same(first, ['start', 'descriptor'])
  t.same(second, ['start', 'descriptor'])
})
