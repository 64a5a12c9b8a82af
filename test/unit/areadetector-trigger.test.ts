import t from 'tap'
import {
  MANTA_DEADTIME_S, deadtimeOfModel, exposureLimits, vimbaDeadtime, vimbaSettings, type VimbaCamera
} from '../../src/areadetector/index.js'
import { ErrorCode } from '../../src/errors.js'
import { defaults } from '../../config/index.js'

// The ADVimba trigger logic (src/areadetector/vimba-trigger.ts): TriggerInfo → the driver's PV values, per DESIGN.md §7.

const camera: VimbaCamera = { name: 'manta1', deadtime: 63e-6, minExposure: 10e-6, maxExposure: 60, triggerLine: 1 }

t.test('internal: TriggerMode Off, Freerun, Timed, AcquireTime = livetime, AcquirePeriod = livetime + deadtime', async t => {
  t.same(vimbaSettings({ trigger: 'internal', numberOfEvents: 20, livetime: 0.01 }, camera), {
    imageMode: 'Multiple', numImages: 20, triggerMode: 'Off', triggerSource: 'Freerun', exposureMode: 'Timed', acquireTime: 0.01, acquirePeriod: 0.01 + 63e-6
  })
  const s = vimbaSettings({ trigger: 'internal', numberOfEvents: 4, exposuresPerEvent: 3, livetime: 0.5, deadtime: 0.1 }, camera)
  t.equal(s.numImages, 12, 'frames = numberOfEvents x exposuresPerEvent')
  t.equal(s.acquirePeriod, 0.6, 'the trigger\'s own deadtime wins when it is longer than the camera\'s')
})

t.test('edge_trigger: TriggerMode On, Line<n>, Timed, AcquireTime = livetime, AcquirePeriod untouched', async t => {
  t.same(vimbaSettings({ trigger: 'edge_trigger', numberOfEvents: 721, livetime: 0.002 }, camera), {
    imageMode: 'Multiple', numImages: 721, triggerMode: 'On', triggerSource: 'Line1', exposureMode: 'Timed', acquireTime: 0.002, acquirePeriod: undefined
  })
  t.equal(vimbaSettings({ trigger: 'edge_trigger', numberOfEvents: 1, livetime: 0.002 }, { ...camera, triggerLine: 3 }).triggerSource, 'Line3')
})

t.test('constant_gate and variable_gate: TriggerMode On, Line<n>, TriggerWidth, no AcquireTime (the gate is the exposure)', async t => {
  for (const trigger of ['constant_gate', 'variable_gate'] as const) {
    t.same(vimbaSettings({ trigger, numberOfEvents: 5 }, { ...camera, triggerLine: 2 }), {
      imageMode: 'Multiple', numImages: 5, triggerMode: 'On', triggerSource: 'Line2', exposureMode: 'TriggerWidth', acquireTime: undefined, acquirePeriod: undefined
    }, trigger)
    t.equal(vimbaSettings({ trigger, numberOfEvents: 5, livetime: 99 }, camera).acquireTime, undefined, `${trigger}: a livetime is not written`)
  }
})

t.test('numberOfEvents 0: ImageMode Continuous (NumImages 1, ignored by the driver)', async t => {
  t.match(vimbaSettings({ trigger: 'edge_trigger', numberOfEvents: 0, livetime: 0.01 }, camera), { imageMode: 'Continuous', numImages: 1 })
  t.match(vimbaSettings({ trigger: 'internal', numberOfEvents: 0, livetime: 0.01 }, camera), { imageMode: 'Continuous', triggerMode: 'Off' })
})

t.test('the deadtime table of DESIGN.md §7, model suffixes, and the deadtime option', async t => {
  t.same(MANTA_DEADTIME_S, { 'Manta G-125': 63e-6, 'Manta G-235': 390e-6, 'Manta G-2460': 1961e-6 })
  t.equal(vimbaDeadtime('Manta G-125', undefined, 'm'), 63e-6)
  t.equal(vimbaDeadtime('Manta G-235', undefined, 'm'), 390e-6)
  t.equal(vimbaDeadtime('Manta G-2460', undefined, 'm'), 1961e-6)
  t.equal(deadtimeOfModel('Manta G-125B'), 63e-6, 'the mono variant of a model')
  t.equal(deadtimeOfModel(' Manta G-2460C '), 1961e-6)
  t.equal(deadtimeOfModel('Manta G-1250'), undefined, 'a longer model number is another model')
  t.equal(deadtimeOfModel('Mako G-125'), undefined)
  t.equal(vimbaDeadtime('Manta G-125', 0.002, 'm'), 0.002, 'the option wins over the table')
  t.equal(vimbaDeadtime('Prosilica GT', 0.001, 'm'), 0.001, 'an unknown model with the option')
  t.throws(() => vimbaDeadtime('Prosilica GT1920', undefined, 'manta1'), {
    code: ErrorCode.BAD_INPUT,
    message: 'manta1: no deadtime known for camera model "Prosilica GT1920" (known: Manta G-125, Manta G-235, Manta G-2460); ' +
      'set the device\'s `deadtime` option (seconds of readout between frames) or its `model` option in the config'
  })
  t.throws(() => vimbaDeadtime('Manta G-125', -1, 'manta1'), { code: ErrorCode.BAD_INPUT, message: 'manta1: deadtime -1 s must be a number >= 0' })
})

t.test('exposure limits: the IOC\'s control limits when they are a range, else the config\'s', async t => {
  t.same(exposureLimits({ low: 1e-5, high: 10 }), { min: 1e-5, max: 10 })
  const config = { min: defaults.detector.minExposureS, max: defaults.detector.maxExposureS }
  t.same(exposureLimits({ low: 0, high: 0 }), config, 'a record without DRVL/DRVH (0..0)')
  t.same(exposureLimits({ low: null, high: null }), config)
  t.same(exposureLimits(undefined), config)
})

t.test('validation: each refusal is BAD_INPUT naming the camera and the numbers', async t => {
  t.throws(() => vimbaSettings({ trigger: 'edge_trigger', numberOfEvents: 10 }, camera),
    { code: ErrorCode.BAD_INPUT, message: 'manta1: trigger edge_trigger needs a livetime (the exposure time, seconds); none was given' })
  t.throws(() => vimbaSettings({ trigger: 'internal', numberOfEvents: 10 }, camera), { message: /trigger internal needs a livetime/ })
  t.throws(() => vimbaSettings({ trigger: 'edge_trigger', numberOfEvents: 10, livetime: 1e-6 }, camera),
    { code: ErrorCode.BAD_INPUT, message: 'manta1: livetime 0.000001 s is outside the camera\'s exposure range 0.00001 s .. 60 s', details: { livetime: 1e-6 } })
  t.throws(() => vimbaSettings({ trigger: 'internal', numberOfEvents: 10, livetime: 61 }, camera), { message: /livetime 61 s is outside/ })
  t.throws(() => vimbaSettings({ trigger: 'edge_trigger', numberOfEvents: 100, exposuresPerEvent: 2, livetime: 0.01 }, { ...camera, maxImages: 150 }),
    { code: ErrorCode.BAD_INPUT, message: 'manta1: 200 frames (numberOfEvents 100 x exposuresPerEvent 2) is above the camera\'s NumImages limit of 150' })
  t.throws(() => vimbaSettings({ trigger: 'edge_trigger', numberOfEvents: 10, livetime: 0.01, deadtime: 1e-5 }, camera),
    { code: ErrorCode.BAD_INPUT, message: 'manta1: the trigger allows a deadtime of 0.00001 s between frames, but the camera needs at least 0.000063 s to read out' })
  t.throws(() => vimbaSettings({ trigger: 'edge_trigger', numberOfEvents: 10, livetime: 0.01 }, { ...camera, triggerLine: 5 }),
    { code: ErrorCode.BAD_INPUT, message: 'manta1: trigger line 5 is not one of 1, 2, 3, 4' })
  t.doesNotThrow(() => vimbaSettings({ trigger: 'edge_trigger', numberOfEvents: 150, livetime: 10e-6 }, { ...camera, maxImages: 150 }), 'the limits themselves are allowed')
})
