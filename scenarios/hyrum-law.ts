/**
 * Hyrum's law, found before the release: run TCMalloc (the tcmalloc-6.19 scenario) on the
 * classic kernel only, but let the kernel leave out its incidental behaviour (rewriting rseq's
 * cpu_id_start after a context switch that kept the CPU: observable, not promised by the ABI).
 * The explorer finds the duplicate allocation that Linux 6.19 later caused, while the classic
 * profile as it is finds nothing.
 */
import { scenario } from 'hyrum';
import tcmalloc from './tcmalloc-6.19.ts';

export default scenario({
  ...tcmalloc,
  name: 'hyrum-law',
  description: "perturbing the classic kernel's incidental cpu_id_start rewrite finds TCMalloc's dependency on it",
  versions: { kernel: '6.18', glibc: '2.35' },
  settings: { 'glibc.pthread.rseq': '0' },
  expect: [
    { versions: { kernel: '6.18', glibc: '2.35' }, strategy: 'pct', runs: 3000, perturb: true, verdict: 'assertion' },
    { versions: { kernel: '6.18', glibc: '2.35' }, strategy: 'pct', runs: 3000, verdict: 'none' },
  ],
});
