/**
 * Plans are generators of plain `Msg` values (bluesky's Msg, one variant per command). The engine answers each
 * message by sending a response back into the generator (see docs/engine.md for the command table).
 */
import type { DocumentCallback, Suspender } from './types.js'

/** A device, or any object a command acts on. The engine checks capabilities (set, read, stop...) at run time. */
export type Obj = object

export interface OpenRunMsg { readonly command: 'open_run', readonly metadata: Readonly<Record<string, unknown>> }
export interface CloseRunMsg { readonly command: 'close_run', readonly exitStatus?: 'success' | 'abort' | 'fail', readonly reason?: string }
export interface StageMsg { readonly command: 'stage', readonly obj: Obj }
export interface UnstageMsg { readonly command: 'unstage', readonly obj: Obj }
export interface DeclareStreamMsg { readonly command: 'declare_stream', readonly objs: readonly Obj[], readonly name: string, readonly collect: boolean }
export interface CreateMsg { readonly command: 'create', readonly name: string }
export interface ReadMsg { readonly command: 'read', readonly obj: Obj }
export interface SaveMsg { readonly command: 'save' }
export interface DropMsg { readonly command: 'drop' }
export interface SetMsg { readonly command: 'set', readonly obj: Obj, readonly value: unknown, readonly group?: string }
export interface TriggerMsg { readonly command: 'trigger', readonly obj: Obj, readonly group?: string }
export interface WaitMsg { readonly command: 'wait', readonly group?: string, readonly timeout?: number }
export interface SleepMsg { readonly command: 'sleep', readonly seconds: number }
export interface CheckpointMsg { readonly command: 'checkpoint' }
export interface PauseMsg { readonly command: 'pause', readonly defer: boolean }
export interface PrepareMsg { readonly command: 'prepare', readonly obj: Obj, readonly value: unknown, readonly group?: string }
export interface KickoffMsg { readonly command: 'kickoff', readonly obj: Obj, readonly group?: string }
export interface CompleteMsg { readonly command: 'complete', readonly obj: Obj, readonly group?: string }
export interface CollectMsg { readonly command: 'collect', readonly obj: Obj, readonly name?: string }
export interface LocateMsg { readonly command: 'locate', readonly obj: Obj }
export interface NullMsg { readonly command: 'null' }
export interface SubscribeMsg { readonly command: 'subscribe', readonly callback: DocumentCallback, readonly name?: string }
export interface UnsubscribeMsg { readonly command: 'unsubscribe', readonly token: number }
export interface InstallSuspenderMsg { readonly command: 'install_suspender', readonly suspender: Suspender }
export interface RemoveSuspenderMsg { readonly command: 'remove_suspender', readonly suspender: Suspender }

export type Msg =
  | OpenRunMsg | CloseRunMsg | StageMsg | UnstageMsg | DeclareStreamMsg | CreateMsg | ReadMsg | SaveMsg | DropMsg
  | SetMsg | TriggerMsg | WaitMsg | SleepMsg | CheckpointMsg | PauseMsg | PrepareMsg | KickoffMsg | CompleteMsg
  | CollectMsg | LocateMsg | NullMsg | SubscribeMsg | UnsubscribeMsg | InstallSuspenderMsg | RemoveSuspenderMsg

export type Command = Msg['command']
export type MsgOf<C extends Command> = Extract<Msg, { command: C }>

/** A plan: yields messages, receives each message's response, returns R. Nested plans are flattened with yield*. */
export type Plan<R = void> = Generator<Msg, R, unknown>

export const COMMANDS: readonly Command[] = [
  'open_run', 'close_run', 'stage', 'unstage', 'declare_stream', 'create', 'read', 'save', 'drop', 'set', 'trigger',
  'wait', 'sleep', 'checkpoint', 'pause', 'prepare', 'kickoff', 'complete', 'collect', 'locate', 'null', 'subscribe',
  'unsubscribe', 'install_suspender', 'remove_suspender'
]

interface GroupOption { group?: string }

/** Message constructors, bluesky's `Msg('set', motor, 1, group='a')` as `msg.set(motor, 1, { group: 'a' })`. */
export const msg = {
  openRun: (metadata: Readonly<Record<string, unknown>> = {}): OpenRunMsg => ({ command: 'open_run', metadata }),
  closeRun: (options: { exitStatus?: 'success' | 'abort' | 'fail', reason?: string } = {}): CloseRunMsg =>
    ({ command: 'close_run', ...options }),
  stage: (obj: Obj): StageMsg => ({ command: 'stage', obj }),
  unstage: (obj: Obj): UnstageMsg => ({ command: 'unstage', obj }),
  declareStream: (objs: readonly Obj[], options: { name: string, collect?: boolean }): DeclareStreamMsg =>
    ({ command: 'declare_stream', objs, name: options.name, collect: options.collect ?? false }),
  create: (name = 'primary'): CreateMsg => ({ command: 'create', name }),
  read: (obj: Obj): ReadMsg => ({ command: 'read', obj }),
  save: (): SaveMsg => ({ command: 'save' }),
  drop: (): DropMsg => ({ command: 'drop' }),
  set: (obj: Obj, value: unknown, options: GroupOption = {}): SetMsg => ({ command: 'set', obj, value, ...options }),
  trigger: (obj: Obj, options: GroupOption = {}): TriggerMsg => ({ command: 'trigger', obj, ...options }),
  wait: (group?: string, options: { timeout?: number } = {}): WaitMsg =>
    ({ command: 'wait', ...(group === undefined ? {} : { group }), ...options }),
  sleep: (seconds: number): SleepMsg => ({ command: 'sleep', seconds }),
  checkpoint: (): CheckpointMsg => ({ command: 'checkpoint' }),
  pause: (options: { defer?: boolean } = {}): PauseMsg => ({ command: 'pause', defer: options.defer ?? false }),
  prepare: (obj: Obj, value: unknown, options: GroupOption = {}): PrepareMsg => ({ command: 'prepare', obj, value, ...options }),
  kickoff: (obj: Obj, options: GroupOption = {}): KickoffMsg => ({ command: 'kickoff', obj, ...options }),
  complete: (obj: Obj, options: GroupOption = {}): CompleteMsg => ({ command: 'complete', obj, ...options }),
  collect: (obj: Obj, options: { name?: string } = {}): CollectMsg => ({ command: 'collect', obj, ...options }),
  locate: (obj: Obj): LocateMsg => ({ command: 'locate', obj }),
  null: (): NullMsg => ({ command: 'null' }),
  subscribe: (callback: DocumentCallback, name?: string): SubscribeMsg =>
    ({ command: 'subscribe', callback, ...(name === undefined ? {} : { name }) }),
  unsubscribe: (token: number): UnsubscribeMsg => ({ command: 'unsubscribe', token }),
  installSuspender: (suspender: Suspender): InstallSuspenderMsg => ({ command: 'install_suspender', suspender }),
  removeSuspender: (suspender: Suspender): RemoveSuspenderMsg => ({ command: 'remove_suspender', suspender })
} as const

/** True for a value shaped like a Msg of a known command (used to reject anything else a plan yields). */
export function isMsg (x: unknown): x is Msg {
  return typeof x === 'object' && x !== null && typeof (x as { command?: unknown }).command === 'string' &&
    (COMMANDS as readonly string[]).includes((x as { command: string }).command)
}
