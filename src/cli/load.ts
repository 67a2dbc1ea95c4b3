/**
 * Loading scenario files: TypeScript modules imported through tsx, whose default export must be
 * a scenario. Anything wrong is a UsageError that names the file and, where known, the line.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { UsageError } from '../engine/errors.ts';
import { errorSite } from '../engine/source.ts';
import type { Scenario } from '../scenario/define.ts';

/** The project's scenario catalogue. */
export const catalogueDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scenarios');

export async function loadScenario(file: string): Promise<Scenario> {
  const abs = path.resolve(file);
  if (!existsSync(abs)) throw new UsageError(`no such scenario file: ${file}`);
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(abs).href)) as { default?: unknown };
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const loc = /:(\d+):(\d+): ERROR: (.*)/.exec(msg);
    if (loc) throw new UsageError(loc[3]!, { file: abs, line: Number(loc[1]), column: Number(loc[2]) });
    const site = errorSite(e);
    throw new UsageError(`loading the scenario failed: ${msg}`, site?.file === abs ? site : { file: abs, line: 1, column: 1 });
  }
  const s = mod.default as Partial<Scenario> | undefined;
  const where = { file: abs, line: 1, column: 1 };
  if (!s || typeof s !== 'object') throw new UsageError('the file has no default export (export default scenario({...}))', where);
  if (typeof s.name !== 'string' || s.name === '') throw new UsageError('the scenario has no name', where);
  if (!Array.isArray(s.threads) || s.threads.length === 0 || !s.threads.every((t) => typeof t === 'function')) {
    throw new UsageError(`scenario ${s.name}: threads must be a non-empty array of generator functions`, where);
  }
  return s as Scenario;
}

/** The catalogue's scenario files, sorted. */
export function catalogueFiles(): string[] {
  return readdirSync(catalogueDir)
    .filter((f) => f.endsWith('.ts'))
    .sort()
    .map((f) => path.join(catalogueDir, f));
}
