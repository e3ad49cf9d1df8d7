import closeWithGrace from 'close-with-grace'
import pino from 'pino'
import { ConfigError, loadConfig } from '../shared/config/config.js'
import { startPulse } from './runtime.js'

const log = pino({ level: process.env.LOG_LEVEL ?? 'info' })

let config
try {
  config = loadConfig()
} catch (err) {
  if (err instanceof ConfigError) {
    log.fatal(`Invalid configuration: ${err.message}`)
    process.exit(78)
  }
  throw err
}

const pulse = await startPulse(config, { logger: log })

closeWithGrace({ delay: 25_000 }, async ({ signal, err }) => {
  if (err !== undefined) log.error({ err }, 'shutting down after an error')
  else log.info({ signal }, 'shutting down')
  await pulse.close()
})
