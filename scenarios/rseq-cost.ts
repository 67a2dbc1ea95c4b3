/**
 * Seed 004's other half: the 6.19 rework made rseq cheaper ("15% for many workloads") by not
 * writing the ID fields, each a user access with STAC/CLAC toggling, on every return to user
 * space. The workload here is all context switches: two threads on one CPU take turns with
 * sched_yield, both registered (glibc 2.35). The simulated-time ratio 6.18 / 6.19 is the gain.
 *
 * Costs (src/kernel/profile.ts, measured by probes/rseq/switch_cost.c on this machine): a yield
 * with its switch 890 ns, rseq's return-to-user update 148 ns. Classic updates after every
 * switch; 6.19 only when the CPU changes or user space was interrupted (never here: every switch
 * comes from the yield system call).
 */
import { scenario, type SimCode } from 'hyrum';
import { schedYield } from '../src/kernel/sched.ts';

export const YIELDS = 200;

function* yielder(): SimCode<number> {
  for (let i = 0; i < YIELDS; i++) yield* schedYield();
  return 0;
}

export default scenario({
  name: 'rseq-cost',
  description: "seed 004: 6.19's rseq fast path saves ~15% of simulated time on a switch-heavy workload",
  glibc: true,
  cpus: 1,
  stepBudget: 10 * YIELDS,
  versions: { kernel: '6.18', glibc: '2.35' },
  threads: [yielder, yielder],
  // Preemption bound 0: threads switch only at the yields, once per yield, as on the machine.
  expect: [
    { versions: { kernel: '6.18' }, strategy: 'dfs', preemptionBound: 0, verdict: 'none' },
    { versions: { kernel: '6.19' }, strategy: 'dfs', preemptionBound: 0, verdict: 'none' },
    { versions: { kernel: '7.1' }, strategy: 'dfs', preemptionBound: 0, verdict: 'none' },
  ],
});
