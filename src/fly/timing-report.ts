/**
 * The timing report for the console: the verdict first, then one line per camera, the PandA, frames against rows and
 * the TS_TRIG deltas, then one line per problem. Every part has its line even when it is not in the scan, so the
 * shape never changes:
 *
 *   timing    ok in 12.3 s, 0 problems
 *   manta1    frames 721 of 721 received, 721 written, 0 dropped, 0 UniqueId gaps, ArrayCounter 721
 *   panda1    rows 721 of 721 ± 0
 *   frames    721 frames (manta1) for 721 rows, up to 0 extra allowed: ok
 *   TS_TRIG   720 deltas µs: nominal 41667, p50 41667, p90 41667, p99 41667, p99.9 41667, min 41667, max 41667, jitter 0
 */
import type { TimingReport } from './timing.js'

/** The narrowest label column (wider when a device's name needs it). */
const LABEL = 10

const orUnknown = (v: number | null): string => (v === null ? 'unknown' : String(v))

export function formatTimingReport (r: TimingReport): string {
  const width = Math.max(LABEL, ...r.cameras.map((c) => c.name.length + 2), (r.panda?.name.length ?? 0) + 2)
  const row = (label: string, text: string): string => `${label.padEnd(width - 1)} ${text}`
  const n = r.problems.length
  const lines = [row('timing', `${r.verdict} in ${r.durationS} s, ${n} problem${n === 1 ? '' : 's'}`)]
  if (r.cameras.length === 0) lines.push(row('cameras', 'none'))
  for (const c of r.cameras) {
    lines.push(row(c.name, `frames ${c.received} of ${c.expected > 0 ? c.expected : 'unknown'} received, ${c.written} written, ` +
      `${c.dropped} dropped, ${c.uniqueIdGaps} UniqueId gaps, ArrayCounter ${orUnknown(c.arrayCounter)}`))
  }
  const p = r.panda
  lines.push(p === null ? row('panda', 'none') : row(p.name, `rows ${p.rows} of ${orUnknown(p.expectedRows)} ± ${p.rowTolerance}`))
  const f = r.framesVsRows
  lines.push(row('frames', f === null
    ? 'not compared with rows'
    : `${f.frames} frames (${f.camera}) for ${f.rows} rows, up to ${f.extraAllowed} extra allowed: ${f.ok ? 'ok' : 'MISMATCH'}`))
  const t = r.tsTrig
  lines.push(row('TS_TRIG', t === null
    ? 'not captured'
    : `${t.count} deltas µs: nominal ${orUnknown(t.nominalUs)}, p50 ${t.p50}, p90 ${t.p90}, p99 ${t.p99}, p99.9 ${t.p999}, ` +
      `min ${t.min}, max ${t.max}, jitter ${t.jitterUs}`))
  for (const problem of r.problems) lines.push(row('problem', problem))
  return lines.join('\n')
}
