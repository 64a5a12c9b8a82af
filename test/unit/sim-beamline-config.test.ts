/**
 * The config's `sim` section (src/config/load.ts): the wiring of the simulated beamline, validated with every
 * problem named by file and path, and its camera and motor prefixes checked against the `ioc` section.
 */
import t from 'tap'
import { join } from 'node:path'
import { loadConfigFile, parseConfig } from '../../src/config/index.js'
import { ErrorCode, isFlyScanError } from '../../src/errors.js'
import { REPO_ROOT } from '../support/h5py.js'

const CAM1 = 'XF:31ID1-ES{GigE-Cam:1}'
const CAM2 = 'XF:31ID1-ES{GigE-Cam:2}'
const MTR = 'XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr'
const ioc = { motors: [{ prefix: MTR }], cameras: [{ prefix: CAM1 }, { prefix: CAM2 }] }

/** The BAD_INPUT message parseConfig throws for `doc`. */
function problems (doc: unknown, file = 'sim.yaml'): string {
  try {
    parseConfig(doc, file)
  } catch (err) {
    if (!isFlyScanError(err, ErrorCode.BAD_INPUT)) throw err
    return err.message
  }
  throw new Error(`${file} was accepted`)
}

t.test('config/sim.yaml wires TTLOUT1 to both cameras on Line1 and the encoder to the rotation stage', async t => {
  const config = await loadConfigFile(join(REPO_ROOT, 'config', 'sim.yaml'))
  t.same(config.sim, {
    embedded: true,
    encoderMotor: MTR,
    triggers: [{ ttlout: 1, camera: CAM1, line: 1 }, { ttlout: 1, camera: CAM2, line: 1 }],
    panda: { adc: { edgeDeg: -2, widthDeg: 0.05 } }
  })
  t.equal((await loadConfigFile(join(REPO_ROOT, 'config', 'tst.yaml'))).sim, undefined, 'the real beamline has no sim section')
})

t.test('defaults: not embedded, no encoder motor, no triggers, no PandA options', async t => {
  t.same(parseConfig({ ioc, sim: {} }, 'a.yaml').sim, { embedded: false, encoderMotor: undefined, triggers: [], panda: {} })
  t.same(parseConfig({ ioc, sim: { panda: null } }, 'a.yaml').sim?.panda, {})
  t.equal(parseConfig({ ioc }, 'a.yaml').sim, undefined)
  const full = parseConfig({
    ioc,
    sim: { embedded: false, triggers: [{ ttlout: 10, camera: CAM2, line: 4 }], panda: { encoder: 2, countsPerRev: 4000, adc: { muJump: 2, noise: 0 } } }
  }, 'a.yaml')
  t.same(full.sim, {
    embedded: false, encoderMotor: undefined, triggers: [{ ttlout: 10, camera: CAM2, line: 4 }], panda: { encoder: 2, countsPerRev: 4000, adc: { muJump: 2, noise: 0 } }
  })
})

t.test('a camera or motor the ioc section lacks is named by path, with what the ioc has', async t => {
  const msg = problems({
    ioc,
    sim: { encoderMotor: 'XF:31ID1-OP:1{CMT:9}Mtr', triggers: [{ ttlout: 1, camera: CAM1, line: 1 }, { ttlout: 1, camera: 'XF:31ID1-ES{GigE-Cam:3}', line: 1 }] }
  }, 'config/sim.yaml')
  t.match(msg, /^config\/sim\.yaml: 2 problems: /)
  t.match(msg, `sim.triggers[1].camera: no camera with prefix "XF:31ID1-ES{GigE-Cam:3}" in ioc.cameras (it has "${CAM1}", "${CAM2}")`)
  t.match(msg, `sim.encoderMotor: no motor with prefix "XF:31ID1-OP:1{CMT:9}Mtr" in ioc.motors (it has "${MTR}")`)
  t.match(problems({ sim: { triggers: [{ ttlout: 1, camera: CAM1, line: 1 }] } }), `sim.triggers[0].camera: no camera with prefix "${CAM1}" in ioc.cameras (it has none)`)
})

t.test('every malformed value is reported at once, by path', async t => {
  const msg = problems({
    ioc,
    sim: {
      embedded: 'yes',
      colour: 'red',
      encoderMotor: 5,
      triggers: [
        { ttlout: 0, camera: CAM1, line: 1 },
        { ttlout: 1.5, camera: 7, line: 5, edge: 'rising' },
        'TTLOUT1',
        { ttlout: 2, camera: CAM1, line: 2 },
        { ttlout: 2, camera: CAM1, line: 2 }
      ],
      panda: { encoder: 5, countsPerRev: -1, adc: { edgeDeg: 'low', widthDeg: 0, noise: 1, colour: 1 }, rate: 10 }
    }
  }, 'bad.yaml')
  const expected = [
    'sim.colour: unknown key; allowed: embedded, encoderMotor, triggers, panda',
    'sim.embedded: must be true or false (got "yes")',
    'sim.encoderMotor: must be a motor prefix string (got 5)',
    'sim.triggers[0].ttlout: must be a PandA TTLOUT number 1..10 (got 0)',
    'sim.triggers[1].edge: unknown key; allowed: ttlout, camera, line',
    'sim.triggers[1].ttlout: must be a PandA TTLOUT number 1..10 (got 1.5)',
    'sim.triggers[1].camera: must be a camera prefix string (got 7)',
    'sim.triggers[1].line: must be a camera trigger line 1..4 (TriggerSource Line1..Line4; got 5)',
    'sim.triggers[2]: must be a mapping { ttlout, camera, line } (got "TTLOUT1")',
    `sim.triggers[4]: wires TTLOUT2 to ${CAM1} Line2 again (as sim.triggers[3] does)`,
    'sim.panda.rate: unknown key; allowed: encoder, countsPerRev, adc',
    'sim.panda.encoder: must be an INENC number 1..4 (got 5)',
    'sim.panda.countsPerRev: must be a positive integer (got -1)',
    'sim.panda.adc.edgeDeg: must be a finite number (got "low")',
    'sim.panda.adc.widthDeg: must be > 0 (got 0)',
    'sim.panda.adc.noise: must be in [0, 1) (got 1)',
    'sim.panda.adc.colour: unknown key; allowed: edgeDeg, widthDeg, i0Volts, muBelow, muJump, noise'
  ]
  t.match(msg, new RegExp(`^bad\\.yaml: ${expected.length} problems: `))
  for (const e of expected) t.match(msg, e)
})

t.test('the section and its lists must have the right shapes', async t => {
  t.match(problems({ sim: [1] }), 'sim: must be a mapping with embedded, encoderMotor, triggers, panda (got [1])')
  t.match(problems({ ioc, sim: { triggers: { ttlout: 1 } } }), 'sim.triggers: must be a list of { ttlout, camera, line } (got {"ttlout":1})')
  t.match(problems({ ioc, sim: { panda: 3 } }), 'sim.panda: must be a mapping with encoder, countsPerRev, adc (got 3)')
  t.match(problems({ ioc, sim: { panda: { adc: [] } } }), 'sim.panda.adc: must be a mapping with edgeDeg')
  t.match(problems({ sim: {}, simulator: {} }), /simulator: unknown key; allowed: metadata, data, ca, ioc, devices, sim/)
})
