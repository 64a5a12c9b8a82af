import t from 'tap'
import { ADVimba } from '../../src/areadetector/index.js'
import { createDevices, parseConfig } from '../../src/config/index.js'
import { ErrorCode } from '../../src/errors.js'

// The ADVimba entry of the device-class table (src/config/device-classes.ts): options typed by the loader, values
// checked by the factory with messages naming the device.

function build (entry: Record<string, unknown>): ADVimba {
  const config = parseConfig({ devices: { ADVimba: [{ name: 'manta1', prefix: 'XF:31ID1-ES{GigE-Cam:1}', ...entry }] } }, 'cams.yaml')
  const { registry, skipped } = createDevices(config)
  if (skipped.length > 0) throw new Error(`skipped: ${JSON.stringify(skipped)}`)
  const device = registry.find('manta1')
  if (!(device instanceof ADVimba)) throw new Error('manta1 is not an ADVimba')
  return device
}

t.test('a config entry builds an ADVimba with its record-name parts and options', async t => {
  const cam = build({ driver: 'cam2:', image: 'image2:', hdf: 'HDF2:', model: 'Manta G-235', triggerLine: 2, stallMarginMs: 250 })
  t.equal(cam.name, 'manta1')
  t.equal(cam.driverPrefix, 'XF:31ID1-ES{GigE-Cam:1}cam2:')
  t.equal(cam.imagePrefix, 'XF:31ID1-ES{GigE-Cam:1}image2:')
  t.equal(cam.hdfPrefix, 'XF:31ID1-ES{GigE-Cam:1}HDF2:')
  t.equal(cam.drv.acquire.source, 'ca://XF:31ID1-ES{GigE-Cam:1}cam2:Acquire_RBV')
  t.equal(cam.controller.triggerLine, 2)
  t.equal(cam.timeouts.stallMarginMs, 250)
  t.equal(cam.getDeadtime(0.01), 390e-6, 'the model option picks the deadtime before connect')
  t.equal(cam.writer, undefined, 'the writer is set later (setWriter)')
  const plain = build({})
  t.equal(plain.driverPrefix, 'XF:31ID1-ES{GigE-Cam:1}cam1:')
  t.equal(plain.controller.triggerLine, 1)
  t.equal(build({ deadtime: 0.002, model: 'Prosilica GT' }).getDeadtime(undefined), 0.002)
})

t.test('bad option values are BAD_INPUT naming the device', async t => {
  t.throws(() => build({ triggerLine: 5 }), { code: ErrorCode.BAD_INPUT, message: 'ADVimba manta1: triggerLine 5 must be one of 1, 2, 3, 4 (TriggerSource Line1..Line4)' })
  t.throws(() => build({ deadtime: -0.001 }), { code: ErrorCode.BAD_INPUT, message: 'ADVimba manta1: deadtime -0.001 must be seconds in [0, 1)' })
  t.throws(() => build({ stallMarginMs: -1 }), { code: ErrorCode.BAD_INPUT, message: 'ADVimba manta1: stallMarginMs -1 must be >= 0' })
  t.throws(() => build({ driver: '' }), { code: ErrorCode.BAD_INPUT, message: 'ADVimba manta1: driver must be a non-empty string' })
  t.throws(() => build({ triggerLine: 'Line1' }), { code: ErrorCode.BAD_INPUT, message: /devices\.ADVimba\[0\]\.triggerLine: must be a number/ })
  t.throws(() => build({ colour: 'red' }), { code: ErrorCode.BAD_INPUT, message: /devices\.ADVimba\[0\]\.colour: unknown option for ADVimba/ })
})
