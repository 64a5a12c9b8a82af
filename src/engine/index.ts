/** The plan engine: Msg, the RunEngine, its state table, clocks and suspenders. The folder's only public entry (docs/engine.md). */
export { msg, isMsg, COMMANDS } from './msg.js'
export type {
  Msg, MsgOf, Command, Obj, Plan, OpenRunMsg, CloseRunMsg, StageMsg, UnstageMsg, DeclareStreamMsg, CreateMsg, ReadMsg,
  SaveMsg, DropMsg, SetMsg, TriggerMsg, WaitMsg, SleepMsg, CheckpointMsg, PauseMsg, PrepareMsg, KickoffMsg, CompleteMsg,
  CollectMsg, LocateMsg, NullMsg, SubscribeMsg, UnsubscribeMsg, InstallSuspenderMsg, RemoveSuspenderMsg
} from './msg.js'
export { StateMachine, ENGINE_STATES, TRANSITIONS, canTransition } from './state.js'
export type { EngineState, TransitionRecord } from './state.js'
export { RunEngine } from './run-engine.js'
export type { CommandHandler, RunOutcome, RunResult, RunEngineOptions } from './run-engine.js'
export { realClock, VirtualClock } from './clock.js'
export type { Clock } from './clock.js'
export { silentLogger, suspendOutsideRange, suspendWhen } from './types.js'
export type { EngineLogger, Suspender, ValueSource, DocumentCallback } from './types.js'
