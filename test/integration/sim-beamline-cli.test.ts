/**
 * `tst-fly sim-beamline` in a child process, as a person at a terminal runs it: it prints where both simulators
 * listen (one JSON object with --json), `tst-fly caget` and a PandA control client reach them there, and SIGINT or
 * SIGTERM closes it with exit code 0. Bad options and a bad sim section exit 2 naming what was wrong.
 */
import t from 'tap'
import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { PandaControlClient } from '../../src/panda/index.js'
import type { SimBeamlineListing } from '../../src/cli/sim-beamline.js'
import { CLI, runCli } from '../support/cli.js'
import { caEnv } from '../support/pyepics.js'
import { privateCaRepeater } from '../support/ca-repeater.js'
import { REPO_ROOT } from '../support/h5py.js'

await privateCaRepeater(t)

type Child = ChildProcessByStdio<null, Readable, Readable>

interface Started {
  readonly child: Child
  /** Everything on stdout so far. */
  readonly stdout: () => string
  readonly stderr: () => string
}

/** Start `tst-fly sim-beamline <args>` and wait until its stdout holds `ready` (at most 30 s). */
async function start (t: { teardown (fn: () => unknown): void }, args: string[], ready: RegExp): Promise<Started> {
  const child = spawn(process.execPath, [CLI, 'sim-beamline', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sim-beamline printed no ${String(ready)} within 30 s: ${stdout} ${stderr}`)), 30_000)
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
      if (ready.test(stdout)) { clearTimeout(timer); resolve() }
    })
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`sim-beamline exited (${String(code)}) before it listened: ${stderr}`)) })
  })
  return { child, stdout: () => stdout, stderr: () => stderr }
}

/** Send `signal` and wait for the exit (at most 10 s). */
async function stop (s: Started, signal: NodeJS.Signals): Promise<number | null> {
  const exited = once(s.child, 'exit')
  s.child.kill(signal)
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 10_000)
  const [code] = await exited as [number | null]
  clearTimeout(timer)
  return code
}

t.test('--json on free ports: one object; CA and the PandA answer there; SIGINT closes it, exit 0', async t => {
  const s = await start(t, ['--ca-port', '0', '--panda-control-port', '0', '--panda-data-port', '0', '--json'], /\n/)
  const l = JSON.parse(s.stdout().trim()) as SimBeamlineListing
  t.equal(l.host, '127.0.0.1')
  t.ok(l.caUdpPort > 0 && l.caTcpPort > 0 && l.pandaControlPort > 0 && l.pandaDataPort > 0, 'free ports')
  t.equal(l.caAddrList, `127.0.0.1:${l.caUdpPort}`)
  t.equal(l.env, `EPICS_CA_ADDR_LIST=127.0.0.1:${l.caUdpPort} EPICS_CA_AUTO_ADDR_LIST=NO`)
  t.equal(l.config, join(REPO_ROOT, 'config', 'sim.yaml'))
  t.ok(l.pvs > 500, `${l.pvs} PVs`)
  t.equal(l.encoderMotor, 'XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr')
  t.same(l.triggers.map((w) => [w.ttlout, w.camera, w.line]), [[1, 'XF:31ID1-ES{GigE-Cam:1}', 1], [1, 'XF:31ID1-ES{GigE-Cam:2}', 1]])
  t.same(l.pointConfig, { ca: { addrList: l.caAddrList, autoAddrList: false }, HDFPanda: { host: '127.0.0.1', controlPort: l.pandaControlPort, dataPort: l.pandaDataPort } })
  t.equal(l.configPointsHere, false, 'config/sim.yaml points at 5064, 8888 and 8889')

  const get = await runCli(['caget', 'XF:31ID1-ES{GigE-Cam:1}cam1:Model_RBV', 'XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr.VELO'], 30_000, caEnv(l.caUdpPort))
  t.equal(get.code, 0, get.stderr)
  t.equal(get.stdout, 'XF:31ID1-ES{GigE-Cam:1}cam1:Model_RBV Manta G-125\nXF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr.VELO 90\n')
  const client = await PandaControlClient.connect('127.0.0.1', l.pandaControlPort, 5000)
  t.match(await client.get('*IDN'), /simulated PandA/)
  t.equal(await client.get('TTLOUT1.VAL'), 'ZERO')
  await client.close()

  const code = await stop(s, 'SIGINT')
  t.equal(code, 0, `exit code 0 on SIGINT (stderr: ${s.stderr()})`)
  t.equal(s.stdout().trim().split('\n').length, 1, 'with --json, stdout is the one object')
})

t.test('text: the ports, the client environment, the wiring, how to point a config; SIGTERM closes it', async t => {
  const s = await start(t, ['--ca-port', '0', '--panda-control-port', '0', '--panda-data-port', '0'], /serving until Ctrl-C\n/)
  const out = s.stdout()
  const ca = /search \(UDP\) 127\.0\.0\.1:(\d+), circuits \(TCP\) 127\.0\.0\.1:(\d+)/.exec(out)
  const panda = /PandA: control port 127\.0\.0\.1:(\d+), data port 127\.0\.0\.1:(\d+)/.exec(out)
  t.ok(ca !== null && panda !== null, out)
  t.match(out, /^tst-fly sim-beamline: the simulated IOC \(\d+ PVs\) and the simulated PandA of .*config\/sim\.yaml, on 127\.0\.0\.1, one clock\n/)
  t.match(out, `clients: export EPICS_CA_ADDR_LIST=127.0.0.1:${ca?.[1] ?? ''} EPICS_CA_AUTO_ADDR_LIST=NO\n`)
  t.match(out, '  INENC1 follows XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr\n')
  t.match(out, '  TTLOUT1 triggers XF:31ID1-ES{GigE-Cam:1} on Line1\n  TTLOUT1 triggers XF:31ID1-ES{GigE-Cam:2} on Line1\n')
  t.match(out, `    ca: { addrList: "127.0.0.1:${ca?.[1] ?? ''}", autoAddrList: false }\n`)
  t.match(out, `    every HDFPanda entry: { host: 127.0.0.1, controlPort: ${panda?.[1] ?? ''}, dataPort: ${panda?.[2] ?? ''} }\n`)
  const code = await stop(s, 'SIGTERM')
  t.equal(code, 0, `exit code 0 on SIGTERM (stderr: ${s.stderr()})`)
  t.match(s.stdout(), /sim-beamline: stopped, closed\n$/)
})

t.test('a config that already points at the ports it serves says so', async t => {
  const dir = t.testdir({})
  const file = join(dir, 'here.yaml')
  // Fixed ports: find three free ones first (a race with other processes is possible but unlikely).
  const probe = await start(t, ['--ca-port', '0', '--panda-control-port', '0', '--panda-data-port', '0', '--json'], /\n/)
  const l = JSON.parse(probe.stdout().trim()) as SimBeamlineListing
  t.equal(await stop(probe, 'SIGINT'), 0)
  const ports = [l.caUdpPort, l.pandaControlPort, l.pandaDataPort] as const
  const text = readFileSync(join(REPO_ROOT, 'config', 'sim.yaml'), 'utf8')
    .replace('addrList: "127.0.0.1:5064"', `addrList: "127.0.0.1:${ports[0]}"`)
    .replace('controlPort: 8888', `controlPort: ${ports[1]}`)
    .replace('dataPort: 8889', `dataPort: ${ports[2]}`)
  writeFileSync(file, text)
  const s = await start(t, ['--config', file, '--ca-port', String(ports[0]), '--panda-control-port', String(ports[1]), '--panda-data-port', String(ports[2])], /serving until Ctrl-C\n/)
  t.match(s.stdout(), `  ${file} already points at it (tst-fly run --config ${file})\n`)
  t.equal(await stop(s, 'SIGINT'), 0)
})

t.test('bad ports, arguments and sim sections exit 2 naming the problem', async t => {
  const port = await runCli(['sim-beamline', '--ca-port', '70000'], 30_000)
  t.equal(port.code, 2)
  t.match(port.stderr, "tst-fly: sim-beamline: --ca-port must be a port number 0..65535 (0: a free one), got '70000'")
  const positional = await runCli(['sim-beamline', 'now'], 30_000)
  t.equal(positional.code, 2)
  t.match(positional.stderr, "sim-beamline takes no positional arguments, got 'now'")
  const dir = t.testdir({})
  const file = join(dir, 'bad.yaml')
  writeFileSync(file, 'ioc:\n  cameras: [{ prefix: "A:" }]\nsim:\n  triggers: [{ ttlout: 1, camera: "B:", line: 1 }]\n')
  const bad = await runCli(['sim-beamline', '--config', file, '--ca-port', '0', '--panda-control-port', '0', '--panda-data-port', '0'], 30_000)
  t.equal(bad.code, 2)
  t.match(bad.stderr, `${file}: 1 problem: sim.triggers[0].camera: no camera with prefix "B:" in ioc.cameras (it has "A:")`)
})
