// Faults of the camera side during a tomography fly scan on the simulated beamline, in-process
// (test/support/fly-rig.ts): the IOC's Channel Access server gone mid-scan, and a camera worker killed mid-scan.
// Each run must end (bounded) failing with a reason naming the camera, every device stopped (or, with the IOC gone,
// at rest), every file readable up to what the run says was written, valid documents with the timing report
// (docs/faults.md).
import t from 'tap'
import { tomoFly } from '../../src/plans/index.js'
import { privateCaRepeater } from '../support/ca-repeater.js'
import { FlyRig } from '../support/fly-rig.js'
import { requireHdf5Tools } from '../support/h5py.js'

requireHdf5Tools()
await privateCaRepeater(t)

// 81 images over 4 s (4000 counts / 80 = 50 per pulse): 20 frames per second per camera.
const SCAN = { numImages: 81, scanTime: 4 }

t.test('camera IOC gone mid-scan: the run fails naming a device of the IOC and the disconnect, nothing hangs', async t => {
  const rig = await FlyRig.start(t)
  const running = rig.run(tomoFly(rig.flyscan, SCAN))
  await rig.untilWritten(5, 5)
  await rig.beamline.caServer.close()
  const outcome = await running
  t.comment(`reason: ${rig.stopDoc?.reason ?? ''} (${outcome.ms} ms)`)
  // The STOP writes cannot reach the IOC: its motor and cameras stop by themselves, the PandA is disarmed.
  for (const cam of rig.beamline.ioc.cameras.values()) cam.close()
  await rig.checkEnded(t, outcome, { exitStatus: 'fail', reason: /(manta[12]|rot_motor).*disconnect/, iocGone: true })
})

t.test('frame-writer worker killed mid-scan: the run fails naming the worker, the file is recovered', async t => {
  const rig = await FlyRig.start(t)
  const running = rig.run(tomoFly(rig.flyscan, SCAN))
  await rig.untilWritten(5, 5)
  // The frame writer: terminating it from outside is a crash as the supervisor sees it (a camera-capture worker is
  // not terminated from outside: it holds a libca context, which must be destroyed on its own thread).
  const writer = rig.writer('manta1').pipeline?.writer
  t.ok(writer !== undefined, "manta1's frame-writer worker is running")
  await writer?.destroy('killed by the fault test')
  const outcome = await running
  t.comment(`reason: ${rig.stopDoc?.reason ?? ''} (${outcome.ms} ms)`)
  await rig.checkEnded(t, outcome, { exitStatus: 'fail', reason: /manta1.*frame-writer manta1/ })
})
