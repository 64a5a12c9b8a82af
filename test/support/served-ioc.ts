/**
 * A simulated IOC served on 127.0.0.1 for a test process that talks to it through libca: the CA server on free
 * ports, a private CA repeater, this thread's CA context searching only that server; all torn down in order (the
 * context first, so that no channel outlives its server) when the test ends.
 */
import { CaContext, destroyCaContext } from '../../src/backends/index.js'
import type { CaConfig } from '../../src/config/index.js'
import { CaServer, type SimIoc } from '../../src/sim/ioc/index.js'
import { privateCaRepeater } from './ca-repeater.js'

export interface ServedIoc {
  readonly server: CaServer
  /** The ca section that searches this server only. */
  readonly CA: CaConfig
}

export async function serveIoc (t: { teardown (fn: () => unknown): void }, ioc: SimIoc): Promise<ServedIoc> {
  const server = await CaServer.start({ provider: ioc, tcpPort: 0, udpPort: 0, beaconPort: 0, log: () => {} })
  const CA: CaConfig = { addrList: `127.0.0.1:${server.udpPort}`, autoAddrList: false }
  await privateCaRepeater(t)
  CaContext.get(CA)
  t.teardown(async () => {
    await destroyCaContext()
    await server.close()
    ioc.close()
  })
  return { server, CA }
}
