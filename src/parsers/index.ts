export * from './panda-data/index.js'
export * from './ca/index.js'
export * from './panda-control/index.js'
