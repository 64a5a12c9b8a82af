/** HDF5 files written by tst-fly: the folder's only public entry. */
export * from './layout.js'
export * from './panda-writer.js'
export * from './recover.js'
export * from './frame-layout.js'
export * from './frame-writer.js'
