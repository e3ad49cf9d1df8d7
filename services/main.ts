import closeWithGrace from 'close-with-grace'
import pino from 'pino'
import { ConfigError, loadConfig } from '../shared/config/config.js'
import { faultsArmed } from '../shared/fault-points.js'
import { SHUTDOWN_BUDGET_MS, startPulse } from './runtime.js'

let config
try {
  config = loadConfig()
} catch (err) {
  if (err instanceof ConfigError) {
    pino().fatal(`Invalid configuration: ${err.message}`)
    process.exit(78)
  }
  throw err
}

const log = pino({ level: config.logLevel }).child({ role: config.role })
if (faultsArmed().length > 0) log.warn({ points: faultsArmed() }, 'fault injection armed (PULSE_FAULTS): for tests only')
let pulse
try {
  pulse = await startPulse(config, { logger: log })
} catch (err) {
  // One line an operator can act on (a missing engine binary, an unreachable Redis), not a stack.
  log.fatal({ err }, `Pulse could not start: ${(err as Error).message}`)
  process.exit(1)
}

// SIGTERM or SIGINT: drain, finish the batch in hand, flush, close; past the budget the process exits anyway.
closeWithGrace({ delay: pulse.drainMs + SHUTDOWN_BUDGET_MS }, async ({ signal, err }) => {
  if (err !== undefined) log.error({ err }, 'shutting down after an error')
  else log.info({ signal }, 'shutting down')
  await pulse.close()
  log.info('shut down cleanly')
})
