/**
 * The memory models the engine offers. SC: every store reaches memory at once. TSO: x86-TSO's
 * FIFO store buffer per thread (Owens, Sarkar, Sewell, TPHOLs 2009). PSO: SPARC's partial store
 * order, where stores to different addresses may leave the buffer out of order. Loads are never
 * reordered with loads in any of them; fences and locked read-modify-writes empty the buffer.
 */
export type MemoryModel = 'sc' | 'tso' | 'pso';

export const MEMORY_MODELS: readonly MemoryModel[] = ['sc', 'tso', 'pso'];

export function parseMemoryModel(s: string): MemoryModel {
  const m = s.toLowerCase();
  if (m === 'sc' || m === 'tso' || m === 'pso') return m;
  throw new Error(`unknown memory model '${s}' (expected sc, tso or pso)`);
}
