import {
  deepStrictEqual as deepEqual,
  ok as assert,
  strictEqual as equal,
  throws,
} from "node:assert/strict";
import { type Packet, parsePcap, withoutInterfaceIndex } from "../../lab/observe/pcap.ts";

// Builders for the bytes tcpdump writes: pcap headers in the file's byte
// order, packet headers in network byte order.

interface Segment {
  src: number[];
  dst: number[];
  sport: number;
  dport: number;
  /** TCP flag byte: FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10. */
  flags: number;
  seq: number;
  ack: number;
  payload: number;
  /** TCP options bytes (a multiple of 4). */
  options?: number;
}

function bytes(length: number, fill: (v: DataView) => void): Uint8Array {
  const out = new Uint8Array(length);
  fill(new DataView(out.buffer));
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function tcp(s: Segment): Uint8Array {
  const header = 20 + (s.options ?? 0);
  return bytes(header + s.payload, (v) => {
    v.setUint16(0, s.sport);
    v.setUint16(2, s.dport);
    v.setUint32(4, s.seq);
    v.setUint32(8, s.ack);
    v.setUint8(12, (header / 4) << 4);
    v.setUint8(13, s.flags);
    v.setUint16(14, 65535);
  });
}

function ipv4(s: Segment, protocol = 6, fragment = 0): Uint8Array {
  const body = tcp(s);
  return concat(
    bytes(20, (v) => {
      v.setUint8(0, 0x45);
      v.setUint16(2, 20 + body.length);
      v.setUint16(6, fragment);
      v.setUint8(8, 64);
      v.setUint8(9, protocol);
      s.src.forEach((b, i) => v.setUint8(12 + i, b));
      s.dst.forEach((b, i) => v.setUint8(16 + i, b));
    }),
    body,
  );
}

/** IPv6 with one hop-by-hop options header (8 bytes) when `hopByHop`. */
function ipv6(s: Segment, hopByHop = false): Uint8Array {
  const body = tcp(s);
  const ext = hopByHop ? bytes(8, (v) => v.setUint8(0, 6)) : new Uint8Array();
  return concat(
    bytes(40, (v) => {
      v.setUint8(0, 0x60);
      v.setUint16(4, ext.length + body.length);
      v.setUint8(6, hopByHop ? 0 : 6);
      v.setUint8(7, 64);
      s.src.forEach((b, i) => v.setUint16(8 + 2 * i, b));
      s.dst.forEach((b, i) => v.setUint16(24 + 2 * i, b));
    }),
    ext,
    body,
  );
}

function ethernet(etherType: number, ip: Uint8Array, vlan = false): Uint8Array {
  return concat(
    bytes(vlan ? 18 : 14, (v) => {
      if (vlan) {
        v.setUint16(12, 0x8100);
        v.setUint16(14, 7);
        v.setUint16(16, etherType);
      } else {
        v.setUint16(12, etherType);
      }
    }),
    ip,
  );
}

function sll(etherType: number, ip: Uint8Array): Uint8Array {
  return concat(bytes(16, (v) => v.setUint16(14, etherType)), ip);
}

function sll2(etherType: number, ip: Uint8Array): Uint8Array {
  return concat(
    bytes(20, (v) => {
      v.setUint16(0, etherType);
      v.setUint32(4, 1);
      v.setUint16(8, 772);
    }),
    ip,
  );
}

interface PcapRecord {
  sec: number;
  frac: number;
  frame: Uint8Array;
}

function pcap(
  options: { littleEndian: boolean; nano: boolean; linkType: number; snaplen?: number },
  records: PcapRecord[],
): Uint8Array {
  const le = options.littleEndian;
  const snaplen = options.snaplen ?? 65535;
  return concat(
    bytes(24, (v) => {
      v.setUint32(0, options.nano ? 0xa1b23c4d : 0xa1b2c3d4, le);
      v.setUint16(4, 2, le);
      v.setUint16(6, 4, le);
      v.setUint32(16, snaplen, le);
      v.setUint32(20, options.linkType, le);
    }),
    ...records.flatMap((r) => {
      const captured = r.frame.subarray(0, Math.min(snaplen, r.frame.length));
      return [
        bytes(16, (v) => {
          v.setUint32(0, r.sec, le);
          v.setUint32(4, r.frac, le);
          v.setUint32(8, captured.length, le);
          v.setUint32(12, r.frame.length, le);
        }),
        captured,
      ];
    }),
  );
}

const V4: Segment = {
  src: [10, 213, 1, 2],
  dst: [10, 213, 1, 1],
  sport: 40000,
  dport: 8080,
  flags: 0x02,
  seq: 0xfffffff0,
  ack: 0,
  payload: 0,
  options: 20,
};
const V6: Segment = {
  src: [0xfd00, 0x213, 0, 1, 0, 0, 0, 2],
  dst: [0xfd00, 0x213, 0, 1, 0, 0, 0, 1],
  sport: 40000,
  dport: 8080,
  flags: 0x18,
  seq: 1,
  ack: 0x80000001,
  payload: 1000,
  options: 12,
};
const V4_PACKET: Packet = {
  t: 0,
  src: "10.213.1.2",
  dst: "10.213.1.1",
  sport: 40000,
  dport: 8080,
  flags: { syn: true, ack: false, fin: false, rst: false, psh: false },
  seq: 0xfffffff0,
  ack: 0,
  len: 0,
};
const V6_PACKET: Packet = {
  t: 0,
  src: "fd00:213:0:1::2",
  dst: "fd00:213:0:1::1",
  sport: 40000,
  dport: 8080,
  flags: { syn: false, ack: true, fin: false, rst: false, psh: true },
  seq: 1,
  ack: 0x80000001,
  len: 1000,
};

const CASES: {
  name: string;
  littleEndian: boolean;
  nano: boolean;
  linkType: number;
  frame: Uint8Array;
  want: Packet;
}[] = [
  {
    name: "Ethernet IPv4, little-endian µs",
    littleEndian: true,
    nano: false,
    linkType: 1,
    frame: ethernet(0x0800, ipv4(V4)),
    want: V4_PACKET,
  },
  {
    name: "Ethernet 802.1Q IPv6, big-endian ns",
    littleEndian: false,
    nano: true,
    linkType: 1,
    frame: ethernet(0x86dd, ipv6(V6), true),
    want: V6_PACKET,
  },
  {
    name: "Linux SLL IPv4, big-endian µs",
    littleEndian: false,
    nano: false,
    linkType: 113,
    frame: sll(0x0800, ipv4(V4)),
    want: V4_PACKET,
  },
  {
    name: "Linux SLL2 IPv6, little-endian ns",
    littleEndian: true,
    nano: true,
    linkType: 276,
    frame: sll2(0x86dd, ipv6(V6)),
    want: V6_PACKET,
  },
  {
    name: "Linux SLL2 IPv4, little-endian ns",
    littleEndian: true,
    nano: true,
    linkType: 276,
    frame: sll2(0x0800, ipv4(V4)),
    want: V4_PACKET,
  },
  {
    name: "raw IPv6 (101) with a hop-by-hop header, big-endian µs",
    littleEndian: false,
    nano: false,
    linkType: 101,
    frame: ipv6(V6, true),
    want: V6_PACKET,
  },
  {
    name: "raw IPv4 (12), little-endian ns",
    littleEndian: true,
    nano: true,
    linkType: 12,
    frame: ipv4(V4),
    want: V4_PACKET,
  },
];

for (const c of CASES) {
  Deno.test(`parsePcap() reads ${c.name}`, () => {
    // A 128-byte snaplen cuts the 1000-byte payload: len must come from the IP header.
    const file = pcap({ ...c, snaplen: 128 }, [
      { sec: 1_700_000_000, frac: c.nano ? 123_456_789 : 123_456, frame: c.frame },
    ]);
    const packets = parsePcap(file);
    equal(packets.length, 1);
    const { t, ...rest } = packets[0]!;
    const { t: _, ...want } = c.want;
    deepEqual(rest, want);
    const wantT = 1_700_000_000_000 + (c.nano ? 123.456789 : 123.456);
    assert(Math.abs(t - wantT) < 0.001, `t ${t} vs ${wantT}`);
  });
}

Deno.test("parsePcap() keeps nanoseconds apart from microseconds", () => {
  const frame = ethernet(0x0800, ipv4(V4));
  const file = pcap({ littleEndian: true, nano: true, linkType: 1 }, [
    { sec: 1_700_000_000, frac: 1_000, frame },
    { sec: 1_700_000_000, frac: 1_500, frame },
  ]);
  const [a, b] = parsePcap(file);
  const gap = b!.t - a!.t;
  // A double at this epoch resolves ~0.24 µs, so 0.5 µs stays visible.
  assert(Math.abs(gap - 0.0005) < 0.0003, `gap ${gap} ms`);
});

Deno.test("parsePcap() skips non-TCP packets and non-first IPv4 fragments", () => {
  const file = pcap({ littleEndian: true, nano: false, linkType: 1 }, [
    { sec: 1, frac: 0, frame: ethernet(0x0806, new Uint8Array(28)) },
    { sec: 2, frac: 0, frame: ethernet(0x0800, ipv4(V4, 17)) },
    { sec: 3, frac: 0, frame: ethernet(0x0800, ipv4(V4, 6, 0x0010)) },
    { sec: 4, frac: 0, frame: ethernet(0x0800, ipv4(V4)) },
  ]);
  deepEqual(parsePcap(file).map((p) => p.t), [4000]);
});

Deno.test("parsePcap() skips segments whose TCP header the snaplen cut off", () => {
  const file = pcap({ littleEndian: true, nano: false, linkType: 1, snaplen: 40 }, [
    { sec: 1, frac: 0, frame: ethernet(0x0800, ipv4(V4)) },
  ]);
  deepEqual(parsePcap(file), []);
});

Deno.test("parsePcap() writes IPv6 addresses as the kernel does", () => {
  const cases: [number[], string][] = [
    [[0, 0, 0, 0, 0, 0, 0, 1], "::1"],
    [[0, 0, 0, 0, 0, 0, 0, 0], "::"],
    [[0xfd00, 0x213, 0, 1, 0, 0, 0, 2], "fd00:213:0:1::2"],
    [[0x2001, 0xdb8, 0, 0, 1, 0, 0, 1], "2001:db8::1:0:0:1"],
    [[0x2001, 0xdb8, 0, 1, 1, 1, 1, 1], "2001:db8:0:1:1:1:1:1"],
    [[0xfe80, 0, 0, 0, 0xabcd, 0, 0, 0], "fe80::abcd:0:0:0"],
    [[0, 0, 0, 0, 0, 0xffff, 0x0ad5, 0x0101], "::ffff:10.213.1.1"],
  ];
  for (const [groups, want] of cases) {
    const file = pcap({ littleEndian: true, nano: false, linkType: 101 }, [
      { sec: 1, frac: 0, frame: ipv6({ ...V6, src: groups }) },
    ]);
    equal(parsePcap(file)[0]?.src, want);
  }
});

Deno.test("parsePcap() reads an empty capture", () => {
  deepEqual(parsePcap(pcap({ littleEndian: true, nano: true, linkType: 276 }, [])), []);
});

Deno.test("parsePcap() names the offset of a truncated or invalid file", () => {
  const whole = pcap({ littleEndian: true, nano: false, linkType: 1 }, [
    { sec: 1, frac: 0, frame: ethernet(0x0800, ipv4(V4)) },
    { sec: 2, frac: 0, frame: ethernet(0x0800, ipv4(V4)) },
  ]);
  const frameLength = 14 + 20 + 40;
  const second = 24 + 16 + frameLength;
  const cases: [Uint8Array, RegExp][] = [
    [whole.subarray(0, 10), /file header at offset 0 is truncated/],
    [whole.subarray(0, second + 6), new RegExp(`record header at offset ${second} is truncated`)],
    [whole.subarray(0, second + 20), new RegExp(`packet at offset ${second + 16} is truncated`)],
    [new Uint8Array(24).fill(7), /unknown magic number 0x07070707 at offset 0/],
    [
      pcap({ littleEndian: true, nano: false, linkType: 147 }, []),
      /unsupported link type 147 at offset 20/,
    ],
  ];
  for (const [file, message] of cases) {
    throws(() => parsePcap(file), (err: Error) => {
      assert(err instanceof RangeError, String(err));
      assert(message.test(err.message), err.message);
      return true;
    });
  }
});

Deno.test("withoutInterfaceIndex() rewrites cooked v2 as v1: same packets, no interface for readers to misname", async () => {
  const frames = [sll2(0x0800, ipv4(V4)), sll2(0x86dd, ipv6(V6))];
  const v2 = pcap({ littleEndian: true, nano: true, linkType: 276, snaplen: 128 }, [
    { sec: 1_700_000_000, frac: 1, frame: frames[0]! },
    { sec: 1_700_000_001, frac: 2, frame: frames[1]! },
  ]);
  const v1 = withoutInterfaceIndex(v2);
  equal(new DataView(v1.buffer, v1.byteOffset).getUint32(20, true), 113);
  equal(v1.length, v2.length - 2 * 4);
  deepEqual(parsePcap(v1), parsePcap(v2));
  // Other link types pass through untouched.
  const eth = pcap({ littleEndian: false, nano: false, linkType: 1 }, [
    { sec: 1, frac: 0, frame: ethernet(0x0800, ipv4(V4)) },
  ]);
  equal(withoutInterfaceIndex(eth), eth);
  // tcpdump reads it and names no interface of this machine (v2 named interface 1: "lo").
  const file = await Deno.makeTempFile({ suffix: ".pcap" });
  try {
    for (const [bytes, named] of [[v2, true], [v1, false]] as const) {
      await Deno.writeFile(file, bytes);
      const out = await new Deno.Command("tcpdump", { args: ["-nr", file], stderr: "piped" })
        .output().catch(() => undefined);
      if (out === undefined) return; // no tcpdump: the parse above is the check
      const text = new TextDecoder().decode(out.stdout);
      equal(text.trim().split("\n").length, 2, text);
      equal(/^\S+ lo\s/m.test(text), named, text);
    }
  } finally {
    await Deno.remove(file);
  }
});
