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
    connectTimeoutMs: 5000,
    /** The capture worker's socket read buffer (one, reused: no allocation per read). */
    readBufferBytes: 1024 * 1024,
    /** Bound on a control-port command waiting with no byte of reply (the connection is closed after it). */
    controlReplyTimeoutMs: 5000,
    /** Bound on PCAP.ACTIVE becoming 1 after `*PCAP.ARM=` (kickoff). */
    armTimeoutMs: 5000,
    /** Bound on PCAP.ACTIVE becoming 0 after `*PCAP.DISARM=` (disarm, stop, unstage), and after the END line (complete). */
    disarmTimeoutMs: 5000,
    /**
     * Bound on the box counting our data connection as a reader (`*PCAP.STATUS?`) after prepare connects it: the
     * server registers a reader once it has read the options line, and only readers it knows at arm get the header.
     */
    dataClientTimeoutMs: 5000,
    /** Period of PCAP.ACTIVE polls while waiting for it to change. */
    activePollPeriodMs: 20,
    /** Added to a scan's expected capture time (twice over) to bound complete(); a prepare value may give its own. */
    completeMarginMs: 60_000,
    /** Bound on the data-port pipeline finishing its file after the capture ended. */
    pipelineCloseTimeoutMs: 30_000,
    /** TST's rotation-stage encoder: 8000 counts per revolution (22.22 counts per degree). */
    encoderCountsPerRev: 8000,
    /** What the data port carries before `Data overrun` (DESIGN.md §6 measured 50-60 MB/s); requests above it are refused. */
    maxDataRateBytesPerS: 50_000_000,
    /** XAS: degrees between the parked stage (PCOMP enabled at kickoff) and the window start (TST's `pre_start_deg`). */
    xasRunUpDeg: 5,
    /** XAS: low time at the end of each clock period (TST's `reset_time`, 1 µs). */
    xasClockResetTimeS: 1e-6
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
    /**
     * Bytes per block appended to the datasets (all columns together): every resize + write_slice costs about the
     * same whatever its size, so blocks are big; measured here, 8 MiB blocks write ~2x faster than 2 MiB ones. The
     * periodic flush writes partial blocks, so a slow scan's rows still reach the file within flushPeriodMs.
     */
    blockBytes: 8 * 1024 * 1024,
    /** Fewest and most rows per block, whatever the row size (h5wasm wants 10,000 rows or more per call). */
    minBlockRows: 10_000,
    maxBlockRows: 1_048_576,
    /** HDF5 chunk length in rows (capped at the block length): 512 KiB per float64 dataset. */
    chunkRows: 65_536,
    /** Period of the writer's flush (SWMR readers see data at least this often). */
    flushPeriodMs: 1000,
    /** Bound on one blocking wait for ring data in the writer; it returns to its event loop this often. */
    waitSliceMs: 20
  }),
  devices: Object.freeze({
    /** Bound on connecting a device tree (every signal of every child, in parallel), and on a set/trigger with no timeout of its own. */
    defaultTimeoutMs: 10_000,
    /** Period of a simulated motor's readback updates while it moves. */
    simMotorUpdatePeriodMs: 20,
    /** A simulated motor's velocity (units/s) when the config names none: TST plans restore rot_motor to 90 deg/s. */
    simMotorVelocity: 90
  }),
  ca: Object.freeze({
    /**
     * EPICS_CA_MAX_ARRAY_BYTES when neither the config nor the environment sets it: 16 MiB holds an 8 MiB camera
     * frame or 1,000,000 doubles (8 MB) with room to spare (docs/channel-access.md).
     */
    maxArrayBytes: 16 * 1024 * 1024,
    /** Bound on a Channel Access get (libca itself never times out a request on a live circuit). */
    getTimeoutMs: 10_000,
    /** Bound on waiting for the servers to close their circuits when a CA context is destroyed. */
    circuitCloseTimeoutMs: 2000,
    /** tst-fly's CA repeater exits after this long with no live client registered (docs/channel-access.md). */
    repeaterIdleExitMs: 60_000,
    /**
     * ...but never sooner than this after it started: libca registers 10 s after it started the repeater
     * (repeaterSubscribeTimer.cpp), then every second until confirmed.
     */
    repeaterStartGraceMs: 15_000,
    /** How often the repeater checks that its clients still hold their UDP ports (caRepeater's bind test). */
    repeaterCheckIntervalMs: 5000
  }),
  workers: Object.freeze({
    /** Bound on a worker reporting Ready. */
    readyTimeoutMs: 10_000,
    /** Bound on a worker exiting by itself after close(), before it is terminated. */
    closeTimeoutMs: 30_000,
    /** Bound on a stats or flush request. */
    requestTimeoutMs: 5000
  }),
  motor: Object.freeze({
    /**
     * Added to a motor move's expected duration (|distance| / VELO + 2 x ACCL) to bound set() when the caller gives
     * no timeout: ophyd-async adds its DEFAULT_TIMEOUT, 10 s, the same way (epics/motor.py calculate_timeout).
     */
    moveTimeoutMarginMs: 10_000
  })
})

export type Defaults = typeof defaults
