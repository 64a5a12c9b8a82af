/** Talking to a PandABox: the control-port client. The folder's only public entry. */
export { PandaControlClient } from './control-client.js'
export type { PandaControlClientOptions } from './control-client.js'
