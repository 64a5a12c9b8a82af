// The stream documents shared by every device that writes files (src/devices/core/stream-assets.ts): the file URI,
// the HDF5 stream_resource and the stream_datum cursor (half-open ranges, seq_nums from 1, nothing when nothing is new).
import t from 'tap'
import { StreamDatumCursor, hdf5Resource, localFileUri } from '../../src/devices/index.js'

t.test('localFileUri: file://localhost and an absolute, percent-encoded path', async t => {
  t.equal(localFileUri('/data/tst/a b#1.h5'), 'file://localhost/data/tst/a%20b%231.h5')
  t.match(localFileUri('rel/x.h5'), /^file:\/\/localhost\/.+\/rel\/x\.h5$/, 'a relative path is made absolute')
})

t.test('hdf5Resource: the event-model fields of one dataset', async t => {
  t.same(hdf5Resource('u1', 'manta1', '/d/f.h5', '/entry/data/data', [1, 544, 728]), {
    uid: 'u1', data_key: 'manta1', mimetype: 'application/x-hdf5', uri: 'file://localhost/d/f.h5', parameters: { dataset: '/entry/data/data', chunk_shape: [1, 544, 728] }
  })
})

t.test('StreamDatumCursor: consecutive ranges, numbered uids, nothing when the index did not grow', async t => {
  const c = new StreamDatumCursor('res')
  t.equal(c.next(0), undefined)
  t.same(c.next(5), { uid: 'res/0', stream_resource: 'res', indices: { start: 0, stop: 5 }, seq_nums: { start: 1, stop: 6 } })
  t.equal(c.next(5), undefined, 'no new events')
  t.equal(c.next(3), undefined, 'an index that went back gives nothing')
  t.same(c.next(8), { uid: 'res/1', stream_resource: 'res', indices: { start: 5, stop: 8 }, seq_nums: { start: 6, stop: 9 } })
  t.equal(c.emitted, 8)
})
