/** The device model: protocols, Status, signals and devices (docs/devices.md). */
export * from './core/index.js'
export * from './simulated/index.js'
