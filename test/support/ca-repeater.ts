/**
 * A private CA repeater for a test process that uses libca. Without one, the process's first CA channel makes libca
 * start tst-fly's caRepeater on EPICS_CA_REPEATER_PORT (5065 unless set), which other processes on the machine
 * would then share, and which outlives the test (docs/channel-access.md, "The CA repeater").
 *
 * Call it before the first CaContext is created (libca reads EPICS_CA_REPEATER_PORT then): it serves a repeater in
 * this process on 127.0.0.1 at a free port and points EPICS_CA_REPEATER_PORT at it, so libca starts none, and the
 * children of this process (tst-fly commands, pyepics) use it too. The teardown closes it and restores the
 * variable.
 */
import { CaRepeater } from '../../src/backends/index.js'

export async function privateCaRepeater (t: { teardown (fn: () => unknown): void }): Promise<CaRepeater> {
  const repeater = await CaRepeater.start({ host: '127.0.0.1', port: 0, log: () => {} })
  const saved = process.env.EPICS_CA_REPEATER_PORT
  process.env.EPICS_CA_REPEATER_PORT = String(repeater.port)
  t.teardown(async () => {
    if (saved === undefined) delete process.env.EPICS_CA_REPEATER_PORT
    else process.env.EPICS_CA_REPEATER_PORT = saved
    await repeater.close()
  })
  return repeater
}
