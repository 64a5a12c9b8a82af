/** The loopback servers' one way to start listening on TCP and to tell the port they got. */
import type net from 'node:net'

/** Listen on `host:port` (0: a free port); rejects with the bind error (e.g. EADDRINUSE). */
export async function listenTcp (server: net.Server, port: number, host: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

/** The TCP port `server` listens on, or 0 when it does not. */
export function listeningPort (server: net.Server): number {
  const a = server.address()
  return a !== null && typeof a === 'object' ? a.port : 0
}
