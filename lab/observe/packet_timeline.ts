/**
 * Turns captured TCP segments into one timeline per connection: what each
 * side sent, when, and which segments were retransmissions.
 * @module
 */
import type { ConnectionTimeline, PacketEvent } from "../results.ts";
import type { PacketKind } from "../vocabulary.ts";
import type { Packet } from "./pcap.ts";

export type { ConnectionTimeline, PacketEvent, PacketKind };

/** Options of {@linkcode packetTimelines}. */
export interface PacketTimelineOptions {
  /** The server's port: the side with this port is the server. */
  serverPort: number;
  /** Event times are milliseconds since this (epoch milliseconds, like {@linkcode Packet.t}). */
  originMs: number;
}

/**
 * Groups segments by connection (client address:port ↔ server
 * address:serverPort), in the order connections were first seen. Segments
 * with neither port equal to `serverPort` are left out.
 *
 * @param packets Parsed capture, in capture order.
 * @param options The server port and the time origin.
 * @returns One timeline per connection.
 *
 * @example Time the SYN-ACK retransmissions of each connection
 * ```ts ignore
 * import { eventsOf, intervals, packetTimelines } from "./packet_timeline.ts";
 *
 * for (const c of packetTimelines(packets, { serverPort: 8080, originMs: startedAt })) {
 *   console.log(c.client, intervals(eventsOf(c, "SYN-ACK", "out").map((e) => e.t)));
 * }
 * ```
 */
export function packetTimelines(
  packets: readonly Packet[],
  options: PacketTimelineOptions,
): ConnectionTimeline[] {
  const timelines = new Map<string, { timeline: ConnectionTimeline; seen: Set<string> }>();
  for (const p of packets) {
    let dir: "in" | "out";
    if (p.dport === options.serverPort) dir = "in";
    else if (p.sport === options.serverPort) dir = "out";
    else continue;
    const client = dir === "in" ? endpoint(p.src, p.sport) : endpoint(p.dst, p.dport);
    const server = dir === "in" ? endpoint(p.dst, p.dport) : endpoint(p.src, p.sport);
    const key = `${client} ${server}`;
    let entry = timelines.get(key);
    if (entry === undefined) {
      entry = { timeline: { client, server, events: [] }, seen: new Set() };
      timelines.set(key, entry);
    }
    const kind = packetKind(p);
    const identity = `${dir} ${kind} ${p.seq}${kind === "ACK" ? ` ${p.ack}` : ""}`;
    entry.timeline.events.push({
      t: p.t - options.originMs,
      dir,
      kind,
      seq: p.seq,
      ack: p.ack,
      len: p.len,
      retransmit: entry.seen.has(identity),
    });
    entry.seen.add(identity);
  }
  return [...timelines.values()].map((e) => e.timeline);
}

/** The kind of a segment: RST, then SYN-ACK, SYN, FIN, DATA (payload), else ACK. */
export function packetKind(p: Packet): PacketKind {
  if (p.flags.rst) return "RST";
  if (p.flags.syn) return p.flags.ack ? "SYN-ACK" : "SYN";
  if (p.flags.fin) return "FIN";
  return p.len > 0 ? "DATA" : "ACK";
}

/**
 * The events of `timeline` of one kind, optionally of one direction.
 *
 * @example SYN-ACKs the server sent
 * ```ts ignore
 * const synAcks = eventsOf(timeline, "SYN-ACK", "out");
 * ```
 */
export function eventsOf(
  timeline: ConnectionTimeline,
  kind: PacketKind,
  dir?: "in" | "out",
): PacketEvent[] {
  return timeline.events.filter((e) => e.kind === kind && (dir === undefined || e.dir === dir));
}

/**
 * The gaps between consecutive times: `[t1 - t0, t2 - t1, …]`.
 *
 * @example
 * ```ts
 * import { intervals } from "./packet_timeline.ts";
 * console.log(intervals([0, 1000, 3000])); // [1000, 2000]
 * ```
 */
export function intervals(times: readonly number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i]!);
}

function endpoint(addr: string, port: number): string {
  return addr.includes(":") ? `[${addr}]:${port}` : `${addr}:${port}`;
}
