/**
 * The in-process document bus (bluesky's RunEngine.subscribe / dispatcher): subscribers get every document, or the
 * documents of one name, synchronously and in emission order.
 *
 * A subscriber that throws is isolated: the others still get the document and later documents are still delivered
 * to it. The error is reported to `onError` (default: a process warning) and kept in `errors` (the most recent
 * 100), so a caller (the RunEngine, a test) can check it after a run. Emitting never throws because of a subscriber.
 *
 * A document emitted from inside a subscriber is queued and delivered after the current one has reached every
 * subscriber, so every subscriber sees the same order.
 */
import type { Document, DocumentCallback, DocumentName, DocumentOf, NamedDocument } from './types.js'

export interface SubscriberError {
  readonly token: number
  readonly name: DocumentName
  /** The uid of the document (its descriptor for an event page, which has no single uid). */
  readonly uid: string
  readonly error: unknown
}

export interface DocumentRouterOptions {
  /** Called for each error a subscriber throws (default: process.emitWarning). */
  readonly onError?: (err: SubscriberError) => void
}

const KEPT_ERRORS = 100

interface Subscription {
  readonly token: number
  readonly cb: DocumentCallback
  readonly name: DocumentName | undefined
}

function documentUid (name: DocumentName, doc: Document): string {
  if (name === 'event_page') return (doc as DocumentOf<'event_page'>).descriptor
  return (doc as { uid: string }).uid
}

export class DocumentRouter {
  readonly #subs = new Map<number, Subscription>()
  readonly #queue: NamedDocument[] = []
  readonly #errors: SubscriberError[] = []
  readonly #onError: (err: SubscriberError) => void
  #nextToken = 1
  #delivering = false
  #errorCount = 0

  constructor (options: DocumentRouterOptions = {}) {
    this.#onError = options.onError ?? ((e) => {
      const message = e.error instanceof Error ? e.error.message : String(e.error)
      process.emitWarning(`document subscriber ${e.token} threw on ${e.name} ${e.uid}: ${message}`, 'DocumentSubscriberWarning')
    })
  }

  /** Subscribe to every document, or to those of one name. Returns the token for unsubscribe. */
  subscribe (cb: DocumentCallback, name?: DocumentName): number {
    const token = this.#nextToken++
    this.#subs.set(token, { token, cb, name })
    return token
  }

  /** Stop delivering to a subscription; an unknown token is ignored. Takes effect for the next delivery. */
  unsubscribe (token: number): void {
    this.#subs.delete(token)
  }

  get subscriberCount (): number {
    return this.#subs.size
  }

  /** The most recent subscriber errors (up to 100), oldest first. */
  get errors (): readonly SubscriberError[] {
    return this.#errors
  }

  /** How many subscriber errors there have been in all. */
  get errorCount (): number {
    return this.#errorCount
  }

  emit<N extends DocumentName> (name: N, doc: DocumentOf<N>): void {
    this.#queue.push([name, doc] as NamedDocument)
    if (this.#delivering) return
    this.#delivering = true
    try {
      for (let item = this.#queue.shift(); item !== undefined; item = this.#queue.shift()) this.#deliver(item)
    } finally {
      this.#delivering = false
    }
  }

  #deliver (item: NamedDocument): void {
    for (const sub of [...this.#subs.values()]) {
      if (sub.name !== undefined && sub.name !== item[0]) continue
      if (!this.#subs.has(sub.token)) continue // unsubscribed by an earlier subscriber of this document
      try {
        sub.cb(item[0], item[1] as DocumentOf<typeof item[0]>)
      } catch (error) {
        this.#report({ token: sub.token, name: item[0], uid: documentUid(item[0], item[1]), error })
      }
    }
  }

  #report (err: SubscriberError): void {
    this.#errorCount++
    this.#errors.push(err)
    if (this.#errors.length > KEPT_ERRORS) this.#errors.shift()
    try {
      this.#onError(err)
    } catch {
      // An onError that throws must not stop delivery either; the error is already in `errors`.
    }
  }
}
