/** Test-only: `x` when it is neither null nor undefined; otherwise an Error naming `what`. */
export function defined<T>(x: T | null | undefined, what: string): T {
  if (x === null || x === undefined) throw new Error(`expected ${what} to be defined, got ${String(x)}`);
  return x;
}
