import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import ts from 'typescript'

/*
 * No module of Pulse may import itself through others: every import graph cycle in
 * services/, shared/ and web/ fails this test. Type-only imports, re-exports and dynamic
 * `import()` with a literal path count as edges too: a cycle of types still ties the
 * modules' meanings together, and a lazy import does not make one module depend less on
 * the other.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const TREES = ['services', 'shared', 'web/src']

function sourceFiles (dir: string): string[] {
  const files: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) files.push(...sourceFiles(path))
    else if (/\.ts$/.test(entry.name) && !entry.name.endsWith('.d.ts')) files.push(path)
  }
  return files
}

/** The file a relative specifier names (`./x.js` is `./x.ts` in the sources), or undefined. */
function resolveSpecifier (from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined
  const base = resolve(dirname(from), specifier)
  for (const candidate of [base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts')]) {
    if (existsSync(candidate)) return candidate
  }
  return undefined
}

/** Every module `file` imports, statically (values or types), re-exports or imports dynamically. */
function importsOf (file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true)
  const specifiers: string[] = []
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
      specifiers.push(node.moduleSpecifier.text)
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [argument] = node.arguments
      if (argument !== undefined && ts.isStringLiteralLike(argument)) specifiers.push(argument.text)
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      specifiers.push(node.argument.literal.text)
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return specifiers.flatMap((specifier) => resolveSpecifier(file, specifier) ?? [])
}

/** Strongly connected components of more than one module, or a module importing itself (Tarjan). */
export function importCycles (graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let counter = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const cycles: string[][] = []
  const connect = (node: string): void => {
    index.set(node, counter)
    low.set(node, counter)
    counter++
    stack.push(node)
    onStack.add(node)
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        connect(next)
        low.set(node, Math.min(low.get(node) as number, low.get(next) as number))
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node) as number, index.get(next) as number))
      }
    }
    if (low.get(node) !== index.get(node)) return
    const component: string[] = []
    let member: string
    do {
      member = stack.pop() as string
      onStack.delete(member)
      component.push(member)
    } while (member !== node)
    if (component.length > 1 || (graph.get(node) ?? []).includes(node)) cycles.push(component.sort())
  }
  for (const node of graph.keys()) if (!index.has(node)) connect(node)
  return cycles
}

t.test('the cycle finder finds a cycle, a type-only one included', async (t) => {
  const graph = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['d']], ['e', ['a']]])
  t.same(importCycles(graph), [['a', 'b', 'c'], ['d']])
  const probe = join(ROOT, 'services/adapters.ts')
  t.ok(importsOf(probe).some((file) => file.endsWith('shared/ports/hot-state.ts')), 'type-only imports are edges')
  t.ok(importsOf(probe).some((file) => file.endsWith('shared/adapters/redis/index.ts')), 'dynamic imports are edges')
})

t.test('services/, shared/ and web/ have no import cycles', async (t) => {
  const graph = new Map<string, string[]>()
  for (const tree of TREES) for (const file of sourceFiles(join(ROOT, tree))) graph.set(file, importsOf(file))
  t.ok(graph.size > 100, `${graph.size} modules read`)
  const cycles = importCycles(graph).map((cycle) => cycle.map((file) => relative(ROOT, file)))
  t.same(cycles, [], cycles.map((cycle) => `cycle: ${cycle.join(' ↔ ')}`).join('\n') || 'no cycles')
})
