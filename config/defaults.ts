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
    /**
     * Bound on a worker reporting Ready. A fly scan starts a dozen threads at once (capture and writer per camera and
     * for the PandA, an analysis pool), each loading h5wasm or libca: on 2 busy cores that took more than 10 s.
     */
    readyTimeoutMs: 30_000,
    /** Bound on a worker exiting by itself after close(), before it is terminated. */
    closeTimeoutMs: 30_000,
    /** Bound on a stats or flush request. */
    requestTimeoutMs: 5000
  }),
  /** The camera data path: camera-capture worker, frame ring, frame writer (src/pipeline/camera-*.ts). */
  camera: Object.freeze({
    /** areaDetector record-name parts: the driver (sizes, data type) and the standard-arrays plugin (frames). */
    driver: 'cam1:',
    image: 'image1:',
    /**
     * Frame-ring budget when the caller names no slot count: the largest power of two of slots whose frames fit in
     * this many bytes, within [minSlots, maxSlots]. 128 MiB holds 64 Manta frames (396 KB) or 16 of 8 MiB.
     */
    ringBytes: 128 * 1024 * 1024,
    minSlots: 2,
    maxSlots: 64,
    /** Bound on connecting each camera PV, reading the sizes, and the monitors' first (stale) updates. */
    connectTimeoutMs: 5000,
    /**
     * How long a frame waits for the UniqueId_RBV update with its timestamp (areaDetector posts ArrayData and
     * UniqueId_RBV as two monitors, in either order) before it takes lastUniqueId + 1 and counts as unpaired.
     */
    uniqueIdPairTimeoutMs: 50,
    /** UniqueId_RBV updates kept (by timestamp) for pairing with frames that arrive after them. */
    uniqueIdHistory: 32,
    /** Period of the capture worker's counter reports (received, dropped, gaps) to the supervisor. */
    progressPeriodMs: 250,
    /** Period of the frame writer's flush (readers see frames at least this often) and of its progress reports. */
    flushPeriodMs: 500,
    /** Bound on one blocking wait for a frame in the writer; it returns to its event loop this often. */
    waitSliceMs: 20,
    /**
     * Free bytes the frame writer keeps on the file system beyond the next frame (metadata of the flush and close):
     * below it, writing stops with FLY_ERR_DISK_FULL and the file is closed readable.
     */
    diskReserveBytes: 4 * 1024 * 1024
  }),
  /** Detector devices: arm, disarm and state waits, the stall margin (src/areadetector). */
  detector: Object.freeze({
    /** Bound on each setting write of prepare (a put with completion). */
    putTimeoutMs: 5000,
    /** Bound on a readback (`_RBV`) taking the value prepare wrote. */
    readbackTimeoutMs: 2000,
    /** A numeric readback took the value when |got - wanted| <= max(abs, rel * |wanted|) (cameras round exposures). */
    readbackAbsTolerance: 1e-6,
    readbackRelTolerance: 1e-3,
    /** Bound on arm: after Acquire=1, Acquire_RBV = 1 (or DetectorState Acquire/Waiting). */
    armTimeoutMs: 5000,
    /** Bound on disarm: after Acquire=0, DetectorState back to Idle (or Aborted). */
    disarmTimeoutMs: 5000,
    /** Bound on the camera going idle by itself (Acquire_RBV = 0) once every frame is on disk. */
    idleTimeoutMs: 10_000,
    /** Bound on the reads that explain a stall (DetectorState, StatusMessage, ArrayCounter). */
    diagnoseTimeoutMs: 2000,
    /**
     * The stall watchdog's margin: no new frame for livetime + deadtime + this fails complete() (STALLED). It must
     * cover the longest gap the trigger source leaves on purpose (a motor's run-up, a PandA's gap between windows).
     */
    stallMarginMs: 5000,
    /** How often complete() looks at the writer's counters (progress and the stall watchdog). */
    progressPollMs: 50,
    /** complete() re-asks the controller for a detector error this often (each ask bounded by this). */
    errorWatchSliceMs: 1000,
    /** Bound on each controller call (prepare, arm, disarm) and writer call (open, close, abort) of a StandardDetector. */
    partTimeoutMs: 30_000,
    /** AcquireTime limits (s) used when the IOC gives none (control limits 0..0): the simulated Manta's. */
    minExposureS: 10e-6,
    maxExposureS: 60
  }),
  /** Live analysis in a piscina pool: ROI statistics, edge fits (src/analysis). */
  analysis: Object.freeze({
    /** Threads in the pool: one on a 2-core machine, where the capture and writer workers need the other core. */
    threads: 1,
    /**
     * ROI buffers (SharedArrayBuffers, allocated once) = most ROI tasks in flight. A frame that finds every buffer
     * busy is skipped and counted: analysis never slows acquisition.
     */
    roiBuffers: 4,
    /** Bytes per ROI buffer: the largest ROI bounding box accepted (8 MiB holds a whole 2048×2048 uint16 frame). */
    roiBufferBytes: 8 * 1024 * 1024,
    /** Bound on close() waiting for the tasks in flight; after it the pool's threads are terminated. */
    closeTimeoutMs: 10_000,
    /** Edge fit: fewest distinct energies accepted. */
    edgeMinPoints: 8,
    /** Edge fit: the step must exceed this many times the noise (estimated from second differences), else no edge. */
    edgeMinSnr: 5,
    /** Edge fit: the derivative is smoothed over about this fraction of the distinct energies (at least 3 points). */
    edgeSmoothFraction: 0.02,
    /** Edge fit: most Levenberg-Marquardt iterations of the arctan-step refinement. */
    edgeMaxIterations: 200
  }),
  /** The fly-scan timing report and stall watchdog (src/fly/timing.ts). */
  timing: Object.freeze({
    /** Period of the coordinator's poll that feeds the TimingMonitor and checks it for stalls (the stall check's resolution). */
    pollPeriodMs: 100,
    /**
     * Added to the PandA's trigger period and the writer's flush period (rows are reported at each flush) to make
     * its stall timeout: no new row on disk for that long fails the scan.
     */
    pandaStallMarginMs: 2000,
    /** Bound on the parts' complete() ending once the coordinator stopped them after a failure (the scan fails either way). */
    settleTimeoutMs: 30_000
  }),
  /** IOC-writer mode: the IOC's HDF1 plugin writes the file; the simulated plugin's file writing (src/areadetector/ioc-hdf-writer.ts). */
  iocWriter: Object.freeze({
    /** Bound on each HDF1 setting write of open() (FilePath, FileName, ...; a put with completion). */
    putTimeoutMs: 5000,
    /** Bound on Capture_RBV reaching 1 after Capture=1 (open), and 0 after Capture=0 (close). */
    captureTimeoutMs: 5000,
    /** Bound on close() waiting for NumCaptured_RBV to catch up with the frames the plugin received. */
    drainTimeoutMs: 5000,
    /** Bound on the warm-up's one internal frame: Acquire=1 with completion. */
    warmupAcquireTimeoutMs: 10_000,
    /** Exposure of the warm-up's one internal frame, seconds (the camera's own AcquireTime is put back after). */
    warmupExposureS: 0.001,
    /** Bound on HDF1:ArraySize0_RBV becoming non-zero after the warm-up frame. */
    warmupArrayTimeoutMs: 2000,
    /** How often a readback that is waited for is read again (Capture_RBV, NumCaptured_RBV, ArraySize0_RBV). */
    pollPeriodMs: 20,
    /** The simulated HDF1 plugin flushes its open file this long after the first unflushed frame (a reader follows). */
    simFlushPeriodMs: 200
  }),
  /** The embedded simulated beamline: simulated IOC and PandA in one process (src/sim/beamline.ts). */
  sim: Object.freeze({
    /**
     * `tst-fly sim-beamline`'s ports when none are given: where config/sim.yaml's ca.addrList (CA's standard 5064,
     * search and circuits on one port as an IOC has them) and its panda1 entry (a PandABox's 8888 and 8889) point.
     * SimBeamline.start itself defaults to free ports.
     */
    cliCaPort: 5064,
    cliPandaControlPort: 8888,
    cliPandaDataPort: 8889,
    /** How often the simulated PandA's blocks catch up with the clock, ms: trigger edges reach the cameras this late at most. */
    pandaStepMs: 1
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
