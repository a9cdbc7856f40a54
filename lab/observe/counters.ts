/**
 * Parsing of the kernel's SNMP and extended TCP counters
 * (`/proc/<pid>/net/netstat` and `/proc/<pid>/net/snmp`), named as `nstat`
 * names them: the table's prefix and the field, e.g. `TcpExtListenOverflows`,
 * `TcpOutRsts`.
 * @module
 */
import { KernelTextError } from "../base/errors.ts";

/** Counter values by `nstat` name. */
export type Counters = Record<string, number>;

/**
 * Parses one or more texts of the kernel's "Prefix: names…" / "Prefix: values…"
 * line-pair format.
 *
 * @throws {KernelTextError} when a names line has no matching values line.
 */
export function parseCounters(...texts: string[]): Counters {
  const out: Counters = {};
  for (const text of texts) {
    const lines = text.split("\n").filter((l) => l.trim());
    if (lines.length % 2 !== 0) {
      throw new KernelTextError(
        `Cannot parse a counters table near "${
          lines.at(-1)!.slice(0, 60)
        }": a names line has no values line`,
      );
    }
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const [p1, ...names] = lines[i]!.trim().split(/\s+/);
      const [p2, ...values] = lines[i + 1]!.trim().split(/\s+/);
      if (!p1?.endsWith(":") || p1 !== p2 || names.length !== values.length) {
        throw new KernelTextError(`Cannot parse a counters table near "${lines[i]!.slice(0, 60)}"`);
      }
      const prefix = p1.slice(0, -1);
      names.forEach((n, k) => {
        const v = Number(values[k]);
        if (!Number.isFinite(v)) {
          throw new KernelTextError(`Cannot parse counter "${prefix}${n}": value "${values[k]}"`);
        }
        out[prefix + n] = v;
      });
    }
  }
  return out;
}

/** `after - before` for every counter in `after` (a missing `before` counts as 0). */
export function counterDeltas(before: Counters, after: Counters): Counters {
  const out: Counters = {};
  for (const [k, v] of Object.entries(after)) out[k] = v - (before[k] ?? 0);
  return out;
}
