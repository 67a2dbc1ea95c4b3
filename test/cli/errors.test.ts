import { describe, expect, it } from 'vitest';
import { catalogued, fixture, hyrum } from '../helpers.ts';

describe('bad input is rejected with its file and line, exit 2', () => {
  it('Math.random in simulated code', () => {
    const r = hyrum('check', fixture('math-random'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('test/fixtures/math-random.ts:4');
    expect(r.stderr).toContain('Math.random() is nondeterministic');
    expect(r.stdout).toBe('');
  });

  it('a JavaScript variable shared between threads', () => {
    const r = hyrum('check', fixture('shared-js-variable'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('test/fixtures/shared-js-variable.ts:9');
    expect(r.stderr).toContain('not deterministic');
  });

  it('an operation that was created but not yielded', () => {
    const r = hyrum('check', fixture('not-yielded'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('test/fixtures/not-yielded.ts:5');
  });

  it('a syntax error, a file without a scenario, a missing file', () => {
    const syntax = hyrum('check', fixture('syntax-error'));
    expect(syntax.code).toBe(2);
    expect(syntax.stderr).toContain('test/fixtures/syntax-error.ts:5');
    const none = hyrum('run', fixture('not-a-scenario'));
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no default export');
    const missing = hyrum('check', 'no/such/file.ts');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no such scenario file');
  });

  it('a bad option prints usage', () => {
    const r = hyrum('check', catalogued('lost-update'), '--strategy', 'bogus');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage: hyrum check');
    const unknown = hyrum('check', catalogued('lost-update'), '--frobnicate');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown option '--frobnicate'");
  });

  it('a replay string that does not fit the scenario', () => {
    const r = hyrum('replay', catalogued('lost-update'), 'hy1:mm=sc:c=5z');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('does not behave as it did');
  });
});

describe('findings about the scenario, exit 1', () => {
  it('an endless loop is a hang naming the thread and line', () => {
    const r = hyrum('check', fixture('endless-loop'), '--json');
    expect(r.code).toBe(1);
    const v = JSON.parse(r.stdout).finding.verdict;
    expect(v.kind).toBe('hang');
    expect(v.thread).toBe('T0');
    expect(v.sites).toEqual(['test/fixtures/endless-loop.ts:5']);
  });

  it('an exception names its line', () => {
    const r = hyrum('check', fixture('throws'), '--json');
    expect(r.code).toBe(1);
    const v = JSON.parse(r.stdout).finding.verdict;
    expect(v.kind).toBe('exception');
    expect(v.message).toContain('TypeError');
    expect(v.sites).toEqual(['test/fixtures/throws.ts:6']);
  });

  it('a fault is a simulated SIGSEGV with its address', () => {
    const r = hyrum('check', fixture('segfault'), '--json');
    expect(r.code).toBe(1);
    const v = JSON.parse(r.stdout).finding.verdict;
    expect(v).toMatchObject({ kind: 'crash', signal: 'SIGSEGV', addr: 0, sites: ['test/fixtures/segfault.ts:5'] });
  });

  it('threads waiting for each other are a deadlock', () => {
    const r = hyrum('check', fixture('deadlock'), '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).finding.verdict.kind).toBe('deadlock');
  });

  it('a clean check exits 0', () => {
    const r = hyrum('check', catalogued('counter-atomic'), '--strategy', 'dfs');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('search space exhausted');
  });
});
