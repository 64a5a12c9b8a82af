import t from 'tap'
import { ESLint } from 'eslint'
import { REPO_ROOT } from '../support/h5py.js'

// The import layering of docs/where-logic-lives.md is enforced by ESLint in `npm test`. These cases keep the rules
// from rotting: each forbidden import is reported, each allowed one is not.
const eslint = new ESLint({ cwd: REPO_ROOT })

async function restricted (filePath: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath })
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message)
}

const cases: Array<[string, string, RegExp | null]> = [
  ['src/shm/x.ts', "import { nowNs } from '../metrics/index.js'", /leaves/],
  ['src/shm/x.ts', "import { FlyScanError } from '../errors.js'", null],
  ['src/metrics/x.ts', "import { RingState } from '../shm/index.js'", /leaves/],
  ['src/parsers/panda-data/x.ts', "import { HistogramSet } from '../../metrics/index.js'", /leaves/],
  ['src/parsers/panda-data/x.ts', "import { ErrorCode } from '../../errors.js'", null],
  ['src/errors.ts', "import { x } from './metrics/index.js'", /root leaf/],
  ['src/pipeline/x.ts', "import { RecordWriter } from '../shm/record-ring.js'", /index\.ts/],
  ['src/pipeline/x.ts', "import { RecordWriter } from '../shm/index.js'", null],
  ['src/pipeline/x.ts', "import { startWorker } from '../../workers/runtime.js'", /never imports workers/],
  ['src/pipeline/x.ts', "import { PandaReplayServer } from '../sim/index.js'", /never imported by runtime code/],
  ['src/pipeline/x.ts', "import { defaults } from '../../config/defaults.js'", /index\.ts/],
  ['src/pipeline/x.ts', "import { defaults } from '../../config/index.js'", null],
  ['src/engine/x.ts', "import { CaBackend } from '../backends/index.js'", /never backends/],
  ['src/cli/x.ts', "import { PandaReplayServer } from '../sim/index.js'", null],
  ['workers/x.ts', "import { PandaReplayServer } from '../src/sim/index.js'", /never imported by runtime code/],
  ['workers/x.ts', "import { RecordWriter } from '../src/shm/record-ring.js'", /index\.ts/]
]

for (const [file, source, expected] of cases) {
  t.test(`${file}: ${source} is ${expected === null ? 'allowed' : 'forbidden'}`, async t => {
    const messages = await restricted(file, `${source}\nexport const used = 1\n`)
    if (expected === null) t.same(messages, [])
    else t.ok(messages.some((m) => expected.test(m)), `reported: ${messages.join(' | ') || '(nothing)'}`)
  })
}
