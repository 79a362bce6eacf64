// Formatting the demos' measurements.

/** 0.048 -> "48 ms", 2.31 -> "2.31 s" (as the kernel's status lines write them). */
export function duration(seconds: number): string {
  return seconds < 1 ? `${(seconds * 1000).toFixed(0)} ms` : `${seconds.toFixed(2)} s`;
}

export function probability(p: number): string {
  return p >= 0.1 ? `${(100 * p).toFixed(0)}%` : `${(100 * p).toFixed(1)}%`;
}
