import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PandaPipeline } from '../../src/pipeline/index.js'
import { PandaReplayServer, syntheticStreamBytes, syntheticValue } from '../../src/sim/index.js'
import { readWithH5py, requireHdf5Tools } from '../support/h5py.js'

// h5py follows a file live while the pipeline writes it: the writer flushes in SWMR mode every flushPeriodMs, so a
// reader opened with swmr=True sees every row flushed so far, with the right values, and more on the next look.
requireHdf5Tools()
const dir = mkdtempSync(join(tmpdir(), 'tst-fly-live-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

function rowsOk (file: string): number {
  const f = readWithH5py(file, { swmr: true })
  const bits = f.datasets['PCAP.BITS1.Value']?.values ?? []
  const ts = f.datasets['PCAP.TS_TRIG.Value']?.values ?? []
  for (let i = 0; i < bits.length; i++) {
    if (bits[i] !== syntheticValue(i, 0) || ts[i] !== syntheticValue(i, 4)) throw new Error(`${file}: row ${i} holds the wrong values`)
  }
  return bits.length
}

t.test('an SWMR reader sees the rows flushed so far while the scan runs, then all of them', async t => {
  const rows = 60_000
  // ~2.2 MB at 1 MB/s: about two seconds of scan, flushed every 100 ms.
  const server = await PandaReplayServer.start({ source: syntheticStreamBytes({ rows }), rateBytesPerSec: 1e6 })
  t.teardown(() => server.close())
  let file = ''
  const p = await PandaPipeline.start({
    host: server.host, port: server.port, options: { format: 'FRAMED', process: 'SCALED', xml: true }, outDir: dir, fileStem: 'live', flushPeriodMs: 100
  }, { fileOpened: (_n, path) => { file = path } })
  const seen: number[] = []
  await new Promise<void>((resolve) => {
    const off = p.writer.on((m) => {
      if (m.kind === 'progress' && m.rowsWritten > 5000 && seen.length === 0) {
        seen.push(rowsOk(file))
      } else if (m.kind === 'progress' && seen.length === 1 && m.rowsWritten > (seen[0] as number) + 5000) {
        seen.push(rowsOk(file))
        off()
        resolve()
      }
    })
  })
  const r = await p.result()
  t.same(r.errors, [])
  t.ok((seen[0] as number) > 0 && (seen[0] as number) < rows, `the first live look saw part of the scan (${seen[0]} rows)`)
  t.ok((seen[1] as number) > (seen[0] as number), `the second look saw more (${seen[1]} rows)`)
  t.equal(rowsOk(file), rows, 'after the end, every row')
})
