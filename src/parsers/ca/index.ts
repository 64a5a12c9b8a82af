export * from './dbr.js'
export * from './header.js'
