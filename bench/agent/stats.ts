// Small numeric helpers shared by the agent benches.
export const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;

export const MiB = 1024 * 1024;

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Nearest-rank percentiles, in the unit of the samples. */
export function percentiles(xs: readonly number[], digits = 3) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : NaN);
  return { n: s.length, p50: round(at(50), digits), p90: round(at(90), digits), p99: round(at(99), digits), max: round(s[s.length - 1] ?? NaN, digits) };
}
