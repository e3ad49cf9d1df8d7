import { runHarness } from './harness.js'
import { parseOptions, USAGE, UsageError } from './options.js'

// `npm run loadtest -- [options]`: exit 0 when every threshold holds, 1 when one fails,
// 2 on a usage error, 3 when the run itself could not happen.
try {
  const options = parseOptions(process.argv.slice(2), process.env)
  const result = await runHarness(options)
  console.log(result.report)
  process.exitCode = result.ok ? 0 : 1
} catch (err) {
  if (err instanceof UsageError) {
    if (err.message !== '') console.error(err.message)
    console.error(USAGE)
    process.exitCode = 2
  } else {
    console.error(`load test could not run: ${(err as Error).stack ?? String(err)}`)
    process.exitCode = 3
  }
}
// Sockets that a misbehaving server never closed must not keep the process alive.
setTimeout(() => process.exit(), 2000).unref()
