/**
 * `tst-fly record --host H [--data-port N] --out <file.bin> [--options "XML FRAMED SCALED"] [--acquisitions N]
 * [--seconds S]`: connects to a PandA's data port (real or simulated), sends the options line and writes every byte
 * the box sends back to the file, unchanged: the `OK` line, then per acquisition the header, the rows and the END
 * line. That is the layout of the shared recordings (../shared/panda-recordings/, test/fixtures/panda/), so
 * `tst-fly replay <file.bin>` serves it again exactly.
 *
 * It stops after the END line of the N-th acquisition (default 1; the file ends with that line), after S seconds,
 * or when the box closes the connection, whichever comes first. Counting acquisitions needs the XML header: with
 * other options only --seconds or the box closing ends the recording.
 */
import net from 'node:net'
import { open, type FileHandle } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { ErrorCode, FlyScanError } from '../errors.js'
import { PandaDataParser } from '../parsers/index.js'

export const RECORD_USAGE = '  tst-fly record --host H [--data-port N] --out <file.bin> [--options "XML FRAMED SCALED"] [--acquisitions N] [--seconds S]\n' +
  '      writes a PandA data-port stream byte for byte (for tst-fly replay); stops after N acquisitions (default 1) or S seconds\n'

const OPTION_WORDS = new Set(['ASCII', 'BASE64', 'FRAMED', 'UNFRAMED', 'SCALED', 'RAW', 'XML', 'NO_HEADER', 'NO_STATUS', 'ONE_SHOT', 'BARE', 'DEFAULT'])

export interface RecordArgs {
  readonly host: string
  readonly port: number
  readonly out: string
  /** The options line without its newline. */
  readonly options: string
  /** Stop after this many acquisitions have ended (undefined: do not count). */
  readonly acquisitions: number | undefined
  /** Stop after this long (undefined: no limit). */
  readonly seconds: number | undefined
  readonly connectTimeoutMs?: number
}

export interface RecordOutcome {
  readonly bytes: number
  /** END lines seen: rows the box reported and the reason. */
  readonly ends: Array<{ rows: number, reason: string }>
  /** Why recording stopped. */
  readonly stop: 'acquisitions' | 'seconds' | 'closed'
  /** The box answered the options line with ERR. */
  readonly rejected: string | undefined
  /** The stream could not be parsed for counting (the bytes are still all in the file). */
  readonly parseError: string | undefined
}

function usage (message: string): FlyScanError {
  return new FlyScanError(ErrorCode.BAD_INPUT, `record: ${message}\nusage:\n${RECORD_USAGE}`)
}

export function parseRecordArgs (args: readonly string[]): RecordArgs {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      host: { type: 'string' },
      'data-port': { type: 'string' },
      out: { type: 'string' },
      options: { type: 'string' },
      acquisitions: { type: 'string' },
      seconds: { type: 'string' }
    }
  })
  if (positionals.length > 0) throw usage(`unexpected argument '${positionals.join(' ')}'`)
  if (values.host === undefined) throw usage('--host is required')
  if (values.out === undefined) throw usage('--out <file.bin> is required')
  const port = values['data-port'] === undefined ? 8889 : Number(values['data-port'])
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw usage(`--data-port must be a port number, got '${values['data-port'] ?? ''}'`)
  const options = (values.options ?? 'XML FRAMED SCALED').trim().split(/\s+/).join(' ')
  for (const w of options.split(' ')) {
    if (w !== '' && !OPTION_WORDS.has(w)) throw usage(`--options: unknown data-port option '${w}' (${[...OPTION_WORDS].join(', ')})`)
  }
  let acquisitions: number | undefined
  if (values.acquisitions !== undefined) {
    acquisitions = Number(values.acquisitions)
    if (!Number.isInteger(acquisitions) || acquisitions < 1) throw usage(`--acquisitions must be a positive integer, got '${values.acquisitions}'`)
  }
  let seconds: number | undefined
  if (values.seconds !== undefined) {
    seconds = Number(values.seconds)
    if (!Number.isFinite(seconds) || seconds <= 0) throw usage(`--seconds must be a positive number, got '${values.seconds}'`)
  }
  if (acquisitions === undefined && seconds === undefined) acquisitions = 1
  return { host: values.host, port, out: values.out, options, acquisitions, seconds }
}

/** Where the END line that ends `chunk`'s acquisition stops: just after the last `END <n> <reason>\n` in it. */
function endOfLastEndLine (chunk: Buffer): number {
  const text = chunk.toString('latin1')
  let end = -1
  for (const m of text.matchAll(/END \d+ [^\n]*\n/g)) end = m.index + m[0].length
  return end < 0 ? chunk.length : end
}

export async function record (args: RecordArgs): Promise<RecordOutcome> {
  const words = new Set(args.options.split(' '))
  const countable = words.has('XML') && !words.has('NO_HEADER') && !words.has('BARE')
  const parser = countable ? new PandaDataParser({ xml: true, noStatus: words.has('NO_STATUS') }) : undefined
  const timeoutMs = args.connectTimeoutMs ?? 5000
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: args.host, port: args.port })
    const timer = setTimeout(() => {
      s.destroy()
      reject(new FlyScanError(ErrorCode.CONNECTION, `record: no connection to ${args.host}:${args.port} within ${timeoutMs} ms`))
    }, timeoutMs)
    s.once('error', (err) => {
      clearTimeout(timer)
      reject(new FlyScanError(ErrorCode.CONNECTION, `record: PandA data port ${args.host}:${args.port}: ${err.message}`, { cause: err }))
    })
    s.once('connect', () => {
      clearTimeout(timer)
      resolve(s)
    })
  })
  let file: FileHandle
  try {
    file = await open(args.out, 'w')
  } catch (err) {
    socket.destroy()
    throw new FlyScanError(ErrorCode.BAD_FILE, `record: cannot write ${args.out}: ${(err as Error).message}`, { cause: err, details: { file: args.out } })
  }
  const ends: Array<{ rows: number, reason: string }> = []
  let bytes = 0
  let rejected: string | undefined
  let parseError: string | undefined
  let writes = Promise.resolve()
  const outcome = await new Promise<RecordOutcome['stop']>((resolve) => {
    let done = false
    const finish = (why: RecordOutcome['stop']): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resolve(why)
    }
    const timer = args.seconds === undefined ? undefined : setTimeout(() => finish('seconds'), args.seconds * 1000)
    socket.on('data', (chunk: Buffer) => {
      if (done) return
      let keep = chunk
      let reached = false
      if (bytes === 0 && chunk.subarray(0, 4).toString('latin1') === 'ERR ') {
        const nl = chunk.indexOf(0x0a)
        rejected = chunk.subarray(4, nl < 0 ? chunk.length : nl).toString('utf8')
      }
      if (parser !== undefined && parseError === undefined) {
        try {
          for (const r of parser.push(chunk)) {
            if (r.kind === 'end') ends.push({ rows: r.end.samples, reason: r.end.reason })
          }
          if (args.acquisitions !== undefined && ends.length >= args.acquisitions) {
            keep = chunk.subarray(0, endOfLastEndLine(chunk))
            reached = true
          }
        } catch (err) {
          parseError = (err as Error).message
        }
      }
      bytes += keep.length
      const piece = Buffer.from(keep)
      writes = writes.then(async () => { await file.write(piece) })
      if (reached) finish('acquisitions')
    })
    socket.on('error', () => {})
    socket.on('close', () => finish('closed'))
    socket.write(args.options + '\n')
  })
  await writes
  await file.close()
  return { bytes, ends, stop: outcome, rejected, parseError }
}

export async function recordCommand (args: readonly string[], io: { stdout: (t: string) => void }): Promise<number> {
  const a = parseRecordArgs(args)
  const r = await record(a)
  const endText = r.ends.length === 0 ? 'no END line' : r.ends.map((e) => `END ${e.rows} ${e.reason}`).join(', ')
  io.stdout(`recorded ${r.bytes} bytes from ${a.host}:${a.port} ('${a.options}') to ${a.out}: ${r.ends.length} acquisition(s) (${endText}); stopped: ${r.stop}\n`)
  if (r.rejected !== undefined) io.stdout(`the box refused the options: ERR ${r.rejected}\n`)
  if (r.parseError !== undefined) io.stdout(`could not count acquisitions (the bytes are all recorded): ${r.parseError}\n`)
  const short = a.acquisitions !== undefined && r.ends.length < a.acquisitions && r.stop !== 'seconds'
  return r.rejected !== undefined || short ? 1 : 0
}
