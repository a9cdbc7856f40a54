import { notStrictEqual as notEqual, strictEqual as equal } from "node:assert/strict";
import { flowKey } from "../../../lab/topology/shaping/flow_key.ts";

/** An IPv4 packet's first bytes: header (20) + the first 8 transport bytes. */
function ipv4(
  o: { src: number[]; dst: number[]; proto?: number; sport: number; dport: number; frag?: number },
): DataView {
  const b = new Uint8Array(28);
  const v = new DataView(b.buffer);
  b[0] = 0x45;
  v.setUint16(6, o.frag ?? 0x4000); // don't fragment
  b[9] = o.proto ?? 6;
  b.set(o.src, 12);
  b.set(o.dst, 16);
  v.setUint16(20, o.sport);
  v.setUint16(22, o.dport);
  v.setUint32(24, 12345); // sequence number: not part of the flow
  return v;
}

function ipv6(
  o: { src: number; dst: number; proto?: number; sport: number; dport: number },
): DataView {
  const b = new Uint8Array(48);
  const v = new DataView(b.buffer);
  b[0] = 0x60;
  b[6] = o.proto ?? 6;
  b[8] = 0xfd;
  b[23] = o.src;
  b[24] = 0xfd;
  b[39] = o.dst;
  v.setUint16(40, o.sport);
  v.setUint16(42, o.dport);
  return v;
}

const key = (v: DataView) => flowKey(v, 0, v.byteLength);

Deno.test("flowKey() is one key per TCP connection direction, whatever else the packet holds", () => {
  const a = { src: [10, 0, 0, 1], dst: [10, 0, 0, 2], sport: 40000, dport: 8080 };
  const k = key(ipv4(a));
  notEqual(k, 0);
  const other = ipv4(a);
  other.setUint32(24, 999); // another segment of the connection
  equal(key(other), k);
  notEqual(key(ipv4({ ...a, sport: 40001 })), k);
  notEqual(key(ipv4({ ...a, src: a.dst, dst: a.src, sport: 8080, dport: 40000 })), k);
  notEqual(key(ipv4({ ...a, proto: 17 })), k);
});

Deno.test("flowKey() reads IPv6 and IPv4 options, and leaves ports out where there are none", () => {
  const k6 = key(ipv6({ src: 1, dst: 2, sport: 1, dport: 2 }));
  notEqual(k6, 0);
  notEqual(key(ipv6({ src: 1, dst: 2, sport: 1, dport: 3 })), k6);
  // ICMP: addresses and protocol only, so two "port" values do not split it.
  const icmp = { src: [10, 0, 0, 1], dst: [10, 0, 0, 2], proto: 1 };
  equal(key(ipv4({ ...icmp, sport: 1, dport: 2 })), key(ipv4({ ...icmp, sport: 3, dport: 4 })));
  // A non-first fragment carries no ports.
  const frag = { src: [10, 0, 0, 1], dst: [10, 0, 0, 2], frag: 0x0010 };
  equal(key(ipv4({ ...frag, sport: 1, dport: 2 })), key(ipv4({ ...frag, sport: 3, dport: 4 })));
  // Too short for the ports (copy range cut them): addresses only, still a key.
  const short = ipv4({ src: [10, 0, 0, 1], dst: [10, 0, 0, 2], sport: 1, dport: 2 });
  notEqual(flowKey(short, 0, 20), 0);
  equal(
    flowKey(short, 0, 20),
    flowKey(ipv4({ src: [10, 0, 0, 1], dst: [10, 0, 0, 2], sport: 9, dport: 9 }), 0, 20),
  );
});

Deno.test("flowKey() is 0 for bytes that are not an IP header", () => {
  const v = new DataView(new Uint8Array([0x12, 0, 0, 0]).buffer);
  equal(flowKey(v, 0, 4), 0);
  equal(flowKey(v, 0, 0), 0);
  equal(flowKey(new DataView(new Uint8Array([0x45, 0]).buffer), 0, 2), 0);
});
