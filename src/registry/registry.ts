/**
 * Finds devices by name and by label (after oregistry). Names are unique; adding a second device with a name
 * already held is an error naming both.
 */
import { ErrorCode, FlyScanError } from '../errors.js'
import type { HasName } from '../devices/index.js'

export class Registry<D extends HasName = HasName> {
  readonly #byName = new Map<string, { device: D, labels: Set<string> }>()

  /** Add `device` under its name with `labels`; rejects an empty or duplicate name. */
  register (device: D, labels: Iterable<string> = []): D {
    const name = device.name
    if (name === '') throw new FlyScanError(ErrorCode.BAD_INPUT, 'a device must have a name to be registered')
    const existing = this.#byName.get(name)
    if (existing !== undefined) {
      throw new FlyScanError(ErrorCode.BAD_INPUT,
        `a device named '${name}' is already registered (${existing.device.constructor.name}); names must be unique`,
        { details: { name } })
    }
    this.#byName.set(name, { device, labels: new Set(labels) })
    return device
  }

  has (name: string): boolean { return this.#byName.has(name) }

  /** The device called `name`; a missing name is an error listing the known ones. */
  find (name: string): D {
    const entry = this.#byName.get(name)
    if (entry === undefined) {
      throw new FlyScanError(ErrorCode.BAD_INPUT,
        `no device named '${name}'; known: ${this.names().join(', ') || '(none)'}`, { details: { name } })
    }
    return entry.device
  }

  /** Every device (in registration order) that carries `label`, or every device if no label is given. */
  findAll (query: { label?: string } = {}): D[] {
    const out: D[] = []
    for (const { device, labels } of this.#byName.values()) {
      if (query.label === undefined || labels.has(query.label)) out.push(device)
    }
    return out
  }

  labelsOf (name: string): string[] {
    return [...(this.#byName.get(name)?.labels ?? [])]
  }

  names (): string[] { return [...this.#byName.keys()] }

  get size (): number { return this.#byName.size }
}
