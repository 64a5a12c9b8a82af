// One lint/format tool: ESLint with the neostandard preset (the style of thread-stream and undici), plus the import
// layering of docs/where-logic-lives.md (no-restricted-imports per folder).
import neostandard from 'neostandard'

const leafOnlyErrors = (depth) => ({
  patterns: [{
    group: [`${'../'.repeat(depth)}*`, `!${'../'.repeat(depth)}errors.js`],
    message: 'shm, parsers and metrics are leaves: they may import only src/errors.ts from the project.'
  }]
})

const notWorkers = { group: ['**/workers/**'], message: 'src/ never imports workers/ (workers sit on src/).' }
const notSim = { group: ['**/sim/**', '**/sim/index.js', '**/test/**'], message: 'sim and test support are never imported by runtime code.' }
const notBackends = { group: ['**/backends/**'], message: 'engine and plans see device interfaces only, never backends.' }
const viaIndex = (prefix) => ({
  group: [`${prefix}*/*.js`, `!${prefix}*/index.js`, `${prefix}../config/*.js`, `!${prefix}../config/index.js`],
  message: 'Cross-folder imports go through the folder\'s index.ts.'
})

export default [
  ...neostandard({ ts: true, ignores: ['build/**', 'node_modules/**', 'out/**', 'test/fixtures/workers/broken/**'] }),
  {
    rules: {
      'n/prefer-node-protocol': 'error',
      '@typescript-eslint/no-redeclare': 'off'
    }
  },
  {
    files: ['src/**/*.ts', 'workers/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      'n/no-process-exit': 'error'
    }
  },
  { files: ['workers/runtime.ts', 'src/cli/main.ts'], rules: { 'n/no-process-exit': 'off' } },
  // Leaves: rings, parsers, metrics import nothing from the project but errors.ts.
  { files: ['src/shm/*.ts', 'src/metrics/*.ts'], rules: { 'no-restricted-imports': ['error', leafOnlyErrors(1)] } },
  { files: ['src/parsers/*/*.ts'], rules: { 'no-restricted-imports': ['error', leafOnlyErrors(2)] } },
  { files: ['src/errors.ts'], rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['./*', '../*'], message: 'errors.ts is the root leaf.' }] }] } },
  // Runtime folders of src/ (everything but sim/ and cli/, which is the composition root that may start simulators).
  {
    files: ['src/*/*.ts', 'src/*.ts'],
    ignores: ['src/sim/**', 'src/cli/**', 'src/shm/*.ts', 'src/metrics/*.ts', 'src/errors.ts', 'src/engine/**', 'src/plans/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: [notWorkers, notSim, viaIndex('../')] }] }
  },
  {
    files: ['src/*/*/*.ts'],
    ignores: ['src/sim/**', 'src/parsers/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: [notWorkers, notSim, viaIndex('../../')] }] }
  },
  {
    files: ['src/engine/**/*.ts', 'src/plans/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [notWorkers, notSim, notBackends, viaIndex('../')] }] }
  },
  { files: ['src/sim/**/*.ts', 'src/cli/**/*.ts'], rules: { 'no-restricted-imports': ['error', { patterns: [notWorkers, { group: ['**/test/**'], message: 'test support is never imported by runtime code.' }] }] } },
  { files: ['workers/*.ts'], rules: { 'no-restricted-imports': ['error', { patterns: [notSim, viaIndex('../src/')] }] } }
]
