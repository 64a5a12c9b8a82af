#!/usr/bin/env node
/**
 * The tst-fly command. Subcommands:
 *   replay <recording.bin> --out <dir> [--rate <MB/s>] [--json] [--options "XML FRAMED SCALED"]
 *   demo [--config <yaml>]  what `npm start` runs: an XAS fly scan on the embedded simulated beamline
 *   run <plan> [--<arg> <value> ...] [--config <yaml>] [--docs <file.jsonl>] [--md key=value ...] [--json]
 *   plans                   lists the runnable plans with their arguments and defaults
 *   sim-ioc [--config <yaml>] [--port N]   the simulated IOC alone
 *   caget <pv...> | caput <pv> <value...> | camonitor <pv...>   Channel Access at a terminal
 *   ca-repeater [--port N] [--idle-exit <s>]   the CA repeater libca starts (libexec/caRepeater)
 *   sim-panda [--control-port N] [--data-port N] ...   the simulated PandA alone
 *   sim-beamline [--config <yaml>] [--ca-port N] ...   the simulated IOC and PandA in one process, wired together
 *   record --host H [--data-port N] --out <file.bin> ...   a data-port stream, byte for byte
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ErrorCode, FlyScanError } from '../errors.js'
import type { DataFormat, DataOptions, DataProcess } from '../parsers/index.js'
import { replay, replayJson, replayText } from './replay.js'
import { plansCommand, runCommand } from './run.js'
import { RECORD_USAGE, recordCommand } from './record.js'
import { SIM_PANDA_USAGE, simPandaCommand } from './sim-panda.js'
import { cagetCommand, camonitorCommand, caputCommand } from './ca-tools.js'
import { simIocCommand } from './sim-ioc.js'
import { CA_REPEATER_USAGE, caRepeaterCommand } from './ca-repeater.js'
import { SIM_BEAMLINE_USAGE, simBeamlineCommand } from './sim-beamline.js'

/**
 * The demo's XAS scan: 200 points over 4° (the simulated absorption edge is at -2°) in 4 s: 50 rows and 50 frames per
 * camera per second, which the simulated IOC serves, in the same process, on a machine that is doing other work too.
 */
const DEMO_XAS_ARGS: readonly string[] = ['--npoints', '200', '--total-time', '4', '--start-e', '0', '--end-e', '-4']

const USAGE = `usage:
  tst-fly replay <recording.bin> --out <dir> [--rate <MB/s>] [--json] [--options "XML FRAMED SCALED"]
  tst-fly demo [--config <yaml>]
      what npm start runs: xas_fly ${DEMO_XAS_ARGS.join(' ')} on the simulated beamline of config/sim.yaml
  tst-fly run <plan> [--<arg> <value> ...] [--config <yaml>] [--docs <file.jsonl>] [--md key=value ...] [--json]
      runs a plan (default config: config/sim.yaml; default documents file: <data.root>/run-<time>.jsonl)
  tst-fly plans           lists the plans and their arguments
  tst-fly sim-ioc [--config <yaml>] [--port N] [--host H] [--json] [--quiet]
      runs the simulated IOC (a Channel Access server) alone; --port 0 picks free ports (default 5064)
  tst-fly caget <pv...> [--time] [--ctrl] [--json] [--all] [--config <yaml>] [--timeout <s>]
  tst-fly caput <pv> <value...> [--wait] [--config <yaml>] [--timeout <s>]
  tst-fly camonitor <pv...> [--count N] [--seconds S] [--config <yaml>] [--timeout <s>]
      Channel Access through libca; search settings from the config's ca section or the EPICS_CA_* environment
${CA_REPEATER_USAGE}${SIM_PANDA_USAGE}${SIM_BEAMLINE_USAGE}${RECORD_USAGE}`

/** Exit codes: 0 clean, 1 the run failed (an acquisition ended badly, a worker died), 2 bad usage or input. */
const EXIT = { OK: 0, FAILED: 1, USAGE: 2 } as const

const packageRoot = fileURLToPath(new URL('../../../', import.meta.url))

function usageError (message: string): FlyScanError {
  return new FlyScanError(ErrorCode.BAD_INPUT, `${message}\n${USAGE}`)
}

export function parseDataOptions (text: string): DataOptions {
  const words = text.trim().split(/\s+/)
  let format: DataFormat = 'ASCII'
  let process: DataProcess = 'SCALED'
  let xml = false
  for (const w of words) {
    if (w === 'XML') xml = true
    else if (w === 'ASCII' || w === 'BASE64' || w === 'FRAMED' || w === 'UNFRAMED') format = w
    else if (w === 'SCALED' || w === 'RAW') process = w
    else throw usageError(`--options: unknown data-port option '${w}' (XML, ASCII, BASE64, FRAMED, UNFRAMED, SCALED, RAW)`)
  }
  if (!xml) throw usageError('--options must include XML: tst-fly reads the XML header only')
  return { format, process, xml }
}

function parseRate (text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const rate = Number(text)
  if (!Number.isFinite(rate) || rate <= 0) throw usageError(`--rate must be a positive number of MB/s, got '${text}'`)
  return rate
}

function terminal (): { stdout: (text: string) => void, stderr: (text: string) => void } {
  return { stdout: (text) => process.stdout.write(text), stderr: (text) => process.stderr.write(text) }
}

/** Resolves on the first SIGINT or SIGTERM (the command then closes what it opened and exits 0). */
function signalled (): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => { resolve() })
    process.once('SIGTERM', () => { resolve() })
  })
}

async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE)
    return command === undefined ? EXIT.USAGE : EXIT.OK
  }
  switch (command) {
    case 'replay': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { out: { type: 'string' }, rate: { type: 'string' }, json: { type: 'boolean' }, options: { type: 'string' } }
      })
      if (positionals.length !== 1) throw usageError('replay takes exactly one recording file')
      if (values.out === undefined) throw usageError('replay needs --out <dir>')
      const recording = positionals[0] as string
      const json = values.json === true
      const outcome = await replay({
        recording,
        outDir: values.out,
        rateMBps: parseRate(values.rate),
        options: parseDataOptions(values.options ?? 'XML FRAMED SCALED')
      }, json ? undefined : (line) => process.stderr.write(line + '\n'))
      process.stdout.write((json ? replayJson(outcome) : replayText(recording, outcome)) + '\n')
      return outcome.clean ? EXIT.OK : EXIT.FAILED
    }
    case 'demo': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string' } } })
      const config = values.config ?? path.join(packageRoot, 'config', 'sim.yaml')
      process.stdout.write('tst-fly demo: an XAS fly scan on the simulated beamline (simulated IOC and PandA on 127.0.0.1, ' +
        'the real devices, workers, rings and HDF5 writers)\n')
      return await runCommand(['xas_fly', ...DEMO_XAS_ARGS, '--config', config], {
        stdout: (text) => process.stdout.write(text),
        stderr: (text) => process.stderr.write(text),
        defaultConfig: config,
        tty: process.stdout.isTTY
      })
    }
    case 'run':
      return await runCommand(rest, {
        stdout: (text) => process.stdout.write(text),
        stderr: (text) => process.stderr.write(text),
        defaultConfig: path.join(packageRoot, 'config', 'sim.yaml'),
        tty: process.stdout.isTTY
      })
    case 'plans':
      if (rest.length > 0) throw usageError(`plans takes no arguments, got '${rest.join(' ')}'`)
      return plansCommand({ stdout: (text) => process.stdout.write(text) })
    case 'sim-ioc':
      return await simIocCommand(rest, path.join(packageRoot, 'config', 'sim.yaml'), { ...terminal(), stopped: signalled() })
    case 'caget':
      return await cagetCommand(rest, terminal())
    case 'caput':
      return await caputCommand(rest, terminal())
    case 'camonitor':
      return await camonitorCommand(rest, { ...terminal(), interrupted: signalled() })
    case 'ca-repeater':
      return await caRepeaterCommand(rest, { stderr: (text) => process.stderr.write(text), stopped: signalled() })
    case 'sim-panda':
      return await simPandaCommand(rest, terminal())
    case 'sim-beamline':
      return await simBeamlineCommand(rest, path.join(packageRoot, 'config', 'sim.yaml'), { ...terminal(), stopped: signalled() })
    case 'record':
      return await recordCommand(rest, terminal())
    default:
      throw usageError(`unknown command '${command}'`)
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code
}, (err: unknown) => {
  if (err instanceof FlyScanError) {
    process.stderr.write(`tst-fly: ${err.message}\n`)
    process.exitCode = err.code === ErrorCode.BAD_INPUT || err.code === ErrorCode.BAD_FILE ? EXIT.USAGE : EXIT.FAILED
  } else if (err instanceof Error && (err as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    process.stderr.write(`tst-fly: ${err.message}\n${USAGE}`)
    process.exitCode = EXIT.USAGE
  } else {
    process.stderr.write(`tst-fly: unexpected error: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exitCode = EXIT.FAILED
  }
})
