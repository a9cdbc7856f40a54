/**
 * Parsing of the kernel's socket tables: `/proc/<pid>/net/tcp` and `tcp6`
 * (which list request sockets in SYN_RECV too) and `ss -tan` / `ss -ltn`
 * output (inet_diag, the only source of a LISTEN socket's Send-Q).
 * @module
 */
import { KernelTextError } from "../base/errors.ts";
import { TCP_STATES, type TcpState } from "../vocabulary.ts";

export { TCP_STATES, type TcpState };

/** `ss` prints states with hyphens and some abbreviated. */
const SS_STATES: Record<string, TcpState> = {
  "ESTAB": "ESTABLISHED",
  "SYN-SENT": "SYN_SENT",
  "SYN-RECV": "SYN_RECV",
  "FIN-WAIT-1": "FIN_WAIT1",
  "FIN-WAIT-2": "FIN_WAIT2",
  "TIME-WAIT": "TIME_WAIT",
  "UNCONN": "CLOSE",
  "CLOSE-WAIT": "CLOSE_WAIT",
  "LAST-ACK": "LAST_ACK",
  "LISTEN": "LISTEN",
  "CLOSING": "CLOSING",
};

/** One socket of a table. */
export interface SocketRow {
  /**
   * The socket's TCP state (`/proc`'s state number or `ss`'s label, mapped to the kernel's name).
   */
  state: TcpState;
  /** Local IP address (IPv6 compressed, no brackets). */
  localAddress: string;
  /** Local TCP port (0 for `ss`'s `*`). */
  localPort: number;
  /** Peer IP address (IPv6 compressed, no brackets); the unspecified address for LISTEN. */
  remoteAddress: string;
  /** Peer TCP port; 0 for LISTEN. */
  remotePort: number;
  /** `/proc`: tx_queue; `ss`: Send-Q (for LISTEN: the accept queue's limit). */
  sendQ: number;
  /** `/proc`: rx_queue; `ss`: Recv-Q (for LISTEN: connections waiting for accept()). */
  recvQ: number;
}

function hexIPv4(hex: string): string {
  // The kernel prints the address as a host-order (little-endian) u32.
  const n = parseInt(hex, 16);
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join(".");
}

function hexIPv6(hex: string): string {
  // Four host-order u32 words.
  const bytes: number[] = [];
  for (let w = 0; w < 4; w++) {
    const n = parseInt(hex.slice(w * 8, w * 8 + 8), 16);
    bytes.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24);
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) {
    groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  }
  return compressIPv6(groups);
}

function compressIPv6(groups: string[]): string {
  let best = -1, bestLen = 0;
  for (let i = 0; i < groups.length;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === "0") j++;
    if (j - i > bestLen && j - i > 1) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

/**
 * Parses `/proc/net/tcp` or `/proc/net/tcp6` text.
 *
 * @throws {KernelTextError} on a line that is not of the kernel's format.
 */
export function parseProcNetTcp(text: string): SocketRow[] {
  const rows: SocketRow[] = [];
  for (const line of text.split("\n").slice(1)) {
    if (!line.trim()) continue;
    const f = line.trim().split(/\s+/);
    const [local, remote, st, queues] = [f[1], f[2], f[3], f[4]];
    const m1 = /^([0-9A-F]+):([0-9A-F]{4})$/i.exec(local ?? "");
    const m2 = /^([0-9A-F]+):([0-9A-F]{4})$/i.exec(remote ?? "");
    const mq = /^([0-9A-F]{8}):([0-9A-F]{8})$/i.exec(queues ?? "");
    const state = TCP_STATES[parseInt(st ?? "", 16) - 1];
    if (!m1 || !m2 || !mq || !state) {
      throw new KernelTextError(`Cannot parse a /proc/net/tcp line: "${line.trim()}"`);
    }
    const addr = (m1[1]!.length === 8) ? hexIPv4 : hexIPv6;
    rows.push({
      state,
      localAddress: addr(m1[1]!),
      localPort: parseInt(m1[2]!, 16),
      remoteAddress: addr(m2[1]!),
      remotePort: parseInt(m2[2]!, 16),
      sendQ: parseInt(mq[1]!, 16),
      recvQ: parseInt(mq[2]!, 16),
    });
  }
  return rows;
}

/**
 * One row per connection. A /proc table is not a snapshot: the kernel walks
 * its hash buckets while handshakes complete, and a row can be listed twice
 * (a request seen again, or a request and the socket that replaced it).
 * Duplicates of a 4-tuple keep the row past SYN_RECV if there is one.
 */
export function uniqueSockets(rows: readonly SocketRow[]): SocketRow[] {
  // Keyed by the two ports (a number, cheap at 10,000+ rows); addresses compared on a match.
  const seen = new Map<number, number[]>();
  const out: SocketRow[] = [];
  for (const r of rows) {
    if (r.state === "LISTEN") {
      out.push(r);
      continue;
    }
    const key = r.localPort * 65536 + r.remotePort;
    const at = seen.get(key)?.find((i) =>
      out[i]!.localAddress === r.localAddress && out[i]!.remoteAddress === r.remoteAddress
    );
    if (at === undefined) {
      const list = seen.get(key);
      if (list) list.push(out.length);
      else seen.set(key, [out.length]);
      out.push(r);
    } else if (out[at]!.state === "SYN_RECV" && r.state !== "SYN_RECV") out[at] = r;
  }
  return out;
}

function splitHostPort(s: string, line: string): [string, number] {
  const m = /^(.+):(\d+|\*)$/.exec(s);
  const port = m?.[2] === "*" ? 0 : Number(m?.[2]);
  if (!m || !Number.isInteger(port) || port > 65535) {
    throw new KernelTextError(
      `Cannot parse an ss line: "${line.trim()}" (address "${s}" has no port)`,
    );
  }
  return [m[1]!.replace(/^\[(.*)\]$/, "$1"), port];
}

/**
 * Parses `ss -tan` / `ss -ltn` output (with or without the header line).
 *
 * @throws {KernelTextError} on a line that is not of `ss`'s format.
 */
export function parseSs(text: string): SocketRow[] {
  const rows: SocketRow[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (!line.trim() || f[0] === "State" || f[0] === "Netid") continue;
    if (f.length < 5) throw new KernelTextError(`Cannot parse an ss line: "${line.trim()}"`);
    const state = SS_STATES[f[0]!];
    const recvQ = Number(f[1]);
    const sendQ = Number(f[2]);
    if (!state || !Number.isInteger(recvQ) || !Number.isInteger(sendQ)) {
      throw new KernelTextError(`Cannot parse an ss line: "${line.trim()}"`);
    }
    const [localAddress, localPort] = splitHostPort(f[3]!, line);
    const [remoteAddress, remotePort] = splitHostPort(f[4]!, line);
    rows.push({ state, localAddress, localPort, remoteAddress, remotePort, sendQ, recvQ });
  }
  return rows;
}

/** Sockets of one TCP port (local or remote), counted by state. */
export function countStates(rows: readonly SocketRow[], port: number): Record<TcpState, number> {
  const counts = Object.fromEntries(TCP_STATES.map((s) => [s, 0])) as Record<TcpState, number>;
  for (const r of rows) {
    if (r.localPort === port || r.remotePort === port) counts[r.state]++;
  }
  return counts;
}
