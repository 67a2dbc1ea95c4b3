/**
 * Replay strings: a run's parameters and choices in a compact, shell-safe text that `hyrum
 * replay` turns back into the identical run.
 *
 *   hy1:mm=tso:c=3ab2Bc
 *
 * Parameters are key=value fields; `c` holds the choices. Each choice is written in base 26,
 * leading digits as capitals A-Z and the last digit as a small letter a-z (so 0 = "a", 27 = "Bb"),
 * and a decimal count before a choice repeats it ("3a" = a a a).
 */
import { UsageError } from '../engine/errors.ts';

export interface ReplayData {
  readonly params: Readonly<Record<string, string>>;
  readonly choices: readonly number[];
}

const PREFIX = 'hy1';

function encodeValue(v: number): string {
  let s = String.fromCharCode(97 + (v % 26));
  v = Math.floor(v / 26);
  while (v > 0) {
    s = String.fromCharCode(65 + (v % 26)) + s;
    v = Math.floor(v / 26);
  }
  return s;
}

export function encodeChoices(choices: ArrayLike<number>): string {
  let out = '';
  for (let i = 0; i < choices.length; ) {
    const v = choices[i]!;
    let j = i + 1;
    while (j < choices.length && choices[j] === v) j++;
    const run = j - i;
    out += (run > 1 ? String(run) : '') + encodeValue(v);
    i = j;
  }
  return out;
}

export function decodeChoices(s: string): number[] {
  const out: number[] = [];
  let i = 0;
  while (i < s.length) {
    let count = 0;
    let hasCount = false;
    while (i < s.length && s[i]! >= '0' && s[i]! <= '9') {
      count = count * 10 + (s.charCodeAt(i++) - 48);
      hasCount = true;
    }
    let v = 0;
    while (i < s.length && s[i]! >= 'A' && s[i]! <= 'Z') v = v * 26 + (s.charCodeAt(i++) - 64);
    if (i >= s.length || s[i]! < 'a' || s[i]! > 'z') throw new UsageError(`malformed replay string near '${s.slice(i, i + 8)}'`);
    v = v * 26 + (s.charCodeAt(i++) - 97);
    if (hasCount && count === 0) throw new UsageError('malformed replay string: zero repeat count');
    for (let k = 0; k < (hasCount ? count : 1); k++) out.push(v);
  }
  return out;
}

export function encodeReplay(d: ReplayData): string {
  const fields = Object.entries(d.params).map(([k, v]) => `${k}=${v}`);
  return [PREFIX, ...fields, `c=${encodeChoices(d.choices)}`].join(':');
}

export function decodeReplay(s: string): ReplayData {
  const parts = s.trim().split(':');
  if (parts[0] !== PREFIX) throw new UsageError(`not a Hyrum replay string (expected it to start with '${PREFIX}:')`);
  const params: Record<string, string> = {};
  let choices: number[] | null = null;
  for (const p of parts.slice(1)) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new UsageError(`malformed replay string field '${p}'`);
    const k = p.slice(0, eq);
    const v = p.slice(eq + 1);
    if (k === 'c') choices = decodeChoices(v);
    else params[k] = v;
  }
  if (choices === null) throw new UsageError('replay string has no choices field (c=...)');
  return { params, choices };
}
