// Plain-object devices for the plan-simulator tests (the simulator answers every message, so nothing here moves),
// and a compact rendering of a message list for choreography assertions.
import type { Msg } from '../../src/engine/index.js'

export interface FakeDevice { readonly name: string, [key: string]: unknown }

export function fakeMotor (name: string): FakeDevice {
  return {
    name,
    hints: { fields: [name] },
    set: () => { throw new Error('not called by the simulator') },
    read: async () => ({}),
    describe: async () => ({}),
    locate: async () => ({ setpoint: 0, readback: 0 })
  }
}

export function fakeDetector (name: string): FakeDevice {
  return {
    name,
    trigger: () => { throw new Error('not called by the simulator') },
    stage: async () => {},
    unstage: async () => {},
    read: async () => ({}),
    describe: async () => ({})
  }
}

function nameOf (o: unknown): string {
  return (o as { name?: string }).name ?? '?'
}

/** `set:m1=0`, `trigger:det`, `create:primary`, `wait`, ... (group names left out: they are generated). */
export function render (messages: readonly Msg[]): string[] {
  return messages.map((m) => {
    switch (m.command) {
      case 'set': case 'prepare': return `${m.command}:${nameOf(m.obj)}=${JSON.stringify(m.value)}`
      case 'trigger': case 'read': case 'stage': case 'unstage': case 'kickoff': case 'complete': case 'locate':
        return `${m.command}:${nameOf(m.obj)}`
      case 'collect': return `collect:${nameOf(m.obj)}>${m.name ?? ''}`
      case 'create': return `create:${m.name}`
      case 'sleep': return `sleep:${m.seconds}`
      case 'close_run': return m.exitStatus === undefined ? 'close_run' : `close_run:${m.exitStatus}`
      case 'declare_stream': return `declare_stream:${m.name}:${m.objs.map(nameOf).join(',')}`
      default: return m.command
    }
  })
}
