/**
 * `tst-fly sim-panda [--control-port N] [--data-port N] [--host A] [--encoder-speed DEG_PER_S] [--rate ROWS_PER_S
 * [--rows N]]`: runs the simulated PandA alone (docs/sim-panda.md) until SIGINT or SIGTERM, then closes it.
 */
import { parseArgs } from 'node:util'
import { ErrorCode, FlyScanError } from '../errors.js'
import { SimPanda, type SimPandaOptions } from '../sim/index.js'

export interface SimPandaIo {
  readonly stdout: (text: string) => void
  readonly stderr: (text: string) => void
  /** Resolves when the command should stop (default: the first SIGINT or SIGTERM). */
  readonly stopped?: Promise<string>
}

export const SIM_PANDA_USAGE = '  tst-fly sim-panda [--control-port N] [--data-port N] [--host A] [--encoder-speed DEG_PER_S] [--rate ROWS_PER_S [--rows N]]\n' +
  '      runs the simulated PandA (defaults: 127.0.0.1, ports 8888 and 8889) until SIGINT/SIGTERM\n'

function number (text: string | undefined, what: string, check: (n: number) => boolean, rule: string): number | undefined {
  if (text === undefined) return undefined
  const n = Number(text)
  if (text.trim() === '' || !Number.isFinite(n) || !check(n)) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `sim-panda: ${what} must be ${rule}, got '${text}'\nusage:\n${SIM_PANDA_USAGE}`)
  }
  return n
}

const port = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 65535

function signalled (): Promise<string> {
  return new Promise((resolve) => {
    const on = (name: string) => () => {
      process.off('SIGINT', onInt)
      process.off('SIGTERM', onTerm)
      resolve(name)
    }
    const onInt = on('SIGINT')
    const onTerm = on('SIGTERM')
    process.once('SIGINT', onInt)
    process.once('SIGTERM', onTerm)
  })
}

export async function simPandaCommand (args: readonly string[], io: SimPandaIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      'control-port': { type: 'string' },
      'data-port': { type: 'string' },
      host: { type: 'string' },
      'encoder-speed': { type: 'string' },
      rate: { type: 'string' },
      rows: { type: 'string' }
    }
  })
  if (positionals.length > 0) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `sim-panda takes no positional arguments, got '${positionals.join(' ')}'\nusage:\n${SIM_PANDA_USAGE}`)
  }
  const controlPort = number(values['control-port'], '--control-port', port, 'a port number 0..65535') ?? 8888
  const dataPort = number(values['data-port'], '--data-port', port, 'a port number 0..65535') ?? 8889
  const speed = number(values['encoder-speed'], '--encoder-speed', () => true, 'a number of degrees per second')
  const rate = number(values.rate, '--rate', (n) => n > 0, 'a positive number of rows per second')
  const rows = number(values.rows, '--rows', (n) => Number.isInteger(n) && n > 0, 'a positive integer')
  if (rows !== undefined && rate === undefined) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `sim-panda: --rows needs --rate\nusage:\n${SIM_PANDA_USAGE}`)
  }
  const host = values.host ?? '127.0.0.1'
  const startMs = performance.timeOrigin + performance.now()
  const options: SimPandaOptions = {
    controlPort,
    dataPort,
    host,
    ...(speed === undefined ? {} : { motor: { positionAt: (ms: number) => speed * (ms - startMs) / 1000 } }),
    ...(rate === undefined ? {} : { rateMode: { rowsPerSecond: rate, ...(rows === undefined ? {} : { rows }) } })
  }
  const stopped = io.stopped ?? signalled()
  let panda: SimPanda
  try {
    panda = await SimPanda.start(options)
  } catch (err) {
    throw new FlyScanError(ErrorCode.CONNECTION, `sim-panda: cannot listen on ${host} (control ${controlPort}, data ${dataPort}): ${(err as Error).message}`, { cause: err })
  }
  io.stdout(`sim-panda: control port ${host}:${panda.controlPort}, data port ${host}:${panda.dataPort}` +
    `${rate === undefined ? '' : `, rate mode ${rate} rows/s`}${speed === undefined ? '' : `, encoder ${speed} deg/s`}\n`)
  const why = await stopped
  await panda.close()
  io.stdout(`sim-panda: ${why}, closed\n`)
  return 0
}
