/**
 * pyepics (Debian's python3-pyepics, over libca) as an independent Channel Access client for tests of our server.
 *
 * The script runs in a child process, asynchronously: the server under test lives in this process's event loop, so
 * a synchronous spawn would deadlock. If `import epics` fails the promise rejects with a message naming the package
 * to install: a test that needs pyepics then FAILS, it never skips.
 */
import { spawn } from 'node:child_process'

export const PYTHON = '/usr/bin/python3'
const INSTALL_HINT = 'install the Debian package python3-pyepics (apt-get install python3-pyepics) for /usr/bin/python3'

/** Prepended to every script: fail with a recognisable marker when pyepics is missing. */
const PRELUDE = `
import sys
try:
    import epics
except Exception as exc:
    sys.stderr.write('PYEPICS_IMPORT_FAILED: %r\\n' % (exc,))
    sys.exit(97)
`

/** The libca environment for a server on 127.0.0.1: search only its UDP port, allow 100 MB arrays. */
export function caEnv (udpPort: number): Record<string, string> {
  return {
    EPICS_CA_ADDR_LIST: `127.0.0.1:${udpPort}`,
    EPICS_CA_AUTO_ADDR_LIST: 'NO',
    EPICS_CA_MAX_ARRAY_BYTES: '100000000'
  }
}

export interface RunPythonOptions {
  /** Kill the interpreter after this long (default 60 s); the promise then rejects. */
  readonly timeoutMs?: number
  /** Called with each line the script prints, as it prints it (for scripts that report progress). */
  readonly onLine?: (line: string) => void
}

/** Run `script` with pyepics under `env` (added to this process's environment); resolves with its stdout. */
export async function runPython (script: string, env: Record<string, string>, opts: RunPythonOptions = {}): Promise<string> {
  const timeoutMs = opts.timeoutMs ?? 60_000
  return await new Promise<string>((resolve, reject) => {
    const child = spawn(PYTHON, ['-u', '-c', PRELUDE + script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let partial = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${PYTHON} (pyepics script) still running after ${timeoutMs} ms; stderr: ${stderr.trim()}; stdout: ${stdout.trim()}`))
    }, timeoutMs)
    child.stdout.setEncoding('utf8')
    child.stderr.setEncoding('utf8')
    child.stdout.on('data', (text: string) => {
      stdout += text
      if (opts.onLine === undefined) return
      partial += text
      let nl = partial.indexOf('\n')
      while (nl >= 0) {
        opts.onLine(partial.slice(0, nl))
        partial = partial.slice(nl + 1)
        nl = partial.indexOf('\n')
      }
    })
    child.stderr.on('data', (text: string) => { stderr += text })
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`cannot run ${PYTHON} (${err.message}): ${INSTALL_HINT}`))
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (code === 97 && stderr.includes('PYEPICS_IMPORT_FAILED')) {
        reject(new Error(`${PYTHON} cannot import epics (${stderr.trim()}): ${INSTALL_HINT}`))
      } else if (code !== 0) {
        reject(new Error(`${PYTHON} pyepics script failed (exit ${String(code)}${signal === null ? '' : `, ${signal}`}): ${stderr.trim()}`))
      } else {
        resolve(stdout)
      }
    })
  })
}

/** Run a script whose last stdout line is JSON; resolves with it parsed. */
export async function runPythonJson<T> (script: string, env: Record<string, string>, opts: RunPythonOptions = {}): Promise<T> {
  const out = await runPython(script, env, opts)
  const lines = out.trim().split('\n')
  const last = lines[lines.length - 1] ?? ''
  try {
    return JSON.parse(last) as T
  } catch (err) {
    throw new Error(`pyepics script did not end with a JSON line (${(err as Error).message}); stdout: ${out.slice(0, 2000)}`)
  }
}
