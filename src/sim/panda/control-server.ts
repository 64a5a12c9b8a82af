/**
 * The simulated PandA's control port (TCP 8888), after PandABlocks-server (commit dd1b8e0) server/config_server.c
 * (line reading, command split at the first `?`, `=` or `<`, one reply per command, table writes) and
 * system_command.c (`*` commands). Field and attribute semantics are in model.ts. Every failure is one
 * `ERR <message>` line with the server's message; the connection carries on. A line of 1023 bytes or more drops the
 * connection, as the box does ("Line overrun").
 */
import net from 'node:net'
import { ParseError, expectChar, fail, parseAlphanumName, parseEos, parseName, parseUint } from './cparse.js'
import { CAPTURE_OPTIONS, CLOCK_HZ } from './definitions.js'
import { isoMs } from './format.js'
import { ALL_CHANGES, CHANGE_GROUPS, ChangeContext, type Model, type Reply, type TableWriter } from './model.js'
import { listenTcp, listeningPort } from '../listen.js'

/** What the control port needs from the rest of the simulated PandA. */
export interface ControlHost {
  readonly model: Model
  /** Brings the simulation up to now (before a command reads anything). */
  sync: () => void
  /** Lets a write made now take effect (blocks react in the same tick). */
  settle: () => void
  /** `*PCAP.ARM=`; throws ParseError with the server's message. */
  arm: () => void
  disarm: () => void
  /** `Busy 1 1`. */
  pcapStatus: () => string
  pcapCaptured: () => number
  pcapCompletion: () => string
  idn: () => string
  /** `*WHO?` lines of the data port. */
  dataWho: () => string[]
  readonly nowMs: () => number
}

/** Longest command line, without its newline (config_server.h MAX_LINE_LENGTH 1024 with the NUL). */
export const MAX_LINE_BYTES = 1022

interface TableInProgress {
  readonly writer: TableWriter | undefined
  readonly target: string | undefined
  error: string | undefined
}

class ControlConnection {
  readonly changes = new ChangeContext()
  readonly connectedMs: number
  readonly peer: string
  #pending: Buffer = Buffer.alloc(0)
  #table: TableInProgress | undefined

  constructor (readonly socket: net.Socket, readonly server: ControlServer) {
    this.connectedMs = server.host.nowMs()
    this.peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    socket.on('error', () => {})
    socket.on('close', () => server.forget(this))
  }

  #onData (chunk: Buffer): void {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk])
    let out = ''
    let start = 0
    for (;;) {
      const nl = this.#pending.indexOf(0x0a, start)
      if (nl < 0) break
      if (nl - start > MAX_LINE_BYTES) {
        this.socket.destroy()
        return
      }
      const line = this.#pending.subarray(start, nl).toString('utf8')
      start = nl + 1
      out += this.#line(line)
    }
    this.#pending = this.#pending.subarray(start)
    if (this.#pending.length > MAX_LINE_BYTES) {
      this.socket.destroy()
      return
    }
    if (out.length > 0 && !this.socket.destroyed) this.socket.write(out)
  }

  /** One line: a command, or a data line of a table write. Returns the reply text (may be empty). */
  #line (line: string): string {
    const table = this.#table
    if (table !== undefined) {
      if (line === '') {
        this.#table = undefined
        return this.#closeTable(table)
      }
      if (table.error === undefined && table.writer !== undefined) {
        try {
          table.writer.write(line)
        } catch (err) {
          table.error = errorText(err)
        }
      }
      return ''
    }
    return this.server.command(this, line)
  }

  startTable (writer: TableWriter | undefined, target: string | undefined, error: string | undefined): void {
    this.#table = { writer, target, error }
  }

  #closeTable (table: TableInProgress): string {
    const host = this.server.host
    if (table.error !== undefined) {
      if (table.target !== undefined) host.model.abortTable(table.target)
      return `ERR ${table.error}\n`
    }
    try {
      host.sync()
      table.writer?.close()
      host.settle()
      return 'OK\n'
    } catch (err) {
      return `ERR ${errorText(err)}\n`
    }
  }
}

const format = (r: Reply): string => r.kind === 'one' ? `OK =${r.value}\n` : r.lines.map((l) => `!${l}\n`).join('') + '.\n'

export class ControlServer {
  readonly #server: net.Server
  readonly #connections = new Set<ControlConnection>()

  private constructor (readonly host: ControlHost) {
    this.#server = net.createServer((socket) => this.#connections.add(new ControlConnection(socket, this)))
  }

  static async start (host: ControlHost, port: number, address: string): Promise<ControlServer> {
    const s = new ControlServer(host)
    await listenTcp(s.#server, port, address)
    return s
  }

  get port (): number {
    return listeningPort(this.#server)
  }

  forget (c: ControlConnection): void {
    this.#connections.delete(c)
  }

  /** Runs one command line and returns its reply. */
  command (conn: ControlConnection, line: string): string {
    const system = line.startsWith('*')
    const text = system ? line.slice(1) : line
    const m = /[?=<]/.exec(text)
    if (m === null) return 'ERR Unknown command\n'
    const name = text.slice(0, m.index)
    const rest = text.slice(m.index + 1)
    try {
      this.host.sync()
      switch (m[0]) {
        case '?':
          if (rest !== '') fail('Unexpected text after command')
          return format(system ? this.#systemGet(conn, name) : this.host.model.get(name))
        case '=':
          if (system) this.#systemPut(conn, name, rest)
          else this.host.model.put(name, rest)
          this.host.settle()
          return 'OK\n'
        default:
          return this.#tableCommand(conn, system, name, rest)
      }
    } catch (err) {
      return `ERR ${errorText(err)}\n`
    }
  }

  /** `NAME<format`: the data lines follow; the reply comes after the empty line. */
  #tableCommand (conn: ControlConnection, system: boolean, name: string, fmt: string): string {
    let writer: TableWriter | undefined
    let error: string | undefined
    try {
      let i = 0
      const streaming = fmt[i] === '<'
      if (streaming) i++
      const last = !streaming || fmt[i] === '|'
      if (streaming && last) i++
      const binary = fmt[i] === 'B'
      if (binary) i++
      parseEos(fmt, i)
      if (system) {
        const cmd = parseName(name, 0)
        if (!SYSTEM_COMMANDS.has(cmd.value)) fail('Unknown command')
        if (cmd.value !== 'METADATA') fail('Not a table')
        if (streaming) fail('Streaming mode not supported')
        if (binary) fail('Binary writes not supported')
        let j = expectChar(name, cmd.end, '.')
        const key = parseAlphanumName(name, j)
        j = key.end
        parseEos(name, j)
        writer = this.host.model.putMetadataTable(key.value)
      } else {
        writer = this.host.model.putTable(name, streaming, last, binary)
      }
    } catch (err) {
      error = errorText(err)
    }
    conn.startTable(writer, system || writer === undefined ? undefined : name, error)
    return ''
  }

  #systemGet (conn: ControlConnection, command: string): Reply {
    const model = this.host.model
    const { cmd, rest } = systemCommand(command)
    switch (cmd) {
      case 'IDN': return { kind: 'one', value: this.host.idn() }
      case 'BLOCKS': return { kind: 'many', lines: model.blocks.map((b) => `${b.name} ${b.count}`) }
      case 'ECHO': {
        const i = expectChar(rest, 0, ' ')
        if (Buffer.byteLength(rest.slice(i)) >= 256) fail('Result too long')
        return { kind: 'one', value: rest.slice(i) }
      }
      case 'WHO': {
        const lines = [...this.#connections].map((c) => `${isoMs(c.connectedMs)} config ${c.peer} `)
        return { kind: 'many', lines: [...lines, ...this.host.dataWho()] }
      }
      case 'CHANGES': return { kind: 'many', lines: model.changes(conn.changes, changeSet(rest)) }
      case 'DESC': return model.desc(rest.slice(expectChar(rest, 0, '.')))
      case 'ENUMS': return model.enums(rest.slice(expectChar(rest, 0, '.')))
      case 'CAPTURE': {
        if (rest === '') return { kind: 'many', lines: model.captureList() }
        let i = expectChar(rest, 0, '.')
        if (rest[i] === '*') {
          parseEos(rest, i + 1)
          return { kind: 'many', lines: model.outputs.map((f) => f.name) }
        }
        const n = parseName(rest, i)
        i = n.end
        parseEos(rest, i)
        if (n.value === 'OPTIONS') return { kind: 'many', lines: [...CAPTURE_OPTIONS] }
        if (n.value === 'ENUMS') return model.enums(`${model.outputs.find((f) => f.spec.cls === 'pos_out')?.name ?? 'INENC1.VAL'}.CAPTURE`)
        return fail('Invalid *CAPTURE option')
      }
      case 'POSITIONS': return { kind: 'many', lines: [...model.posNames] }
      case 'BITS': return { kind: 'many', lines: [...model.bitNames] }
      case 'PCAP': {
        const i = expectChar(rest, 0, '.')
        const n = parseName(rest, i)
        switch (n.value) {
          case 'STATUS': return { kind: 'one', value: this.host.pcapStatus() }
          case 'CAPTURED': return { kind: 'one', value: String(this.host.pcapCaptured()) }
          case 'COMPLETION': return { kind: 'one', value: this.host.pcapCompletion() }
          default: return fail('Invalid *PCAP field')
        }
      }
      case 'CLOCK_FREQ': return { kind: 'one', value: String(CLOCK_HZ) }
      case 'METADATA': {
        let i = expectChar(rest, 0, '.')
        if (rest[i] === '*') {
          parseEos(rest, i + 1)
          return { kind: 'many', lines: [...model.metadata.keys()] }
        }
        const key = parseAlphanumName(rest, i)
        i = key.end
        parseEos(rest, i)
        return model.getMetadata(key.value)
      }
      default: return fail('Command not readable')
    }
  }

  #systemPut (conn: ControlConnection, command: string, value: string): void {
    const model = this.host.model
    const { cmd, rest } = systemCommand(command)
    switch (cmd) {
      case 'CHANGES': {
        const mask = changeSet(rest)
        let i = 0
        const fromStart = value[0] === 'S'
        if (value[0] === 'E' || value[0] === 'S') i = 1
        else if (value !== '') fail('Invalid reset option')
        parseEos(value, i)
        model.resetChanges(conn.changes, mask, fromStart)
        return
      }
      case 'CAPTURE':
        parseEos(rest, 0)
        parseEos(value, 0)
        model.resetCapture()
        return
      case 'PCAP': {
        const i = expectChar(rest, 0, '.')
        const n = parseName(rest, i)
        parseEos(value, 0)
        if (n.value === 'ARM') this.host.arm()
        else if (n.value === 'DISARM') this.host.disarm()
        else fail('Invalid *PCAP field')
        return
      }
      case 'METADATA': {
        let i = expectChar(rest, 0, '.')
        const key = parseAlphanumName(rest, i)
        i = key.end
        parseEos(rest, i)
        model.putMetadata(key.value, value)
        return
      }
      case 'VERBOSE': {
        const n = parseUint(value, 0)
        parseEos(value, n.end)
        return
      }
      case 'SAVESTATE':
        parseEos(value, 0)
        return
      default:
        fail('Command not writeable')
    }
  }

  async close (): Promise<void> {
    for (const c of this.#connections) c.socket.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

/**
 * The text after `ERR `: the server's message for a refused command; for anything else (a fault in the simulation
 * itself) its message on one line, so that the connection still gets exactly one reply.
 */
function errorText (err: unknown): string {
  if (err instanceof ParseError) return err.message
  return `simulated PandA: ${err instanceof Error ? err.message : String(err)}`.replace(/[\r\n]+/g, ' ')
}

/** Which system commands take text after their name (system_command.c command_table_list). */
const SYSTEM_COMMANDS = new Map<string, boolean>([
  ['IDN', false], ['METADATA', true], ['BLOCKS', false], ['ECHO', true], ['WHO', false], ['CHANGES', true],
  ['DESC', true], ['CAPTURE', true], ['POSITIONS', false], ['BITS', false], ['VERBOSE', false], ['ENUMS', true],
  ['PCAP', true], ['SAVESTATE', false], ['CLOCK_FREQ', false]
])

function systemCommand (command: string): { cmd: string, rest: string } {
  const n = parseName(command, 0)
  const allowArg = SYSTEM_COMMANDS.get(n.value)
  if (allowArg === undefined) fail('Unknown command')
  if (!allowArg) parseEos(command, n.end)
  return { cmd: n.value, rest: command.slice(n.end) }
}

/** `` (all) or `.GROUP`. */
function changeSet (rest: string): number {
  if (rest === '') return ALL_CHANGES
  const i = expectChar(rest, 0, '.')
  const n = parseName(rest, i)
  const g = CHANGE_GROUPS.indexOf(n.value as typeof CHANGE_GROUPS[number])
  if (g < 0) fail('Unknown changes selection')
  parseEos(rest, n.end)
  return 1 << g
}
