/**
 * Independent readers for the HDF5 files tst-fly writes: h5py (via Debian's /usr/bin/python3) and h5dump.
 * If either is missing, the helpers throw an error telling you to run scripts/setup-dev-env.sh: a test that uses
 * them then FAILS, it never skips.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FieldInfo, FieldType, FrameData, StartData } from '../../src/parsers/index.js'

export const PYTHON = '/usr/bin/python3'
const SETUP_HINT = 'run scripts/setup-dev-env.sh (installs python3-h5py, python3-numpy, hdf5-tools)'

/** The repository root (this file compiles to build/test/support/h5py.js). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

/** Directory of the recorded PandA streams (with the reference client's .h5 files beside them). */
export function pandaFixturesDir (): string {
  const dir = join(REPO_ROOT, 'test', 'fixtures', 'panda')
  if (!existsSync(join(dir, 'fast_dump.reference.h5'))) throw new Error(`${dir} has no fast_dump.reference.h5`)
  return dir
}

/** A JSON number, or a string for values JSON cannot hold ('nan', 'inf', '-inf'). */
export type H5Value = number | string

export interface H5DatasetInfo {
  readonly dtype: string
  readonly shape: number[]
  readonly maxshape: Array<number | null>
  readonly chunks: number[] | null
  readonly values: H5Value[]
  readonly attrs: Record<string, unknown>
}

export interface H5FileInfo {
  readonly attrs: Record<string, unknown>
  readonly datasets: Record<string, H5DatasetInfo>
}

const READ_SCRIPT = `
import json, math, sys
import h5py, numpy as np
def conv(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        return [conv(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)
    return v
def info(f):
    out = {'attrs': {k: conv(f.attrs[k]) for k in f.attrs}, 'datasets': {}}
    for name, ds in f.items():
        if isinstance(ds, h5py.Dataset):
            out['datasets'][name] = {
                'dtype': str(ds.dtype), 'shape': list(ds.shape), 'maxshape': list(ds.maxshape),
                'chunks': list(ds.chunks) if ds.chunks else None,
                'values': conv(ds[()]), 'attrs': {k: conv(ds.attrs[k]) for k in ds.attrs}}
    return out
path, swmr = sys.argv[1], sys.argv[2] == '1'
with h5py.File(path, 'r', swmr=swmr) as f:
    print(json.dumps(info(f)))
`

function missing (what: string, err: unknown): Error {
  return new Error(`${what} is not usable (${String(err)}): ${SETUP_HINT}`)
}

/** Throws (so the calling test fails) unless /usr/bin/python3 with h5py and numpy, and h5dump, are installed. */
export function requireHdf5Tools (): void {
  const py = spawnSync(PYTHON, ['-c', 'import h5py, numpy'], { encoding: 'utf8' })
  if (py.error !== undefined || py.status !== 0) throw missing(`${PYTHON} with h5py and numpy`, py.error ?? py.stderr)
  const dump = spawnSync('h5dump', ['--version'], { encoding: 'utf8' })
  if (dump.error !== undefined || dump.status !== 0) throw missing('h5dump', dump.error ?? dump.stderr)
}

/** Run a Python script with h5py available; returns stdout. Throws with stderr when it fails. */
export function runPython (script: string, args: string[] = []): string {
  const r = spawnSync(PYTHON, ['-c', script, ...args], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })
  if (r.error !== undefined) throw missing(PYTHON, r.error)
  if (r.status !== 0) {
    if (/No module named/.test(r.stderr)) throw missing('h5py/numpy', r.stderr.trim())
    throw new Error(`${PYTHON} failed (status ${String(r.status)}): ${r.stderr.trim()}`)
  }
  return r.stdout
}

/** Everything h5py sees in the file's root group: attributes and every dataset with its values. */
export function readWithH5py (path: string, options: { swmr?: boolean } = {}): H5FileInfo {
  return JSON.parse(runPython(READ_SCRIPT, [path, options.swmr === true ? '1' : '0'])) as H5FileInfo
}

export interface H5dumpResult {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

/** `h5dump <path>` (full dump, data included). Throws only when h5dump itself is missing. */
export function h5dump (path: string, args: string[] = []): H5dumpResult {
  const r = spawnSync('h5dump', [...args, path], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })
  if (r.error !== undefined) throw missing('h5dump', r.error)
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** The recorded acquisitions of a PandA dump, as the reference client parsed them (`<name>.expected.json`). */
export interface ExpectedAcquisition {
  readonly fields: Array<{ name: string, type: string, capture: string, scale: number | null, offset: number | null, units: string | null }>
  readonly missed: number
  readonly process: string
  readonly format: string
  readonly sample_bytes: number
  readonly rows: number[][]
  readonly end: { samples: number, reason: string, reason_text: string }
}

export function readExpected (name: string): ExpectedAcquisition[] {
  const text = readFileSync(join(pandaFixturesDir(), `${name}.expected.json`), 'utf8')
  return (JSON.parse(text) as { acquisitions: ExpectedAcquisition[] }).acquisitions
}

const WIRE_TYPES: Record<string, { type: FieldType, bytes: number }> = {
  float64: { type: 'double', bytes: 8 },
  double: { type: 'double', bytes: 8 },
  uint32: { type: 'uint32', bytes: 4 },
  int32: { type: 'int32', bytes: 4 },
  int64: { type: 'int64', bytes: 8 }
}

/** StartData for a recorded acquisition, built from its expected JSON (field offsets computed from the types). */
export function startFromExpected (acq: ExpectedAcquisition): StartData {
  let at = 0
  const fields: FieldInfo[] = acq.fields.map(f => {
    const wire = WIRE_TYPES[f.type]
    if (wire === undefined) throw new Error(`expected JSON: unknown field type ${f.type} for ${f.name}`)
    const info: FieldInfo = {
      name: f.name,
      type: wire.type,
      capture: f.capture,
      scale: f.scale ?? undefined,
      offset: f.offset ?? undefined,
      units: f.units ?? undefined,
      byteOffset: at,
      byteLength: wire.bytes
    }
    at += wire.bytes
    return info
  })
  if (at !== acq.sample_bytes) throw new Error(`expected JSON: fields take ${at} bytes, sample_bytes is ${acq.sample_bytes}`)
  return {
    fields,
    missed: acq.missed,
    process: acq.process,
    format: acq.format,
    sampleBytes: acq.sample_bytes,
    armTime: undefined,
    startTime: undefined,
    hwTimeOffsetNs: undefined,
    attributes: {}
  }
}

/** Pack rows (one number per field, bigint allowed for int64) into the FRAMED row layout of `start`. */
export function packRows (start: StartData, rows: ReadonlyArray<ReadonlyArray<number | bigint>>): FrameData {
  const bytes = new Uint8Array(rows.length * start.sampleBytes)
  const view = new DataView(bytes.buffer)
  rows.forEach((row, r) => {
    start.fields.forEach((f, i) => {
      const v = row[i]
      if (v === undefined) throw new Error(`row ${r} has no value for field ${i} (${f.name})`)
      const at = r * start.sampleBytes + f.byteOffset
      switch (f.type) {
        case 'double': view.setFloat64(at, Number(v), true); break
        case 'uint32': view.setUint32(at, Number(v), true); break
        case 'int32': view.setInt32(at, Number(v), true); break
        case 'int64': view.setBigInt64(at, BigInt(v), true); break
        default: throw new Error(`cannot pack ${f.type}`)
      }
    })
  })
  return { rows: rows.length, bytes }
}
