// Entry of parallel-check worker threads: register tsx in this thread, then run the worker.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
