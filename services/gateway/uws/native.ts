import type * as Uws from 'uWebSockets.js'

/*
 * uWebSockets.js, the optional dependency of `GATEWAY_ENGINE=uws`. The edge's modules take
 * it from here rather than importing the package, so it is loaded only when that engine is
 * chosen, and a missing package or binary stops the gateway at start with a clear reason.
 */

async function load (): Promise<typeof Uws.default> {
  let native: typeof Uws.default
  try {
    native = (await import('uWebSockets.js')).default
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') {
      throw new Error('GATEWAY_ENGINE=uws needs the optional package uWebSockets.js, which is not installed here (it is left out by `npm install --omit=optional`); install it or use GATEWAY_ENGINE=fastify', { cause: err })
    }
    throw err
  }
  // The package falls back to a slower `ws`-based imitation when its binary does not load;
  // that would make the engine's figures meaningless, so it is refused.
  if (typeof native.getParts !== 'function') throw new Error(`GATEWAY_ENGINE=uws: uWebSockets.js has no native binary for Node ${process.version} on ${process.platform}-${process.arch} (this build ships them for Node 16, 18 and 20)`)
  return native
}

const uWS = await load()
export default uWS
