/**
 * A libca client in a process of its own, for test/integration/ca-repeater.test.ts: libca writes to the process's
 * stderr (fd 2) and forks the repeater from it, so the test watches a child. Usage:
 *   node ca-repeater-child.js <server udp port> <pv>
 * It opens the PV and prints one JSON line per event on stdout: {atMs, event: 'connected' | 'disconnected'} and,
 * every 100 ms, {atMs, event: 'beacons', periodMs, anomalies} (what libca knows of the server's beacons). It
 * destroys its context and exits when its stdin ends.
 */
import { CaChannel, CaContext } from '../../src/backends/index.js'

const [udpPort, pv] = process.argv.slice(2)
const t0 = Date.now()
const emit = (o: Record<string, unknown>): void => { process.stdout.write(JSON.stringify({ atMs: Date.now() - t0, ...o }) + '\n') }
const context = CaContext.get({ addrList: `127.0.0.1:${String(udpPort)}`, autoAddrList: false })
const channel = new CaChannel(String(pv), { context })
channel.onConnectionChange((state) => { emit({ event: state }) })
const timer = setInterval(() => {
  emit({ event: 'beacons', periodMs: channel.beaconPeriodMs ?? null, anomalies: context.beaconAnomalyCount })
}, 100)
process.stdin.resume()
process.stdin.on('end', () => {
  clearInterval(timer)
  context.destroy().then(() => { emit({ event: 'destroyed' }) }, (err: unknown) => {
    process.stderr.write(`ca-repeater-child: ${String(err)}\n`)
    process.exitCode = 1
  })
})
