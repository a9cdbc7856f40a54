/**
 * A paced source of numbered TCP segments, for measuring a shaped link: it
 * sends `count` segments at `perSecond` through a raw IPv4 socket, each with
 * sequence number `first + i` (and source port `sport + i % flows`), so that captures taken before and after the
 * link can be matched segment by segment (`parsePcap()` reads TCP). Run
 * inside the sending namespace:
 *
 *   deno run --allow-ffi segment_pacer.ts '<PacerSpec as JSON>'
 *
 * The segments are plain ACKs with a correct checksum and `payload` zero
 * bytes; nothing answers them unless the receiver has no rule against it
 * (it then sends RSTs back). The schedule is fixed from the start: segment
 * `i` is due at `i / perSecond`; a late wake-up sends everything due at once.
 * It waits with `ppoll()` and a 1 ns timer slack, and ends by itself.
 *
 * Prints one line, `{"event":"done","sent":N,"startMs":…,"endMs":…,"maxBehindMs":…}`
 * (epoch ms of the first and last send; how far behind schedule it fell at
 * worst), or `{"event":"error","message":"…"}` and exits 1.
 * @module
 */

/** What to send. */
export interface PacerSpec {
  /** Source address (the raw socket is bound to it). */
  src: string;
  /** Destination address. */
  dst: string;
  sport: number;
  dport: number;
  /** Segments to send, 1 to 10,000,000. */
  count: number;
  /** Rate, segments per second, 1 to 1,000,000. */
  perSecond: number;
  /** Payload bytes per segment, 0 to 1400; default 0. */
  payload?: number;
  /** Sequence number of the first segment; default 0. */
  first?: number;
  /**
   * Flows to spread the segments over, 1 to 1000: segment `i` has source
   * port `sport + i % flows` (the sequence number stays `first + i`). Default 1.
   */
  flows?: number;
}

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  ppoll: { parameters: ["buffer", "u64", "pointer", "pointer"], result: "i32" },
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  strerror: { parameters: ["i32"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

const AF_INET = 2;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const IPPROTO_TCP = 6;
const PR_SET_TIMERSLACK = 29;
const ENOBUFS = 105;
const EINTR = 4;
const TCP_ACK = 0x10;

function ipv4(text: string, what: string): Uint8Array {
  const parts = text.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new RangeError(`Cannot start the pacer: ${what} "${text}" is not an IPv4 address`);
  }
  return new Uint8Array(parts);
}

/**
 * A TCP segment: a 20-byte header without options (flags ACK, window 65535)
 * and `payload` zero bytes; its sequence number and checksum are set with
 * {@linkcode setSequence}.
 */
export function buildSegment(spec: { sport: number; dport: number; payload: number }): Uint8Array {
  const seg = new Uint8Array(20 + spec.payload);
  const v = new DataView(seg.buffer);
  v.setUint16(0, spec.sport);
  v.setUint16(2, spec.dport);
  v.setUint8(12, 5 << 4);
  v.setUint8(13, TCP_ACK);
  v.setUint16(14, 65535);
  return seg;
}

/**
 * Sets the segment's sequence number and its checksum over the IPv4
 * pseudo-header of `src` → `dst` (RFC 793: one's complement sum of 16-bit words).
 */
export function setSequence(seg: Uint8Array, seq: number, src: Uint8Array, dst: Uint8Array): void {
  const v = new DataView(seg.buffer, seg.byteOffset, seg.byteLength);
  v.setUint32(4, seq >>> 0);
  v.setUint16(16, 0);
  let sum = IPPROTO_TCP + seg.length;
  for (let i = 0; i < 4; i += 2) {
    sum += (src[i]! << 8) | src[i + 1]!;
    sum += (dst[i]! << 8) | dst[i + 1]!;
  }
  for (let i = 0; i + 1 < seg.length; i += 2) sum += (seg[i]! << 8) | seg[i + 1]!;
  if (seg.length % 2) sum += seg[seg.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  v.setUint16(16, ~sum & 0xffff);
}

function emit(event: Record<string, unknown>): void {
  Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(event) + "\n"));
}

function main(): void {
  let spec: PacerSpec;
  try {
    spec = JSON.parse(Deno.args[0] ?? "");
  } catch {
    emit({ event: "error", message: "Cannot start the pacer: give the spec as one JSON argument" });
    Deno.exit(2);
  }
  const payload = spec.payload ?? 0;
  const flows = spec.flows ?? 1;
  const ok = (n: number, lo: number, hi: number) => Number.isInteger(n) && n >= lo && n <= hi;
  if (
    !ok(spec.count, 1, 10_000_000) || !ok(spec.perSecond, 1, 1_000_000) ||
    !ok(payload, 0, 1400) || !ok(flows, 1, 1000) || !ok(spec.sport, 1, 65536 - flows) ||
    !ok(spec.dport, 1, 65535)
  ) {
    emit({ event: "error", message: `Cannot start the pacer: bad spec ${JSON.stringify(spec)}` });
    Deno.exit(2);
  }
  const lib = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  const errno = () => {
    const p = lib.__errno_location();
    return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
  };
  const fail = (what: string) => {
    const e = errno();
    const s = lib.strerror(e);
    emit({
      event: "error",
      message: `Cannot ${what}: ${
        s === null ? "" : Deno.UnsafePointerView.getCString(s)
      } (errno ${e})`,
    });
    Deno.exit(1);
  };
  const src = ipv4(spec.src, "source");
  const dst = ipv4(spec.dst, "destination");
  const sockaddr = (addr: Uint8Array) => {
    const sa = new Uint8Array(16);
    new DataView(sa.buffer).setUint16(0, AF_INET, true);
    sa.set(addr, 4);
    return sa;
  };
  const fd = lib.socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) fail("open a raw TCP socket");
  if (lib.bind(fd, sockaddr(src), 16) < 0) fail(`bind the raw socket to "${spec.src}"`);
  lib.prctl(PR_SET_TIMERSLACK, 1n, 0n, 0n, 0n);
  const to = sockaddr(dst);
  const seg = buildSegment({ sport: spec.sport, dport: spec.dport, payload });
  const len = BigInt(seg.length);
  const timeout = new BigInt64Array(2);
  const timeoutPtr = Deno.UnsafePointer.of(timeout);
  const nofds = new Uint8Array(8);
  const intervalMs = 1000 / spec.perSecond;
  const first = spec.first ?? 0;

  const t0 = performance.now();
  let startMs = 0;
  let maxBehindMs = 0;
  for (let i = 0; i < spec.count; i++) {
    const due = t0 + i * intervalMs;
    let now = performance.now();
    if (due > now) {
      const ns = Math.ceil((due - now) * 1e6);
      timeout[0] = BigInt(Math.floor(ns / 1e9));
      timeout[1] = BigInt(ns % 1e9);
      lib.ppoll(nofds, 0n, timeoutPtr, null);
      now = performance.now();
    }
    if (now - due > maxBehindMs) maxBehindMs = now - due;
    if (flows > 1) new DataView(seg.buffer).setUint16(0, spec.sport + (i % flows));
    setSequence(seg, first + i, src, dst);
    for (;;) {
      if (Number(lib.sendto(fd, seg, len, 0, to, 16)) === seg.length) break;
      const e = errno();
      if (e !== ENOBUFS && e !== EINTR) fail(`send segment ${i} to "${spec.dst}"`);
    }
    if (i === 0) startMs = Date.now();
  }
  emit({
    event: "done",
    sent: spec.count,
    startMs,
    endMs: Date.now(),
    maxBehindMs: Math.round(maxBehindMs * 1000) / 1000,
  });
}

if (import.meta.main) main();
