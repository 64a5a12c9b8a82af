/**
 * Building the stream documents a device that writes files emits (WritesStreamAssets): the file's URI, an HDF5
 * stream_resource, and the stream_datum documents that cover the events on disk as they grow. One place for what the
 * PandA, tst-fly's frame writer and the IOC writer all emit.
 */
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import type { PartialStreamDatum, PartialStreamResource } from './protocols.js'

/** `file://localhost/<absolute path>`: a local file as stream_resource documents name it. */
export function localFileUri (file: string): string {
  return pathToFileURL(path.resolve(file)).href.replace(/^file:\/\//, 'file://localhost')
}

/** The stream_resource of one dataset of an HDF5 file (event-model: mimetype, uri, parameters dataset and chunk_shape). */
export function hdf5Resource (uid: string, dataKey: string, file: string, dataset: string, chunkShape: readonly number[]): PartialStreamResource {
  return { uid, data_key: dataKey, mimetype: 'application/x-hdf5', uri: localFileUri(file), parameters: { dataset, chunk_shape: [...chunkShape] } }
}

/**
 * The stream_datum documents of one stream_resource: each `next(stop)` covers the events since the last call,
 * indices [start, stop) and seq_nums from 1, uid `<resource>/<n>`; undefined when there is nothing new.
 */
export class StreamDatumCursor {
  #emitted = 0
  #count = 0
  constructor (readonly resource: string) {}

  /** Events covered so far. */
  get emitted (): number { return this.#emitted }

  next (stop: number): PartialStreamDatum | undefined {
    if (stop <= this.#emitted) return undefined
    const start = this.#emitted
    this.#emitted = stop
    return {
      uid: `${this.resource}/${this.#count++}`,
      stream_resource: this.resource,
      indices: { start, stop },
      seq_nums: { start: start + 1, stop: stop + 1 }
    }
  }
}
