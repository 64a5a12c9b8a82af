import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ErrorCode, isFlyScanError } from '../../src/errors.js'
import { composeRun, DocumentRouter, JsonlSink, parseJsonl } from '../../src/documents/index.js'
import type { NamedDocument } from '../../src/documents/index.js'
import { validateDocument } from '../support/schemas.js'

function runDocs (events: number): NamedDocument[] {
  const docs: NamedDocument[] = []
  const run = composeRun({ metadata: { plan_name: 'count', plan_args: { num: events }, cycle: '2025-2' } })
  docs.push(['start', run.startDoc])
  const d = run.composeDescriptor({ name: 'primary', dataKeys: { det: { dtype: 'number', shape: [], source: 'sim' }, img: { dtype: 'array', shape: [3], source: 'sim' } } })
  docs.push(['descriptor', d.descriptorDoc])
  for (let i = 0; i < events; i++) docs.push(['event', d.composeEvent({ data: { det: i + 0.5, img: [i, i + 1, i + 2] }, timestamps: { det: 1, img: 1 } })])
  docs.push(['event_page', d.composeEventPage({ data: { det: [1, 2], img: [[1, 2, 3], [4, 5, 6]] }, timestamps: { det: [1, 1], img: [1, 1] } })])
  const sd = run.composeDescriptor({ name: 'panda1_stream', dataKeys: { c: { dtype: 'number', shape: [], source: 'panda1', external: 'STREAM:' } } })
  docs.push(['descriptor', sd.descriptorDoc])
  const res = run.composeStreamResource({ dataKey: 'c', mimetype: 'application/x-hdf5', uri: 'file://localhost/tmp/p.h5', parameters: { dataset: '/c', chunk_shape: [1024] } })
  docs.push(['stream_resource', res.streamResourceDoc])
  docs.push(['stream_datum', res.composeStreamDatum({ descriptor: sd.descriptorDoc.uid, indices: { start: 0, stop: 100 } })])
  docs.push(['stop', run.composeStop({ exitStatus: 'success' })])
  return docs
}

function catchError (fn: () => void): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

t.test('one valid JSON line per document, parsing back to the same documents', async t => {
  const dir = t.testdir()
  const path = join(dir, 'nested', 'deeper', 'run.jsonl')
  const sink = await JsonlSink.open(path)
  t.equal(sink.path, path)
  const docs = runDocs(2000)
  const router = new DocumentRouter()
  router.subscribe((name, doc) => { sink.write(name, doc) })
  for (const [name, doc] of docs) router.emit(name, doc)
  t.equal(router.errorCount, 0)
  await sink.close() // the directory was created; every line is on disk once close resolves
  t.equal(sink.lines, docs.length)

  const text = readFileSync(path, 'utf8')
  const lines = text.split('\n')
  t.equal(lines.pop(), '', 'the file ends with a newline')
  t.equal(lines.length, docs.length, 'one line per document')
  for (const line of lines) {
    const value = JSON.parse(line) as NamedDocument
    validateDocument(value[0], value[1])
  }
  t.same(parseJsonl(text, path), docs, 'parses back to the same documents, in order')
  t.same(lines.map(l => (JSON.parse(l) as [string])[0]).slice(0, 3), ['start', 'descriptor', 'event'])
})

t.test('typed arrays and bigints are written as JSON numbers', async t => {
  const path = join(t.testdir(), 'typed.jsonl')
  const sink = await JsonlSink.open(path)
  const run = composeRun()
  const d = run.composeDescriptor({ name: 'primary', dataKeys: { a: { dtype: 'array', shape: [3], source: 'sim' }, n: { dtype: 'integer', shape: [], source: 'sim' } } })
  const e = d.composeEvent({ data: { a: new Float64Array([1.5, 2, 3]), n: 5n }, timestamps: { a: 1, n: 1 } })
  sink.write('event', e)
  await sink.close()
  const [parsed] = parseJsonl(readFileSync(path, 'utf8'))
  t.same(parsed?.[1], { ...e, data: { a: [1.5, 2, 3], n: 5 } })
  validateDocument('event', parsed?.[1])
})

t.test('close is idempotent; write after close is a coded error', async t => {
  const path = join(t.testdir(), 'c.jsonl')
  const sink = await JsonlSink.open(path)
  const run = composeRun()
  sink.write('start', run.startDoc)
  await Promise.all([sink.close(), sink.close()])
  await sink.close()
  const err = catchError(() => { sink.write('stop', run.composeStop({ exitStatus: 'success' })) })
  t.ok(isFlyScanError(err, ErrorCode.BAD_INPUT), 'BAD_INPUT')
  t.match((err as Error).message, /c\.jsonl: write of a stop document after close/)
  t.equal(readFileSync(path, 'utf8').split('\n').length, 2)
})

t.test('a path that cannot be created is a BAD_FILE error naming it', async t => {
  const dir = t.testdir({ file: 'not a directory' })
  const path = join(dir, 'file', 'run.jsonl')
  const err = await JsonlSink.open(path).then(() => undefined, (e: unknown) => e)
  t.ok(isFlyScanError(err, ErrorCode.BAD_FILE), 'BAD_FILE')
  t.match((err as Error).message, `documents file ${path}: cannot create its directory`)
})

t.test('parseJsonl names the bad line', async t => {
  t.throws(() => parseJsonl('["start", {"uid": "a", "time": 1}]\nnot json\n', 'x.jsonl'), /x\.jsonl line 2: not JSON/)
  t.throws(() => parseJsonl('["begin", {}]\n', 'x.jsonl'), /x\.jsonl line 1: expected \["<document name>", \{document\}\]/)
})
