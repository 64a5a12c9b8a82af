export * from './panda-data/index.js'
