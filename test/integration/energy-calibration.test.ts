/**
 * energy_calibration end to end, in-process: an XAS fly scan of config/sim.yaml's flyscan over its reference edge
 * (calibrationEdge −2 ± calibrationRange 1), the edge fitted in the PandA file's absorption, the offset in the stream
 * `calibration`. With the simulated edge where the reference is, the offset is ≈ 0; with the simulated edge moved
 * (sim.panda.adc.edgeDeg), the offset is the shift. The cameras are left out of the coordinator (not needed here).
 */
import t from 'tap'
import { energyCalibration } from '../../src/plans/index.js'
import { privateCaRepeater } from '../support/ca-repeater.js'
import { FlyRig, type RigTest } from '../support/fly-rig.js'
import { validateDocument } from '../support/schemas.js'

await privateCaRepeater(t)

/** The fit's tolerance for this scan (docs/analysis.md: the TST encoder's scans recover e0 within 0.005°). */
const TOLERANCE_DEG = 0.005

async function calibrateWithEdgeAt (t: RigTest, edgeDeg: number): Promise<Record<string, number>> {
  const rig = await FlyRig.start(t, {
    editConfig: (yaml) => yaml.replace(/cameras: "manta1,manta2"/, 'cameras: ""').replace(/edgeDeg: -2\b/, `edgeDeg: ${edgeDeg}`)
  })
  t.equal(rig.flyscan.calibration?.reference.edge, -2, 'the reference edge from the config')
  const outcome = await rig.run(energyCalibration(rig.flyscan, { npoints: 400, totalTime: 2.25 }))
  t.equal(outcome.error, undefined, `the plan succeeded: ${String(outcome.error)}`)
  for (const [name, doc] of rig.docs) validateDocument(name, doc)
  const descriptor = rig.docs.find(([n, d]) => n === 'descriptor' && (d as unknown as { name: string }).name === 'calibration')?.[1] as unknown as { uid: string } | undefined
  t.ok(descriptor !== undefined, 'a calibration stream')
  const events = rig.docs.filter(([n, d]) => n === 'event' && (d as unknown as { descriptor: string }).descriptor === descriptor?.uid)
  t.equal(events.length, 1, 'one calibration event')
  const data = (events[0]?.[1] as unknown as { data: Record<string, number> }).data
  const result = rig.flyscan.calibration?.result
  t.equal(result?.offset, data.flyscan_calibration_offset, 'the event holds the result')
  t.equal(data.flyscan_calibration_reference, -2)
  t.equal(result?.axis, 'encoder', 'the angles come from CALC1.OUT.Mean')
  t.ok(Math.abs(data.flyscan_calibration_e0 as number - edgeDeg) < TOLERANCE_DEG, `e0 ${data.flyscan_calibration_e0} ≈ ${edgeDeg}`)
  t.ok(Math.abs(data.flyscan_calibration_offset as number - (edgeDeg + 2)) < TOLERANCE_DEG, `offset ${data.flyscan_calibration_offset} ≈ ${edgeDeg + 2}`)
  t.ok((data.flyscan_calibration_points as number) > 350, `${data.flyscan_calibration_points} rows fitted`)
  t.equal((rig.docs.at(-1)?.[1] as unknown as { exit_status: string }).exit_status, 'success')
  return data
}

t.test('the simulated edge at the reference: offset ≈ 0', async t => {
  await calibrateWithEdgeAt(t, -2)
})

t.test('the simulated edge moved by +0.13°: offset ≈ 0.13', async t => {
  await calibrateWithEdgeAt(t, -1.87)
})
