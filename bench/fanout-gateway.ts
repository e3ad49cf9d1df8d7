/**
 * Child process of the fan-out benchmark: one embedded Pulse gateway, so the parent can
 * read its RSS alone. Prints `{"url": ...}` once it listens; exits on SIGTERM.
 */
import { loadConfig } from '../shared/config/config.js'
import { startPulse } from '../services/runtime.js'

const pulse = await startPulse(loadConfig())
process.send?.({ url: pulse.url, pid: process.pid })
process.on('SIGTERM', () => {
  pulse.close().finally(() => process.exit(0))
})
