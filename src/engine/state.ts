/**
 * The RunEngine's states and the only transitions allowed between them (bluesky's RunEngineStateMachine).
 * `panicked` is terminal: the engine can no longer vouch for its documents or devices.
 */
import { ErrorCode, FlyScanError } from '../errors.js'
import { silentLogger, type EngineLogger } from './types.js'

export type EngineState =
  | 'idle' | 'running' | 'pausing' | 'paused' | 'halting' | 'stopping' | 'aborting' | 'suspending' | 'panicked'

export const ENGINE_STATES: readonly EngineState[] =
  ['idle', 'running', 'pausing', 'paused', 'halting', 'stopping', 'aborting', 'suspending', 'panicked']

/** from → the states it may go to. */
export const TRANSITIONS: Readonly<Record<EngineState, readonly EngineState[]>> = {
  idle: ['running', 'panicked'],
  running: ['idle', 'pausing', 'halting', 'stopping', 'aborting', 'suspending', 'panicked'],
  pausing: ['paused', 'idle', 'halting', 'aborting', 'panicked'],
  suspending: ['running', 'halting', 'aborting', 'panicked'],
  paused: ['idle', 'running', 'halting', 'stopping', 'aborting', 'panicked'],
  halting: ['idle', 'panicked'],
  stopping: ['idle', 'panicked'],
  aborting: ['idle', 'panicked'],
  panicked: []
}

export function canTransition (from: EngineState, to: EngineState): boolean {
  return TRANSITIONS[from].includes(to)
}

export interface TransitionRecord { readonly from: EngineState, readonly to: EngineState, readonly why: string }

export class StateMachine {
  #state: EngineState = 'idle'
  readonly #logger: EngineLogger
  readonly #listeners: Array<(record: TransitionRecord) => void> = []

  constructor (logger: EngineLogger = silentLogger) {
    this.#logger = logger
  }

  get state (): EngineState { return this.#state }

  /** Calls `cb` after every transition; returns the function that stops it. */
  onTransition (cb: (record: TransitionRecord) => void): () => void {
    this.#listeners.push(cb)
    return () => {
      const i = this.#listeners.indexOf(cb)
      if (i >= 0) this.#listeners.splice(i, 1)
    }
  }

  /** Moves to `to`, or throws FLY_ERR_ENGINE_STATE naming from, to and the allowed targets. */
  transition (to: EngineState, why = ''): void {
    const from = this.#state
    if (!canTransition(from, to)) {
      const allowed = TRANSITIONS[from]
      throw new FlyScanError(ErrorCode.ENGINE_STATE,
        `RunEngine cannot go from ${from} to ${to}${why === '' ? '' : ` (${why})`}; from ${from} it may go to: ${allowed.length === 0 ? 'nothing (terminal)' : allowed.join(', ')}`,
        { details: { from, to, allowed: allowed.join(',') } })
    }
    this.#state = to
    this.#logger.info(`RunEngine ${from} -> ${to}${why === '' ? '' : `: ${why}`}`, { from, to, why })
    for (const cb of [...this.#listeners]) cb({ from, to, why })
  }
}
