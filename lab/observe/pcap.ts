/**
 * Parses classic pcap files (what `tcpdump -w` writes) into TCP segments:
 * both byte orders, microsecond and nanosecond timestamps, Ethernet (with
 * one 802.1Q tag), Linux cooked v1/v2 and raw IP link layers, IPv4 and IPv6.
 * Everything that is not TCP is left out.
 * @module
 */

/** One captured TCP segment. */
export interface Packet {
  /**
   * Capture time, milliseconds since the Unix epoch (fractional, µs or ns precision kept).
   * A double at today's epoch resolves about 0.25 µs, so nanoseconds are rounded to that.
   */
  t: number;
  /** Source address: dotted IPv4, or IPv6 compressed as the kernel prints it (`fd00:213:0:1::2`). */
  src: string;
  /** Destination address, written like `src`. */
  dst: string;
  /** Source port. */
  sport: number;
  /** Destination port. */
  dport: number;
  /** The TCP flags the lab tells apart. */
  flags: { syn: boolean; ack: boolean; fin: boolean; rst: boolean; psh: boolean };
  /** Sequence number, the raw 32-bit value. */
  seq: number;
  /** Acknowledgment number, the raw 32-bit value. */
  ack: number;
  /** TCP payload bytes, from the IP length fields (not the captured length). */
  len: number;
}

const GLOBAL_HEADER = 24;
const RECORD_HEADER = 16;

const LINKTYPE_ETHERNET = 1;
const LINKTYPE_RAW_BSD = 12;
const LINKTYPE_RAW = 101;
const LINKTYPE_LINUX_SLL = 113;
const LINKTYPE_LINUX_SLL2 = 276;

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;

const IPPROTO_TCP = 6;

/**
 * Parses a classic pcap file into its TCP segments, in file order.
 *
 * Segments whose headers the snapshot length cut off, IP fragments and IPv6
 * extension headers other than hop-by-hop, routing, destination options,
 * fragment (first fragment only when unfragmented) and AH are skipped.
 *
 * @param bytes The whole file.
 * @returns One {@linkcode Packet} per TCP segment.
 * @throws {RangeError} naming the byte offset, for an unknown magic number or
 *   link type, or a file truncated inside a header or a packet.
 *
 * @example Read a capture
 * ```ts ignore
 * import { parsePcap } from "./pcap.ts";
 *
 * const packets = parsePcap(await Deno.readFile("/tmp/run.pcap"));
 * console.log(packets.filter((p) => p.flags.syn).length);
 * ```
 */
export function parsePcap(bytes: Uint8Array): Packet[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < GLOBAL_HEADER) {
    throw new RangeError(
      `Cannot parse pcap file: the ${GLOBAL_HEADER}-byte file header at offset 0 is truncated (file is ${bytes.length} bytes)`,
    );
  }
  const { littleEndian, nano } = readMagic(view);
  const linkType = view.getUint32(20, littleEndian) & 0xffff;
  const linkHeader = LINK_HEADERS[linkType];
  if (linkHeader === undefined) {
    throw new RangeError(
      `Cannot parse pcap file: unsupported link type ${linkType} at offset 20 (supported: ${
        Object.keys(LINK_HEADERS).join(", ")
      })`,
    );
  }
  const packets: Packet[] = [];
  for (let offset = GLOBAL_HEADER; offset < bytes.length;) {
    if (offset + RECORD_HEADER > bytes.length) {
      throw new RangeError(
        `Cannot parse pcap file: the packet record header at offset ${offset} is truncated (file is ${bytes.length} bytes)`,
      );
    }
    const sec = view.getUint32(offset, littleEndian);
    const frac = view.getUint32(offset + 4, littleEndian);
    const caplen = view.getUint32(offset + 8, littleEndian);
    const origlen = view.getUint32(offset + 12, littleEndian);
    const start = offset + RECORD_HEADER;
    if (start + caplen > bytes.length) {
      throw new RangeError(
        `Cannot parse pcap file: the packet at offset ${start} is truncated (${caplen} bytes captured, file ends at ${bytes.length})`,
      );
    }
    offset = start + caplen;
    const frame = new DataView(bytes.buffer, bytes.byteOffset + start, caplen);
    const ip = linkHeader(frame);
    if (ip === undefined) continue;
    const t = sec * 1000 + (nano ? frac / 1e6 : frac / 1e3);
    const segment = parseIp(frame, ip.offset, ip.version, origlen - ip.offset, t);
    if (segment) packets.push(segment);
  }
  return packets;
}

/**
 * A Linux cooked v2 capture (`tcpdump -i any`) rewritten as Linux cooked v1:
 * the same packets, directions and timestamps, without the interface index.
 * v2's index is that of an interface inside the captured namespace, which a
 * reader (`tcpdump -r`, Wireshark) looks up among its own interfaces and so
 * labels packets with a host interface (`ifb0`, `eth0`) that never saw them.
 * Any other file is returned as it is.
 *
 * @throws {RangeError} for a file truncated inside a header or a packet.
 */
export function withoutInterfaceIndex(bytes: Uint8Array): Uint8Array {
  if (bytes.length < GLOBAL_HEADER) return bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const { littleEndian } = readMagic(view);
  if ((view.getUint32(20, littleEndian) & 0xffff) !== LINKTYPE_LINUX_SLL2) return bytes;
  const out = new Uint8Array(bytes.length);
  const o = new DataView(out.buffer);
  out.set(bytes.subarray(0, GLOBAL_HEADER));
  o.setUint32(
    20,
    (view.getUint32(20, littleEndian) & 0xffff0000) | LINKTYPE_LINUX_SLL,
    littleEndian,
  );
  let w = GLOBAL_HEADER;
  for (let r = GLOBAL_HEADER; r < bytes.length;) {
    if (r + RECORD_HEADER > bytes.length) {
      throw new RangeError(
        `Cannot rewrite pcap file: the record header at offset ${r} is truncated`,
      );
    }
    const caplen = view.getUint32(r + 8, littleEndian);
    const origlen = view.getUint32(r + 12, littleEndian);
    const start = r + RECORD_HEADER;
    if (start + caplen > bytes.length) {
      throw new RangeError(`Cannot rewrite pcap file: the packet at offset ${start} is truncated`);
    }
    out.set(bytes.subarray(r, r + 8), w); // timestamps
    if (caplen < 20) {
      // Too short to hold the v2 header: keep it as it is (readers skip it).
      out.set(bytes.subarray(r + 8, start + caplen), w + 8);
      w += RECORD_HEADER + caplen;
    } else {
      o.setUint32(w + 8, caplen - 4, littleEndian);
      o.setUint32(w + 12, Math.max(0, origlen - 4), littleEndian);
      const v2 = start;
      const v1 = w + RECORD_HEADER;
      o.setUint16(v1, bytes[v2 + 10]!); // packet type (v2: 1 byte)
      out.set(bytes.subarray(v2 + 8, v2 + 10), v1 + 2); // ARPHRD type
      o.setUint16(v1 + 4, bytes[v2 + 11]!); // address length (v2: 1 byte)
      out.set(bytes.subarray(v2 + 12, v2 + 20), v1 + 6); // address
      out.set(bytes.subarray(v2, v2 + 2), v1 + 14); // protocol
      out.set(bytes.subarray(v2 + 20, start + caplen), v1 + 16);
      w += RECORD_HEADER + caplen - 4;
    }
    r = start + caplen;
  }
  return out.subarray(0, w);
}

function readMagic(view: DataView): { littleEndian: boolean; nano: boolean } {
  switch (view.getUint32(0, false)) {
    case 0xa1b2c3d4:
      return { littleEndian: false, nano: false };
    case 0xd4c3b2a1:
      return { littleEndian: true, nano: false };
    case 0xa1b23c4d:
      return { littleEndian: false, nano: true };
    case 0x4d3cb2a1:
      return { littleEndian: true, nano: true };
    case 0x0a0d0d0a:
      throw new RangeError(
        "Cannot parse pcap file: offset 0 holds a pcapng section header; only classic pcap is supported (tcpdump -w writes it)",
      );
    default:
      throw new RangeError(
        `Cannot parse pcap file: unknown magic number 0x${
          view.getUint32(0, false).toString(16).padStart(8, "0")
        } at offset 0`,
      );
  }
}

/** Where the IP header starts in a frame and its version, or undefined for non-IP frames. */
type LinkHeader = (frame: DataView) => { offset: number; version: 4 | 6 } | undefined;

const LINK_HEADERS: Record<number, LinkHeader> = {
  [LINKTYPE_ETHERNET]: (frame) => {
    if (frame.byteLength < 14) return undefined;
    let type = frame.getUint16(12);
    let offset = 14;
    if (type === ETHERTYPE_VLAN) {
      if (frame.byteLength < 18) return undefined;
      type = frame.getUint16(16);
      offset = 18;
    }
    return byEtherType(type, offset);
  },
  [LINKTYPE_RAW_BSD]: rawIp,
  [LINKTYPE_RAW]: rawIp,
  [LINKTYPE_LINUX_SLL]: (frame) =>
    frame.byteLength < 16 ? undefined : byEtherType(frame.getUint16(14), 16),
  [LINKTYPE_LINUX_SLL2]: (frame) =>
    frame.byteLength < 20 ? undefined : byEtherType(frame.getUint16(0), 20),
};

function byEtherType(type: number, offset: number): { offset: number; version: 4 | 6 } | undefined {
  if (type === ETHERTYPE_IPV4) return { offset, version: 4 };
  if (type === ETHERTYPE_IPV6) return { offset, version: 6 };
  return undefined;
}

function rawIp(frame: DataView): { offset: number; version: 4 | 6 } | undefined {
  if (frame.byteLength < 1) return undefined;
  const version = frame.getUint8(0) >> 4;
  return version === 4 || version === 6 ? { offset: 0, version } : undefined;
}

/**
 * The TCP segment in an IP packet at `offset`, or undefined when it is not
 * TCP or its headers were not captured. `wireLength` is the IP packet's
 * length on the wire, used when the IP length field is 0 (segmentation offload).
 */
function parseIp(
  frame: DataView,
  offset: number,
  version: 4 | 6,
  wireLength: number,
  t: number,
): Packet | undefined {
  let tcp: number;
  let tcpLength: number;
  let src: string;
  let dst: string;
  if (version === 4) {
    if (frame.byteLength < offset + 20 || frame.getUint8(offset) >> 4 !== 4) return undefined;
    const headerLength = (frame.getUint8(offset) & 0x0f) * 4;
    const totalLength = frame.getUint16(offset + 2) || wireLength;
    const fragment = frame.getUint16(offset + 6);
    // More-fragments set or a non-zero offset: the TCP length is not this packet's.
    if ((fragment & 0x3fff) !== 0) return undefined;
    if (frame.getUint8(offset + 9) !== IPPROTO_TCP || headerLength < 20) return undefined;
    src = ipv4Text(frame, offset + 12);
    dst = ipv4Text(frame, offset + 16);
    tcp = offset + headerLength;
    tcpLength = totalLength - headerLength;
  } else {
    if (frame.byteLength < offset + 40 || frame.getUint8(offset) >> 4 !== 6) return undefined;
    const payloadLength = frame.getUint16(offset + 4) || wireLength - 40;
    src = ipv6Text(frame, offset + 8);
    dst = ipv6Text(frame, offset + 24);
    let next = frame.getUint8(offset + 6);
    let at = offset + 40;
    for (;;) {
      if (next === IPPROTO_TCP) break;
      if (frame.byteLength < at + 8) return undefined;
      if (next === 0 || next === 43 || next === 60) {
        // Hop-by-hop, routing, destination options: length in 8-octet units, not counting the first.
        next = frame.getUint8(at);
        at += (frame.getUint8(at + 1) + 1) * 8;
      } else if (next === 44) {
        // Fragment: only a whole packet (offset 0, no more fragments) carries a usable TCP length.
        if ((frame.getUint16(at + 2) & 0xfff9) !== 0) return undefined;
        next = frame.getUint8(at);
        at += 8;
      } else if (next === 51) {
        // Authentication header: length in 4-octet units, minus 2.
        next = frame.getUint8(at);
        at += (frame.getUint8(at + 1) + 2) * 4;
      } else {
        return undefined;
      }
    }
    tcp = at;
    tcpLength = payloadLength - (at - offset - 40);
  }
  if (frame.byteLength < tcp + 20) return undefined;
  const dataOffset = (frame.getUint8(tcp + 12) >> 4) * 4;
  const len = tcpLength - dataOffset;
  if (dataOffset < 20 || len < 0) return undefined;
  const bits = frame.getUint8(tcp + 13);
  return {
    t,
    src,
    dst,
    sport: frame.getUint16(tcp),
    dport: frame.getUint16(tcp + 2),
    flags: {
      fin: (bits & 0x01) !== 0,
      syn: (bits & 0x02) !== 0,
      rst: (bits & 0x04) !== 0,
      psh: (bits & 0x08) !== 0,
      ack: (bits & 0x10) !== 0,
    },
    seq: frame.getUint32(tcp + 4),
    ack: frame.getUint32(tcp + 8),
    len,
  };
}

function ipv4Text(frame: DataView, at: number): string {
  return [0, 1, 2, 3].map((i) => frame.getUint8(at + i)).join(".");
}

/** RFC 5952 text, as the kernel and tcpdump print it (`::ffff:a.b.c.d` for mapped IPv4). */
function ipv6Text(frame: DataView, at: number): string {
  const groups = Array.from({ length: 8 }, (_, i) => frame.getUint16(at + 2 * i));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${ipv4Text(frame, at + 12)}`;
  }
  // The longest run of two or more zero groups (the first on a tie) becomes "::".
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}
