/**
 * A line of three namespaces for measuring a shaped link one way, used by the
 * accuracy tests and the delayer benchmark:
 *
 *   source (s0) ── (m0) middle (m1) ── (d0) sink
 *
 * The middle forwards, and the link under test is its `m1` egress. A
 * capture on `m0` sees each segment as it arrives from the source, before
 * any shaping; one on `d0` sees it as it arrives at the sink, after. Both
 * taps are in the same machine's clock, so the difference is the one-way
 * delay (plus a few µs of forwarding). Two captures on the two ends of
 * *one* veth cannot show an egress delay: both taps come after the egress
 * hook and qdisc (netem's too), so both see the delayed packet.
 * @module
 */
import { run } from "../../lab/base/command.ts";
import { Capture } from "../../lab/observe/capture.ts";
import { Link } from "../../lab/topology/link.ts";
import { Netns, newRunPrefix } from "../../lab/topology/netns.ts";
import type { Packet } from "../../lab/observe/pcap.ts";
import type { PacerSpec } from "./segment_pacer.ts";
import { fileURLToPath } from "node:url";

/** Addresses of the line. */
export const LINE = {
  source: "10.213.250.1",
  middleIn: "10.213.250.2",
  middleOut: "10.213.251.1",
  sink: "10.213.251.2",
  /** The segments' destination port (the sink drops them at input, unanswered). */
  port: 9,
  /** The shaped interface, in the middle namespace. */
  shapedIf: "m1",
} as const;

/** The three namespaces; `AsyncDisposable` (disposal deletes them, with all inside). */
export interface Line extends AsyncDisposable {
  source: Netns;
  middle: Netns;
  sink: Netns;
}

/**
 * Builds the line: namespaces, links, addresses, routes, forwarding in the
 * middle (a sysctl of that namespace only), a drop rule for the test port at
 * the sink's input, and permanent neighbours (so no segment waits for ARP).
 */
export async function buildLine(): Promise<Line> {
  const stack = new AsyncDisposableStack();
  try {
    const prefix = newRunPrefix();
    const [source, middle, sink] = await Promise.all(
      ["src", "mid", "snk"].map((n) => Netns.create(`${prefix}-${n}`)),
    ) as [Netns, Netns, Netns];
    for (const ns of [sink, middle, source]) stack.use(ns);
    // Deleting the namespaces removes the links.
    (await Link.create(
      { ns: source, ifname: "s0", cidr: `${LINE.source}/24` },
      { ns: middle, ifname: "m0", cidr: `${LINE.middleIn}/24` },
    )).release();
    (await Link.create(
      { ns: middle, ifname: "m1", cidr: `${LINE.middleOut}/24` },
      { ns: sink, ifname: "d0", cidr: `${LINE.sink}/24` },
    )).release();
    await middle.sysctls({ "net.ipv4.ip_forward": "1" });
    await run(["ip", "-n", source.name, "route", "add", "10.213.251.0/24", "via", LINE.middleIn]);
    await run(["ip", "-n", sink.name, "route", "add", "10.213.250.0/24", "via", LINE.middleOut]);
    await run(["ip", "netns", "exec", sink.name, "nft", "-f", "-"], {
      stdin: [
        "table inet bl_line {",
        "  chain input {",
        "    type filter hook input priority 0; policy accept;",
        `    tcp dport ${LINE.port} drop`,
        "  }",
        "}",
        "",
      ].join("\n"),
      action: `Cannot add the drop rule of sink "${sink.name}"`,
    });
    await resolveNeighbours(source, middle, sink);
    const moved = stack.move();
    return { source, middle, sink, [Symbol.asyncDispose]: () => moved.disposeAsync() };
  } catch (err) {
    await stack.disposeAsync();
    throw err;
  }
}

/**
 * Permanent neighbour entries for the two forward hops (the peer's MAC
 * address read from its interface), so no segment waits for ARP.
 */
async function resolveNeighbours(source: Netns, middle: Netns, sink: Netns): Promise<void> {
  const mac = async (ns: Netns, dev: string) => {
    const out = await run(["ip", "-n", ns.name, "-j", "link", "show", "dev", dev]);
    return String((JSON.parse(out.stdout) as { address?: string }[])[0]?.address);
  };
  const hops = [
    { ns: source, dev: "s0", addr: LINE.middleIn, mac: await mac(middle, "m0") },
    { ns: middle, dev: "m1", addr: LINE.sink, mac: await mac(sink, "d0") },
  ];
  for (const h of hops) {
    await run(
      [
        "ip",
        "-n",
        h.ns.name,
        "neigh",
        "replace",
        h.addr,
        "lladdr",
        h.mac,
        "dev",
        h.dev,
        "nud",
        "permanent",
      ],
      { action: `Cannot add neighbour "${h.addr}" in "${h.ns.name}"` },
    );
  }
}

/** What the pacer reported. */
export interface PacerResult {
  sent: number;
  startMs: number;
  endMs: number;
  maxBehindMs: number;
}

/**
 * Sends numbered segments from the source to the sink and waits until the
 * pacer is done.
 *
 * @throws {CommandError} when the pacer fails.
 */
export async function sendSegments(
  line: Line,
  spec: Pick<PacerSpec, "count" | "perSecond" | "sport"> & Partial<PacerSpec>,
): Promise<PacerResult> {
  const url = new URL("./segment_pacer.ts", import.meta.url);
  const full: PacerSpec = { src: LINE.source, dst: LINE.sink, dport: LINE.port, ...spec };
  const seconds = spec.count / spec.perSecond;
  const out = await run(
    line.source.wrap([
      Deno.execPath(),
      "run",
      "--no-config",
      "--quiet",
      "--allow-ffi",
      fileURLToPath(url),
      JSON.stringify(full),
    ]),
    {
      timeoutMs: 30_000 + seconds * 2000,
      action: `Cannot send segments from "${line.source.name}"`,
    },
  );
  const done = JSON.parse(out.stdout.trim().split("\n").at(-1) ?? "{}");
  if (done.event !== "done") throw new Error(`The pacer failed: ${out.stdout} ${out.stderr}`);
  return done as PacerResult;
}

/** Captures before (`m0`) and after (`d0`) the shaped link. */
export interface LineCaptures extends AsyncDisposable {
  before: Capture;
  after: Capture;
  /** Stops both and returns their segments. */
  stop(): Promise<{ before: Packet[]; after: Packet[] }>;
}

/** Starts the two captures (tcpdump, port {@linkcode LINE.port}); files are removed on disposal. */
export async function captureLine(line: Line): Promise<LineCaptures> {
  const stack = new AsyncDisposableStack();
  try {
    const files = await Promise.all([
      Capture.tempFile("bl-shaping-before"),
      Capture.tempFile("bl-shaping-after"),
    ]);
    stack.defer(() => Promise.all(files.map((f) => Deno.remove(f).catch(() => {}))).then(() => {}));
    const before = stack.use(
      await Capture.start(line.middle, { port: LINE.port, file: files[0]!, iface: "m0" }),
    );
    const after = stack.use(
      await Capture.start(line.sink, { port: LINE.port, file: files[1]!, iface: "d0" }),
    );
    const moved = stack.move();
    return {
      before,
      after,
      stop: async () => ({ before: await before.stop(), after: await after.stop() }),
      [Symbol.asyncDispose]: () => moved.disposeAsync(),
    };
  } catch (err) {
    await stack.disposeAsync();
    throw err;
  }
}

/** One-way delays of one pacer run, matched by sequence number. */
export interface OneWay {
  /** Segments seen before the link. */
  sent: number;
  /** Segments seen after it. */
  arrived: number;
  /** Each arrived segment's delay (after − before), ms, in arrival order. */
  delaysMs: number[];
  /** Arrivals whose sequence number is below the one before of the same flow: overtaking. */
  reordered: number;
  /** Arrivals whose sequence number is below the one before, whatever the flow. */
  reorderedAcrossFlows: number;
  /** Arrivals never seen before the link, or seen twice after it. */
  unexpected: number;
}

/**
 * Matches the segments of source ports `sport` to `sport + flows - 1` before
 * and after the link (the pacer's sequence numbers are unique across its flows).
 */
export function oneWay(
  before: Packet[],
  after: Packet[],
  pacer: { sport: number; flows?: number },
): OneWay {
  const { sport, flows = 1 } = pacer;
  const mine = (p: Packet) =>
    p.sport >= sport && p.sport < sport + flows && p.dport === LINE.port && p.dst === LINE.sink;
  const sentAt = new Map<number, number>();
  for (const p of before) if (mine(p)) sentAt.set(p.seq, p.t);
  const delaysMs: number[] = [];
  const seen = new Set<number>();
  let reordered = 0;
  let reorderedAcrossFlows = 0;
  let unexpected = 0;
  let last = -1;
  const lastOfFlow = new Map<number, number>();
  for (const p of after) {
    if (!mine(p)) continue;
    const t0 = sentAt.get(p.seq);
    if (t0 === undefined || seen.has(p.seq)) {
      unexpected++;
      continue;
    }
    seen.add(p.seq);
    if (p.seq < (lastOfFlow.get(p.sport) ?? -1)) reordered++;
    if (p.seq < last) reorderedAcrossFlows++;
    lastOfFlow.set(p.sport, p.seq);
    last = p.seq;
    delaysMs.push(p.t - t0);
  }
  return {
    sent: sentAt.size,
    arrived: seen.size,
    delaysMs,
    reordered,
    reorderedAcrossFlows,
    unexpected,
  };
}

/** The `q` quantile (0 to 1) of `values` (nearest rank). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
