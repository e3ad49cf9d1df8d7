import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'

/** Where `npm run build:web` puts the dashboard, from the source tree or from `dist/`. */
export function dashboardRoot (): string | undefined {
  for (const relative of ['../../../web/dist', '../../../../web/dist']) {
    const path = fileURLToPath(new URL(relative, import.meta.url))
    if (existsSync(path)) return path
  }
  return undefined
}

/** Serves the built dashboard at `/`. */
export default async function dashboard (app: FastifyInstance): Promise<void> {
  const root = dashboardRoot()
  if (root === undefined) {
    app.get('/', async (_request, reply) => await reply.type('text/plain').send('The dashboard is not built: run npm run build:web\n'))
    return
  }
  await app.register(fastifyStatic, { root, prefix: '/', wildcard: false, index: ['index.html'] })
}
