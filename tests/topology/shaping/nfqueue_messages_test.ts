import { deepStrictEqual as deepEqual, strictEqual as equal, throws } from "node:assert/strict";
import {
  decodeMessages,
  encodeBind,
  encodeParams,
  encodeUnbind,
  type NetlinkAck,
  NFQA_CFG_F_GSO,
  type QueuedPacket,
  VERDICT_LEN,
  writeVerdict,
} from "../../../lab/topology/shaping/nfqueue_messages.ts";

/** Hex of bytes, for golden comparisons. */
function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** Host-order u16/u32 as little-endian hex (every machine the lab runs on: x86-64, arm64). */
function le16(n: number): string {
  return hex(new Uint8Array(new Uint16Array([n]).buffer));
}
function le32(n: number): string {
  return hex(new Uint8Array(new Uint32Array([n]).buffer));
}

Deno.test("encodeBind() is a NFQNL_MSG_CONFIG with NFQA_CFG_CMD bind, ack requested", () => {
  const msg = encodeBind(7, 42);
  equal(
    hex(msg),
    [
      le32(28), // nlmsg_len: 16 + nfgenmsg 4 + attribute 8
      le16(0x0302), // NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_CONFIG
      le16(0x0005), // NLM_F_REQUEST | NLM_F_ACK
      le32(42), // seq
      le32(0), // pid: the kernel fills it in
      "00 00 00 07", // nfgenmsg: AF_UNSPEC, NFNETLINK_V0, res_id 7 big-endian
      le16(8),
      le16(1), // NFQA_CFG_CMD
      "01 00 00 00", // command BIND, pad, pf 0
    ].join(" "),
  );
});

Deno.test("encodeUnbind() carries command 2", () => {
  const msg = encodeUnbind(65535, 1);
  equal(msg[NLMSG + 2], 0xff);
  equal(msg[NLMSG + 3], 0xff);
  equal(msg[NLMSG + 4 + 4], 2);
});

const NLMSG = 16;

Deno.test("encodeParams() sets copy mode and range, queue length, flags with their mask", () => {
  for (
    const [copyRange, mode] of [[0, 1], [64, 2]] as const
  ) {
    const msg = encodeParams(3, 9, { maxLen: 10_000, flags: NFQA_CFG_F_GSO, copyRange });
    const view = new DataView(msg.buffer);
    equal(view.getUint32(0, true), msg.length);
    equal(msg.length, 16 + 4 + 12 + 8 + 8 + 8);
    equal(view.getUint16(4, true), 0x0302);
    equal(view.getUint16(NLMSG + 2, false), 3);
    // NFQA_CFG_PARAMS: { __be32 copy_range; __u8 copy_mode } packed, padded to 12
    equal(view.getUint16(20, true), 9);
    equal(view.getUint16(22, true), 2);
    equal(view.getUint32(24, false), copyRange);
    equal(view.getUint8(28), mode);
    // NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS, each a __be32
    deepEqual(
      [32, 40, 48].map((at) => [view.getUint16(at + 2, true), view.getUint32(at + 4, false)]),
      [[3, 10_000], [4, NFQA_CFG_F_GSO], [5, NFQA_CFG_F_GSO]],
    );
  }
});

Deno.test("encode functions refuse a queue, length or copy range out of range", () => {
  throws(() => encodeBind(65536, 1), /queue number "65536"/);
  throws(() => encodeBind(-1, 1), RangeError);
  throws(
    () => encodeParams(1, 1, { maxLen: -5, flags: 0, copyRange: 0 }),
    /queue length "-5"/,
  );
  throws(
    () => encodeParams(1, 1, { maxLen: 1, flags: 0, copyRange: 70_000 }),
    /copy range "70000"/,
  );
});

Deno.test("writeVerdict() writes batch and single verdicts back to back", () => {
  const buf = new Uint8Array(VERDICT_LEN * 2);
  const view = new DataView(buf.buffer);
  equal(writeVerdict(view, { at: 0, queue: 4, id: 17, seq: 5, batch: false, accept: true }), 32);
  writeVerdict(view, {
    at: VERDICT_LEN,
    queue: 4,
    id: 0xfffffffe,
    seq: 6,
    batch: true,
    accept: true,
  });
  equal(
    hex(buf.subarray(0, 32)),
    [
      le32(32),
      le16(0x0301), // NFQNL_MSG_VERDICT
      le16(0x0001), // NLM_F_REQUEST, no ack
      le32(5),
      le32(0),
      "00 00 00 04",
      le16(12),
      le16(2), // NFQA_VERDICT_HDR
      "00 00 00 01", // NF_ACCEPT
      "00 00 00 11", // id 17
    ].join(" "),
  );
  equal(view.getUint16(VERDICT_LEN + 4, true), 0x0303); // NFQNL_MSG_VERDICT_BATCH
  equal(view.getUint32(VERDICT_LEN + 28, false), 0xfffffffe);
  writeVerdict(view, { at: 0, queue: 4, id: 1, seq: 7, batch: false, accept: false });
  equal(view.getUint32(24, false), 0); // NF_DROP
});

/** Builds a message as the kernel sends it: header, nfgenmsg, attributes (type, big-endian value bytes). */
function kernelMessage(type: number, queue: number, attrs: [number, Uint8Array][]): Uint8Array {
  const body = attrs.map(([t, v]) => {
    const a = new Uint8Array((4 + v.length + 3) & ~3);
    const dv = new DataView(a.buffer);
    dv.setUint16(0, 4 + v.length, true);
    dv.setUint16(2, t, true);
    a.set(v, 4);
    return a;
  });
  const len = 20 + body.reduce((n, a) => n + a.length, 0);
  const msg = new Uint8Array(len);
  const dv = new DataView(msg.buffer);
  dv.setUint32(0, len, true);
  dv.setUint16(4, type, true);
  dv.setUint16(16 + 2, queue, false);
  let at = 20;
  for (const a of body) {
    msg.set(a, at);
    at += a.length;
  }
  return msg;
}

function be(...words: [number, 1 | 2 | 4 | 8][]): Uint8Array {
  const len = words.reduce((n, [, w]) => n + w, 0);
  const out = new Uint8Array(len);
  const dv = new DataView(out.buffer);
  let at = 0;
  for (const [v, w] of words) {
    if (w === 1) dv.setUint8(at, v);
    else if (w === 2) dv.setUint16(at, v);
    else if (w === 4) dv.setUint32(at, v);
    else dv.setBigUint64(at, BigInt(v));
    at += w;
  }
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

function decodeAll(bytes: Uint8Array): { packets: QueuedPacket[]; acks: NetlinkAck[]; n: number } {
  const packets: QueuedPacket[] = [];
  const acks: NetlinkAck[] = [];
  const n = decodeMessages(new DataView(bytes.buffer), bytes.length, {
    packet: (p) => packets.push({ ...p }),
    ack: (a) => acks.push(a),
  });
  return { packets, acks, n };
}

Deno.test("decodeMessages() reads packet, error and ack messages from one buffer", () => {
  const ipHeader = new Uint8Array([0x45, 0, 0, 40]);
  const packet = kernelMessage(0x0300, 2, [
    [1, be([123456, 4], [0x0800, 2], [4, 1])], // NFQA_PACKET_HDR: id, hw_protocol, hook (postrouting)
    [6, be([9, 4])], // NFQA_IFINDEX_OUTDEV
    [14, be([0x2, 4])], // NFQA_SKB_INFO: GSO
    [4, be([1_700_000_000, 8], [250_000, 8])], // NFQA_TIMESTAMP
    [10, ipHeader], // NFQA_PAYLOAD
  ]);
  // An NLMSG_ERROR: error code, then the header of the request it answers (seq 77).
  const error = new Uint8Array(36);
  const ev = new DataView(error.buffer);
  ev.setUint32(0, 36, true);
  ev.setUint16(4, 2, true);
  ev.setInt32(16, -2, true); // -ENOENT
  ev.setUint32(20 + 8, 77, true);
  const ack = error.slice();
  new DataView(ack.buffer).setInt32(16, 0, true);
  new DataView(ack.buffer).setUint32(20 + 8, 78, true);
  const done = new Uint8Array(20);
  new DataView(done.buffer).setUint32(0, 20, true);
  new DataView(done.buffer).setUint16(4, 3, true);

  const bytes = concat(packet, error, ack, done);
  const { packets, acks, n } = decodeAll(bytes);
  equal(n, 4);
  equal(packets.length, 1);
  const p = packets[0]!;
  deepEqual(
    { ...p, payloadOffset: undefined },
    {
      queue: 2,
      id: 123456,
      hook: 4,
      hwProtocol: 0x0800,
      outIfindex: 9,
      inIfindex: 0,
      gso: true,
      timestampMs: 1_700_000_000_250,
      payloadOffset: undefined,
      payloadLength: 4,
    },
  );
  deepEqual(bytes.subarray(p.payloadOffset, p.payloadOffset + 4), ipHeader);
  deepEqual(acks, [{ seq: 77, errno: 2 }, { seq: 78, errno: 0 }]);
});

Deno.test("decodeMessages() skips other subsystems' messages and reports copy-meta packets without payload", () => {
  const other = kernelMessage(0x0100, 0, []);
  const meta = kernelMessage(0x0300, 0, [[1, be([5, 4], [0x86dd, 2], [4, 1])]]);
  const { packets, n } = decodeAll(concat(other, meta));
  equal(n, 1);
  equal(packets[0]!.id, 5);
  equal(packets[0]!.payloadOffset, -1);
  equal(packets[0]!.gso, false);
  equal(packets[0]!.timestampMs, undefined);
});

Deno.test("decodeMessages() refuses malformed messages, naming the offset", () => {
  const good = kernelMessage(0x0300, 0, [[1, be([5, 4], [0x800, 2], [4, 1])]]);
  const longer = good.slice();
  new DataView(longer.buffer).setUint32(0, good.length + 8, true);
  throws(() => decodeAll(longer), /offset 0: length "40" does not fit the 32 bytes/);
  const badAttr = good.slice();
  new DataView(badAttr.buffer).setUint16(20, 200, true);
  throws(() => decodeAll(concat(good, badAttr)), /offset 32: attribute length "200"/);
  const noHeader = kernelMessage(0x0300, 0, [[6, be([1, 4])]]);
  throws(() => decodeAll(noHeader), /no NFQA_PACKET_HDR/);
});
