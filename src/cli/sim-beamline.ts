/**
 * `tst-fly sim-beamline [--config config/sim.yaml] [--ca-port N] [--panda-control-port N] [--panda-data-port N]
 * [--json]`: the simulated IOC and the simulated PandA in one process, wired by the config's `sim` section
 * (docs/sim-beamline.md). It prints the ports, the environment a CA client needs, and how a config points at it,
 * then serves until SIGINT or SIGTERM. The default ports are the ones config/sim.yaml points at; 0 picks a free one.
 */
import { parseArgs } from 'node:util'
import { defaults } from '../../config/index.js'
import { loadConfigFile, type FlyConfig } from '../config/index.js'
import { ErrorCode, FlyScanError } from '../errors.js'
import { SIM_HOST, SimBeamline } from '../sim/index.js'

export interface SimBeamlineIo {
  readonly stdout: (text: string) => void
  readonly stderr: (text: string) => void
  /** Resolves when the command should stop (SIGINT or SIGTERM). */
  readonly stopped: Promise<unknown>
}

export const SIM_BEAMLINE_USAGE = '  tst-fly sim-beamline [--config <yaml>] [--ca-port N] [--panda-control-port N] [--panda-data-port N] [--json]\n' +
  `      the simulated IOC and PandA in one process, wired by the config's sim section (defaults: ports ${defaults.sim.cliCaPort}, ` +
  `${defaults.sim.cliPandaControlPort}, ${defaults.sim.cliPandaDataPort}; 0 picks a free one)\n`

/** What `--json` prints, once, when both simulators listen. */
export interface SimBeamlineListing {
  readonly config: string
  readonly host: string
  readonly caAddrList: string
  readonly caUdpPort: number
  readonly caTcpPort: number
  /** The environment a CA client (pyepics, caget) needs to find the IOC. */
  readonly env: string
  readonly pandaControlPort: number
  readonly pandaDataPort: number
  readonly pvs: number
  readonly encoderMotor: string | null
  readonly triggers: ReadonlyArray<{ readonly ttlout: number, readonly camera: string, readonly line: number }>
  /** What a config needs to point at this beamline: its ca section, and the options of each HDFPanda entry. */
  readonly pointConfig: {
    readonly ca: { readonly addrList: string, readonly autoAddrList: false }
    readonly HDFPanda: { readonly host: string, readonly controlPort: number, readonly dataPort: number }
  }
  /** Whether the config file already points there (ca.addrList and every HDFPanda entry). */
  readonly configPointsHere: boolean
}

function portOption (text: string | undefined, option: string, fallback: number): number {
  if (text === undefined) return fallback
  const n = Number(text)
  if (text.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `sim-beamline: ${option} must be a port number 0..65535 (0: a free one), got '${text}'\nusage:\n${SIM_BEAMLINE_USAGE}`)
  }
  return n
}

/** Whether `config` already searches the beamline's IOC and talks to its PandA. */
function pointsHere (config: FlyConfig, beamline: SimBeamline): boolean {
  const pointed = beamline.configFor(config)
  const pandas = (c: FlyConfig): string => JSON.stringify(c.devices.filter((d) => d.deviceClass === 'HDFPanda').map((d) => d.options))
  return config.ca.addrList === pointed.ca.addrList && config.ca.autoAddrList === false && pandas(config) === pandas(pointed)
}

export function listingOf (configFile: string, config: FlyConfig, beamline: SimBeamline): SimBeamlineListing {
  return {
    config: configFile,
    host: SIM_HOST,
    caAddrList: beamline.caAddrList,
    caUdpPort: beamline.caServer.udpPort,
    caTcpPort: beamline.caServer.tcpPort,
    env: `EPICS_CA_ADDR_LIST=${beamline.caAddrList} EPICS_CA_AUTO_ADDR_LIST=NO`,
    pandaControlPort: beamline.pandaControlPort,
    pandaDataPort: beamline.pandaDataPort,
    pvs: beamline.ioc.names().length,
    encoderMotor: beamline.sim.encoderMotor ?? null,
    triggers: beamline.sim.triggers,
    pointConfig: {
      ca: { addrList: beamline.caAddrList, autoAddrList: false },
      HDFPanda: { host: SIM_HOST, controlPort: beamline.pandaControlPort, dataPort: beamline.pandaDataPort }
    },
    configPointsHere: pointsHere(config, beamline)
  }
}

function text (l: SimBeamlineListing, encoder: number): string {
  const lines = [
    `tst-fly sim-beamline: the simulated IOC (${l.pvs} PVs) and the simulated PandA of ${l.config}, on ${l.host}, one clock`,
    `  Channel Access: search (UDP) ${l.host}:${l.caUdpPort}, circuits (TCP) ${l.host}:${l.caTcpPort}`,
    `    clients: export ${l.env}`,
    `  PandA: control port ${l.host}:${l.pandaControlPort}, data port ${l.host}:${l.pandaDataPort}`,
    `  INENC${encoder} follows ${l.encoderMotor ?? 'no motor (it stays at 0)'}`,
    ...l.triggers.map((w) => `  TTLOUT${w.ttlout} triggers ${w.camera} on Line${w.line}`),
    l.configPointsHere
      ? `  ${l.config} already points at it (tst-fly run --config ${l.config})`
      : '  a config points at it with:\n' +
        `    ca: { addrList: "${l.caAddrList}", autoAddrList: false }\n` +
        `    every HDFPanda entry: { host: ${l.host}, controlPort: ${l.pandaControlPort}, dataPort: ${l.pandaDataPort} }`,
    'serving until Ctrl-C'
  ]
  return lines.join('\n') + '\n'
}

export async function simBeamlineCommand (args: readonly string[], defaultConfig: string, io: SimBeamlineIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      'ca-port': { type: 'string' },
      'panda-control-port': { type: 'string' },
      'panda-data-port': { type: 'string' },
      json: { type: 'boolean' }
    }
  })
  if (positionals.length > 0) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `sim-beamline takes no positional arguments, got '${positionals.join(' ')}'\nusage:\n${SIM_BEAMLINE_USAGE}`)
  }
  const caPort = portOption(values['ca-port'], '--ca-port', defaults.sim.cliCaPort)
  const pandaControlPort = portOption(values['panda-control-port'], '--panda-control-port', defaults.sim.cliPandaControlPort)
  const pandaDataPort = portOption(values['panda-data-port'], '--panda-data-port', defaults.sim.cliPandaDataPort)
  const configFile = values.config ?? defaultConfig
  const config = await loadConfigFile(configFile)
  if (config.ioc === undefined) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `${configFile} has no ioc section: the simulated beamline would serve no PVs (config/sim.yaml has one)`, { details: { file: configFile } })
  }
  const beamline = await SimBeamline.start(config, { caPort, pandaControlPort, pandaDataPort, log: (line) => io.stderr(line + '\n') })
  try {
    const listing = listingOf(configFile, config, beamline)
    io.stdout(values.json === true ? JSON.stringify(listing) + '\n' : text(listing, beamline.sim.panda.encoder ?? 1))
    await io.stopped
    return 0
  } finally {
    await beamline.close()
    if (values.json !== true) io.stdout('sim-beamline: stopped, closed\n')
  }
}
