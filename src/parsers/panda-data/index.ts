/** The PandA data-port parser: the folder's only public entry. */
export * from './types.js'
export * from './parser.js'
export * from './columns.js'
