import { deepStrictEqual as deepEqual, strictEqual as equal } from "node:assert/strict";
import {
  eventsOf,
  intervals,
  type PacketKind,
  packetTimelines,
} from "../../lab/observe/packet_timeline.ts";
import type { Packet } from "../../lab/observe/pcap.ts";

const ORIGIN = 1_700_000_000_000;
const SERVER = { addr: "10.213.1.1", port: 8080 };

type Flag = keyof Packet["flags"];

/** A segment `ms` after ORIGIN between `client` and the server; "in" goes to the server. */
function seg(
  ms: number,
  client: { addr: string; port: number },
  dir: "in" | "out",
  flags: Flag[],
  seq: number,
  ack = 0,
  len = 0,
): Packet {
  const [from, to] = dir === "in" ? [client, SERVER] : [SERVER, client];
  const f = { syn: false, ack: false, fin: false, rst: false, psh: false };
  for (const k of flags) f[k] = true;
  return {
    t: ORIGIN + ms,
    src: from.addr,
    dst: to.addr,
    sport: from.port,
    dport: to.port,
    flags: f,
    seq,
    ack,
    len,
  };
}

const A = { addr: "10.213.1.2", port: 40000 };
const B = { addr: "10.213.1.2", port: 40001 };

Deno.test("packetTimelines() classifies each segment and marks the retransmitted SYN-ACK", () => {
  const packets = [
    seg(0, A, "in", ["syn"], 100),
    seg(0.05, A, "out", ["syn", "ack"], 500, 101),
    seg(0.1, A, "in", ["ack"], 101, 501),
    seg(1000.25, A, "out", ["syn", "ack"], 500, 101),
    seg(1000.3, A, "in", ["ack"], 101, 501),
    seg(1001, A, "in", ["ack", "psh"], 101, 501, 5),
    seg(1002, A, "out", ["ack"], 501, 106),
    seg(1003, A, "in", ["fin", "ack"], 106, 501),
    seg(1004, A, "out", ["rst", "ack", "fin"], 501, 107),
  ];
  const [timeline, ...rest] = packetTimelines(packets, { serverPort: 8080, originMs: ORIGIN });
  deepEqual(rest, []);
  equal(timeline!.client, "10.213.1.2:40000");
  equal(timeline!.server, "10.213.1.1:8080");
  const summary = timeline!.events.map((e) => [e.dir, e.kind, e.retransmit]);
  deepEqual(summary, [
    ["in", "SYN", false],
    ["out", "SYN-ACK", false],
    ["in", "ACK", false],
    ["out", "SYN-ACK", true],
    // The client's answer to the retransmitted SYN-ACK repeats its ACK: same seq and ack.
    ["in", "ACK", true],
    ["in", "DATA", false],
    ["out", "ACK", false],
    ["in", "FIN", false],
    ["out", "RST", false],
  ]);
  equal(timeline!.events[3]!.t, 1000.25);
  deepEqual(
    [timeline!.events[5]!.seq, timeline!.events[5]!.ack, timeline!.events[5]!.len],
    [101, 501, 5],
  );
});

Deno.test("packetTimelines() does not count ACKs with a new ack number as repeats", () => {
  const packets = [
    seg(0, A, "out", ["ack", "psh"], 501, 101, 10),
    seg(1, A, "in", ["ack"], 101, 511),
    seg(2, A, "out", ["ack", "psh"], 511, 101, 10),
    seg(3, A, "in", ["ack"], 101, 521),
    seg(4, A, "out", ["ack", "psh"], 511, 101, 10),
  ];
  const [timeline] = packetTimelines(packets, { serverPort: 8080, originMs: ORIGIN });
  deepEqual(timeline!.events.map((e) => `${e.kind}${e.retransmit ? " again" : ""}`), [
    "DATA",
    "ACK",
    "DATA",
    "ACK",
    "DATA again",
  ]);
});

Deno.test("packetTimelines() groups by connection in first-seen order and skips other ports", () => {
  const v6 = { addr: "fd00:213:0:1::2", port: 40002 };
  const v6Server = { src: "fd00:213:0:1::1" };
  const packets = [
    seg(0, B, "in", ["syn"], 1),
    seg(1, A, "in", ["syn"], 2),
    seg(2, B, "out", ["syn", "ack"], 9, 2),
    { ...seg(3, v6, "in", ["syn"], 3), dst: v6Server.src },
    { ...seg(4, A, "in", ["syn"], 2), dport: 9999 },
    seg(5, A, "out", ["syn", "ack"], 9, 3),
  ];
  const timelines = packetTimelines(packets, { serverPort: 8080, originMs: ORIGIN });
  deepEqual(
    timelines.map((c) => [c.client, c.server, c.events.map((e) => `${e.t} ${e.kind}`)]),
    [
      ["10.213.1.2:40001", "10.213.1.1:8080", ["0 SYN", "2 SYN-ACK"]],
      ["10.213.1.2:40000", "10.213.1.1:8080", ["1 SYN", "5 SYN-ACK"]],
      ["[fd00:213:0:1::2]:40002", "[fd00:213:0:1::1]:8080", ["3 SYN"]],
    ],
  );
});

Deno.test("eventsOf() filters by kind and direction", () => {
  const packets = [
    seg(0, A, "in", ["syn"], 1),
    seg(1, A, "out", ["syn", "ack"], 9, 2),
    seg(2, A, "in", ["ack"], 2, 10),
    seg(3, A, "out", ["ack"], 10, 2),
    seg(1001, A, "out", ["syn", "ack"], 9, 2),
  ];
  const [timeline] = packetTimelines(packets, { serverPort: 8080, originMs: ORIGIN });
  const times = (kind: PacketKind, dir?: "in" | "out") =>
    eventsOf(timeline!, kind, dir).map((e) => e.t);
  deepEqual(times("ACK"), [2, 3]);
  deepEqual(times("ACK", "in"), [2]);
  deepEqual(times("SYN-ACK", "out"), [1, 1001]);
  deepEqual(times("SYN-ACK", "in"), []);
});

Deno.test("intervals() returns the gaps between consecutive times", () => {
  deepEqual(intervals([0, 1000, 3000, 7000]), [1000, 2000, 4000]);
  deepEqual(intervals([5]), []);
  deepEqual(intervals([]), []);
});
