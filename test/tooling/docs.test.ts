import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { EnvSchema } from '../../shared/config/config.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
/** Where the code that reads the environment lives. */
const CODE_DIRS = ['services', 'shared', 'scripts']

async function filesUnder (dir: string, extensions: readonly string[]): Promise<string[]> {
  const entries = await readdir(join(ROOT, dir), { recursive: true, withFileTypes: true })
  return entries
    .filter((e) => e.isFile() && extensions.some((ext) => e.name.endsWith(ext)))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)))
    .filter((file) => !file.split('/').includes('node_modules'))
    .sort()
}

/** The text a reader sees as prose: fenced code blocks blanked, inline code kept only as its text's length. */
function prose (markdown: string): string[] {
  let fence: string | undefined
  return markdown.split('\n').map((line) => {
    const marker = /^\s*(```|~~~)/.exec(line)?.[1]
    if (fence !== undefined) {
      if (marker === fence) fence = undefined
      return ''
    }
    if (marker !== undefined) {
      fence = marker
      return ''
    }
    return line.replace(/`[^`]*`/g, (code) => ' '.repeat(code.length))
  })
}

/** GitHub's anchor of a heading: lowercased, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf (markdown: string): Set<string> {
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  let fence: string | undefined
  for (const line of markdown.split('\n')) {
    const marker = /^\s*(```|~~~)/.exec(line)?.[1]
    if (fence !== undefined) {
      if (marker === fence) fence = undefined
      continue
    }
    if (marker !== undefined) {
      fence = marker
      continue
    }
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1]
    if (heading === undefined) continue
    const text = heading.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/[`*]/g, '')
    const base = text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '').replace(/ /g, '-')
    const count = seen.get(base) ?? 0
    seen.set(base, count + 1)
    anchors.add(count === 0 ? base : `${base}-${count}`)
  }
  return anchors
}

/** Relative link targets of a page: `[text](target)` and `[label]: target`, outside code. */
function relativeLinks (markdown: string): Array<{ line: number, target: string }> {
  const links: Array<{ line: number, target: string }> = []
  prose(markdown).forEach((text, i) => {
    const targets = [
      ...[...text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1] as string),
      ...[...text.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/g)].map((m) => m[1] as string)
    ]
    for (const target of targets) {
      if (!/^[a-z][a-z0-9+.-]*:/i.test(target)) links.push({ line: i + 1, target })
    }
  })
  return links
}

t.test('every relative link and anchor in README.md and docs/ resolves', async (t) => {
  const pages = ['README.md', ...await filesUnder('docs', ['.md'])]
  const anchorCache = new Map<string, Set<string>>()
  const anchors = async (file: string): Promise<Set<string>> => {
    let set = anchorCache.get(file)
    if (set === undefined) {
      set = anchorsOf(await readFile(join(ROOT, file), 'utf8'))
      anchorCache.set(file, set)
    }
    return set
  }
  const broken: string[] = []
  let checked = 0
  for (const page of pages) {
    for (const { line, target } of relativeLinks(await readFile(join(ROOT, page), 'utf8'))) {
      checked++
      const hash = target.indexOf('#')
      const path = decodeURIComponent(hash === -1 ? target : target.slice(0, hash))
      const anchor = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1))
      const file = path === '' ? page : relative(ROOT, resolve(ROOT, dirname(page), path))
      if (file.startsWith('..') || !existsSync(join(ROOT, file))) {
        broken.push(`${page}:${line}: ${target} — no file ${file}`)
      } else if (anchor !== undefined && anchor !== '') {
        if (!file.endsWith('.md')) broken.push(`${page}:${line}: ${target} — an anchor into a file that is not Markdown`)
        else if (!(await anchors(file)).has(anchor)) broken.push(`${page}:${line}: ${target} — ${file} has no heading with the anchor #${anchor}`)
      }
    }
  }
  t.ok(checked > 0, 'the pages have relative links to check')
  t.same(broken, [], `${broken.length} broken link(s):\n${broken.join('\n')}`)
})

/** Every environment variable the code reads, with where it is read. */
async function variablesRead (): Promise<Map<string, string>> {
  const read = new Map<string, string>()
  for (const name of Object.keys(EnvSchema.properties)) read.set(name, 'the schema in shared/config/config.ts')
  const NAME = '([A-Z][A-Z0-9_]*)'
  for (const dir of CODE_DIRS) {
    for (const file of await filesUnder(dir, ['.ts', '.mts', '.js', '.mjs', '.cjs'])) {
      const source = await readFile(join(ROOT, file), 'utf8')
      // process.env.X, process.env['X'], and reads through a parameter that defaults to process.env.
      const holders = ['process\\.env', ...[...source.matchAll(/(\w+)\s*(?::\s*[\w.]+(?:<[^<>=]*>)?)?\s*=\s*process\.env\b/g)].map((m) => m[1] as string)]
      for (const holder of holders) {
        const pattern = new RegExp(`\\b${holder}(?:\\.${NAME}\\b|\\[\\s*['"\`]${NAME}['"\`]\\s*\\])`, 'g')
        for (const match of source.matchAll(pattern)) {
          const name = (match[1] ?? match[2]) as string
          if (!read.has(name)) read.set(name, file)
        }
      }
    }
  }
  return read
}

/** Variables with a row in a table of docs/configuration.md (named in backticks in the first cell). */
function variablesDocumented (markdown: string): Set<string> {
  const documented = new Set<string>()
  for (const line of markdown.split('\n')) {
    const firstCell = /^\|([^|]*)\|/.exec(line)?.[1]
    if (firstCell === undefined) continue
    for (const match of firstCell.matchAll(/`([A-Z][A-Z0-9_]*)`/g)) documented.add(match[1] as string)
  }
  return documented
}

t.test('every environment variable the code reads is documented in docs/configuration.md', async (t) => {
  const read = await variablesRead()
  t.ok(read.has('REDIS_URL') && read.has('NODE_ENV') && read.has('AWS_PROFILE'), 'the schema and process.env reads are found')
  const documented = variablesDocumented(await readFile(join(ROOT, 'docs/configuration.md'), 'utf8'))
  const missing = [...read].filter(([name]) => !documented.has(name)).sort(([a], [b]) => a.localeCompare(b))
  t.same(missing.map(([name]) => name), [], missing.length === 0
    ? 'all documented'
    : `docs/configuration.md has no row for ${missing.length} variable(s) the code reads:\n` +
      missing.map(([name, where]) => `  ${name} (read in ${where})`).join('\n') +
      '\nAdd a row for each to the table of its group: | `NAME` | default | meaning |')
})
