/**
 * `tst-fly sim-ioc [--config config/sim.yaml] [--port N] [--host 127.0.0.1] [--json] [--quiet]`: runs the simulated
 * IOC alone. It prints where it listens, the environment a CA client needs to find it, and every PV it serves, then
 * serves until SIGINT or SIGTERM. `--port N` puts both the search (UDP) and circuit (TCP) ports on N, as an IOC with
 * EPICS_CA_SERVER_PORT=N does; `--port 0` picks free ports.
 */
import { parseArgs } from 'node:util'
import { loadConfigFile } from '../config/index.js'
import { CA_DEFAULT_SERVER_PORT } from '../parsers/index.js'
import { ErrorCode, FlyScanError } from '../errors.js'
import { CaServer, simIocFromConfig, type SimIoc } from '../sim/index.js'

export interface SimIocIo {
  readonly stdout: (text: string) => void
  readonly stderr: (text: string) => void
  /** Resolves when the process is asked to stop. */
  readonly stopped: Promise<void>
}

export interface RunningSimIoc {
  readonly ioc: SimIoc
  readonly server: CaServer
  close: () => Promise<void>
}

/** Build the simulated IOC of `configFile` and serve it; the caller closes it. */
export async function startSimIoc (configFile: string, opts: { host?: string, port?: number, log?: (line: string) => void } = {}): Promise<RunningSimIoc> {
  const config = await loadConfigFile(configFile)
  if (config.ioc === undefined) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `${configFile} has no ioc section: nothing to serve (config/sim.yaml has one)`)
  }
  const ioc = simIocFromConfig(config)
  const port = opts.port ?? CA_DEFAULT_SERVER_PORT
  let server: CaServer
  try {
    server = await CaServer.start({ provider: ioc, host: opts.host ?? '127.0.0.1', tcpPort: port, udpPort: port, log: opts.log })
  } catch (err) {
    ioc.close()
    const code = (err as NodeJS.ErrnoException).code
    const hint = code === 'EADDRINUSE' ? ` (another IOC or sim-ioc holds port ${port}; try --port 0 or another port)` : ''
    throw new FlyScanError(ErrorCode.CONNECTION, `sim-ioc cannot listen on ${opts.host ?? '127.0.0.1'}:${port}: ${(err as Error).message}${hint}`, { cause: err })
  }
  let closing: Promise<void> | undefined
  return {
    ioc,
    server,
    close: async () => {
      closing ??= (async () => {
        await server.close()
        ioc.close()
      })()
      await closing
    }
  }
}

function parsePort (text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const port = Number(text)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `--port must be an integer 0..65535, got '${text}'`)
  }
  return port
}

export async function simIocCommand (args: string[], defaultConfig: string, io: SimIocIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { config: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, json: { type: 'boolean' }, quiet: { type: 'boolean' } }
  })
  if (positionals.length > 0) throw new FlyScanError(ErrorCode.BAD_INPUT, `sim-ioc takes no positional arguments, got '${positionals.join(' ')}'`)
  const configFile = values.config ?? defaultConfig
  const running = await startSimIoc(configFile, {
    host: values.host, port: parsePort(values.port), log: (line) => io.stderr(line + '\n')
  })
  try {
    const { server, ioc } = running
    const host = values.host ?? '127.0.0.1'
    const listing = ioc.listing()
    const env = `EPICS_CA_ADDR_LIST=${host}:${server.udpPort} EPICS_CA_AUTO_ADDR_LIST=NO`
    if (values.json === true) {
      io.stdout(JSON.stringify({ host, tcpPort: server.tcpPort, udpPort: server.udpPort, env, config: configFile, pvs: listing }) + '\n')
    } else {
      io.stdout(`tst-fly sim-ioc: serving ${listing.length} PVs from ${configFile}\n`)
      io.stdout(`  search (UDP) ${host}:${server.udpPort}, circuits (TCP) ${host}:${server.tcpPort}\n`)
      io.stdout(`  clients: export ${env}\n`)
      if (values.quiet !== true) {
        const width = Math.max(...listing.map((p) => p.name.length))
        for (const p of listing) io.stdout(`  ${p.name.padEnd(width)}  ${p.type.padEnd(12)} ${String(p.count).padStart(8)}  ${p.access}\n`)
      }
      io.stdout('serving until Ctrl-C\n')
    }
    await io.stopped
    return 0
  } finally {
    await running.close()
  }
}
