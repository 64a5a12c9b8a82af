/**
 * `tst-fly ca-repeater [--port N] [--host H] [--idle-exit <s>]`: a CA repeater (docs/channel-access.md, "The CA
 * repeater"). libca starts one by itself through libexec/caRepeater, which runs ca-repeater-main.ts; this command is
 * the same program for a user or a service. It exits 0 at once when another repeater holds the port.
 */
import { parseArgs } from 'node:util'
import { runCaRepeater } from '../backends/index.js'
import { ErrorCode, FlyScanError } from '../errors.js'
import { defaults } from '../../config/index.js'

/** Seconds without a client before the repeater exits, when --idle-exit is not given (libca passes no arguments). */
export const IDLE_EXIT_ENV = 'TST_FLY_CA_REPEATER_IDLE_EXIT_S'

export const CA_REPEATER_USAGE = `  tst-fly ca-repeater [--port N] [--host H] [--idle-exit <s>]
      a CA repeater (what libca starts as caRepeater); port: EPICS_CA_REPEATER_PORT or 5065, host 0.0.0.0;
      exits after --idle-exit seconds without a client (default $${IDLE_EXIT_ENV} or ${defaults.ca.repeaterIdleExitMs / 1000}; 0: never)
`

export interface CaRepeaterIo {
  readonly stderr: (text: string) => void
  /** Resolves when the process is asked to stop. */
  readonly stopped: Promise<void>
}

function parsePort (text: string, from: string): number {
  const port = Number(text)
  if (text.trim() === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `${from} must be a UDP port 0..65535, got '${text}'`)
  }
  return port
}

function parseSeconds (text: string, from: string): number {
  const s = Number(text)
  if (text.trim() === '' || !Number.isFinite(s) || s < 0) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `${from} must be a number of seconds >= 0 (0: never), got '${text}'`)
  }
  return s
}

export async function caRepeaterCommand (args: string[], io: CaRepeaterIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { port: { type: 'string' }, host: { type: 'string' }, 'idle-exit': { type: 'string' } }
  })
  if (positionals.length > 0) throw new FlyScanError(ErrorCode.BAD_INPUT, `ca-repeater takes no positional arguments, got '${positionals.join(' ')}'`)
  const envPort = env.EPICS_CA_REPEATER_PORT
  const port = values.port !== undefined
    ? parsePort(values.port, '--port')
    : envPort !== undefined && envPort !== '' ? parsePort(envPort, 'EPICS_CA_REPEATER_PORT') : undefined
  const envIdle = env[IDLE_EXIT_ENV]
  const idleExitS = values['idle-exit'] !== undefined
    ? parseSeconds(values['idle-exit'], '--idle-exit')
    : envIdle !== undefined && envIdle !== '' ? parseSeconds(envIdle, IDLE_EXIT_ENV) : undefined
  await runCaRepeater({
    port,
    host: values.host,
    idleExitMs: idleExitS === undefined ? undefined : idleExitS * 1000,
    stopped: io.stopped,
    log: (line) => { io.stderr(line + '\n') }
  })
  return 0
}
