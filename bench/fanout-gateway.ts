/**
 * Child process of the fan-out benchmark: one embedded Pulse gateway, so the parent can
 * read its RSS alone. Prints `{"url": ...}` once it listens, collects garbage on `{op: "gc"}`
 * (with `--expose-gc`); exits on SIGTERM.
 */
import { loadConfig } from '../shared/config/config.js'
import { startPulse } from '../services/runtime.js'

const pulse = await startPulse(loadConfig())
process.send?.({ url: pulse.url, pid: process.pid })
// The parent asks for a collection before reading RSS, so garbage does not pass for connection memory.
process.on('message', (message: { op?: string }) => {
  if (message.op !== 'gc') return
  globalThis.gc?.()
  process.send?.({ op: 'gc' })
})
process.on('SIGTERM', () => {
  pulse.close().finally(() => process.exit(0))
})
