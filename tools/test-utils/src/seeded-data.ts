/**
 * Deterministic test data without depending on a backend's RNG: the Park–Miller minimal-standard generator
 * (multiplier 48271). The same seed gives the same values on every machine and backend.
 */

/** `n` values uniform in [low, high) from `seed` (a positive integer). */
export function seededUniform(seed: number, n: number, low = -1, high = 1): Float32Array {
  let s = seed;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 48271) % 2147483647;
    out[i] = low + (high - low) * (s / 2147483647);
  }
  return out;
}

/** A `rows × c` row-major matrix of seeded values whose rows are scaled to unit L2 norm. */
export function seededUnitRows(seed: number, rows: number, c: number): Float32Array {
  const out = seededUniform(seed, rows * c);
  for (let r = 0; r < rows; r++) {
    let n = 0;
    for (let j = 0; j < c; j++) n += out[r * c + j]! ** 2;
    for (let j = 0; j < c; j++) out[r * c + j]! /= Math.sqrt(n);
  }
  return out;
}
