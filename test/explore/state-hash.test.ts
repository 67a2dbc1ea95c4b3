import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { check, replayRun } from '../../src/explore/explorer.ts';
import { Hasher } from '../../src/memory/fingerprint.ts';
import { AddressSpace } from '../../src/memory/address-space.ts';
import { PROT_READ, PROT_WRITE } from '../../src/memory/page.ts';
import spinWait from '../../scenarios/spin-wait.ts';
import reclaimStacks from '../../scenarios/reclaim-stacks.ts';
import lostUpdate from '../../scenarios/lost-update.ts';

function key(mem: AddressSpace): number {
  const h = new Hasher().reset();
  mem.hashInto(h);
  return h.key;
}

function space(): AddressSpace {
  const m = new AddressSpace();
  m.map(0x10000, 0x3000, PROT_READ | PROT_WRITE);
  return m;
}

describe('state fingerprints', () => {
  it('are equal for equal memory reached by different store orders, and differ otherwise', () => {
    const a = space();
    const b = space();
    a.store(0x10000, 4, 1);
    a.store(0x12008, 4, 2);
    b.store(0x12008, 4, 2);
    b.store(0x10000, 4, 1);
    assert.equal(key(a), key(b));
    b.store(0x10000, 4, 3);
    assert.notEqual(key(a), key(b));
    b.store(0x10000, 4, 1);
    assert.equal(key(a), key(b));
  });

  it('see a write to a page whose fingerprint was taken (the cached write page is forgotten)', () => {
    const a = space();
    a.store(0x10000, 4, 1);
    const before = key(a);
    a.store(0x10004, 4, 7);
    assert.notEqual(key(a), before);
    a.store(0x10004, 4, 0);
    assert.equal(key(a), before);
  });

  it('tell protection and mappings apart, and a copy-on-write child from its parent after a write', () => {
    const a = space();
    const b = space();
    b.protect(0x11000, 0x1000, PROT_READ);
    assert.notEqual(key(a), key(b));
    const child = a.fork();
    assert.equal(key(child), key(a));
    child.store(0x11000, 1, 9);
    assert.notEqual(key(child), key(a));
  });
});

describe('state hashing in exploration', () => {
  for (const strategy of ['dfs', 'dpor', 'random', 'pct'] as const) {
    it(`${strategy}: a spin that another thread ends is no hang, one no thread ends is a livelock`, () => {
      const fine = check(spinWait, { strategy, memoryModel: 'sc', variant: 'handoff', runs: 500, stateHash: true });
      assert.equal(fine.finding, null);
      const live = check(spinWait, { strategy, memoryModel: 'sc', variant: 'each-waits', runs: 500, stateHash: true });
      assert.equal(live.finding?.verdict.kind, 'livelock');
      // The replay string carries state hashing (h=1) and gives the same verdict.
      assert.match(live.finding!.replay, /:h=1:/);
      assert.equal(replayRun(spinWait, live.finding!.replay).verdict?.kind, 'livelock');
    });
  }

  it('without it, the livelock shows only as a hang at the step budget', () => {
    const r = check(spinWait, { strategy: 'random', memoryModel: 'sc', variant: 'each-waits', runs: 50, stateHash: false });
    assert.equal(r.finding?.verdict.kind, 'hang');
  });

  it('stateful DFS finds the lost update and reports distinct states', () => {
    const r = check(lostUpdate, { strategy: 'dfs', memoryModel: 'sc' });
    assert.equal(r.finding?.verdict.kind, 'assertion');
    assert.ok((r.states ?? 0) > 0);
  });

  it('stateful DFS checks reclaim-stacks 2.10 (SC, bound 1) in fewer runs than stateless DFS, finding nothing either way', () => {
    const opts = { strategy: 'dfs', memoryModel: 'sc', versions: { glibc: '2.10' }, preemptionBound: 1 } as const;
    const stateless = check(reclaimStacks, { ...opts, stateHash: false });
    const stateful = check(reclaimStacks, { ...opts, stateHash: true });
    assert.equal(stateless.finding, null);
    assert.equal(stateful.finding, null);
    assert.equal(stateless.exhausted && stateful.exhausted, true);
    assert.equal(stateless.runs, 2604);
    assert.ok(stateful.runs < stateless.runs / 2, `${stateful.runs} runs with states cached vs ${stateless.runs}`);
  });
});
