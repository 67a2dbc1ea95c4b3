import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { catalogued, fixture, hyrum } from '../helpers.ts';

describe('bad input is rejected with its file and line, exit 2', () => {
  it('Math.random in simulated code', () => {
    const r = hyrum('check', fixture('math-random'));
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes('test/fixtures/math-random.ts:4'), r.stderr);
    assert.ok(r.stderr.includes('Math.random() is nondeterministic'), r.stderr);
    assert.equal(r.stdout, '');
  });

  it('a JavaScript variable shared between threads', () => {
    const r = hyrum('check', fixture('shared-js-variable'));
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes('test/fixtures/shared-js-variable.ts:9'), r.stderr);
    assert.ok(r.stderr.includes('not deterministic'), r.stderr);
  });

  it('an operation that was created but not yielded', () => {
    const r = hyrum('check', fixture('not-yielded'));
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes('test/fixtures/not-yielded.ts:5'), r.stderr);
  });

  it('a syntax error, a file without a scenario, a missing file', () => {
    const syntax = hyrum('check', fixture('syntax-error'));
    assert.equal(syntax.code, 2);
    assert.ok(syntax.stderr.includes('test/fixtures/syntax-error.ts:5'), syntax.stderr);
    const none = hyrum('run', fixture('not-a-scenario'));
    assert.equal(none.code, 2);
    assert.ok(none.stderr.includes('no default export'), none.stderr);
    const missing = hyrum('check', 'no/such/file.ts');
    assert.equal(missing.code, 2);
    assert.ok(missing.stderr.includes('no such scenario file'), missing.stderr);
  });

  it('a bad option prints usage', () => {
    const r = hyrum('check', catalogued('lost-update'), '--strategy', 'bogus');
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes('Usage: hyrum check'), r.stderr);
    const unknown = hyrum('check', catalogued('lost-update'), '--frobnicate');
    assert.equal(unknown.code, 2);
    assert.ok(unknown.stderr.includes("unknown option '--frobnicate'"), unknown.stderr);
  });

  it('a replay string that does not fit the scenario', () => {
    const r = hyrum('replay', catalogued('lost-update'), 'hy1:mm=sc:c=5z');
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes('does not behave as it did'), r.stderr);
  });
});

describe('findings about the scenario, exit 1', () => {
  it('an endless loop is a hang naming the thread and line', () => {
    const r = hyrum('check', fixture('endless-loop'), '--json');
    assert.equal(r.code, 1);
    const v = JSON.parse(r.stdout).finding.verdict;
    assert.equal(v.kind, 'hang');
    assert.equal(v.thread, 'T0');
    assert.deepEqual(v.sites, ['test/fixtures/endless-loop.ts:5']);
  });

  it('an exception names its line', () => {
    const r = hyrum('check', fixture('throws'), '--json');
    assert.equal(r.code, 1);
    const v = JSON.parse(r.stdout).finding.verdict;
    assert.equal(v.kind, 'exception');
    assert.ok(v.message.includes('TypeError'), v.message);
    assert.deepEqual(v.sites, ['test/fixtures/throws.ts:6']);
  });

  it('a fault is a simulated SIGSEGV with its address', () => {
    const r = hyrum('check', fixture('segfault'), '--json');
    assert.equal(r.code, 1);
    const v = JSON.parse(r.stdout).finding.verdict;
    assert.deepEqual([v.kind, v.signal, v.addr, v.sites], ['crash', 'SIGSEGV', 0, ['test/fixtures/segfault.ts:5']]);
  });

  it('threads waiting for each other are a deadlock', () => {
    const r = hyrum('check', fixture('deadlock'), '--json');
    assert.equal(r.code, 1);
    assert.equal(JSON.parse(r.stdout).finding.verdict.kind, 'deadlock');
  });

  it('a clean check exits 0', () => {
    const r = hyrum('check', catalogued('counter-atomic'), '--strategy', 'dfs');
    assert.equal(r.code, 0);
    assert.ok(r.stdout.includes('search space exhausted'), r.stdout);
  });
});
