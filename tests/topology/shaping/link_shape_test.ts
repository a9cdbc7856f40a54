import { deepStrictEqual as deepEqual, strictEqual as equal, throws } from "node:assert/strict";
import {
  netemCommands,
  nfqueueRule,
  nftScript,
  normalizeShape,
  parseNfqueueRuleCount,
  parseNftCounter,
  parseQdiscCounts,
  tbfCommand,
  tbfParams,
} from "../../../lab/topology/shaping/link_shape.ts";

const WHERE = 'link "veth1" in namespace "bl-1-ab-server"';
const TARGET = { nsName: "bl-1-ab-server", ifname: "veth1" };

Deno.test("normalizeShape() fills in defaults", () => {
  deepEqual(normalizeShape({}, WHERE), {
    delayMs: 0,
    jitterMs: 0,
    lossPercent: 0,
    rateKbit: undefined,
    rateQueueMs: 100,
  });
  deepEqual(normalizeShape({ delayMs: 25, jitterMs: 5, lossPercent: 1, rateKbit: 10_000 }, WHERE), {
    delayMs: 25,
    jitterMs: 5,
    lossPercent: 1,
    rateKbit: 10_000,
    rateQueueMs: 100,
  });
});

Deno.test("normalizeShape() names the field, the value and the fix", () => {
  const cases: [unknown, RegExp, ErrorConstructor][] = [
    [null, /the shape must be an object, got null/, TypeError],
    [{ delay: 5 }, /unknown field "delay" \(valid fields: delayMs, jitterMs/, TypeError],
    [{ delayMs: "5" }, /field "delayMs" must be a finite number, got "5"/, TypeError],
    [{ delayMs: -1 }, /delayMs "-1" must be from 0 to 60000/, RangeError],
    [
      { delayMs: 5, jitterMs: 6 },
      /jitterMs "6" must be from 0 to delayMs \(5\); raise delayMs/,
      RangeError,
    ],
    [{ lossPercent: 101 }, /lossPercent "101" must be from 0 to 100/, RangeError],
    [{ lossPercent: 0.00001 }, /below the resolution of 0.0001/, RangeError],
    [{ rateKbit: 1.5 }, /rateKbit "1.5" must be a positive integer/, RangeError],
    [{ rateQueueMs: 50 }, /rateQueueMs needs rateKbit/, RangeError],
    [{ rateKbit: 100, rateQueueMs: 0 }, /rateQueueMs "0" must be from 1 to 10000/, RangeError],
  ];
  for (const [shape, message, type] of cases) {
    throws(() => normalizeShape(shape as never, WHERE), (err: Error) => {
      equal(err.constructor, type, `${JSON.stringify(shape)}: ${err}`);
      equal(err.message.startsWith(`Cannot shape ${WHERE}: `), true, err.message);
      equal(message.test(err.message), true, err.message);
      return true;
    });
  }
});

Deno.test("nftScript() counts every packet, then drops numgen mod 1000000 below the threshold", () => {
  equal(
    nftScript("veth1", { index: 3, lossPercent: 1.25 }),
    [
      "table inet bl_shape_3 {",
      "  counter offered {}",
      "  counter lost {}",
      "  chain egress {",
      "    type filter hook postrouting priority -300; policy accept;",
      '    oifname "veth1" counter name "offered"',
      '    oifname "veth1" numgen random mod 1000000 < 12500 counter name "lost" drop',
      "  }",
      "}",
      "",
    ].join("\n"),
  );
  equal(nftScript("c0", { index: 0, lossPercent: 0 }).includes("numgen"), false);
  equal(nftScript("c0", { index: 0, lossPercent: 100 }).includes("< 1000000 "), true);
  throws(
    () => nftScript('x" drop; #', { index: 0, lossPercent: 1 }),
    /an interface name has 1 to 15 letters/,
  );
});

Deno.test("tbfParams(): a one-frame bucket (or 1 ms at the rate) and rateQueueMs of queue", () => {
  deepEqual(tbfParams(1000, { rateQueueMs: 100, mtu: 1500 }), { burst: 1514, limit: 12_500 });
  deepEqual(tbfParams(100, { rateQueueMs: 100, mtu: 1500 }), {
    burst: 1514,
    limit: 1514 + 2 * 1514,
  });
  deepEqual(tbfParams(1_000_000, { rateQueueMs: 10, mtu: 1500 }), {
    burst: 125_000,
    limit: 1_250_000,
  });
});

Deno.test("netemCommands(): netem root with delay in µs; jitter adds rate 100gbit; a rate adds a tbf child", () => {
  const shape = normalizeShape({ delayMs: 25 }, WHERE);
  deepEqual(netemCommands(TARGET, shape, { queueLimit: 10_000, mtu: 1500 }), [
    "tc -n bl-1-ab-server qdisc replace dev veth1 root handle 1: netem limit 10000 delay 25000us"
      .split(" "),
  ]);
  const full = normalizeShape({ delayMs: 0.5, jitterMs: 0.25, rateKbit: 2000 }, WHERE);
  deepEqual(netemCommands(TARGET, full, { queueLimit: 50, mtu: 1500 }), [
    "tc -n bl-1-ab-server qdisc replace dev veth1 root handle 1: netem limit 50 delay 500us 250us rate 100gbit"
      .split(" "),
    "tc -n bl-1-ab-server qdisc add dev veth1 parent 1:1 handle 10: tbf rate 2000kbit burst 1514 limit 25000"
      .split(" "),
  ]);
  deepEqual(
    tbfCommand(TARGET, 2000, { rateQueueMs: 100, mtu: 9000 }),
    "tc -n bl-1-ab-server qdisc replace dev veth1 root handle 1: tbf rate 2000kbit burst 9014 limit 27042"
      .split(" "),
  );
});

Deno.test("nfqueueRule(): mangle POSTROUTING, out of the interface, to the queue, without bypass", () => {
  deepEqual(
    nfqueueRule(TARGET, { family: 4, queue: 2, op: "-A" }),
    "ip netns exec bl-1-ab-server iptables -w -t mangle -A POSTROUTING -o veth1 -j NFQUEUE --queue-num 2"
      .split(" "),
  );
  deepEqual(nfqueueRule(TARGET, { family: 6, queue: 0, op: "-D" }).slice(4, 9), [
    "ip6tables",
    "-w",
    "-t",
    "mangle",
    "-D",
  ]);
});

Deno.test("parse functions read iptables, tc and nft output", () => {
  const listing = `Chain POSTROUTING (policy ACCEPT 0 packets, 0 bytes)
    pkts      bytes target     prot opt in     out     source               destination
      20     1080 NFQUEUE    0    --  *      va      0.0.0.0/0            0.0.0.0/0            NFQUEUE num 0
    4711   999999 NFQUEUE    0    --  *      vb      0.0.0.0/0            0.0.0.0/0            NFQUEUE num 12
`;
  equal(parseNfqueueRuleCount(listing, 0), 20);
  equal(parseNfqueueRuleCount(listing, 12), 4711);
  equal(parseNfqueueRuleCount(listing, 1), undefined);
  deepEqual(
    parseQdiscCounts(
      '[{"kind":"netem","handle":"1:","packets":10,"drops":2,"qlen":3},{"kind":"tbf","handle":"10:","parent":"1:1","packets":8,"drops":1,"qlen":0}]',
    ),
    [
      { kind: "netem", packets: 10, drops: 2, qlen: 3 },
      { kind: "tbf", packets: 8, drops: 1, qlen: 0 },
    ],
  );
  const nft =
    '{"nftables":[{"metainfo":{"version":"1.0.6"}},{"table":{"family":"inet","name":"bl_shape_0"}},{"counter":{"family":"inet","name":"offered","table":"bl_shape_0","handle":1,"packets":1000,"bytes":40000}},{"counter":{"family":"inet","name":"lost","table":"bl_shape_0","handle":2,"packets":97,"bytes":3880}}]}';
  equal(parseNftCounter(nft, "offered"), 1000);
  equal(parseNftCounter(nft, "lost"), 97);
  equal(parseNftCounter(nft, "other"), 0);
});
