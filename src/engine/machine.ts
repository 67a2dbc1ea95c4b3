/**
 * The deterministic machine: N simulated CPUs running simulated threads over simulated memory,
 * one step at a time. Each step, the agents that can move (threads whose pending operation is
 * enabled, and store-buffer entries that may drain) are listed and one is chosen; a choice with
 * one option is not a choice. The step loop is the hot path: it allocates nothing per step and
 * does no tracing or checking work unless asked.
 */
import { AddressSpace } from '../memory/address-space.ts';
import type { MemoryModel } from '../memory/model.ts';
import { SimFault } from '../memory/page.ts';
import { Agents, AGENT_DRAIN, AGENT_STEP, CHOICE_DATA, CHOICE_SCHEDULE, ChoiceLog, PRUNE, type Chooser, type StepObserver } from './choice.ts';
import { DeterminismLog, recordEvent, recordResult, recordStart } from './determinism.ts';
import { AssertionFailed, InternalError, ProcessAbort, UsageError } from './errors.ts';
import { installTraps, removeTraps } from './globals.ts';
import {
  OP_ATOMIC,
  OP_CAS,
  OP_CHOOSE,
  OP_EXIT,
  OP_FADD,
  OP_FENCE,
  OP_FIRST_BLOCKING,
  OP_JOIN,
  OP_LOAD,
  OP_SPAWN,
  OP_STORE,
  OP_TOKEN,
  OP_XCHG,
  SIZE_BIG,
  SIZE_PTR,
  setCurrent,
  setCoverage,
  type AtomicAction,
  type SimFunction,
} from './ops.ts';
import { callerSites, errorSite, thrownByHyrum, type SourceSite } from './source.ts';
import { Hasher } from '../memory/fingerprint.ts';
import { advancePosition, markPosition, setPositionTracking, startPosition } from './state-hash.ts';
import { DONE, HandlerStart, Redirect, RUNNING, SimThread } from './thread.ts';
import { describeOp, describeValue, type TraceStep } from './trace.ts';
import type { Verdict } from './verdict.ts';

const TWO32 = 4294967296;

/** How one run is carried out. */
export interface MachineOptions {
  readonly memoryModel: MemoryModel;
  readonly cpus: number;
  /** Steps a thread may take before the run ends with a `hang` verdict. */
  readonly stepBudget: number;
  /** Record a trace with source lines (slow: captures a stack per operation). */
  readonly trace?: boolean;
  /** Check that simulated code is deterministic given its results (see determinism.ts). */
  readonly determinism?: DeterminismLog | null;
  /** Keep each thread's results so that it can be forked (a kernel is attached). */
  readonly forkable?: boolean;
  /** Told what every step touches (partial-order reduction); disables the fast paths. */
  readonly observer?: StepObserver | null;
  /** Record coverage points (system calls by result, cover() in models). */
  readonly coverage?: boolean;
  /**
   * Keep thread positions so that states can be fingerprinted (state-hash.ts): offers
   * `Agents.stateKey` to the chooser, and ends a run in `livelock` when a state recurs on its
   * own path with every thread that could move having moved. Leaves the fast paths.
   */
  readonly stateHash?: boolean;
}

/** What else holds modelled state outside simulated memory and threads (the kernel, glibc). */
export interface StatePart {
  hashState(h: Hasher): void;
}

/** What an attached kernel model wants to hear from the machine. */
export interface KernelHooks {
  /** t, marked switchedOut, is about to take a step: it returns to user space after a switch. */
  beforeStep?(t: SimThread): void;
  /** A thread's code returned (or it called exit): the task exits. */
  threadExited(t: SimThread): void;
  /** t.interrupt was set: deliver what is pending (signals) before t's next step. */
  interrupted(t: SimThread): void;
  /** A run ended with no thread able to move: may the machine call it a deadlock? */
  describeBlocked?(t: SimThread): string | undefined;
}

/** The scenario's checks, called by the machine. */
export interface MachineHooks {
  /** After every step: return false or a message when the invariant is broken. */
  invariant?: () => boolean | string | void;
}

export class Machine {
  readonly mem = new AddressSpace();
  readonly threads: SimThread[] = [];
  readonly log = new ChoiceLog();
  readonly trace: TraceStep[] | null;
  verdict: Verdict | null = null;
  stepCount = 0;

  private readonly model: MemoryModel;
  private readonly weak: boolean;
  private readonly pso: boolean;
  private readonly cpus: number;
  private readonly stepBudget: number;
  private det: DeterminismLog | null;
  private readonly sites: boolean;
  /** Threads that are running or still have buffered stores. */
  private active: SimThread[] = [];
  private readonly agents = new Agents();
  private last: SimThread | null = null;
  private readonly scratch = new Uint32Array(2);
  private hooks: MachineHooks = {};
  private readonly forkable: boolean;
  private readonly obs: StepObserver | null;
  /** Coverage points reached in this run: system calls by result, and the models' cover() points. */
  readonly coverage: Map<string, number> | null;
  /** The attached kernel model, if any. */
  kernel: KernelHooks | null = null;
  /** Fingerprint the state (opts.stateHash); then also what the kernel and glibc hold. */
  readonly hashing: boolean;
  readonly stateParts: StatePart[] = [];
  /** The run ended early: the chooser pruned it, or a state recurred unfairly (Chooser.pruneRepeats). */
  pruned = false;
  private readonly hasher = new Hasher();
  /** The current state's fingerprint, valid while `keyed` (until the next step). */
  private keyed = false;
  /** Threads parked by atState. */
  private parkedCount = 0;
  private key = 0;
  private keyA = 0;
  private keyB = 0;
  private readonly mems: AddressSpace[] = [];
  /** States met at loop heads in this run, by key: the step count then. */
  private readonly cycles: Map<number, number> | null;

  constructor(
    opts: MachineOptions,
    private readonly chooser: Chooser,
  ) {
    this.model = opts.memoryModel;
    this.weak = opts.memoryModel !== 'sc';
    this.pso = opts.memoryModel === 'pso';
    this.cpus = opts.cpus;
    this.stepBudget = opts.stepBudget;
    this.det = opts.determinism ?? null;
    this.trace = opts.trace ? [] : null;
    this.sites = this.trace !== null || (this.det !== null && this.det.wantsSites);
    this.forkable = opts.forkable ?? false;
    this.obs = opts.observer ?? null;
    this.coverage = opts.coverage ? new Map() : null;
    this.hashing = opts.stateHash ?? false;
    this.cycles = this.hashing ? new Map() : null;
    // Thread code runs from startThread on, before run(): loop heads must count from there.
    setPositionTracking(this.hashing);
    if (this.hashing) {
      this.agents.stateKey = (withLast) => this.stateKey(withLast);
      this.agents.fairSince = (since) => this.fairSince(since);
    }
  }

  get memoryModel(): MemoryModel {
    return this.model;
  }

  setHooks(hooks: MachineHooks): void {
    this.hooks = hooks;
  }

  /** The machine's one source of nondeterminism; n >= 2. */
  choose(n: number, kind: number): number {
    const v = kind === CHOICE_SCHEDULE ? this.chooser.schedule(this.agents, n) : this.chooser.data(n);
    if (v === PRUNE && kind === CHOICE_SCHEDULE) return PRUNE;
    if (!(v >= 0 && v < n)) throw new InternalError(`strategy answered ${v} to a choice among ${n}`);
    this.log.push(v, n, kind);
    return v;
  }

  /** Start a thread (a scenario's initial threads, or OP_SPAWN). Returns it. */
  startThread(fn: SimFunction, args: unknown[], parent: SimThread | null, mem = this.mem): SimThread {
    const t = this.startThreadWith(fn, args, parent, mem, parent?.task ?? null);
    if (parent) setCurrent(parent, this.sites);
    return t;
  }

  private startThreadWith(fn: SimFunction, args: unknown[], parent: SimThread | null, mem: AddressSpace, task: unknown): SimThread {
    const id = this.threads.length;
    const path = parent ? `${parent.path}.${parent.spawned++}` : String(id);
    const gen = fn(...args);
    if (!gen || typeof (gen as { next?: unknown }).next !== 'function') {
      throw new UsageError(`thread body ${fn.name || '(anonymous)'} must be a generator function (function*)`);
    }
    const t = new SimThread(id, path, id % this.cpus, mem, gen, fn, args);
    t.task = task;
    if (this.forkable) t.history = [];
    if (this.hashing) startPosition(t, path);
    if (this.det !== null) recordStart(t, args);
    this.threads.push(t);
    this.active.push(t);
    this.agents.ensure(this.active.length * 2);
    this.advance(t, undefined);
    return t;
  }

  /** Run until every thread is done and every buffer drained, or a verdict. */
  run(): Verdict | null {
    installTraps();
    setCoverage(this.coverage);
    setPositionTracking(this.hashing);
    try {
      this.loop();
    } finally {
      removeTraps();
      setCurrent(null, false);
      setCoverage(null);
      setPositionTracking(false);
    }
    return this.verdict;
  }

  private loop(): void {
    const agents = this.agents;
    const invariant = this.hooks.invariant;
    const plain = !this.weak && this.trace === null && this.obs === null && !this.hashing;
    const obs = this.obs;
    for (;;) {
      if (this.hashing) {
        this.atState();
        if (this.verdict !== null) return;
      }
      // List the agents that can move.
      const act = this.active;
      let n = 0;
      agents.current = -1;
      for (let i = 0; i < act.length; i++) {
        const t = act[i]!;
        if (t.state === RUNNING && !t.parked && ((t.op < OP_FIRST_BLOCKING && t.mem.frozen === null) || this.enabled(t))) {
          if (t === this.last) agents.current = n;
          agents.thread[n] = t;
          agents.kind[n++] = AGENT_STEP;
        }
      }
      if (this.weak) n = this.listDrains(n);
      if (n === 0) {
        this.finish();
        return;
      }
      if (n === 1 && act.length === 1 && plain && invariant === undefined) {
        // One thread and nothing else that could move: no choices until it does something else.
        this.runAlone(act[0]!);
        if (this.verdict !== null) return;
        continue;
      }
      if (this.hashing) agents.step = this.stepCount;
      const k = n === 1 ? 0 : this.choose(n, CHOICE_SCHEDULE);
      if (this.hashing) this.keyed = false;
      if (k === PRUNE) {
        if (this.verdict === null) this.pruned = true;
        return;
      }
      const t = agents.thread[k]!;
      this.stepCount++;
      if (obs !== null) obs.beginStep(t, agents.kind[k] === AGENT_STEP ? -1 : agents.entry[k]!);
      if (agents.kind[k] === AGENT_STEP) this.stepThread(t, plain);
      else this.drain(t, agents.entry[k]!);
      if (obs !== null) obs.endStep();
      if (this.verdict !== null) return;
      if (this.hashing) {
        if (agents.kind[k] === AGENT_STEP) t.lastStep = this.stepCount;
        if (this.parkedCount > 0) this.unparkAll();
      }
      if (invariant !== undefined) this.checkInvariant(invariant);
      if (this.verdict !== null) return;
    }
  }

  /**
   * The hot loop for a thread that runs alone under SC without tracing: nothing else can move,
   * so there are no choices to make while it does plain loads and stores.
   */
  private runAlone(t: SimThread): void {
    if (this.onCpu[t.cpu] !== t) this.contextSwitch(t, this.onCpu[t.cpu]);
    if (this.kernel === null && this.det === null && t.history === null && !t.interrupt) {
      this.spinAlone(t);
      if (this.verdict !== null || t.state !== RUNNING || this.active.length !== 1) return;
    }
    do {
      this.stepCount++;
      this.stepOnCpu(t, true);
    } while (this.verdict === null && t.state === RUNNING && t.op <= OP_STORE && t.size <= 4 && !t.interrupt && this.active.length === 1);
  }

  /**
   * runAlone without kernel, determinism log or history: stepOnCpu's fast path and advance()
   * inlined, with the step count in a local. Leaves at anything that is not a plain load or
   * store of up to 32 bits, or when another thread appears.
   */
  private spinAlone(t: SimThread): void {
    const budget = this.stepBudget;
    const mem = t.mem;
    let steps = t.steps;
    this.last = t;
    setCurrent(t, false);
    for (;;) {
      const op = t.op;
      const size = t.size;
      if (op > OP_STORE || size > 4 || t.state !== RUNNING || this.active.length !== 1) break;
      this.stepCount++;
      if (++steps > budget) {
        t.steps = steps;
        this.setVerdict({
          kind: 'hang',
          message: `${t.name} exceeded its step budget of ${budget} steps (an endless loop?)`,
          thread: t.name,
        });
        return;
      }
      let result = 0;
      try {
        if (op === OP_LOAD) result = mem.load(t.a0, size);
        else mem.store(t.a0, size, t.a1);
      } catch (e) {
        t.steps = steps;
        this.fault(t, e);
        return;
      }
      t.opPending = false;
      let r: IteratorResult<unknown, unknown>;
      try {
        r = t.gen.next(result);
      } catch (e) {
        t.steps = steps;
        this.threw(t, e);
        return;
      }
      if (r.done === true || r.value !== OP_TOKEN || !t.opPending) {
        t.steps = steps;
        this.settle(t, r);
        return;
      }
    }
    t.steps = steps;
  }

  /** One step of t: count it against the budget, perform its operation, run to the next one. */
  private stepThread(t: SimThread, plain: boolean): void {
    const onCpu = this.onCpu[t.cpu];
    if (onCpu !== t) this.contextSwitch(t, onCpu);
    this.stepOnCpu(t, plain);
  }

  /** stepThread for a thread already on its CPU. */
  private stepOnCpu(t: SimThread, plain: boolean): void {
    this.last = t;
    if (this.obs !== null && this.kernel !== null && (t.switchedOut || t.interrupt)) this.obs.global();
    if (t.switchedOut && this.kernel !== null) {
      this.kernel.beforeStep?.(t);
      if (t.state !== RUNNING || this.verdict !== null) return;
    }
    if (t.interrupt) {
      t.interrupt = false;
      this.kernel?.interrupted(t);
      if (t.state !== RUNNING || this.verdict !== null) return;
    }
    if (++t.steps > this.stepBudget) {
      this.setVerdict({
        kind: 'hang',
        message: `${t.name} exceeded its step budget of ${this.stepBudget} steps (an endless loop?)`,
        thread: t.name,
        sites: t.sites ?? undefined,
      });
      return;
    }
    const op = t.op;
    if (plain && op <= OP_STORE && t.size <= 4) {
      // Fast path (SC, no tracing): a load or store of up to 32 bits.
      let result = 0;
      try {
        if (op === OP_LOAD) result = t.mem.load(t.a0, t.size);
        else t.mem.store(t.a0, t.size, t.a1);
      } catch (e) {
        this.fault(t, e);
        return;
      }
      this.advance(t, result);
    } else this.step(t);
  }

  /**
   * While a fork copies the address space, pages already copied are write-protected and a
   * thread that writes one stalls until the fork is done (reference fork-pid.md section 6).
   */
  private writable(t: SimThread): boolean {
    const frozen = t.mem.frozen;
    if (frozen === null) return true;
    const op = t.op;
    if (op === OP_LOAD || op === OP_CHOOSE || op === OP_SPAWN || op === OP_EXIT) return true;
    if (op !== OP_STORE && !this.bufferDrainable(t)) return false;
    if (op === OP_FENCE) return true;
    const end = t.a0 + (t.size > 4 ? 8 : t.size) - 1;
    return !frozen.has(Math.floor(t.a0 / 4096)) && !frozen.has(Math.floor(end / 4096));
  }

  private bufferDrainable(t: SimThread): boolean {
    const sb = t.sb;
    for (let i = 0; i < sb.count; i++) if (!t.mem.mayWrite(sb.addr[i]!, sb.size[i]!)) return false;
    return true;
  }

  private listDrains(n: number): number {
    const act = this.active;
    const agents = this.agents;
    for (let i = 0; i < act.length; i++) {
      const t = act[i]!;
      const sb = t.sb;
      if (sb.count === 0) continue;
      if (!this.pso) {
        if (t.mem.frozen !== null && !t.mem.mayWrite(sb.addr[0]!, sb.size[0]!)) continue;
        agents.ensure(n + 1);
        agents.thread[n] = t;
        agents.kind[n] = AGENT_DRAIN;
        agents.entry[n++] = 0;
        continue;
      }
      for (let e = 0; e < sb.count; e++) {
        if (!sb.drainable(e)) continue;
        if (t.mem.frozen !== null && !t.mem.mayWrite(sb.addr[e]!, sb.size[e]!)) continue;
        agents.ensure(n + 1);
        agents.thread[n] = t;
        agents.kind[n] = AGENT_DRAIN;
        agents.entry[n++] = e;
      }
    }
    return n;
  }

  /** Whether t could take a step now (its pending operation is enabled). */
  isEnabled(t: SimThread): boolean {
    return t.state === RUNNING && t.opPending && this.enabled(t);
  }

  private enabled(t: SimThread): boolean {
    if (t.op < OP_FIRST_BLOCKING) return this.writable(t);
    if (t.op === OP_JOIN) return this.threads[t.a0]!.state === DONE;
    if (t.op === OP_ATOMIC) {
      const action = t.obj as AtomicAction;
      return action.enabled === undefined || action.enabled(t);
    }
    return true;
  }

  /** Perform t's pending operation, then run its code to the next operation. */
  private step(t: SimThread): void {
    let result: unknown;
    try {
      result = this.perform(t);
    } catch (e) {
      this.fault(t, e);
      return;
    }
    if (t.state === RUNNING) this.advance(t, result);
  }

  /**
   * t takes the CPU from `prev` (the thread that ran there last): prev is switched out, and t
   * returns to user space after its own earlier switch-out (the kernel's rseq hooks run then).
   */
  private contextSwitch(t: SimThread, prev: SimThread | undefined): void {
    if (prev !== undefined && prev.state === RUNNING) prev.switchedOut = true;
    this.onCpu[t.cpu] = t;
  }

  /** Move t to another CPU (sched_setaffinity, a migration). */
  migrate(t: SimThread, cpu: number): void {
    if (this.onCpu[t.cpu] === t) this.onCpu[t.cpu] = undefined;
    t.cpu = cpu;
    t.switchedOut = true;
  }

  /** How many CPUs the machine has. */
  get cpuCount(): number {
    return this.cpus;
  }

  /** The thread that ran last on each CPU. */
  readonly onCpu: (SimThread | undefined)[] = [];

  /**
   * Make t's code jump: throw `error` into its generator where it waits (an rseq abort to
   * abort_ip, which the critical section's code catches). Its pending operation is dropped.
   */
  redirect(t: SimThread, error: Error): void {
    t.history?.push(new Redirect(error));
    if (this.det !== null) recordEvent(t, 0x7ab);
    if (this.hashing) markPosition(t, 0x7ab, error.message);
    t.opPending = false;
    t.sites = null;
    setCurrent(t, this.sites);
    let r: IteratorResult<unknown, unknown>;
    try {
      r = t.gen.throw(error);
    } catch (e) {
      this.threw(t, e);
      return;
    }
    this.settle(t, r);
  }

  /** A SimFault is the thread's SIGSEGV; anything else is not ours to handle here. */
  private fault(t: SimThread, e: unknown): void {
    if (!(e instanceof SimFault)) throw e;
    if (this.trace) this.recordTrace(t, `SIGSEGV ${e.reason} at 0x${e.addr.toString(16)}`);
    this.setVerdict({
      kind: 'crash',
      message: `${t.name}: ${e.message}`,
      thread: t.name,
      sites: t.sites ?? undefined,
      signal: 'SIGSEGV',
      addr: e.addr,
    });
  }

  private perform(t: SimThread): unknown {
    const mem = t.mem;
    switch (t.op) {
      case OP_LOAD:
        return this.load(t);
      case OP_STORE:
        this.store(t);
        return undefined;
      case OP_CAS:
      case OP_XCHG:
      case OP_FADD:
        if (t.sb.count > 0) this.flush(t);
        return this.rmw(t);
      case OP_FENCE:
        if (t.sb.count > 0) this.flush(t);
        if (this.trace) this.recordTrace(t, 'store buffer empty');
        return undefined;
      case OP_CHOOSE: {
        const v = t.a1 === 1 ? 0 : this.choose(t.a1, CHOICE_DATA);
        if (this.trace) this.recordTrace(t, `→ ${v}`);
        return v;
      }
      case OP_SPAWN: {
        this.obs?.global();
        const child = this.startThread(t.obj as SimFunction, t.args ?? [], t, mem);
        if (this.trace) this.recordTrace(t, `started ${child.name}`);
        return child.id;
      }
      case OP_JOIN: {
        this.obs?.global();
        const target = this.threads[t.a0];
        if (target === undefined) throw new UsageError(`join(${t.a0}): no such thread`, t.sites?.[0]);
        if (this.trace) this.recordTrace(t, `→ ${describeValue(target.retval)}`);
        return target.retval;
      }
      case OP_EXIT:
        this.obs?.global();
        if (this.trace) this.recordTrace(t, 'thread exits');
        this.finishThread(t, t.obj);
        return undefined;
      case OP_ATOMIC: {
        const action = t.obj as AtomicAction;
        if (this.obs !== null && action.footprint !== 'local') this.obs.global();
        const r = action.run(t);
        if (this.coverage !== null) {
          const point = `call ${action.name} -> ${typeof r === 'number' && r < 0 ? `E${-r}` : 'ok'}`;
          this.coverage.set(point, (this.coverage.get(point) ?? 0) + 1);
        }
        if (this.trace) this.recordTrace(t, `→ ${describeValue(r)}`);
        return r;
      }
      default:
        throw new InternalError(`unknown opcode ${t.op}`);
    }
  }

  private load(t: SimThread): number | bigint {
    const size = t.size;
    const addr = t.a0;
    if (this.obs !== null && !t.sb.forwardsWhole(addr, size > 4 ? 8 : size)) this.obs.read(addr, size > 4 ? 8 : size);
    if (t.sb.count === 0 && size <= 4) {
      const v = t.mem.load(addr, size);
      if (this.trace) this.recordTrace(t, `→ ${v}`);
      return v;
    }
    const out = this.scratch;
    const width = size > 4 ? 8 : size;
    if (t.sb.count === 0) {
      out[0] = t.mem.load(addr, width > 4 ? 4 : width);
      out[1] = width > 4 ? t.mem.load(addr + 4, 4) : 0;
    } else t.sb.readThrough(t.mem, addr, width, out);
    const v = this.fromHalves(t, out[0]!, out[1]!);
    if (this.trace) this.recordTrace(t, `→ ${describeValue(v)}${t.sb.count > 0 ? ' (store buffer or memory)' : ''}`);
    return v;
  }

  private fromHalves(t: SimThread, lo: number, hi: number): number | bigint {
    if (t.size <= 4) return lo;
    if (t.size === SIZE_BIG) return BigInt(lo) | (BigInt(hi) << 32n);
    if (hi >= 0x200000) throw new UsageError(`loadPtr at 0x${t.a0.toString(16)}: value is not a safe integer; use load64`, t.sites?.[0]);
    return hi * TWO32 + lo;
  }

  private store(t: SimThread): void {
    const size = t.size;
    if (!this.weak) {
      this.obs?.write(t.a0, size <= 4 ? size : 8);
      if (size <= 4) t.mem.store(t.a0, size, t.a1);
      else if (size === SIZE_BIG) t.mem.store64(t.a0, t.b1);
      else t.mem.storePtr(t.a0, t.a1);
      if (this.trace) this.recordTrace(t, 'to memory');
      return;
    }
    // Fault now, as the real store would at execution, not later at drain.
    t.mem.checkWritable(t.a0, size <= 4 ? size : 8);
    const sb = t.sb;
    if (sb.isFull()) this.drain(t, 0);
    if (size <= 4) sb.push(t.a0, size, t.a1, 0);
    else if (size === SIZE_BIG) sb.push(t.a0, 8, Number(t.b1 & 0xffffffffn), Number(t.b1 >> 32n));
    else sb.push(t.a0, 8, t.a1 % TWO32, Math.floor(t.a1 / TWO32));
    this.obs?.buffered(t);
    if (this.trace) {
      t.sbSites.push(t.sites);
      this.recordTrace(t, 'to store buffer');
    }
  }

  private rmw(t: SimThread): number | bigint {
    const mem = t.mem;
    const addr = t.a0;
    const size = t.size;
    this.obs?.write(addr, size <= 4 ? size : 8);
    let old: number | bigint;
    let written: number | bigint | null = null;
    if (size === SIZE_BIG) {
      const o = mem.load64(addr);
      old = o;
      const v = t.op === OP_CAS ? (o === t.b2 ? t.b1 : null) : t.op === OP_XCHG ? t.b1 : BigInt.asUintN(64, o + t.b1);
      if (v !== null) mem.store64(addr, (written = v));
    } else if (size === SIZE_PTR) {
      const o = mem.loadPtr(addr);
      old = o;
      const v = t.op === OP_CAS ? (o === t.a2 ? t.a1 : null) : t.op === OP_XCHG ? t.a1 : o + t.a1;
      if (v !== null) mem.storePtr(addr, (written = v));
    } else {
      const o = mem.load(addr, size);
      old = o;
      const mask = size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
      const v = t.op === OP_CAS ? (o === t.a2 ? t.a1 : null) : t.op === OP_XCHG ? t.a1 : ((o + t.a1) & mask) >>> 0;
      if (v !== null) mem.store(addr, size, (written = v >>> 0));
    }
    if (this.trace) {
      this.recordTrace(t, `old ${describeValue(old)}${written === null ? ', unchanged (compare failed)' : `, wrote ${describeValue(written)}`}`);
    }
    return old;
  }

  private flush(t: SimThread): void {
    while (t.sb.count > 0) this.drain(t, 0);
  }

  private drain(t: SimThread, entry: number): void {
    const sb = t.sb;
    if (this.trace) {
      const addr = sb.addr[entry]!;
      const size = sb.size[entry]!;
      const lo = sb.lo[entry]!;
      const value = size === 8 ? BigInt(lo) | (BigInt(sb.hi[entry]!) << 32n) : lo;
      const sites = t.sbSites.splice(entry, 1)[0] ?? null;
      this.trace.push({
        step: this.stepCount,
        cpu: t.cpu,
        thread: t.name,
        op: `drain ${size * 8}-bit store [0x${addr.toString(16)}]`,
        effect: `memory [0x${addr.toString(16)}] = ${describeValue(value)}`,
        sites: sites ?? [],
      });
    }
    this.obs?.drained(t, entry);
    sb.drain(entry, t.mem);
    t.lastDrain = this.stepCount;
    if (t.state === DONE && sb.count === 0) this.deactivate(t);
  }

  /** Resume t's code with the result of its last operation, to its next operation. */
  private advance(t: SimThread, result: unknown): void {
    if (this.det !== null && t.opPending) recordResult(t, result);
    if (t.history !== null && t.opPending) t.history.push(result);
    if (this.hashing && t.opPending) advancePosition(t, result);
    t.opPending = false;
    t.sites = null;
    setCurrent(t, this.sites);
    let r: IteratorResult<unknown, unknown>;
    try {
      r = t.gen.next(result);
    } catch (e) {
      this.threw(t, e);
      return;
    }
    this.settle(t, r);
  }

  /** What a resumed generator did: finished (the thread or a handler frame) or issued an operation. */
  private settle(t: SimThread, r: IteratorResult<unknown, unknown>): void {
    if (r.done === true) {
      if (t.frames.length > 0) this.returnFromHandler(t);
      else this.finishThread(t, r.value);
      return;
    }
    if (r.value !== OP_TOKEN || !t.opPending) {
      throw new UsageError(
        `${t.name} yielded ${describeValue(r.value)}, which is not an operation (yield load32(...), store32(...), ...)`,
        t.sites?.[0] ?? callerSites()[0],
      );
    }
    if (this.det !== null) this.det.observe(t, describeOp);
  }

  private threw(t: SimThread, e: unknown): void {
    if (e instanceof UsageError || e instanceof InternalError) throw e;
    const sites = siteList(errorSite(e));
    if (e instanceof AssertionFailed) {
      this.setVerdict({ kind: 'assertion', message: `${t.name}: ${e.message}`, thread: t.name, sites });
      return;
    }
    if (e instanceof ProcessAbort) {
      this.setVerdict({ kind: 'crash', message: `${t.name}: SIGABRT: ${e.message}`, thread: t.name, sites, signal: 'SIGABRT' });
      return;
    }
    if (thrownByHyrum(e)) throw new InternalError(`Hyrum failed while running ${t.name}: ${String(e)}`, { cause: e });
    const msg = e instanceof Error ? `${e.name}: ${e.message}` : `threw ${describeValue(e)}`;
    this.setVerdict({ kind: 'exception', message: `${t.name}: ${msg}`, thread: t.name, sites });
  }

  private finishThread(t: SimThread, value: unknown): void {
    t.state = DONE;
    t.retval = value;
    t.opPending = false;
    if (t.sb.count === 0) this.deactivate(t);
    this.kernel?.threadExited(t);
  }

  /**
   * Run fn(...args) on t before its pending operation, as a signal handler runs on the
   * interrupted thread; when fn returns, the interrupted code goes on where it was.
   */
  pushFrame(t: SimThread, fn: SimFunction, args: unknown[]): void {
    t.frames.push({ gen: t.gen, op: t.op, size: t.size, a0: t.a0, a1: t.a1, a2: t.a2, b1: t.b1, b2: t.b2, obj: t.obj, args: t.args, sites: t.sites });
    t.history?.push(new HandlerStart(fn, args));
    if (this.det !== null) recordEvent(t, t.frames.length);
    if (this.hashing) {
      markPosition(t, 0x4a1, fn);
      markPosition(t, 0x4a2, args);
    }
    t.gen = fn(...args);
    t.opPending = false;
    this.advance(t, undefined);
  }

  private returnFromHandler(t: SimThread): void {
    const f = t.frames.pop()!;
    t.gen = f.gen;
    t.op = f.op;
    t.size = f.size;
    t.a0 = f.a0;
    t.a1 = f.a1;
    t.a2 = f.a2;
    t.b1 = f.b1;
    t.b2 = f.b2;
    t.obj = f.obj;
    t.args = f.args;
    t.sites = f.sites;
    t.opPending = true;
  }

  /**
   * A copy of `parent` for a fork child: the thread's code is re-run from its start on the
   * parent's recorded results (generators cannot be copied), up to the pending operation, whose
   * result in the child is `childResult`. The child runs on `mem` with `task`.
   */
  forkThread(parent: SimThread, mem: AddressSpace, task: unknown, childResult: unknown): SimThread {
    const history = parent.history;
    if (history === null) throw new InternalError('forkThread: the machine does not keep thread histories');
    const id = this.threads.length;
    const path = `${parent.path}.${parent.spawned++}`;
    const child = new SimThread(id, path, parent.cpu, mem, parent.startFn(...parent.startArgs), parent.startFn, parent.startArgs);
    child.task = task;
    child.history = [];
    const det = this.det;
    // Replay without performing: the operations' effects are already in the copied memory.
    this.det = null;
    try {
      this.replayInto(child, history);
    } finally {
      this.det = det;
    }
    this.threads.push(child);
    this.active.push(child);
    this.agents.ensure(this.active.length * 2);
    this.advance(child, childResult);
    setCurrent(parent, this.sites);
    return child;
  }

  private replayInto(child: SimThread, history: readonly unknown[]): void {
    this.advance(child, undefined);
    for (const entry of history) {
      if (child.state !== RUNNING) throw new InternalError('forkThread: the re-run ended before the fork');
      if (entry instanceof HandlerStart) this.pushFrame(child, entry.fn, entry.args as unknown[]);
      else if (entry instanceof Redirect) this.redirect(child, entry.error);
      else this.advance(child, entry);
    }
    if (!child.opPending) throw new InternalError('forkThread: the re-run did not reach the fork');
  }

  /** End a thread now (killed with its process): its buffered stores still reach memory. */
  kill(t: SimThread): void {
    if (t.state === DONE) return;
    if (t.sb.count > 0) this.flush(t);
    t.state = DONE;
    t.opPending = false;
    t.frames.length = 0;
    this.deactivate(t);
  }

  /** Start a thread in the kernel's name (clone of a new thread): fn(...args) on mem. */
  spawnTask(fn: SimFunction, args: unknown[], parent: SimThread, mem: AddressSpace, task: unknown): SimThread {
    const child = this.startThreadWith(fn, args, parent, mem, task);
    setCurrent(parent, this.sites);
    return child;
  }

  private deactivate(t: SimThread): void {
    const i = this.active.indexOf(t);
    if (i >= 0) this.active.splice(i, 1);
  }

  private finish(): void {
    const blocked = this.threads.filter((t) => t.state === RUNNING);
    if (blocked.length === 0) return;
    const names = blocked.map((t) => `${t.name} (${describeOp(t)})`).join(', ');
    this.setVerdict({
      kind: 'deadlock',
      message: `every live thread is blocked: ${names}`,
      thread: blocked[0]!.name,
      sites: blocked[0]!.sites ?? undefined,
    });
  }

  // ---- state hashing (state-hash.ts) --------------------------------------------------------

  /**
   * The fingerprint of the current state: threads in creation order (state, position, pending
   * operation, CPU, store buffer, which address space; a finished thread's return value), the
   * address spaces in use, the CPUs' last threads (with a kernel: rseq's switch tracking reads
   * them), and the kernel's and glibc's own state.
   */
  private fingerprint(): void {
    const h = this.hasher.reset();
    const mems = this.mems;
    mems.length = 0;
    for (const t of this.threads) {
      h.word(t.state);
      const sb = t.sb;
      if (t.state === RUNNING) {
        h.word(t.pos1);
        h.word(t.pos2);
        h.word(t.op);
        h.word(t.size);
        h.num(t.a0);
        h.num(t.a1);
        h.word(t.cpu);
        h.num(t.ip);
        h.bool(t.interrupt);
        h.bool(t.parked);
        h.word(t.frames.length);
      } else h.value(t.retval);
      if (t.state === RUNNING || sb.count > 0) {
        let m = mems.indexOf(t.mem);
        if (m < 0) m = mems.push(t.mem) - 1;
        h.word(m);
      }
      h.word(sb.count);
      for (let i = 0; i < sb.count; i++) {
        h.num(sb.addr[i]!);
        h.word(sb.size[i]!);
        h.word(sb.lo[i]!);
        h.word(sb.hi[i]!);
      }
    }
    for (const m of mems) m.hashInto(h);
    if (this.kernel !== null) {
      for (let c = 0; c < this.cpus; c++) h.word(this.onCpu[c]?.id ?? -1);
      for (const t of this.threads) h.bool(t.switchedOut);
    }
    for (const part of this.stateParts) part.hashState(h);
    this.key = h.key;
    this.keyA = h.a;
    this.keyB = h.b;
    this.keyed = true;
  }

  /** The current state's key; `withLast` adds the thread that ran last (what a preemption is depends on it). */
  stateKey(withLast: boolean): number {
    if (!this.keyed) this.fingerprint();
    if (!withLast) return this.key;
    const h = this.hasher.reset(this.keyA, this.keyB);
    h.word(this.last?.id ?? -1);
    return h.key;
  }

  /**
   * At each state where a thread has just passed a loop head, a state met before on this run's
   * path closes a cycle. (A stateful search also meets cycles at its choices, and asks
   * `Agents.fairSince`: it prunes an unfair one and lets a fair one run on to its loop head, so
   * that livelocks are called here only, the same in a search and in its replays.) It is a livelock when
   * every thread that can move moved in the cycle and every store buffer holding stores drained
   * in it (a weakly fair cycle, which a fair scheduler may repeat forever). Otherwise the threads
   * that went round it are parked until another agent moves: running them first only repeats
   * states, and a search still explores every schedule from the cycle's first visit.
   */
  private atState(): void {
    let looped: SimThread | null = null;
    for (const t of this.active) {
      if (t.looped) {
        t.looped = false;
        looped ??= t;
      }
    }
    if (looped === null) return;
    const key = this.stateKey(false);
    const cycles = this.cycles!;
    const since = cycles.get(key);
    if (since === undefined) {
      cycles.set(key, this.stepCount);
      return;
    }
    if (this.livelockSince(since, looped)) return;
    for (const u of this.active) {
      if (u.state === RUNNING && u.lastStep > since && !u.parked) {
        u.parked = true;
        this.parkedCount++;
      }
    }
    this.keyed = false;
  }

  /** The state recurred since step `since`: a livelock (verdict set) when the cycle is fair. */
  private livelockSince(since: number, t: SimThread): boolean {
    if (!this.fairSince(since)) return false;
    this.setVerdict({
      kind: 'livelock',
      message:
        `the run came back at step ${this.stepCount} to the state of step ${since}, and every thread that could move ` +
        `moved in between (${t.name} last): a fair scheduler may repeat these ${this.stepCount - since} steps forever`,
      thread: t.name,
      sites: t.sites ?? undefined,
    });
    return true;
  }

  private unparkAll(): void {
    for (const t of this.active) t.parked = false;
    this.parkedCount = 0;
  }

  private fairSince(step: number): boolean {
    for (const t of this.active) {
      if (t.state === RUNNING && t.opPending && this.enabled(t) && t.lastStep <= step) return false;
      if (t.sb.count > 0 && t.lastDrain <= step) return false;
    }
    return true;
  }

  /** Check an invariant now (at the end of a run); the verdict if it is violated. */
  checkInvariantNow(invariant: () => boolean | string | void): Verdict | null {
    this.checkInvariant(invariant);
    return this.verdict;
  }

  private checkInvariant(invariant: () => boolean | string | void): void {
    let r: boolean | string | void;
    try {
      r = invariant();
    } catch (e) {
      if (e instanceof AssertionFailed) r = e.message;
      else throw e;
    }
    if (r === true || r === undefined) return;
    this.setVerdict({
      kind: 'invariant',
      message: typeof r === 'string' ? r : 'the invariant is false',
      thread: this.last?.name,
      sites: this.last?.sites ?? undefined,
    });
  }

  setVerdict(v: Verdict): void {
    if (this.verdict === null) this.verdict = v;
  }

  private recordTrace(t: SimThread, effect: string): void {
    this.trace!.push({ step: this.stepCount, cpu: t.cpu, thread: t.name, op: describeOp(t), effect, sites: t.sites ?? [] });
  }
}

function siteList(s: SourceSite | undefined): SourceSite[] | undefined {
  return s ? [s] : undefined;
}
