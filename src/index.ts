/**
 * Hyrum's public API for scenario files: `import { scenario, load32, ... } from 'hyrum'`.
 */
export { scenario, type Scenario, type Expectation, type StrategyName } from './scenario/define.ts';
export { MemoryView, Setup, DATA_BASE } from './scenario/memory-view.ts';
export {
  load8,
  load16,
  load32,
  load64,
  loadPtr,
  store8,
  store16,
  store32,
  store64,
  storePtr,
  cas32,
  cas64,
  casPtr,
  xchg32,
  xchg64,
  xchgPtr,
  fetchAdd32,
  fetchAdd64,
  fence,
  choose,
  spawn,
  join,
  exit,
  atomic,
  loopEntry,
  loopHead,
  type Op,
  type SimCode,
  type SimFunction,
  type AtomicAction,
} from './engine/ops.ts';
export { assert } from './engine/errors.ts';
export { PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC, PAGE_SIZE } from './memory/page.ts';
export type { MemoryModel } from './memory/model.ts';
export type { Verdict, VerdictKind } from './engine/verdict.ts';
