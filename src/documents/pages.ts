/**
 * Events ↔ event pages: a page is the columnar form of consecutive events of one descriptor (event-model's
 * pack_event_page / unpack_event_page).
 */
import { ErrorCode, FlyScanError } from '../errors.js'
import type { Event, EventPage } from './types.js'

/** Pack events of one descriptor (at least one, all with the same data keys) into a page, in the given order. */
export function packEventPage (events: readonly Event[]): EventPage {
  const first = events[0]
  if (first === undefined) throw new FlyScanError(ErrorCode.BAD_INPUT, 'packEventPage: no events to pack')
  const keys = Object.keys(first.data)
  const filledKeys = Object.keys(first.filled)
  const page = {
    descriptor: first.descriptor,
    uid: [] as string[],
    time: [] as number[],
    seq_num: [] as number[],
    data: Object.fromEntries(keys.map(k => [k, [] as unknown[]])),
    timestamps: Object.fromEntries(keys.map(k => [k, [] as number[]])),
    filled: Object.fromEntries(filledKeys.map(k => [k, [] as Array<boolean | string>]))
  }
  for (const event of events) {
    if (event.descriptor !== first.descriptor) {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `packEventPage: event ${event.uid} has descriptor ${event.descriptor}, not ${first.descriptor}`, { details: { uid: event.uid } })
    }
    const eventKeys = Object.keys(event.data)
    if (eventKeys.length !== keys.length || !eventKeys.every(k => Object.hasOwn(first.data, k))) {
      throw new FlyScanError(ErrorCode.BAD_INPUT, `packEventPage: event ${event.uid} has data keys ${eventKeys.join(', ')}, not ${keys.join(', ')}`, { details: { uid: event.uid } })
    }
    page.uid.push(event.uid)
    page.time.push(event.time)
    page.seq_num.push(event.seq_num)
    for (const k of keys) {
      const ts = event.timestamps[k]
      if (ts === undefined) throw new FlyScanError(ErrorCode.BAD_INPUT, `packEventPage: event ${event.uid} has no timestamp for ${JSON.stringify(k)}`, { details: { uid: event.uid, key: k } })
      page.data[k]?.push(event.data[k])
      page.timestamps[k]?.push(ts)
    }
    for (const k of filledKeys) {
      const f = event.filled[k]
      if (f === undefined) throw new FlyScanError(ErrorCode.BAD_INPUT, `packEventPage: event ${event.uid} has no filled entry for ${JSON.stringify(k)}`, { details: { uid: event.uid, key: k } })
      page.filled[k]?.push(f)
    }
  }
  return page
}

/** Unpack a page into its events, in row order. */
export function unpackEventPage (page: EventPage): Event[] {
  const rows = page.seq_num.length
  if (page.uid.length !== rows || page.time.length !== rows) {
    throw new FlyScanError(ErrorCode.BAD_INPUT, `unpackEventPage: page of descriptor ${page.descriptor} has ${page.uid.length} uids, ${page.time.length} times and ${rows} seq_nums`, { details: { descriptor: page.descriptor } })
  }
  const column = <T>(cols: Record<string, T[]>, what: string): Array<[string, T[]]> => Object.entries(cols).map(([k, v]) => {
    if (v.length !== rows) throw new FlyScanError(ErrorCode.BAD_INPUT, `unpackEventPage: ${what} column ${JSON.stringify(k)} has ${v.length} rows, expected ${rows}`, { details: { key: k } })
    return [k, v]
  })
  const data = column(page.data, 'data')
  const timestamps = column(page.timestamps, 'timestamps')
  const filled = column(page.filled, 'filled')
  const events: Event[] = []
  for (let i = 0; i < rows; i++) {
    events.push({
      uid: page.uid[i] as string,
      time: page.time[i] as number,
      descriptor: page.descriptor,
      seq_num: page.seq_num[i] as number,
      data: Object.fromEntries(data.map(([k, v]) => [k, v[i]])),
      timestamps: Object.fromEntries(timestamps.map(([k, v]) => [k, v[i] as number])),
      filled: Object.fromEntries(filled.map(([k, v]) => [k, v[i] as boolean | string]))
    })
  }
  return events
}
