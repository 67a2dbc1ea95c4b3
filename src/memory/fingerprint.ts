/**
 * Fingerprints: a two-lane 32-bit hash (murmur3's mixing steps, Appleby's MurmurHash3) folded
 * into a 53-bit key, for pages of memory here and for the whole modelled state in
 * engine/state-hash.ts, which says what a state is and when pruning by it is sound.
 */

/** murmur3's finaliser (fmix32): a 32-bit avalanche. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);
const strings = new Map<string, number>();
/** Objects without a value hash get an identity that never matches across runs (sound: never merged). */
const identities = new WeakMap<object, number>();
let nextIdentity = 0x5eed;

/** FNV-1a over UTF-16 units, finalised; cached (model strings are few). */
export function stringHash(s: string): number {
  let h = strings.get(s);
  if (h !== undefined) return h;
  h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h = fmix32(h);
  if (strings.size < 100_000) strings.set(s, h);
  return h;
}

/** A running two-lane hash; `key` folds it into a safe integer (a Map key). */
export class Hasher {
  a = 0;
  b = 0;

  reset(a = 0x9747b28c, b = 0x2545f491): this {
    this.a = a;
    this.b = b;
    return this;
  }

  /** Mix one 32-bit word (murmur3's body step in lane a, a multiply-xorshift in lane b). */
  word(w: number): void {
    let k = Math.imul(w, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    let a = this.a ^ k;
    a = (a << 13) | (a >>> 19);
    this.a = (Math.imul(a, 5) + 0xe6546b64) | 0;
    let b = this.b + Math.imul(w ^ 0x27d4eb2f, 0x165667b1);
    b ^= b >>> 15;
    this.b = Math.imul(b, 0x2c1b3c6d) | 0;
  }

  num(x: number): void {
    if ((x | 0) === x) this.word(x);
    else if (x >= 0 && x <= 0xffffffff && x === Math.floor(x)) this.word(x | 0);
    else {
      F64[0] = x;
      this.word(U32[0]! ^ 0x7ff00001);
      this.word(U32[1]!);
    }
  }

  bool(x: boolean): void {
    this.word(x ? 0x6b : 0x3d);
  }

  str(s: string): void {
    this.word(stringHash(s));
  }

  /** Any value a thread may be given as a result or keep as a return value. */
  value(v: unknown): void {
    switch (typeof v) {
      case 'number':
        this.word(0x11);
        this.num(v);
        return;
      case 'bigint':
        this.word(0x12);
        this.word(Number(BigInt.asUintN(32, v)));
        this.word(Number(BigInt.asUintN(32, v >> 32n)));
        if (v >= 1n << 64n || v < -(1n << 63n)) this.str(v.toString(16));
        return;
      case 'undefined':
        this.word(0x13);
        return;
      case 'boolean':
        this.word(v ? 0x14 : 0x15);
        return;
      case 'string':
        this.word(0x16);
        this.str(v);
        return;
      case 'function':
        this.word(0x17);
        this.str(v.name);
        this.identity(v);
        return;
      default:
        if (v === null) this.word(0x18);
        else if (Array.isArray(v)) {
          this.word(0x19);
          this.word(v.length);
          for (const x of v) this.value(x);
        } else this.identity(v as object);
    }
  }

  private identity(o: object): void {
    let id = identities.get(o);
    if (id === undefined) identities.set(o, (id = nextIdentity++));
    this.word(0x1a);
    this.word(id);
  }

  /** The state's key: both lanes finalised, 53 bits. */
  get key(): number {
    const a = fmix32(this.a ^ 0x3c6ef372);
    const b = fmix32(this.b + a);
    return a * 2097152 + (b >>> 11);
  }
}
