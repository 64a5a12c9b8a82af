/**
 * The fly scan's progress bar: frames and rows on disk against what the scan expects, and the frame data rate.
 *
 *   [#############-------------]  52%  frames 377/721  rows 377/721  48.1 MB/s  3.9 s
 *
 * On a terminal the line is redrawn in place every periodMs; elsewhere (a log file, CI) a line is written every
 * logPeriodMs, and a last one when the scan ends, so that logs stay short.
 */
import type { FlyScanProgress } from '../fly/index.js'

/** What the bar shows: a FlyScan's progress(). */
export type ProgressSample = FlyScanProgress

export interface ProgressBarOptions {
  readonly sample: () => ProgressSample
  readonly write: (text: string) => void
  /** Redraw in place with '\r' (a terminal), or write whole lines now and then. */
  readonly tty: boolean
  readonly periodMs?: number
  readonly logPeriodMs?: number
  readonly width?: number
}

const BAR_WIDTH = 26

/** One progress line (no newline); the MB/s is the average since kickoff. */
export function formatProgress (s: ProgressSample, width = BAR_WIDTH): string {
  const target = s.expectedFrames + (s.expectedRows ?? 0)
  const done = s.frames + s.rows
  const fraction = target > 0 ? Math.min(1, done / target) : 0
  const filled = Math.round(fraction * width)
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`
  const pct = `${Math.floor(fraction * 100)}%`.padStart(4)
  const rate = s.elapsedS > 0 ? s.bytes / s.elapsedS / 1e6 : 0
  const parts = [bar, pct]
  if (s.expectedFrames > 0 || s.frames > 0) parts.push(`frames ${s.frames}/${s.expectedFrames}`)
  if (s.expectedRows !== undefined || s.rows > 0) parts.push(`rows ${s.rows}/${s.expectedRows ?? '?'}`)
  parts.push(`${rate.toFixed(1)} MB/s`, `${s.elapsedS.toFixed(1)} s`)
  return parts.join('  ')
}

/** Starts drawing; the returned function draws the final state and stops (idempotent). */
export function startProgressBar (options: ProgressBarOptions): () => void {
  const periodMs = options.tty ? options.periodMs ?? 200 : options.logPeriodMs ?? 2000
  let last = ''
  const draw = (final: boolean): void => {
    const line = formatProgress(options.sample(), options.width)
    if (options.tty) {
      options.write(`\r${line}${final ? '\n' : ''}`)
    } else if (final || line !== last) {
      options.write(line + '\n')
    }
    last = line
  }
  const timer = setInterval(() => { draw(false) }, periodMs)
  timer.unref()
  let stopped = false
  return () => {
    if (stopped) return
    stopped = true
    clearInterval(timer)
    draw(true)
  }
}
