/**
 * Source sites: the file and line of simulated code that issued an operation, read from a V8
 * stack trace (tsx's source maps make these the TypeScript lines). Only used when tracing or
 * when reporting an error: capturing a stack costs microseconds.
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { findSourceMap } from 'node:module';

/** A position in a source file. */
export interface SourceSite {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));
/** Hyrum's src/ directory. */
export const hyrumSrc = path.dirname(here);
/** Layers whose frames are machinery, never the "issuing" line (engine, memory, explore, ...). */
const machinery = ['engine', 'memory', 'explore', 'report', 'cli'].map((d) => path.join(hyrumSrc, d) + path.sep);

const frameRe = /\(?((?:file:\/\/)?[^()\s]+?):(\d+):(\d+)\)?$/;

function parseFrames(stack: string): SourceSite[] {
  const out: SourceSite[] = [];
  for (const raw of stack.split('\n')) {
    const line = raw.trim();
    if (!line.startsWith('at ')) continue;
    const m = frameRe.exec(line);
    if (!m) continue;
    let file = m[1]!;
    if (file.startsWith('file://')) file = fileURLToPath(file);
    if (file.startsWith('node:') || file.includes(`${path.sep}node_modules${path.sep}`)) continue;
    out.push({ file, line: Number(m[2]), column: Number(m[3]) });
  }
  return out;
}

function isMachinery(file: string): boolean {
  for (const dir of machinery) if (file.startsWith(dir)) return true;
  return false;
}

const mapped = new Map<string, SourceSite | null>();

/** A generated-code position mapped through the module's source map (tsx registers them). */
function siteOf(file: string, line: number, column: number): SourceSite | null {
  const key = `${file}:${line}:${column}`;
  let site = mapped.get(key);
  if (site !== undefined) return site;
  if (file.startsWith('file://')) file = fileURLToPath(file);
  site = null;
  if (!file.startsWith('node:') && path.isAbsolute(file) && !file.includes(`${path.sep}node_modules${path.sep}`)) {
    const entry = findSourceMap(file)?.findEntry(line - 1, column - 1) as
      | { originalSource?: string; originalLine?: number; originalColumn?: number }
      | undefined;
    if (entry && entry.originalSource !== undefined && entry.originalLine !== undefined) {
      const src = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : entry.originalSource;
      site = { file: src, line: entry.originalLine + 1, column: (entry.originalColumn ?? 0) + 1 };
    } else site = { file, line, column };
  }
  mapped.set(key, site);
  return site;
}

const asCallSites = (_e: Error, cs: NodeJS.CallSite[]) => cs;

/** The current stack as sites, innermost first, without formatting a stack string. */
function captureFrames(): SourceSite[] {
  const limit = Error.stackTraceLimit;
  const prepare = Error.prepareStackTrace;
  Error.stackTraceLimit = 16;
  Error.prepareStackTrace = asCallSites;
  const holder = {} as { stack: NodeJS.CallSite[] };
  Error.captureStackTrace(holder, captureFrames);
  const calls = holder.stack;
  Error.prepareStackTrace = prepare;
  Error.stackTraceLimit = limit;
  const out: SourceSite[] = [];
  for (const c of calls) {
    const file = c.getFileName();
    const line = c.getLineNumber();
    const col = c.getColumnNumber();
    if (!file || line === null || col === null) continue;
    const site = siteOf(file, line, col);
    if (site) out.push(site);
  }
  return out;
}

/**
 * The sites that issued the current call: the innermost frame outside Hyrum's machinery (a model
 * of glibc, say, or the scenario), then the innermost frame outside Hyrum altogether when that
 * is a different one (the user's line that called into the model).
 */
export function callerSites(): SourceSite[] {
  const frames = captureFrames().filter((f) => !isMachinery(f.file));
  if (frames.length === 0) return [];
  const first = frames[0]!;
  const user = frames.find((f) => !f.file.startsWith(hyrumSrc + path.sep));
  return user && user !== first ? [first, user] : [first];
}

/** The innermost site outside Hyrum's machinery, if any. */
export function callerSite(_skip = 0): SourceSite | undefined {
  return callerSites()[0];
}

/** The innermost site of an error's stack outside Hyrum's machinery. */
export function errorSite(err: unknown): SourceSite | undefined {
  if (!(err instanceof Error) || !err.stack) return undefined;
  return parseFrames(err.stack).find((f) => !isMachinery(f.file));
}

/** True when the error was thrown from Hyrum's own source (an internal error, not the user's). */
export function thrownByHyrum(err: unknown): boolean {
  if (!(err instanceof Error) || !err.stack) return false;
  const top = parseFrames(err.stack)[0];
  return top !== undefined && top.file.startsWith(hyrumSrc + path.sep);
}

/** `file:line`, relative to the working directory when inside it. */
export function formatSite(site: SourceSite): string {
  const rel = path.relative(process.cwd(), site.file);
  return `${rel.startsWith('..') ? site.file : rel}:${site.line}`;
}
