/**
 * A seeded xoshiro128** generator whose state round-trips through a run's rng.json as four plain numbers.
 *
 * Hand-written because no PRNG library is a dependency of i2i-core and the state must be exportable; the same
 * generator serves the patch ids (networks/patch-sample.ts) and the data loaders (train/data.ts).
 */
import { UsageError } from '@scenimefy/io/core';

/** Four unsigned 32-bit words, not all zero. */
export type RngWords = [number, number, number, number];

/** splitmix32 output for a counter value: a well-mixed 32-bit hash, the usual way to seed xoshiro. */
export function splitmix32(counter: number): number {
  let z = (counter + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Whether `words` is a valid generator state: four uint32 integers, not all zero (the all-zero state is a fixed point). */
export function isRngWords(words: unknown): words is RngWords {
  return (
    Array.isArray(words) &&
    words.length === 4 &&
    words.every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32) &&
    words.some((v) => v !== 0)
  );
}

export class SeededRng {
  private s: RngWords;

  constructor(words: readonly number[]) {
    if (!isRngWords([...words]))
      throw new UsageError(`SeededRng: state must be four uint32 words, not all 0, got ${JSON.stringify(words)}`);
    this.s = [words[0]!, words[1]!, words[2]!, words[3]!];
  }

  /** The state words are the first four outputs of a splitmix32 sequence started at the seed. */
  static fromSeed(seed: number): SeededRng {
    if (!Number.isSafeInteger(seed)) throw new UsageError(`SeededRng: seed must be an integer, got ${seed}`);
    const base = Number(BigInt.asUintN(32, BigInt(seed)));
    const word = (k: number): number => splitmix32((base + Math.imul(k, 0x9e3779b9)) >>> 0);
    return new SeededRng([word(0), word(1), word(2), word(3)]);
  }

  /** A copy of the state; `setState(state())` later resumes the stream exactly. */
  state(): RngWords {
    return [...this.s];
  }

  setState(words: readonly number[]): void {
    if (!isRngWords([...words]))
      throw new UsageError(`SeededRng.setState: expected four uint32 words, not all 0, got ${JSON.stringify(words)}`);
    this.s = [words[0]!, words[1]!, words[2]!, words[3]!];
  }

  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] = (s[2] ^ s[0]) >>> 0;
    s[3] = (s[3] ^ s[1]) >>> 0;
    s[1] = (s[1] ^ s[2]) >>> 0;
    s[0] = (s[0] ^ s[3]) >>> 0;
    s[2] = (s[2] ^ t) >>> 0;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform float in [0, 1) with 32 random bits. */
  uniform(): number {
    return this.nextUint32() / 2 ** 32;
  }

  /** Uniform integer in [0, n), 1 ≤ n ≤ 2³², without modulo bias (rejection of the incomplete top range). */
  below(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new UsageError(`SeededRng.below: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** A uniformly random permutation of 0..n-1 (Fisher–Yates), what the DataLoader's `randperm(n)` is in distribution. */
  permutation(n: number): Uint32Array {
    const perm = new Uint32Array(n);
    for (let i = 0; i < n; i++) perm[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.below(i + 1);
      const tmp = perm[i]!;
      perm[i] = perm[j]!;
      perm[j] = tmp;
    }
    return perm;
  }
}
