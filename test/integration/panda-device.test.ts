/**
 * HDFPanda against a small scripted box on 127.0.0.1 (a stand-in for a PandA's two ports, not the simulated PandA):
 * the control port records every command and answers PCAP.ACTIVE as a box would around *PCAP.ARM= / *PCAP.DISARM=;
 * the data port answers the options line, sends the header on arm and the rows (then END) when the trigger source
 * is enabled. The tests assert the exact writes of both TST setups and their order, the batch being pipelined,
 * kickoff/complete/disarm waiting on PCAP.ACTIVE with their named bounds, the file and the stream documents, and
 * the failures: validation before any write, ERR replies, no ACTIVE after arm, a bad END, missing rows.
 */
import t, { type Test } from 'tap'
import net from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ErrorCode, isFlyScanError } from '../../src/errors.js'
import { HDFPanda, seqRow, type HDFPandaOptions, type PandaFlyInfo } from '../../src/panda/index.js'
import type { PathProvider } from '../../src/paths/index.js'
import type { StreamAsset } from '../../src/devices/index.js'
import type { DocumentName } from '../../src/documents/index.js'
import { RunEngine } from '../../src/engine/index.js'
import { flyAndCollect } from '../../src/plans/index.js'
import { syntheticStream, syntheticValue, type SyntheticField } from '../../src/sim/index.js'
import { readWithH5py, requireHdf5Tools } from '../support/h5py.js'
import { trackLeaks } from '../support/leaks.js'
import { validateDocument } from '../support/schemas.js'
import { TST_XAS_PREPARE_LINES } from '../fixtures/panda-trigger/tst-xas.js'

requireHdf5Tools()
const dir = mkdtempSync(join(tmpdir(), 'tst-fly-panda-device-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const ALL_BLOCKS = ['PCAP 1', 'PCOMP 2', 'CLOCK 2', 'SEQ 2', 'PULSE 4', 'INENC 4', 'TTLIN 6', 'TTLOUT 10', 'CALC 2', 'COUNTER 8', 'BITS 1', 'FMC_IN 1']

interface BoxScript {
  /** Rows sent when the trigger line arrives (after the header sent at arm). */
  readonly rows: number
  /** The write that starts the trigger source: the rows follow it. */
  readonly triggerLine?: string
  readonly endReason?: string
  /** false: PCAP.ACTIVE stays 0 after *PCAP.ARM= and no header is sent. */
  readonly armActivates?: boolean
  /** PCAP.ACTIVE becomes 1 (and the header goes out) only at this PCAP.ACTIVE? after the arm (default: at once). */
  readonly activeAfterPolls?: number
  /** Send the rows but close the data connection instead of sending END (PCAP stays active). */
  readonly dropDataConnection?: boolean
  /** Lines answered with ERR. */
  readonly errFor?: RegExp
  readonly blocks?: readonly string[]
}

/** A command as the box read it: the line, and for a table write its data lines. */
interface Received { readonly line: string, readonly data: readonly string[] }

class ScriptedBox {
  readonly received: Received[] = []
  readonly optionsLines: string[] = []
  active = 0
  readonly #control: net.Server
  readonly #data: net.Server
  readonly #sockets = new Set<net.Socket>()
  readonly #dataClients: net.Socket[] = []
  readonly #captures = new Map<string, string>()
  readonly #script: BoxScript
  #stream: Generator<Uint8Array> | undefined
  #held: Array<[net.Socket, string]> | undefined
  #pollsLeft = 0
  #holdFrom: string | undefined
  #releaseOn: string | undefined
  /** true: *PCAP.DISARM= is answered OK but PCAP.ACTIVE stays as it is. */
  ignoreDisarm = false

  private constructor (script: BoxScript) {
    this.#script = script
    this.#control = net.createServer((s) => { this.#track(s); this.#serveControl(s) })
    this.#data = net.createServer((s) => { this.#track(s); this.#serveData(s) })
  }

  static async start (t: Test, script: BoxScript): Promise<ScriptedBox> {
    const box = new ScriptedBox(script)
    await Promise.all([box.#control, box.#data].map(async (srv) => await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))))
    t.teardown(async () => {
      for (const s of box.#sockets) s.destroy()
      await Promise.all([box.#control, box.#data].map(async (srv) => await new Promise<void>((resolve) => srv.close(() => resolve()))))
    })
    return box
  }

  get controlPort (): number { return (this.#control.address() as net.AddressInfo).port }
  get dataPort (): number { return (this.#data.address() as net.AddressInfo).port }

  /**
   * Every command line after the first `skip`, the polls (PCAP.ACTIVE?, *PCAP.STATUS?) left out; table writes as
   * `T< w w w w | ...`.
   */
  lines (skip = 0): string[] {
    return this.received.slice(skip)
      .filter((r) => r.line !== 'PCAP.ACTIVE?' && r.line !== '*PCAP.STATUS?')
      .map((r) => r.data.length === 0 ? r.line : `${r.line} ${r.data.join(' | ')}`)
  }

  /** PCAP.ACTIVE? polls after the first `skip` commands. */
  polls (skip = 0, line = 'PCAP.ACTIVE?'): number {
    return this.received.slice(skip).filter((r) => r.line === line).length
  }

  #track (s: net.Socket): void {
    this.#sockets.add(s)
    s.on('close', () => this.#sockets.delete(s))
    s.on('error', () => {})
  }

  #serveControl (socket: net.Socket): void {
    let buf = ''
    let table: { line: string, data: string[] } | undefined
    socket.on('data', (chunk) => {
      buf += chunk.toString('latin1')
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        let cmd: Received | undefined
        if (table !== undefined) {
          if (line === '') { cmd = table; table = undefined } else table.data.push(line)
        } else if (/^[^?=]*</.test(line)) {
          table = { line, data: [] }
        } else {
          cmd = { line, data: [] }
        }
        if (cmd === undefined) continue
        this.received.push(cmd)
        if (cmd.line === this.#holdFrom) { this.#held = []; this.#holdFrom = undefined }
        this.#reply(socket, this.#answer(cmd.line))
        if (this.#held !== undefined && cmd.line === this.#releaseOn) {
          for (const [s, text] of this.#held) s.write(text)
          this.#held = undefined
        }
        if (cmd.line === this.#script.triggerLine) setImmediate(() => this.#sendRows())
      }
    })
  }

  /**
   * From line `from` on, hold every reply until line `until` has arrived: a client that waits for each reply before
   * sending the next command stalls (and its reply timeout fails it).
   */
  holdReplies (from: string, until: string): void {
    this.#holdFrom = from
    this.#releaseOn = until
  }

  #reply (socket: net.Socket, text: string): void {
    if (this.#held !== undefined) this.#held.push([socket, text])
    else socket.write(text)
  }

  #answer (line: string): string {
    if (this.#script.errFor?.test(line) === true) return 'ERR Value out of range\n'
    if (line === '*IDN?') return 'OK =PandA SW: 4.1 FPGA: 4.1.0 816147d6 00000000 rootfs: PandA 4.1\n'
    if (line === '*BLOCKS?') return (this.#script.blocks ?? ALL_BLOCKS).map((b) => `!${b}\n`).join('') + '.\n'
    if (line === 'PCAP.ACTIVE?') {
      if (this.#pollsLeft > 0 && --this.#pollsLeft === 0) this.#activate()
      return `OK =${this.active}\n`
    }
    if (line === '*PCAP.ARM=') {
      if (this.#script.armActivates === false) return 'OK\n'
      this.#pollsLeft = this.#script.activeAfterPolls ?? 0
      if (this.#pollsLeft === 0) this.#activate()
      return 'OK\n'
    }
    if (line === '*PCAP.DISARM=') {
      if (this.active === 1 && !this.ignoreDisarm) {
        this.active = 0
        this.#stream = undefined
        for (const c of this.#dataClients) c.write('END 0 Disarmed\n')
      }
      return 'OK\n'
    }
    if (line === '*PCAP.STATUS?') return `OK =${this.active === 1 ? 'Busy' : 'Idle'} ${this.#dataClients.length} ${this.active === 1 ? this.#dataClients.length : 0}\n`
    if (line === '*CAPTURE=') { this.#captures.clear(); return 'OK\n' }
    const capture = /^(.+)\.CAPTURE=(.*)$/.exec(line)
    if (capture !== null) { this.#captures.set(capture[1] ?? '', capture[2] ?? ''); return 'OK\n' }
    if (line.includes('=') || line.endsWith('<')) return 'OK\n'
    return 'ERR No such field\n'
  }

  /** PCAP becomes active: the header goes to every data client. */
  #activate (): void {
    this.active = 1
    this.#stream = syntheticStream({ rows: this.#script.rows, fields: this.#fields(), noOk: true, endReason: this.#script.endReason ?? 'Ok', framePayloadBytes: 256 })
    const header = this.#stream.next()
    if (header.done !== true) for (const c of this.#dataClients) c.write(header.value)
  }

  /** The header's fields in the server's order: uint32 first, then doubles. */
  #fields (): SyntheticField[] {
    const all: SyntheticField[] = []
    for (const [name, capture] of this.#captures) {
      if (capture === 'No') continue
      if (/^PCAP\.BITS\d$/.test(name)) all.push({ name, capture, type: 'uint32' })
      else all.push({ name, capture, type: 'double', scale: name.startsWith('PCAP.TS') ? 8e-9 : 1, offset: 0, units: name.startsWith('PCAP.TS') ? 's' : '' })
    }
    return [...all.filter((f) => f.type === 'uint32'), ...all.filter((f) => f.type !== 'uint32')]
  }

  #sendRows (): void {
    if (this.#stream === undefined) return
    const pieces = [...this.#stream]
    this.#stream = undefined
    if (this.#script.dropDataConnection === true) {
      for (const piece of pieces.slice(0, -1)) for (const c of this.#dataClients) c.write(piece)
      for (const c of this.#dataClients) c.destroy()
      return
    }
    for (const piece of pieces) for (const c of this.#dataClients) c.write(piece)
    this.active = 0
  }

  #serveData (socket: net.Socket): void {
    let line = ''
    const onData = (chunk: Buffer): void => {
      line += chunk.toString('latin1')
      const nl = line.indexOf('\n')
      if (nl < 0) return
      socket.off('data', onData)
      this.optionsLines.push(line.slice(0, nl))
      socket.write('OK\n')
      this.#dataClients.push(socket)
    }
    socket.on('data', onData)
  }
}

function fixedPath (name: string): PathProvider {
  return { getPath: () => ({ directoryPath: dir, filename: name, path: join(dir, `${name}.h5`), createDirDepth: 0 }) }
}

const FAST = { armTimeoutMs: 500, disarmTimeoutMs: 500, dataClientTimeoutMs: 2000, activePollPeriodMs: 5, controlReplyTimeoutMs: 2000, pipelineCloseTimeoutMs: 10_000, completeMarginMs: 10_000 }

async function connected (t: Test, box: ScriptedBox, file: string, extra: Partial<HDFPandaOptions> = {}): Promise<HDFPanda> {
  const panda = new HDFPanda({
    name: 'panda1',
    host: '127.0.0.1',
    controlPort: box.controlPort,
    dataPort: box.dataPort,
    pathProvider: fixedPath(file),
    timeouts: FAST,
    pipeline: { flushPeriodMs: 50 },
    ...extra
  })
  t.teardown(async () => await panda.close())
  await panda.connect({ timeout: 2000 })
  return panda
}

async function assets (panda: HDFPanda): Promise<StreamAsset[]> {
  const out: StreamAsset[] = []
  for await (const a of panda.collectAssetDocs()) out.push(a)
  return out
}

async function rejectsWith (t: Test, p: PromiseLike<unknown>, code: ErrorCode, re: RegExp): Promise<void> {
  try {
    await p
    t.fail(`expected ${code} matching ${re.source}`)
  } catch (err) {
    t.ok(isFlyScanError(err, code), `${code} (got ${(err as { code?: string }).code ?? String(err)})`)
    t.match((err as Error).message, re)
  }
}

const TOMO: PandaFlyInfo = { logic: 'tomography', numImages: 21, scanTime: 9, startDeg: 0 }

t.test('tomography: the exact writes, pipelined; arm, ACTIVE, PCOMP enable; 21 rows on disk; stream documents', async t => {
  trackLeaks(t)
  const box = await ScriptedBox.start(t, { rows: 21, triggerLine: 'PCOMP1.ENABLE=ONE', activeAfterPolls: 3 })
  const panda = await connected(t, box, 'tomo')
  t.same(box.lines(), ['*IDN?', '*BLOCKS?'])
  t.equal(panda.identification?.software, '4.1')
  let at = box.received.length
  await panda.stage()
  t.same(box.lines(at), [])
  t.equal(box.polls(at), 1, 'stage reads PCAP.ACTIVE once (0: nothing to disarm)')

  at = box.received.length
  // The box answers nothing until the last write has arrived: prepare only finishes if the writes were pipelined.
  box.holdReplies('PCOMP1.ENABLE=ZERO', 'PCAP.TS_TRIG.CAPTURE=Value')
  await panda.prepare(TOMO)
  t.same(box.lines(at), [
    'PCOMP1.ENABLE=ZERO',
    '*CAPTURE=',
    'PCOMP1.INP=INENC1.VAL',
    'PCOMP1.RELATIVE=Absolute',
    'PCOMP1.DIR=Positive',
    'PCOMP1.PRE_START=0',
    'PCOMP1.START=0',
    'PCOMP1.WIDTH=100',
    'PCOMP1.STEP=200',
    'PCOMP1.PULSES=21',
    'PCAP.ENABLE=PCOMP1.ACTIVE',
    'PCAP.GATE=ONE',
    'PCAP.TRIG=PCOMP1.OUT',
    'PCAP.TRIG_EDGE=Rising',
    'TTLOUT1.VAL=PCOMP1.OUT',
    'INENC1.VAL.CAPTURE=Value',
    'PCAP.TS_TRIG.CAPTURE=Value'
  ])
  t.same(box.optionsLines, ['XML FRAMED SCALED'], 'the data port was connected at prepare')
  const order = box.received.slice(at).map((r) => r.line).filter((l) => l === '*PCAP.STATUS?' || l === 'PCAP.TS_TRIG.CAPTURE=Value')
  t.same(order.slice(0, 2), ['PCAP.TS_TRIG.CAPTURE=Value', '*PCAP.STATUS?'], 'after the writes, the readers are counted before the data port connects')
  t.ok(box.polls(at, '*PCAP.STATUS?') >= 2, 'and again until the box counts the new reader')
  t.same(await panda.describeCollect(), {
    'panda1-inenc1_val-value': { source: `panda://127.0.0.1:${box.controlPort}/INENC1.VAL.Value`, dtype: 'number', dtype_numpy: '<f8', shape: [], external: 'STREAM:' },
    'panda1-pcap_ts_trig-value': { source: `panda://127.0.0.1:${box.controlPort}/PCAP.TS_TRIG.Value`, dtype: 'number', dtype_numpy: '<f8', shape: [], external: 'STREAM:', units: 's' }
  })

  at = box.received.length
  await panda.kickoff()
  t.same(box.lines(at), ['*PCAP.ARM=', 'PCOMP1.ENABLE=ONE'], 'arm, then the trigger source once PCAP is active')
  t.equal(box.polls(at), 3, 'kickoff polled PCAP.ACTIVE until it read 1')

  at = box.received.length
  const seen: number[] = []
  const status = panda.complete()
  status.watch?.((u) => seen.push(u.current))
  await status
  t.same(box.lines(at), ['PCOMP1.ENABLE=ZERO'], 'complete disables PCOMP once the capture ended')
  t.ok(box.polls(at) >= 1, 'complete read PCAP.ACTIVE = 0')
  t.equal(seen[seen.length - 1], 21, 'progress reached 21 rows')
  t.equal(await panda.getIndex(), 21)

  const docs = await assets(panda)
  t.same(docs.map(([kind]) => kind), ['stream_resource', 'stream_resource', 'stream_datum', 'stream_datum'])
  const [r1, r2, d1] = docs.map(([, doc]) => doc as unknown as Record<string, unknown>)
  t.match(r1, { data_key: 'panda1-inenc1_val-value', mimetype: 'application/x-hdf5', uri: `file://localhost${join(dir, 'tomo-1.h5')}`, parameters: { dataset: '/INENC1.VAL.Value' } })
  t.match(r2, { data_key: 'panda1-pcap_ts_trig-value', parameters: { dataset: '/PCAP.TS_TRIG.Value' } })
  t.match(d1, { stream_resource: (r1 as { uid: string }).uid, indices: { start: 0, stop: 21 }, seq_nums: { start: 1, stop: 22 } })
  t.same(await assets(panda), [], 'nothing new to collect')

  const file = readWithH5py(join(dir, 'tomo-1.h5'))
  const enc = file.datasets['INENC1.VAL.Value']?.values ?? []
  t.equal(enc.length, 21)
  // The header puts INENC1.VAL first (both are doubles, in enabling order): field index 0.
  t.same(enc, Array.from({ length: 21 }, (_v, i) => syntheticValue(i, 0)))
  t.equal(file.attrs.end_reason, 'Ok')
  t.same((r1 as { parameters: { chunk_shape: number[] } }).parameters.chunk_shape, file.datasets['INENC1.VAL.Value']?.chunks, 'chunk_shape is the file\'s chunking')

  at = box.received.length
  await panda.unstage()
  t.same(box.lines(at), [], 'nothing left to stop')
})

t.test("XAS: the exact writes of TST's window + clock setup, 100 rows, the ADC and bits data keys", async t => {
  trackLeaks(t)
  const box = await ScriptedBox.start(t, { rows: 100, triggerLine: 'PCOMP1.ENABLE=ONE' })
  const panda = await connected(t, box, 'xas', { trigger: { encoderPolarity: -1 } })
  await panda.stage()
  const at = box.received.length
  await panda.prepare({ logic: 'xas', npoints: 100, totalTime: 1, startDeg: 0, endDeg: 180, runUpDeg: 1, maxVelocity: 720 })
  t.same(box.lines(at), TST_XAS_PREPARE_LINES)
  const keys = await panda.describeCollect()
  t.same(Object.keys(keys), ['panda1-calc1_out-mean', 'panda1-fmc_in_val1-mean', 'panda1-fmc_in_val2-mean', 'panda1-pcap_bits1-value', 'panda1-pcap_ts_trig-value'])
  t.match(keys['panda1-pcap_bits1-value'], { dtype: 'integer', dtype_numpy: '<u4' })
  t.match(keys['panda1-fmc_in_val1-mean'], { dtype: 'number', units: 'V' })
  t.same(panda.setup?.motion, { startDeg: 0, endDeg: 180, velocityDegPerS: 180, runUpDeg: 1 })
  await panda.kickoff()
  await panda.complete()
  t.equal(await panda.getIndex(), 100)
  const docs = await assets(panda)
  t.equal(docs.filter(([k]) => k === 'stream_resource').length, 5)
  t.ok(docs.filter(([k]) => k === 'stream_datum').every(([, d]) => (d as { indices: { stop: number } }).indices.stop === 100))
  await panda.unstage()
})

t.test('SEQ table: the table goes out as decimal rows; SEQ1.ENABLE starts it', async t => {
  trackLeaks(t)
  const box = await ScriptedBox.start(t, { rows: 10, triggerLine: 'SEQ1.ENABLE=ONE' })
  const panda = await connected(t, box, 'seq')
  const at = box.received.length
  await panda.prepare({ logic: 'seq-table', table: [seqRow({ repeats: 10, time1: 50, outa1: true, time2: 50 })], repeats: 1, prescaleUs: 1 })
  t.same(box.lines(at), [
    'SEQ1.ENABLE=ZERO', '*CAPTURE=', 'SEQ1.PRESCALE.UNITS=us', 'SEQ1.PRESCALE=1', 'SEQ1.REPEATS=1',
    'SEQ1.TABLE< 1048586 0 50 50',
    'PCAP.ENABLE=SEQ1.ACTIVE', 'PCAP.GATE=SEQ1.OUTA', 'PCAP.TRIG=SEQ1.OUTA', 'PCAP.TRIG_EDGE=Falling', 'TTLOUT1.VAL=SEQ1.OUTA',
    'INENC1.VAL.CAPTURE=Mean', 'PCAP.TS_TRIG.CAPTURE=Value'
  ])
  await panda.kickoff()
  await panda.complete()
  t.equal(await panda.getIndex(), 10)
  t.same(box.lines(box.received.length - 2), ['SEQ1.ENABLE=ZERO'])
})

t.test('flyAndCollect runs HDFPanda in the RunEngine: a stream_resource per dataset, stream_datum for 21 rows, all schema-valid', async t => {
  trackLeaks(t)
  const box = await ScriptedBox.start(t, { rows: 21, triggerLine: 'PCOMP1.ENABLE=ONE' })
  const panda = await connected(t, box, 'fly')
  const RE = new RunEngine()
  const docs: Array<[DocumentName, Record<string, unknown>]> = []
  RE.subscribe((name, doc) => { docs.push([name, doc as Record<string, unknown>]) })
  const result = await RE.run(flyAndCollect([panda], { prepareValues: [[panda, TOMO]], flushPeriod: 0.05 }), { beamline_id: 'tst' })
  t.equal(result.outcome, 'completed')
  for (const [name, doc] of docs) t.doesNotThrow(() => validateDocument(name, doc), `${name} is schema-valid`)
  const names = docs.map(([n]) => n)
  t.same(names.slice(0, 2), ['start', 'descriptor'])
  t.equal(names.at(-1), 'stop')
  t.equal(docs.at(-1)?.[1].exit_status, 'success')
  const descriptor = docs[1]?.[1] as { data_keys: Record<string, { external?: string }> }
  t.same(Object.keys(descriptor.data_keys), ['panda1-inenc1_val-value', 'panda1-pcap_ts_trig-value'])
  const resources = docs.filter(([n]) => n === 'stream_resource').map(([, d]) => d as { uid: string, data_key: string })
  t.same(resources.map((r) => r.data_key), ['panda1-inenc1_val-value', 'panda1-pcap_ts_trig-value'])
  for (const r of resources) {
    const datums = docs.filter(([n, d]) => n === 'stream_datum' && d.stream_resource === r.uid).map(([, d]) => d as { indices: { start: number, stop: number } })
    t.equal(datums.reduce((n, d) => n + d.indices.stop - d.indices.start, 0), 21, `${r.data_key}: stream_datum cover 21 rows`)
    t.equal(datums.at(-1)?.indices.stop, 21)
  }
  t.same(box.lines().filter((l) => l.startsWith('PCOMP1.ENABLE=')), ['PCOMP1.ENABLE=ZERO', 'PCOMP1.ENABLE=ONE', 'PCOMP1.ENABLE=ZERO'])
})

t.test('an impossible request is refused with its numbers before anything is written', async t => {
  trackLeaks(t)
  const box = await ScriptedBox.start(t, { rows: 0 })
  const panda = await connected(t, box, 'never')
  const at = box.received.length
  await rejectsWith(t, panda.prepare({ logic: 'tomography', numImages: 721, scanTime: 30, startDeg: 0, exposureTime: 0.05 }), ErrorCode.BAD_INPUT,
    /^panda1: tomography scan rejected before arming: 2 problems: \(1\) .*5\.55556 encoder counts per pulse.*\(2\) .*exposure time 0\.05 s is longer than the step time 0\.0416089 s/)
  t.same(box.received.slice(at), [], 'not one command reached the box')
  t.same(box.optionsLines, [], 'no data connection either')
  await rejectsWith(t, panda.kickoff(), ErrorCode.BAD_INPUT, /panda1: kickoff: prepare first/)
})

t.test('a write the box refuses fails prepare naming the command and the box message; no file is started', async t => {
  trackLeaks(t)
  const box = await ScriptedBox.start(t, { rows: 0, errFor: /^PCOMP1\.STEP=/ })
  const panda = await connected(t, box, 'err')
  await rejectsWith(t, panda.prepare(TOMO), ErrorCode.PANDA_CONTROL_ERR,
    /^panda1: prepare \(tomography\): 1 of 17 writes failed: PCOMP1\.STEP=200: .*'PCOMP1\.STEP=200' failed: ERR Value out of range/)
  t.ok(box.lines().includes('PCAP.TS_TRIG.CAPTURE=Value'), 'the other writes of the batch still went out')
  t.same(box.optionsLines, [])
})

t.test('kickoff fails with a named timeout when PCAP.ACTIVE never becomes 1; unstage disarms', async t => {
  trackLeaks(t)
  const box = await ScriptedBox.start(t, { rows: 0, armActivates: false })
  const panda = await connected(t, box, 'noarm', { timeouts: { ...FAST, armTimeoutMs: 200 } })
  await panda.prepare(TOMO)
  await rejectsWith(t, panda.kickoff(), ErrorCode.TIMEOUT, /^panda1: PCAP\.ACTIVE was still 0 \d+ ms after \*PCAP\.ARM= \(armTimeoutMs = 200 ms\)/)
  t.ok(box.polls() >= 3, `polled (${box.polls()} times)`)
  const at = box.received.length
  await panda.unstage()
  t.same(box.lines(at), ['*PCAP.DISARM=', 'PCOMP1.ENABLE=ZERO'])
})

t.test('complete fails when the capture ends with Data overrun, naming the reason and the file', async t => {
  trackLeaks(t)
  const box = await ScriptedBox.start(t, { rows: 21, triggerLine: 'PCOMP1.ENABLE=ONE', endReason: 'Data overrun' })
  const panda = await connected(t, box, 'overrun')
  await panda.prepare(TOMO)
  await panda.kickoff()
  await rejectsWith(t, panda.complete(), ErrorCode.PANDA_ACQUISITION_FAILED, /^panda1: the capture ended with 'Data overrun' after \d+ rows; file .*overrun-1\.h5/)
  await panda.unstage()
})

t.test('complete fails when the data connection closes without END; the box is disarmed', async t => {
  trackLeaks(t)
  const box = await ScriptedBox.start(t, { rows: 21, triggerLine: 'PCOMP1.ENABLE=ONE', dropDataConnection: true })
  const panda = await connected(t, box, 'dropped')
  await panda.prepare(TOMO)
  await panda.kickoff()
  const at = box.received.length
  await rejectsWith(t, panda.complete(), ErrorCode.PANDA_ACQUISITION_FAILED, /^panda1: the capture ended with 'Early disconnect' after 21 rows; file .*dropped-1\.h5/)
  t.same(box.lines(at), ['*PCAP.DISARM=', 'PCOMP1.ENABLE=ZERO'])
  t.equal(box.active, 0)
  t.equal(readWithH5py(join(dir, 'dropped-1.h5')).datasets['INENC1.VAL.Value']?.values.length, 21, 'the rows received are on disk')
  await panda.unstage()
})

t.test('complete fails when rows are missing: 20 rows for 21 images', async t => {
  trackLeaks(t)
  const box = await ScriptedBox.start(t, { rows: 20, triggerLine: 'PCOMP1.ENABLE=ONE' })
  const panda = await connected(t, box, 'short')
  await panda.prepare(TOMO)
  await panda.kickoff()
  await rejectsWith(t, panda.complete(), ErrorCode.PANDA_ACQUISITION_FAILED, /captured 20 rows, but the tomography setup expects 21; file .*short-1\.h5/)
  await panda.unstage()
})

t.test('complete is bounded; stop disarms and waits for PCAP.ACTIVE = 0; the partial file is closed', async t => {
  trackLeaks(t)
  // The trigger source never starts the rows: the capture stays active until disarmed.
  const box = await ScriptedBox.start(t, { rows: 5 })
  const panda = await connected(t, box, 'stuck')
  await panda.prepare({ ...TOMO, completeTimeoutMs: 200 })
  await panda.kickoff()
  await rejectsWith(t, panda.complete(), ErrorCode.TIMEOUT, /panda1: the tomography capture ending .* did not finish within 200 ms/)
  t.equal(box.active, 1)
  const at = box.received.length
  await panda.stop()
  t.equal(box.active, 0)
  t.same(box.lines(at), ['*PCAP.DISARM=', 'PCOMP1.ENABLE=ZERO'])
  t.ok(box.polls(at) >= 1, 'disarm read PCAP.ACTIVE = 0')
  await panda.unstage()
})

t.test('disarm() waits for PCAP.ACTIVE = 0 within disarmTimeoutMs', async t => {
  trackLeaks(t)
  const box = await ScriptedBox.start(t, { rows: 0 })
  const panda = await connected(t, box, 'disarm', { timeouts: { ...FAST, disarmTimeoutMs: 150 } })
  box.active = 1
  box.ignoreDisarm = true
  await rejectsWith(t, panda.disarm(), ErrorCode.TIMEOUT, /PCAP\.ACTIVE was still 1 \d+ ms after \*PCAP\.DISARM= \(disarmTimeoutMs = 150 ms\)/)
  box.ignoreDisarm = false
  const at = box.received.length
  await panda.disarm()
  t.equal(box.active, 0)
  t.same(box.lines(at), ['*PCAP.DISARM='])
})

t.test('a box without the blocks a setup needs is refused before writing', async t => {
  trackLeaks(t)
  const box = await ScriptedBox.start(t, { rows: 0, blocks: ['PCAP 1', 'PCOMP 1', 'INENC 4', 'TTLOUT 10', 'FMC_IN 1'] })
  const panda = await connected(t, box, 'blocks')
  const at = box.received.length
  await rejectsWith(t, panda.prepare({ logic: 'xas', npoints: 10, totalTime: 1, startDeg: 0, endDeg: 10 }), ErrorCode.BAD_INPUT,
    /panda1: xas needs blocks this PandA does not have \(\*BLOCKS\?\): CALC1 \(the box has no CALC\), CLOCK1 \(the box has no CLOCK\)/)
  t.same(box.received.slice(at), [])
})

t.test('connect: refused port and mock mode are NOT_CONNECTED naming the device', async t => {
  trackLeaks(t)
  const free = net.createServer()
  await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve))
  const port = (free.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => free.close(() => resolve()))
  const panda = new HDFPanda({ name: 'panda1', host: '127.0.0.1', controlPort: port, pathProvider: fixedPath('x') })
  await rejectsWith(t, panda.connect({ timeout: 1000 }), ErrorCode.NOT_CONNECTED, new RegExp(`panda1: 1 part failed to connect: panda1: PandA control port 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`))
  await rejectsWith(t, panda.connect({ mock: true }), ErrorCode.NOT_CONNECTED, /HDFPanda has no mock mode/)
  await rejectsWith(t, panda.prepare(TOMO), ErrorCode.NOT_CONNECTED, /panda1: .*not connected/)
})
