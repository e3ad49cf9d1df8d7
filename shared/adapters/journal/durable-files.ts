import { open, readFile, rename } from 'node:fs/promises'

/** Makes a created, renamed or deleted entry of `dir` survive a crash. */
export async function syncDirectory (dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** The trimmed text of `path`, or undefined when it does not exist or is blank. */
export async function readSmallFile (path: string): Promise<string | undefined> {
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined
    throw err
  })
  const trimmed = text?.trim()
  return trimmed === undefined || trimmed === '' ? undefined : trimmed
}

/**
 * Replaces `path` (in `dir`) with `text` so that a crash leaves either the old content or
 * the new one, never a mix: written to a temporary file, synced, renamed over, and the
 * directory synced.
 */
export async function replaceFileDurably (dir: string, path: string, text: string): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`
  const handle = await open(temporary, 'w')
  try {
    await handle.writeFile(text)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(temporary, path)
  await syncDirectory(dir)
}
