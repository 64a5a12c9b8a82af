import t from 'tap'
import { Registry } from '../../src/registry/index.js'
import { SimMotor, SimDetector } from '../../src/devices/index.js'

t.test('find by name and label; duplicates rejected', async t => {
  const reg = new Registry()
  const m = reg.register(new SimMotor({ name: 'm1' }), ['motors', 'baseline'])
  const d = reg.register(new SimDetector({ name: 'det' }), ['detectors'])
  reg.register(new SimMotor({ name: 'm2' }), ['motors'])
  t.equal(reg.find('m1'), m)
  t.equal(reg.find('det'), d)
  t.same(reg.findAll({ label: 'motors' }).map((x) => x.name), ['m1', 'm2'])
  t.same(reg.findAll({ label: 'nothing' }), [])
  t.equal(reg.findAll().length, 3)
  t.same(reg.labelsOf('m1'), ['motors', 'baseline'])
  t.throws(() => reg.register(new SimMotor({ name: 'm1' })), /a device named 'm1' is already registered \(SimMotor\)/)
  t.throws(() => reg.find('m9'), /no device named 'm9'; known: m1, det, m2/)
  t.throws(() => reg.register(new SimMotor()), /must have a name/)
})
