/** The PandA control-port parser, connection state and command encoders: the folder's only public entry. */
export * from './types.js'
export * from './parser.js'
export * from './connection.js'
export * from './commands.js'
