/**
 * Every named number tst-fly uses by default: ring sizes, timeouts, block and flush sizes, ports. The single source
 * of numbers; code takes them from here (or from a loaded config that overrides them), never from a literal.
 */
export const defaults = Object.freeze({
  panda: Object.freeze({
    /** The PandABox data port. */
    dataPort: 8889,
    /** The PandABox control port. */
    controlPort: 8888,
    /** Bound on connecting to the data port. */
    connectTimeoutMs: 5000
  }),
  ring: Object.freeze({
    /**
     * PandA → writer ring. The socket is never paused, so this must absorb the writer's worst stall at the box's
     * full rate: 64 MiB is ~1 s at 60 MB/s (a PandABox's data port) and ~0.2 s at 300 MB/s (replay at bench speed).
     */
    pandaBytes: 64 * 1024 * 1024,
    /** Largest single PandA record; socket reads larger than this are split at row boundaries. */
    pandaMaxRecordBytes: 4 * 1024 * 1024
  }),
  hdf5: Object.freeze({
    /** Rows per block appended to each dataset: every resize + write_slice costs 0.1-0.6 ms whatever its size, so big blocks (the periodic flush writes partial ones, bounding latency). */
    blockRows: 65_536,
    /** Period of the writer's flush (SWMR readers see data at least this often). */
    flushPeriodMs: 1000,
    /** Bound on one blocking wait for ring data in the writer; it returns to its event loop this often. */
    waitSliceMs: 20
  }),
  workers: Object.freeze({
    /** Bound on a worker reporting Ready. */
    readyTimeoutMs: 10_000,
    /** Bound on a worker exiting by itself after close(), before it is terminated. */
    closeTimeoutMs: 30_000,
    /** Bound on a stats or flush request. */
    requestTimeoutMs: 5000
  })
})

export type Defaults = typeof defaults
