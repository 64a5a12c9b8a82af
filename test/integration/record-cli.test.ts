/**
 * `tst-fly record` and `tst-fly sim-panda` as commands: a recording of the simulated PandA has the layout and header
 * shape of the shared recordings and parses with our parser; recording it again from the replay server gives the
 * same bytes; `tst-fly replay` takes it; `sim-panda` prints its ports, answers, and closes on SIGTERM.
 */
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PandaControlClient } from '../../src/panda/index.js'
import { PandaDataParser, type DataRecord } from '../../src/parsers/index.js'
import { PandaReplayServer, SimPanda } from '../../src/sim/index.js'
import { CLI, runCli } from '../support/cli.js'
import { pandaFixturesDir } from '../support/h5py.js'
import { waitFor } from './sim-panda-support.js'

const dir = mkdtempSync(join(tmpdir(), 'tst-fly-record-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

async function simulated (t: Test): Promise<{ panda: SimPanda, client: PandaControlClient }> {
  const panda = await SimPanda.start({ motor: { positionAt: (ms) => (ms % 1e6) * 0.09 } })
  t.teardown(async () => { await panda.close() })
  const client = await PandaControlClient.connect('127.0.0.1', panda.controlPort, 2000)
  t.teardown(async () => { await client.close() })
  for (const [target, value] of [
    ['CLOCK1.PERIOD', 0.001], ['CLOCK1.WIDTH', 0.0005], ['CLOCK1.ENABLE', 'PCAP.ACTIVE'], ['COUNTER1.TRIG', 'CLOCK1.OUT'],
    ['COUNTER1.ENABLE', 'PCAP.ACTIVE'], ['PCAP.TRIG', 'CLOCK1.OUT'], ['PCAP.GATE', 'CLOCK1.OUT'], ['PCAP.TRIG_EDGE', 'Falling'],
    ['PCAP.ENABLE', 'ONE'], ['COUNTER1.OUT.CAPTURE', 'Min Max Mean'], ['INENC1.VAL.CAPTURE', 'Value'],
    ['PCAP.TS_TRIG.CAPTURE', 'Value'], ['PCAP.BITS2.CAPTURE', 'Value']
  ] as const) await client.put(target, value)
  return { panda, client }
}

/** Waits for the recorder's options line, then runs `captures` captures of about `ms` each. */
async function capture (panda: SimPanda, client: PandaControlClient, captures: number, ms: number): Promise<void> {
  await waitFor(() => panda.dataConnections.some((c) => c.optionsLine !== undefined), 10_000, () => 'the recorder to connect')
  for (let i = 0; i < captures; i++) {
    await client.arm()
    await new Promise((resolve) => setTimeout(resolve, ms))
    await client.disarm()
    await waitFor(() => (panda.dataConnections[0]?.captures.length ?? 0) > i, 5000, () => `capture ${i + 1} to be sent`)
  }
}

function parse (bytes: Uint8Array): DataRecord[] {
  return new PandaDataParser({ xml: true }).push(bytes)
}

/** The header's lines with attribute values blanked: `<field name="" type="" capture="" />`. */
function shape (bytes: Uint8Array): string[] {
  const text = Buffer.from(bytes).toString('latin1')
  const header = text.slice(text.indexOf('<header>'), text.indexOf('</header>') + '</header>'.length)
  return header.split('\n').map((l) => l.replace(/="[^"]*"/g, '=""'))
}

t.test('record a simulated capture, check its layout, record it again from the replay server, replay it', async t => {
  const { panda, client } = await simulated(t)
  const a = join(dir, 'sim.bin')
  const recording = runCli(['record', '--host', '127.0.0.1', '--data-port', String(panda.dataPort), '--out', a, '--options', 'XML FRAMED RAW'])
  await capture(panda, client, 1, 60)
  const r = await recording
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /^recorded \d+ bytes .* 1 acquisition\(s\) \(END \d+ Disarmed\); stopped: acquisitions\n$/)
  const bytes = readFileSync(a)
  t.equal(bytes.subarray(0, 3).toString(), 'OK\n', 'the file starts with the box\'s OK, like the shared recordings')
  t.match(bytes.subarray(bytes.length - 30).toString('latin1'), /END \d+ Disarmed\n$/, 'and ends with the END line')
  const records = parse(bytes)
  const start = records.find((x) => x.kind === 'start')
  const end = records.find((x) => x.kind === 'end')
  if (start?.kind !== 'start' || end?.kind !== 'end') throw new Error('no start or end')
  t.ok(end.end.samples > 40, `${end.end.samples} rows`)
  t.equal(end.end.rowsReceived, end.end.samples, 'every row the END line counts is in the file')
  t.same(start.start.fields.map((f) => `${f.name}.${f.capture}:${f.type}`), [
    'PCAP.GATE_DURATION.Value:int32', 'PCAP.BITS2.Value:uint32', 'INENC1.VAL.Value:int32', 'COUNTER1.OUT.Min:int32',
    'COUNTER1.OUT.Max:int32', 'PCAP.TS_TRIG.Value:int64', 'COUNTER1.OUT.Mean:int64'
  ])

  // The same header shape as a real box's: elements and attributes in the same order, plus arm_time and start_time.
  const ours = shape(bytes)
  const theirs = shape(readFileSync(join(pandaFixturesDir(), 'fast_dump.bin')))
  t.same(ours[1], '<data arm_time="" start_time="" missed="" process="" format="" sample_bytes="" />')
  t.same(theirs[1], '<data missed="" process="" format="" sample_bytes="" />')
  const kinds = (lines: string[]): string[] => [...new Set(lines.filter((_, i) => i !== 1))].sort()
  t.same(kinds(ours), kinds(theirs), 'the same kinds of element and attribute lines')
  t.same([ours[0], ours[2], ...ours.slice(-2)], ['<header>', '<fields>', '</fields>', '</header>'], 'in the same places')

  // Round trip: the replay server sends the file's bytes; recording them gives the file back.
  const server = await PandaReplayServer.start({ source: bytes })
  t.teardown(async () => { await server.close() })
  const b = join(dir, 'again.bin')
  const again = await runCli(['record', '--host', server.host, '--data-port', String(server.port), '--out', b, '--options', 'XML FRAMED RAW'])
  t.equal(again.code, 0, again.stderr)
  t.ok(Buffer.compare(readFileSync(b), bytes) === 0, 'byte for byte the same')
  t.equal(server.connections[0]?.optionsLine, 'XML FRAMED RAW', 'the recorder sent its options line')

  const replayed = await runCli(['replay', a, '--out', join(dir, 'replay'), '--json', '--options', 'XML FRAMED RAW'])
  t.equal(replayed.code, 0, replayed.stderr)
  const json = JSON.parse(replayed.stdout) as { acquisitions: Array<{ rows: number, endReason: string, fields: string[] }> }
  t.equal(json.acquisitions[0]?.rows, end.end.samples)
  t.equal(json.acquisitions[0]?.endReason, 'Disarmed')
})

t.test('record --acquisitions 2 keeps both captures; --seconds stops on time', async t => {
  const { panda, client } = await simulated(t)
  const file = join(dir, 'two.bin')
  const recording = runCli(['record', '--host', '127.0.0.1', '--data-port', String(panda.dataPort), '--out', file, '--acquisitions', '2'])
  await capture(panda, client, 2, 20)
  const r = await recording
  t.equal(r.code, 0, r.stderr)
  const records = parse(readFileSync(file))
  t.same(records.filter((x) => x.kind === 'end').map((x) => x.kind === 'end' ? x.end.reason : ''), ['Disarmed', 'Disarmed'])
  t.equal(records.filter((x) => x.kind === 'start').length, 2)
  t.equal(readFileSync(file).indexOf('OK\n', 1), -1, 'OK once, at the start (XML FRAMED SCALED by default)')
  t.match(readFileSync(file).toString('latin1'), /process="Scaled" format="Framed"/)

  const idle = join(dir, 'idle.bin')
  const timed = await runCli(['record', '--host', '127.0.0.1', '--data-port', String(panda.dataPort), '--out', idle, '--seconds', '0.3'])
  t.equal(timed.code, 0, timed.stderr)
  t.match(timed.stdout, /0 acquisition\(s\) \(no END line\); stopped: seconds/)
  t.equal(readFileSync(idle).toString(), 'OK\n', 'nothing was armed: just the OK')
})

t.test('record refuses bad arguments and reports a refused connection', async t => {
  const bad = await runCli(['record', '--host', '127.0.0.1', '--out', join(dir, 'x.bin'), '--options', 'XML SOMETIMES'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /unknown data-port option 'SOMETIMES'/)
  const noOut = await runCli(['record', '--host', '127.0.0.1'])
  t.equal(noOut.code, 2)
  t.match(noOut.stderr, /--out <file.bin> is required/)
  const refused = await runCli(['record', '--host', '127.0.0.1', '--data-port', '1', '--out', join(dir, 'x.bin')])
  t.equal(refused.code, 1)
  t.match(refused.stderr, /PandA data port 127\.0\.0\.1:1/)
})

t.test('tst-fly sim-panda prints its ports, answers, and closes on SIGTERM', async t => {
  const child = spawn(process.execPath, [CLI, 'sim-panda', '--control-port', '0', '--data-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  await waitFor(() => /data port/.test(stdout), 10_000, () => `the ports (stdout: ${stdout})`)
  const m = /control port 127\.0\.0\.1:(\d+), data port 127\.0\.0\.1:(\d+)/.exec(stdout)
  t.ok(m !== null, stdout)
  const client = await PandaControlClient.connect('127.0.0.1', Number(m?.[1]), 2000)
  t.match((await client.idn()).text, /^PandA SW: /)
  await client.close()
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'exit 0')
  t.match(stdout, /sim-panda: SIGTERM, closed\n$/)
})
