/**
 * The per-run document file: one JSON array `["<name>", {doc}]` per line (newline-delimited JSON), the form
 * bluesky's suitcase-jsonl and the databroker JSONL reader use.
 *
 * `write` is synchronous for the caller (the RunEngine never waits on the disk): lines go to a file write stream in
 * order. `close` ends the stream and resolves once every line is on disk, or rejects with the write error.
 */
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { ErrorCode, FlyScanError } from '../errors.js'
import type { Document, DocumentName, DocumentOf, NamedDocument } from './types.js'
import { DOCUMENT_NAMES } from './types.js'

/** JSON for documents: typed arrays become arrays and bigints numbers (or strings beyond 2^53). */
function replacer (_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    return Array.from(value as unknown as ArrayLike<number | bigint>, (v) => typeof v === 'bigint' ? replacer('', v) : v)
  }
  return value
}

/** One line of the file, without its newline. */
export function formatJsonlLine (name: DocumentName, doc: Document): string {
  return JSON.stringify([name, doc], replacer)
}

/** Parse the text of a JSONL document file back into (name, doc) pairs; blank lines are skipped. */
export function parseJsonl (text: string, source = 'JSONL text'): NamedDocument[] {
  const out: NamedDocument[] = []
  const names: ReadonlySet<string> = new Set(DOCUMENT_NAMES)
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch (cause) {
      throw new FlyScanError(ErrorCode.BAD_FILE, `${source} line ${i + 1}: not JSON`, { details: { line: i + 1 }, cause })
    }
    if (!Array.isArray(value) || value.length !== 2 || typeof value[0] !== 'string' || !names.has(value[0]) ||
        typeof value[1] !== 'object' || value[1] === null) {
      throw new FlyScanError(ErrorCode.BAD_FILE, `${source} line ${i + 1}: expected ["<document name>", {document}]`, { details: { line: i + 1 } })
    }
    out.push(value as NamedDocument)
  })
  return out
}

export class JsonlSink {
  readonly path: string
  readonly #stream: WriteStream
  #error: Error | undefined
  #closed: Promise<void> | undefined
  #lines = 0

  private constructor (path: string, stream: WriteStream) {
    this.path = path
    this.#stream = stream
    stream.on('error', (err) => { this.#error ??= err })
  }

  /** Create (or truncate) the file, making its directory first. */
  static async open (path: string): Promise<JsonlSink> {
    try {
      await mkdir(dirname(path), { recursive: true })
    } catch (cause) {
      throw new FlyScanError(ErrorCode.BAD_FILE, `documents file ${path}: cannot create its directory`, { details: { path }, cause })
    }
    const stream = createWriteStream(path, { flags: 'w' })
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => { stream.off('error', reject); resolve() })
      stream.once('error', reject)
    }).catch((cause: unknown) => {
      throw new FlyScanError(ErrorCode.BAD_FILE, `documents file ${path}: cannot open for writing`, { details: { path }, cause })
    })
    return new JsonlSink(path, stream)
  }

  /** Lines written so far. */
  get lines (): number {
    return this.#lines
  }

  /** Append one document. Usable directly as a DocumentRouter subscriber: `router.subscribe((n, d) => sink.write(n, d))`. */
  write<N extends DocumentName> (name: N, doc: DocumentOf<N>): void {
    if (this.#closed !== undefined) {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `documents file ${this.path}: write of a ${name} document after close`, { details: { path: this.path, name } })
    }
    if (this.#error !== undefined) {
      throw new FlyScanError(ErrorCode.BAD_FILE, `documents file ${this.path}: an earlier write failed`, { details: { path: this.path }, cause: this.#error })
    }
    this.#stream.write(formatJsonlLine(name, doc) + '\n')
    this.#lines++
  }

  /** End the file; resolves when every line is on disk. Idempotent. */
  close (): Promise<void> {
    this.#closed ??= new Promise<void>((resolve, reject) => {
      const settle = (): void => {
        if (this.#error === undefined) resolve()
        else reject(new FlyScanError(ErrorCode.BAD_FILE, `documents file ${this.path}: write failed`, { details: { path: this.path }, cause: this.#error }))
      }
      // 'close' comes after the last write has completed and the descriptor is closed (also after an error).
      if (this.#stream.closed) settle()
      else {
        this.#stream.once('close', settle)
        this.#stream.end()
      }
    })
    return this.#closed
  }
}
