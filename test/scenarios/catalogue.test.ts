/**
 * Every catalogue scenario's expectations, as tests: a scenario that must find a bug finds it
 * with the verdict and versions stated; its fixed twin finds nothing within the stated bounds.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expectationOptions } from '../../src/cli/catalogue.ts';
import { catalogueFiles, loadScenario } from '../../src/cli/load.ts';
import { check } from '../../src/explore/explorer.ts';

const files = catalogueFiles();

describe('the scenario catalogue', async () => {
  for (const file of files) {
    const s = await loadScenario(file);
    for (const e of s.expect ?? []) {
      const versions = Object.entries(e.versions ?? {})
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      const label = `${s.name}${e.variant ? `/${e.variant}` : ''} ${e.memoryModel ?? s.memoryModel ?? 'sc'} ${versions} ${e.strategy ?? 'dfs'}: ${e.verdict}`;
      it(label, () => {
        const r = check(s, expectationOptions(s, e));
        assert.equal(r.finding?.verdict.kind ?? 'none', e.verdict, r.finding ? `${r.finding.verdict.message}\n${r.finding.replay}` : undefined);
        const exhaustive = (e.strategy ?? 'dfs') === 'dfs' || e.strategy === 'dpor';
        if (e.verdict === 'none' && exhaustive) assert.equal(r.exhausted, true, 'the stated bounds were not exhausted');
      });
    }
  }
});
