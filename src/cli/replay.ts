/**
 * `tst-fly replay <recording.bin> --out <dir> [--rate <MB/s>] [--json]`: serve a recorded PandA data-port stream
 * from a loopback server and run it through the real pipeline (panda-capture worker → PandA ring → hdf5-writer
 * worker → one HDF5 file per acquisition).
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { ErrorCode, FlyScanError } from '../errors.js'
import { formatSummaries } from '../metrics/index.js'
import { CLEAN_END_REASONS, PandaPipeline, type PipelineResult } from '../pipeline/index.js'
import type { DataOptions } from '../parsers/index.js'
import { PandaReplayServer } from '../sim/index.js'

export interface ReplayArgs {
  readonly recording: string
  readonly outDir: string
  /** MB/s (10^6 bytes per second); undefined for full speed. */
  readonly rateMBps: number | undefined
  readonly options: DataOptions
}

export interface ReplayOutcome {
  readonly result: PipelineResult
  readonly recordingBytes: number
  /** True when every acquisition ended Ok or Disarmed and nothing failed. */
  readonly clean: boolean
}

export async function readRecording (file: string): Promise<Uint8Array> {
  let bytes: Uint8Array
  try {
    bytes = await readFile(file)
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message
    throw new FlyScanError(ErrorCode.BAD_FILE, `cannot read recording ${file}: ${reason}`, { details: { file }, cause: err })
  }
  if (bytes.length === 0) throw new FlyScanError(ErrorCode.BAD_FILE, `recording ${file} is empty`, { details: { file } })
  return bytes
}

export async function replay (args: ReplayArgs, onLine: (line: string) => void = () => {}): Promise<ReplayOutcome> {
  const bytes = await readRecording(args.recording)
  const server = await PandaReplayServer.start({
    source: bytes,
    rateBytesPerSec: args.rateMBps === undefined ? undefined : args.rateMBps * 1e6
  })
  try {
    const stem = path.basename(args.recording).replace(/\.bin$/, '')
    const pipeline = await PandaPipeline.start({
      host: server.host,
      port: server.port,
      options: args.options,
      outDir: args.outDir,
      fileStem: stem
    }, {
      start: (n, fields) => onLine(`acquisition ${n}: header with ${fields.length} fields`),
      end: (n, end, rows) => onLine(`acquisition ${n}: END ${end.samples} ${end.reason} (${rows} rows received)`)
    })
    const result = await pipeline.result()
    const clean = result.errors.length === 0 && result.acquisitions.length > 0 &&
      result.acquisitions.every((a) => CLEAN_END_REASONS.has(a.endReason) && a.error === undefined)
    return { result, recordingBytes: bytes.length, clean }
  } finally {
    await server.close()
  }
}

export function replayJson (outcome: ReplayOutcome): string {
  const r = outcome.result
  return JSON.stringify({
    files: r.files,
    acquisitions: r.acquisitions.map((a) => ({ file: a.file, rows: a.rows, endReason: a.endReason, fields: a.fields, ...(a.error === undefined ? {} : { error: a.error }) })),
    latency: r.latency,
    errors: r.errors.map((e) => ({ code: e.code, message: e.message }))
  })
}

export function replayText (recording: string, outcome: ReplayOutcome): string {
  const r = outcome.result
  const lines: string[] = []
  lines.push(`replayed ${recording} (${outcome.recordingBytes} bytes): loopback PandA data port → panda-capture worker → PandA ring → hdf5-writer worker`)
  if (r.acquisitions.length === 0) lines.push('no acquisition was captured')
  for (const a of r.acquisitions) {
    lines.push(`acquisition ${a.acquisition}: ${a.rows} rows, END ${a.endReason}, ${a.fields.length} datasets → ${a.file}`)
    if (a.error !== undefined) lines.push(`  error: ${a.error}`)
  }
  for (const e of r.errors) lines.push(`error ${e.code}: ${e.message}`)
  lines.push('latency (HDR percentiles, merged from the capture and writer threads):')
  lines.push(formatSummaries(r.latency))
  return lines.join('\n')
}
