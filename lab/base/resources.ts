/**
 * Acquiring and releasing several resources at once without losing one:
 * every promise is awaited before a failure is thrown (so whatever was made
 * can be disposed), and every disposal failure is kept.
 * @module
 */

/** Awaits every promise; then throws the first failure, if any. */
export async function settleAll(promises: readonly Promise<unknown>[]): Promise<void> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((s) => s.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

/** Disposes in parallel; every failure is kept (one error, or an AggregateError). */
export async function disposeAll(resources: readonly AsyncDisposable[]): Promise<void> {
  const results = await Promise.allSettled(resources.map((r) => r[Symbol.asyncDispose]()));
  const errors = results.flatMap((r) => r.status === "rejected" ? [r.reason] : []);
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, "Cannot remove several lab resources");
}
