import { readFile } from 'node:fs/promises'
import t from 'tap'
import { ERRORS } from '../../shared/errors.js'

t.test('every error code is documented in docs/api.md with its status', async (t) => {
  const readme = await readFile(new URL('../../docs/api.md', import.meta.url), 'utf8')
  for (const [code, { status }] of Object.entries(ERRORS)) {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${code}\` |`))
    t.ok(row, `${code} has a row in the error table`)
    if (row !== undefined && status !== 400 && !code.includes('MESSAGE') && code !== 'PULSE_ERR_FLOOD' && code !== 'PULSE_ERR_TOO_MANY_SUBSCRIPTIONS') {
      t.match(row, `| ${status} |`, `${code} is documented with status ${status}`)
    }
  }
})

t.test('codes are PULSE_ERR_* with a 4xx/5xx status and a message', async (t) => {
  for (const [code, { status, message }] of Object.entries(ERRORS)) {
    t.match(code, /^PULSE_ERR_[A-Z_]+$/)
    t.ok(status >= 400 && status < 600, `${code} status`)
    t.ok(message.length > 0, `${code} message`)
  }
})
