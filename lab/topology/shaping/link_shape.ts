/**
 * The exact commands that build a shaped link: the nftables table that
 * counts and drops, the `tc` qdiscs (netem, tbf) and the iptables `NFQUEUE`
 * rules, and the parsers of their counters. Pure functions, so every command
 * is tested without root. The shape itself and its validation are the
 * definition's (`lab/describe/link_shape.ts`), re-exported here.
 * @module
 */

export {
  DEFAULT_RATE_QUEUE_MS,
  delays,
  type LinkShape,
  LOSS_SCALE,
  type NormalizedShape,
  normalizeShape,
} from "../../describe/link_shape.ts";
import { LOSS_SCALE, type NormalizedShape } from "../../describe/link_shape.ts";

/** What shaping needs to know of the interface. */
export interface ShapeTarget {
  /** The lab namespace the interface is in. */
  nsName: string;
  /** The interface (one end of a veth pair). */
  ifname: string;
}

/** Layer-2 header tc counts on a veth (Ethernet). */
const ETH_HLEN = 14;

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
