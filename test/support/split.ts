/**
 * Chunkings of a byte stream for parser tests: the whole buffer, every split offset k into two chunks, one byte
 * at a time, and seeded random chunkings. Each chunking is a list of fresh copies (so a parser that kept a view
 * of a chunk after push() returned would see the test scribble over it).
 */

export interface Chunking {
  /** e.g. `whole`, `split@17`, `bytes`, `random#3(seed 42)` */
  readonly name: string
  readonly chunks: readonly Uint8Array[]
}

/** A small seeded PRNG (mulberry32): the same seed gives the same chunkings on every run. */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function copies (buf: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = []
  let prev = 0
  for (const c of [...cuts, buf.length]) {
    if (c > prev) out.push(buf.slice(prev, c))
    prev = c
  }
  return out
}

export function whole (buf: Uint8Array): Chunking {
  return { name: 'whole', chunks: [buf.slice()] }
}

/** Two chunks, split at every offset 1..length-1. */
export function * everySplit (buf: Uint8Array): Generator<Chunking> {
  for (let k = 1; k < buf.length; k++) yield { name: `split@${k}`, chunks: copies(buf, [k]) }
}

export function oneByte (buf: Uint8Array): Chunking {
  const cuts: number[] = []
  for (let k = 1; k < buf.length; k++) cuts.push(k)
  return { name: 'bytes', chunks: copies(buf, cuts) }
}

/** `count` random chunkings; chunk sizes mix tiny (1-8), small (up to 64) and large (up to maxChunk) pieces. */
export function * randomChunkings (buf: Uint8Array, count: number, seed = 42, maxChunk = 4096): Generator<Chunking> {
  const rand = prng(seed)
  for (let n = 0; n < count; n++) {
    const cuts: number[] = []
    let pos = 0
    for (;;) {
      const r = rand()
      const size = r < 0.4 ? 1 + Math.floor(rand() * 8) : r < 0.8 ? 1 + Math.floor(rand() * 64) : 1 + Math.floor(rand() * maxChunk)
      pos += size
      if (pos >= buf.length) break
      cuts.push(pos)
    }
    yield { name: `random#${n}(seed ${seed})`, chunks: copies(buf, cuts) }
  }
}

/** Every chunking above: whole, every split offset, one byte at a time, then `randomCount` random ones. */
export function * allChunkings (buf: Uint8Array, randomCount = 20, seed = 42): Generator<Chunking> {
  yield whole(buf)
  yield * everySplit(buf)
  yield oneByte(buf)
  yield * randomChunkings(buf, randomCount, seed)
}
