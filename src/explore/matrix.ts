/**
 * The version matrix: one check per combination of kernel, glibc and settings values, with
 * each cell's verdict and, for a finding, its own replay string.
 */
import type { Scenario } from '../scenario/define.ts';
import { check, type CheckOptions, type CheckResult } from './explorer.ts';

export interface MatrixAxes {
  readonly kernel?: readonly string[];
  readonly glibc?: readonly string[];
  /** Settings, each with the values to try: { 'glibc.pthread.rseq': ['0', '1'] }. */
  readonly settings?: Readonly<Record<string, readonly string[]>>;
}

export interface MatrixCell {
  readonly kernel?: string;
  readonly glibc?: string;
  readonly settings: Readonly<Record<string, string>>;
  readonly result: CheckResult;
}

function product<T>(lists: readonly (readonly T[])[]): T[][] {
  return lists.reduce<T[][]>((acc, list) => acc.flatMap((prefix) => list.map((v) => [...prefix, v])), [[]]);
}

export function runMatrix(s: Scenario, axes: MatrixAxes, base: Omit<CheckOptions, 'versions' | 'settings'>): MatrixCell[] {
  const kernels = axes.kernel?.length ? axes.kernel : [undefined];
  const glibcs = axes.glibc?.length ? axes.glibc : [undefined];
  const names = Object.keys(axes.settings ?? {});
  const combos = product(names.map((n) => axes.settings![n]!));
  const cells: MatrixCell[] = [];
  for (const kernel of kernels) {
    for (const glibc of glibcs) {
      for (const values of combos) {
        const settings = Object.fromEntries(names.map((n, i) => [n, values[i]!]));
        const result = check(s, { ...base, versions: { kernel, glibc }, settings });
        cells.push({ kernel, glibc, settings, result });
      }
    }
  }
  return cells;
}
