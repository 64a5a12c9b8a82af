export * from './dbr.js'
export * from './header.js'
export * from './framer.js'
