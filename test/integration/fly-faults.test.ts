// Faults during a tomography fly scan on the simulated beamline, in-process (test/support/fly-rig.ts): an operator
// abort, the PandA's data connection cut, the PandA's END Data overrun. Each run must end (bounded) with a reason
// naming the fault, every device stopped, every file readable up to what the run says was written, and valid
// documents with the timing report (docs/faults.md).
import t from 'tap'
import { tomoFly } from '../../src/plans/index.js'
import { privateCaRepeater } from '../support/ca-repeater.js'
import { FlyRig } from '../support/fly-rig.js'
import { requireHdf5Tools } from '../support/h5py.js'

requireHdf5Tools()
await privateCaRepeater(t)

// 81 images over 4 s (4000 counts / 80 = 50 per pulse): 20 frames per second per camera, time enough to fault it in the middle.
const SCAN = { numImages: 81, scanTime: 4 }

t.test('abort mid-scan: exit_status abort with the operator reason', async t => {
  const rig = await FlyRig.start(t)
  const running = rig.run(tomoFly(rig.flyscan, SCAN))
  await rig.untilWritten(5, 5)
  const aborted = await rig.re.abort('operator abort')
  const outcome = await running
  t.equal(aborted.outcome, 'aborted')
  await rig.checkEnded(t, outcome, { exitStatus: 'abort', reason: /operator abort/ })
  t.ok((rig.stopDoc?.timing?.cameras[0]?.written ?? 0) < SCAN.numImages, 'the scan did not run to its end')
})

t.test('PandA data connection cut mid-capture: the run fails naming the PandA', async t => {
  const rig = await FlyRig.start(t)
  const running = rig.run(tomoFly(rig.flyscan, SCAN))
  await rig.untilWritten(5, 5)
  rig.beamline.panda.cutDataConnections()
  const outcome = await running
  t.comment(`reason: ${rig.stopDoc?.reason ?? ''}`)
  await rig.checkEnded(t, outcome, { exitStatus: 'fail', reason: /panda1/ })
})

t.test('PandA END Data overrun: the run fails naming the overrun', async t => {
  const rig = await FlyRig.start(t)
  const running = rig.run(tomoFly(rig.flyscan, SCAN))
  await rig.untilWritten(5, 5)
  rig.beamline.panda.overrunDataConnections()
  const outcome = await running
  t.comment(`reason: ${rig.stopDoc?.reason ?? ''}`)
  await rig.checkEnded(t, outcome, { exitStatus: 'fail', reason: /panda1.*[Dd]ata overrun/ })
})
