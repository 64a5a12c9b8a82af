/**
 * Detectors that fly (ophyd-async's StandardDetector split, camelCased): what a plan asks of a detector
 * (`TriggerInfo`), and the two parts a detector is built from — the controller (trigger and acquire: PVs, arm,
 * disarm, state checks) and the writer (data: where frames go, how many are on disk, the stream documents).
 *
 * Units: times in TriggerInfo are seconds (as ophyd-async's); every timeout passed to a method is milliseconds.
 */
import { ErrorCode, FlyScanError } from '../../errors.js'
import type { DataKey, StreamAsset } from './protocols.js'

/**
 * How the detector is triggered (ophyd-async's DetectorTrigger):
 * - internal: the detector runs at its own rate (AcquirePeriod);
 * - edge_trigger: one exposure of `livetime` per rising edge of an external trigger (Manta: Line1, ExposureMode Timed);
 * - constant_gate: the trigger's high time is the exposure, every gate the same length (Manta: TriggerWidth);
 * - variable_gate: as constant_gate, gates of different lengths.
 */
export const DETECTOR_TRIGGERS = ['internal', 'edge_trigger', 'constant_gate', 'variable_gate'] as const
export type DetectorTrigger = typeof DETECTOR_TRIGGERS[number]

/** What a detector must do during one fly scan (ophyd-async's TriggerInfo). */
export interface TriggerInfo {
  /** Events the scan collects (frames = numberOfEvents × exposuresPerEvent); 0 means "until disarmed". */
  readonly numberOfEvents: number
  readonly trigger: DetectorTrigger
  /** Exposure time per frame, seconds; undefined for gates (the gate sets it) or "keep the detector's". */
  readonly livetime?: number
  /** Seconds between the end of one exposure and the earliest next trigger; default: the detector's deadtime for the livetime. */
  readonly deadtime?: number
  /** Frames per event (default 1). */
  readonly exposuresPerEvent?: number
  /**
   * Bound on waiting for the first frame after arm, seconds (e.g. the motor's run-up before the first trigger).
   * Default: the stall timeout.
   */
  readonly exposureTimeout?: number
}

/** Throw BAD_INPUT naming `device` and the field if `info` is not a TriggerInfo that can be acted on. */
export function checkTriggerInfo (info: TriggerInfo, device: string): void {
  const bad = (what: string): FlyScanError => new FlyScanError(ErrorCode.BAD_INPUT, `${device}: TriggerInfo ${what}`, { details: { device } })
  if (typeof info !== 'object' || info === null) throw bad(`must be an object (got ${String(info)})`)
  if (!Number.isInteger(info.numberOfEvents) || info.numberOfEvents < 0) throw bad(`numberOfEvents must be an integer >= 0 (got ${String(info.numberOfEvents)})`)
  if (!(DETECTOR_TRIGGERS as readonly string[]).includes(info.trigger)) throw bad(`trigger must be one of ${DETECTOR_TRIGGERS.join(', ')} (got ${String(info.trigger)})`)
  for (const key of ['livetime', 'deadtime', 'exposureTimeout'] as const) {
    const v = info[key]
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v >= 0)) throw bad(`${key} must be a number of seconds >= 0 (got ${String(v)})`)
  }
  const e = info.exposuresPerEvent
  if (e !== undefined && !(Number.isInteger(e) && e >= 1)) throw bad(`exposuresPerEvent must be an integer >= 1 (got ${String(e)})`)
}

/** Frames the detector should produce for `info`: numberOfEvents × exposuresPerEvent (0: unbounded). */
export function framesFor (info: TriggerInfo): number {
  return info.numberOfEvents * (info.exposuresPerEvent ?? 1)
}

/**
 * The stall bound of ophyd-async issues 1114 and 1151 (a scan that waited forever for a frame that never came): no
 * new frame for livetime + deadtime + margin fails the scan. `livetime` falls back to 0 (gates: the trigger's period
 * bounds it from the PandA side), so the margin must cover the longest gap the trigger source makes on purpose.
 */
export function stallTimeoutMs (info: TriggerInfo, deadtimeS: number, marginMs: number): number {
  return Math.ceil(((info.livetime ?? 0) + (info.deadtime ?? deadtimeS)) * 1000 + marginMs)
}

/**
 * The trigger-and-acquire part of a detector (ophyd-async's DetectorController): turns TriggerInfo into settings,
 * starts and stops acquisition, and checks the detector's state.
 */
export interface DetectorController {
  /** Deadtime (s) of this detector at `exposure` s (Manta: the model's readout time, DESIGN.md §7). */
  getDeadtime (exposure: number | undefined): number
  /** Write the settings for `info` (trigger mode and source, exposure, image count); nothing is acquired yet. */
  prepare (info: TriggerInfo): Promise<void>
  /** Start acquiring (Acquire=1) and resolve once the detector is waiting for triggers (or running, internal). */
  arm (): Promise<void>
  /** Resolve when the acquisition ended by itself (the image count reached); reject on a detector error state. */
  waitForIdle (timeoutMs: number): Promise<void>
  /** Stop acquiring (Acquire=0) and resolve once the detector is idle. Safe when not armed. */
  disarm (): Promise<void>
}

/** Counters of the frames a writer has seen, for progress bars and the timing report. */
export interface FrameCounters {
  /** Frames that arrived from the detector (monitor updates, or the IOC plugin's count). */
  readonly received: number
  /** Frames on disk (flushed or written). */
  readonly written: number
  /** Frames lost between arrival and disk (a full frame ring). */
  readonly dropped: number
  /** Frames missing by UniqueId: sum of (jump - 1) over every jump in UniqueId between consecutive frames. */
  readonly uniqueIdGaps: number
  /** UniqueId of the first and last frame received (undefined before any). */
  readonly firstUniqueId: number | undefined
  readonly lastUniqueId: number | undefined
  /** Bytes of frame data written. */
  readonly bytesWritten: number
}

/**
 * The data part of a detector (ophyd-async's DetectorWriter): opens where frames go for one scan, reports how many
 * are on disk, emits stream_resource / stream_datum, and closes.
 */
export interface DetectorWriter {
  /**
   * Open the file for the next scan of `name` with `framesPerEvent` frames per event; returns the data keys
   * (`external: 'STREAM:'`) the descriptor gets. `expectedFrames` (0: unknown) sizes the file and bounds progress.
   */
  open (name: string, framesPerEvent: number, expectedFrames: number): Promise<Record<string, DataKey>>
  /** Events complete on disk (frames written / framesPerEvent). */
  getIndicesWritten (): Promise<number>
  /** The live counters (synchronous, for progress and stall checks). */
  counters (): FrameCounters
  /** stream_resource (once per data key) and stream_datum up to `indicesWritten`. */
  collectStreamDocs (name: string, indicesWritten: number): AsyncIterable<StreamAsset>
  /** Finish the file with what has arrived (waits for frames already in flight); idempotent. */
  close (): Promise<void>
  /** Stop now: frames in flight may be lost, the file is closed readable; idempotent. */
  abort (reason: string): Promise<void>
}
