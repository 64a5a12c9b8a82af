import t from 'tap'
import { ProposalPathProvider, LocalPathProvider, StaticPathProvider, pathProviderFor } from '../../src/paths/index.js'
import { ErrorCode } from '../../src/errors.js'

const now = () => new Date(2025, 4, 7, 12, 0, 0)
const uuid = () => 'f00d'

t.test('NSLS-II proposal layout', async t => {
  const p = new ProposalPathProvider('/nsls2/data/tst/legacy/mock-proposals', { now, uuid })
  t.same(p.getPath('manta1', { cycle: '2025-2', data_session: 'pass-56789' }), {
    directoryPath: '/nsls2/data/tst/legacy/mock-proposals/2025-2/pass-56789/assets/manta1/2025/05/07',
    filename: 'f00d',
    path: '/nsls2/data/tst/legacy/mock-proposals/2025-2/pass-56789/assets/manta1/2025/05/07/f00d.h5',
    createDirDepth: 5
  })
  t.throws(() => p.getPath('manta1', { cycle: '2025-2' }), { code: ErrorCode.BAD_INPUT, message: /needs run metadata data_session/ })
  t.throws(() => p.getPath('manta1', {}), { message: /needs run metadata cycle and data_session/ })
  t.throws(() => p.getPath('manta1', { cycle: '../x', data_session: 'p' }), { message: /cycle "\.\.\/x" cannot be a directory name/ })
  t.throws(() => p.getPath('a/b', { cycle: 'c', data_session: 'd' }), { message: /device name "a\/b" cannot be a directory/ })
})

t.test('local and static providers; from config', async t => {
  t.equal(new LocalPathProvider('out/data', { now, uuid }).getPath('panda1').path, 'out/data/panda1/2025/05/07/f00d.h5')
  const s = new StaticPathProvider('/tmp/x/scan.h5')
  t.same(s.getPath('panda1'), { directoryPath: '/tmp/x', filename: 'scan', path: '/tmp/x/scan.h5', createDirDepth: 0 })
  t.ok(pathProviderFor({ provider: 'nsls2', root: '/r' }) instanceof ProposalPathProvider)
  t.ok(pathProviderFor({ provider: 'local', root: '/r' }) instanceof LocalPathProvider)
  t.equal(pathProviderFor({ provider: 'static', root: '/r', path: 'a.h5' }).getPath('d').path, '/r/a.h5')
  t.not(new LocalPathProvider('/r').getPath('d').filename, new LocalPathProvider('/r').getPath('d').filename, 'a fresh uuid per file')
})
