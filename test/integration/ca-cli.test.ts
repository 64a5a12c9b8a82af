/**
 * `tst-fly sim-ioc`, `caget`, `caput`, `camonitor` as a person at a terminal uses them: the simulated IOC in one
 * process, the tools in others, talking Channel Access over 127.0.0.1.
 */
import t from 'tap'
import { spawn, type ChildProcessByStdio, type ChildProcessWithoutNullStreams } from 'node:child_process'
import type { Readable } from 'node:stream'
import { once } from 'node:events'
import { CLI, runCli } from '../support/cli.js'
import { caEnv } from '../support/pyepics.js'
import { privateCaRepeater } from '../support/ca-repeater.js'

await privateCaRepeater(t)

const MTR = 'XF:31ID1-OP:1{CMT:1-Ax:Rot}Mtr'
const S = 'XF:31ID1-ES{Sim}'

interface Listening { host: string, tcpPort: number, udpPort: number, env: string, pvs: Array<{ name: string, type: string, count: number, access: string }> }

/** The JSON line `sim-ioc --json` prints once it listens (it can span several reads: it lists every PV). */
async function listening (ioc: ChildProcessWithoutNullStreams | ChildProcessByStdio<null, Readable, Readable>, stderr: () => string): Promise<Listening> {
  const line = await new Promise<string>((resolve, reject) => {
    let out = ''
    ioc.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d
      const nl = out.indexOf('\n')
      if (nl >= 0) resolve(out.slice(0, nl))
    })
    ioc.on('exit', (code) => { reject(new Error(`sim-ioc exited (${String(code)}) before listening: ${stderr()}`)) })
  })
  return JSON.parse(line) as Listening
}

t.test('sim-ioc serves config/sim.yaml; caget, caput and camonitor work against it', async t => {
  const ioc = spawn(process.execPath, [CLI, 'sim-ioc', '--port', '0', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  ioc.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  t.teardown(() => { if (ioc.exitCode === null) ioc.kill('SIGKILL') })
  const info = await listening(ioc, () => stderr)
  t.equal(info.host, '127.0.0.1')
  t.ok(info.udpPort > 0 && info.tcpPort > 0)
  t.equal(info.env, `EPICS_CA_ADDR_LIST=127.0.0.1:${info.udpPort} EPICS_CA_AUTO_ADDR_LIST=NO`)
  t.ok(info.pvs.length > 500, `lists every PV (${info.pvs.length})`)
  t.match(info.pvs.find((p) => p.name === `${MTR}.RBV`), { type: 'DBR_DOUBLE', count: 1, access: 'read-only' })
  t.match(info.pvs.find((p) => p.name === 'XF:31ID1-ES{GigE-Cam:1}image1:ArrayData'), { type: 'DBR_CHAR', access: 'read-only' })
  const env = caEnv(info.udpPort)

  const get = await runCli(['caget', `${S}Temp-I`, `${S}Filter-Sel`, `${S}Status-I`], 30_000, env)
  t.equal(get.code, 0, get.stderr)
  t.match(get.stdout, `${S}Temp-I 22.5\n${S}Filter-Sel Out\n${S}Status-I Ready\n`)

  const put = await runCli(['caput', MTR, '3.5', '--wait'], 30_000, env)
  t.equal(put.code, 0, put.stderr)
  t.equal(put.stdout, `Old : ${MTR} 0\nNew : ${MTR} 3.5\n`, 'caput --wait returns once the move is done')
  const rbv = await runCli(['caget', `${MTR}.RBV`, '--json'], 30_000, env)
  t.equal(JSON.parse(rbv.stdout)[`${MTR}.RBV`].value, 3.5)

  const enumPut = await runCli(['caput', `${S}Filter-Sel`, 'Cu 0.1 mm'], 30_000, env)
  t.match(enumPut.stdout, `New : ${S}Filter-Sel Cu 0.1 mm`)
  const badEnum = await runCli(['caput', `${S}Filter-Sel`, 'Gold'], 30_000, env)
  t.equal(badEnum.code, 2)
  t.match(badEnum.stderr, /cannot write Gold to XF:31ID1-ES\{Sim\}Filter-Sel.*choices: Out, Al 0\.1 mm, Al 0\.5 mm, Cu 0\.1 mm/)

  const ctrl = await runCli(['caget', `${S}Temp-I`, '--ctrl'], 30_000, env)
  t.match(ctrl.stdout, /units: C/)
  t.match(ctrl.stdout, /upperAlarmLimit: 40/)

  // camonitor prints the current value, then each change: start it, then move the motor.
  const monitor = runCli(['camonitor', `${MTR}.RBV`, '--count', '3'], 30_000, env)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const move = await runCli(['caput', MTR, '-1', '--wait'], 30_000, env)
  t.equal(move.code, 0, move.stderr)
  const mon = await monitor
  t.equal(mon.code, 0, mon.stderr)
  const lines = mon.stdout.trim().split('\n')
  t.equal(lines.length, 3)
  t.match(lines[0], new RegExp(`^${MTR.replace(/[{}]/g, '\\$&')}\\.RBV \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3} 3\\.5$`))
  t.ok(lines.slice(1).every((l) => Number(l.split(' ').at(-1)) < 3.5), 'the updates follow the move')

  const missing = await runCli(['caget', 'NO:SUCH:PV', '--timeout', '1'], 30_000, env)
  t.equal(missing.code, 1)
  t.match(missing.stderr, /NO:SUCH:PV/)
  t.match(missing.stderr, /did not connect/)

  const usage = await runCli(['caput', MTR], 30_000, env)
  t.equal(usage.code, 2)
  t.match(usage.stderr, /caput needs a PV name and a value/)

  ioc.kill('SIGINT')
  const [code] = await once(ioc, 'exit')
  t.equal(code, 0, 'sim-ioc closes cleanly on Ctrl-C')
})

t.test('sim-ioc: a port already in use is a clear error', async t => {
  const first = spawn(process.execPath, [CLI, 'sim-ioc', '--port', '0', '--json', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (first.exitCode === null) first.kill('SIGKILL') })
  const { tcpPort } = await listening(first, () => '')
  const second = await runCli(['sim-ioc', '--port', String(tcpPort)], 30_000)
  t.equal(second.code, 1)
  t.match(second.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${tcpPort}.*--port 0`))
  first.kill('SIGTERM')
  const [code] = await once(first, 'exit')
  t.equal(code, 0)
})
