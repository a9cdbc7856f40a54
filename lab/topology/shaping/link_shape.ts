/**
 * What a shaped link is (one-way delay, jitter, random loss, a rate limit),
 * its validation, and the exact commands that build it: the nftables table
 * that counts and drops, the `tc` qdiscs (netem, tbf) and the iptables
 * `NFQUEUE` rules. Pure functions, so every command is tested without root.
 * @module
 */

/** Properties of one direction of a link: packets leaving a namespace through one interface. */
export interface LinkShape {
  /** One-way delay added to every packet, in ms: 0 to 60,000 (µs resolution). Default 0. */
  delayMs?: number;
  /**
   * Half-width of a uniform jitter around the delay, in ms: 0 to `delayMs`.
   * Packets keep their order (see `delay_line.ts`). Default 0.
   */
  jitterMs?: number;
  /** Random loss, in percent: 0 to 100, resolution 0.0001 (one in a million). Default 0. */
  lossPercent?: number;
  /** A rate limit in kbit/s (1000 bits), a positive integer; omitted = no limit. */
  rateKbit?: number;
  /** With `rateKbit`: how much the rate limiter queues, in ms at that rate (1 to 10,000). Default 100. */
  rateQueueMs?: number;
}

/** A {@linkcode LinkShape} with every default filled in. */
export interface NormalizedShape {
  /** One-way delay, ms. */
  delayMs: number;
  /** Half-width of the uniform jitter, ms. */
  jitterMs: number;
  /** Random loss, percent. */
  lossPercent: number;
  /** Rate limit in kbit/s, or undefined for none. */
  rateKbit: number | undefined;
  /** The rate limiter's queue, in ms at the rate. */
  rateQueueMs: number;
}

/** What shaping needs to know of the interface. */
export interface ShapeTarget {
  /** The lab namespace the interface is in. */
  nsName: string;
  /** The interface (one end of a veth pair). */
  ifname: string;
}

const FIELDS = ["delayMs", "jitterMs", "lossPercent", "rateKbit", "rateQueueMs"] as const;
/** Loss is drawn as `numgen random mod LOSS_SCALE < N`: a resolution of one in a million. */
export const LOSS_SCALE = 1_000_000;
const MAX_DELAY_MS = 60_000;
/** Default for `rateQueueMs`. */
export const DEFAULT_RATE_QUEUE_MS = 100;
/** Layer-2 header tc counts on a veth (Ethernet). */
const ETH_HLEN = 14;

/**
 * Checks a shape and fills in its defaults.
 *
 * @param shape the declared shape.
 * @param where what is being shaped, for messages (e.g. `link "veth1" in "bl-1-ab-server"`).
 * @returns the shape with defaults.
 * @throws {TypeError} for a shape that is not an object, an unknown field or a non-number.
 * @throws {RangeError} for a value out of range, naming the field, the value and what is valid.
 */
export function normalizeShape(shape: LinkShape, where: string): NormalizedShape {
  const action = `Cannot shape ${where}`;
  if (typeof shape !== "object" || shape === null || Array.isArray(shape)) {
    throw new TypeError(`${action}: the shape must be an object, got ${JSON.stringify(shape)}`);
  }
  for (const key of Object.keys(shape)) {
    if (!(FIELDS as readonly string[]).includes(key)) {
      throw new TypeError(
        `${action}: unknown field "${key}" (valid fields: ${FIELDS.join(", ")})`,
      );
    }
  }
  const num = (field: typeof FIELDS[number], fallback: number | undefined) => {
    const v = shape[field];
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new TypeError(`${action}: field "${field}" must be a finite number, got "${v}"`);
    }
    return v;
  };
  const delayMs = num("delayMs", 0)!;
  const jitterMs = num("jitterMs", 0)!;
  const lossPercent = num("lossPercent", 0)!;
  const rateKbit = num("rateKbit", undefined);
  const rateQueueMs = num("rateQueueMs", DEFAULT_RATE_QUEUE_MS)!;
  if (delayMs < 0 || delayMs > MAX_DELAY_MS) {
    throw new RangeError(
      `${action}: delayMs "${delayMs}" must be from 0 to ${MAX_DELAY_MS}`,
    );
  }
  if (jitterMs < 0 || jitterMs > delayMs) {
    throw new RangeError(
      `${action}: jitterMs "${jitterMs}" must be from 0 to delayMs (${delayMs}); raise delayMs or lower the jitter`,
    );
  }
  if (lossPercent < 0 || lossPercent > 100) {
    throw new RangeError(`${action}: lossPercent "${lossPercent}" must be from 0 to 100`);
  }
  if (lossPercent > 0 && Math.round(lossPercent * (LOSS_SCALE / 100)) === 0) {
    throw new RangeError(
      `${action}: lossPercent "${lossPercent}" is below the resolution of 0.0001 (one in a million)`,
    );
  }
  if (rateKbit !== undefined && (!Number.isInteger(rateKbit) || rateKbit < 1)) {
    throw new RangeError(`${action}: rateKbit "${rateKbit}" must be a positive integer`);
  }
  if (rateQueueMs < 1 || rateQueueMs > 10_000) {
    throw new RangeError(`${action}: rateQueueMs "${rateQueueMs}" must be from 1 to 10000`);
  }
  if (shape.rateQueueMs !== undefined && rateKbit === undefined) {
    throw new RangeError(`${action}: rateQueueMs needs rateKbit (the queue is the rate limiter's)`);
  }
  return { delayMs, jitterMs, lossPercent, rateKbit, rateQueueMs };
}

/** Whether the shape delays packets at all. */
export function delays(shape: NormalizedShape): boolean {
  return shape.delayMs > 0;
}

/** A duration for tc, in whole microseconds (`25000us`). */
function tcTime(ms: number): string {
  return `${Math.round(ms * 1000)}us`;
}

/** The nftables table of one shaped link. */
export function nftTableName(index: number): string {
  return `bl_shape_${index}`;
}

/**
 * The `nft -f` script that creates the table counting and dropping one
 * link's outgoing packets: a `postrouting` chain at priority -300 (before
 * iptables' mangle NFQUEUE rule at -150 and before the egress qdisc), the
 * named counters `offered` (every IPv4/IPv6 packet to the interface) and
 * `lost` (the random drops).
 *
 * @param ifname the interface.
 * @param o the link's number in its namespace (names the table), and the loss (0 to 100 %).
 * @returns the script.
 */
export function nftScript(ifname: string, o: { index: number; lossPercent: number }): string {
  const { index, lossPercent } = o;
  const table = nftTableName(index);
  const threshold = Math.round(lossPercent * (LOSS_SCALE / 100));
  const rules = [`oifname ${nftString(ifname)} counter name "offered"`];
  if (threshold > 0) {
    rules.push(
      `oifname ${
        nftString(ifname)
      } numgen random mod ${LOSS_SCALE} < ${threshold} counter name "lost" drop`,
    );
  }
  return [
    `table inet ${table} {`,
    `  counter offered {}`,
    `  counter lost {}`,
    `  chain egress {`,
    `    type filter hook postrouting priority -300; policy accept;`,
    ...rules.map((r) => `    ${r}`),
    `  }`,
    `}`,
    "",
  ].join("\n");
}

function nftString(s: string): string {
  if (!/^[A-Za-z0-9_.:@+-]{1,15}$/.test(s)) {
    throw new RangeError(
      `Cannot shape interface "${s}": an interface name has 1 to 15 letters, digits or "_.:@+-"`,
    );
  }
  return `"${s}"`;
}

/** The tbf parameters for a rate. */
export interface TbfParams {
  /** Bytes the bucket holds: one full frame, or 1 ms at the rate if larger. */
  burst: number;
  /** Bytes queued before tbf drops: `rateQueueMs` at the rate, at least two frames more than the burst. */
  limit: number;
}

/**
 * The token bucket for `rateKbit`: a bucket of one frame (so back-to-back
 * frames leave at the link's rate, as on a real link) unless 1 ms at the
 * rate is more, and a queue of `rateQueueMs` at the rate.
 */
export function tbfParams(rateKbit: number, o: { rateQueueMs: number; mtu: number }): TbfParams {
  const { rateQueueMs, mtu } = o;
  const bytesPerMs = (rateKbit * 1000) / 8 / 1000;
  const frame = mtu + ETH_HLEN;
  const burst = Math.max(frame, Math.ceil(bytesPerMs));
  const limit = Math.max(burst + 2 * frame, Math.ceil(bytesPerMs * rateQueueMs));
  return { burst, limit };
}

/**
 * The `tc` commands that shape with netem (for kernels that have it): netem
 * as the root qdisc (delay, jitter, a queue of `queueLimit` packets), and
 * with a rate a tbf child. With jitter netem gets `rate 100gbit` too: netem
 * without a rate sorts packets by their own send time, which reorders them;
 * with one it never sends a packet before the one queued ahead of it, the
 * same rule as the NFQUEUE delayer (the 100 Gbit/s serialisation adds
 * 0.12 µs per 1500 bytes). Loss is nftables', not netem's, for both.
 *
 * @returns argv lists to run in order.
 */
export function netemCommands(
  target: ShapeTarget,
  shape: NormalizedShape,
  options: { queueLimit: number; mtu: number },
): string[][] {
  const dev = ["tc", "-n", target.nsName, "qdisc"];
  const netem = [
    ...dev,
    "replace",
    "dev",
    target.ifname,
    "root",
    "handle",
    "1:",
    "netem",
    "limit",
    String(options.queueLimit),
    "delay",
    tcTime(shape.delayMs),
  ];
  if (shape.jitterMs > 0) netem.push(tcTime(shape.jitterMs), "rate", "100gbit");
  const commands = [netem];
  if (shape.rateKbit !== undefined) {
    commands.push([
      ...dev,
      "add",
      "dev",
      target.ifname,
      "parent",
      "1:1",
      "handle",
      "10:",
      ...tbfArgs(shape.rateKbit, { rateQueueMs: shape.rateQueueMs, mtu: options.mtu }),
    ]);
  }
  return commands;
}

/**
 * The `tc` command that puts a tbf rate limiter at the root of the
 * interface (the NFQUEUE mechanism, or netem's when there is no delay).
 *
 * @returns one argv.
 */
export function tbfCommand(
  target: ShapeTarget,
  rateKbit: number,
  options: { rateQueueMs: number; mtu: number },
): string[] {
  return [
    "tc",
    "-n",
    target.nsName,
    "qdisc",
    "replace",
    "dev",
    target.ifname,
    "root",
    "handle",
    "1:",
    ...tbfArgs(rateKbit, options),
  ];
}

function tbfArgs(rateKbit: number, o: { rateQueueMs: number; mtu: number }): string[] {
  const { burst, limit } = tbfParams(rateKbit, o);
  return ["tbf", "rate", `${rateKbit}kbit`, "burst", String(burst), "limit", String(limit)];
}

/**
 * The iptables rule (IPv4 with `iptables`, IPv6 with `ip6tables`) that
 * queues every packet leaving through the interface to `queue`, in the
 * mangle table's POSTROUTING chain. No `--queue-bypass`: while no delayer is
 * bound the kernel drops these packets, so a delayer that died stops the
 * link instead of letting it run undelayed unnoticed (the rule is added only
 * once the delayer is bound, and removed before it exits).
 *
 * @param target the namespace and interface.
 * @param rule the IP version, the queue, and `"-A"` to add or `"-D"` to delete.
 * @returns the argv, run inside the namespace.
 */
export function nfqueueRule(
  target: ShapeTarget,
  rule: { family: 4 | 6; queue: number; op: "-A" | "-D" },
): string[] {
  const { family, queue, op } = rule;
  return [
    "ip",
    "netns",
    "exec",
    target.nsName,
    family === 4 ? "iptables" : "ip6tables",
    "-w",
    "-t",
    "mangle",
    op,
    "POSTROUTING",
    "-o",
    target.ifname,
    "-j",
    "NFQUEUE",
    "--queue-num",
    String(queue),
  ];
}

/**
 * The packet count of the rule that queues to `queue`, from `iptables -t
 * mangle -L POSTROUTING -v -x -n` output.
 *
 * @returns the count, or undefined when no such rule is listed.
 */
export function parseNfqueueRuleCount(listing: string, queue: number): number | undefined {
  for (const line of listing.split("\n")) {
    const m = /^\s*(\d+)\s+\d+\s+NFQUEUE\b.*\bNFQUEUE num (\d+)\b/.exec(line);
    if (m && Number(m[2]) === queue) return Number(m[1]);
  }
  return undefined;
}

/** Packets and drops of one qdisc, from `tc -s -j qdisc show`. */
export interface QdiscCounts {
  kind: string;
  packets: number;
  drops: number;
  /** Packets queued now. */
  qlen: number;
}

/**
 * The qdiscs of `tc -s -j qdisc show dev X` with their counters.
 *
 * @throws {SyntaxError} when the text is not JSON.
 */
export function parseQdiscCounts(json: string): QdiscCounts[] {
  const list = JSON.parse(json) as Record<string, unknown>[];
  return list.map((q) => ({
    kind: String(q.kind),
    packets: Number(q.packets ?? 0),
    drops: Number(q.drops ?? 0),
    qlen: Number(q.qlen ?? 0),
  }));
}

/**
 * The `packets` value of named counter `name` in `nft -j list table` output.
 *
 * @returns the count, 0 when the counter is absent.
 */
export function parseNftCounter(json: string, name: string): number {
  const doc = JSON.parse(json) as { nftables?: Record<string, unknown>[] };
  for (const item of doc.nftables ?? []) {
    const counter = item.counter as { name?: string; packets?: number } | undefined;
    if (counter?.name === name) return Number(counter.packets ?? 0);
  }
  return 0;
}
