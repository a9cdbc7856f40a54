import { ok, rejects, strictEqual as equal } from "node:assert/strict";
import { Capture } from "../../../lab/observe/capture.ts";
import { run } from "../../../lab/base/command.ts";
import { WaitTimeoutError } from "../../../lab/base/errors.ts";
import { Link } from "../../../lab/topology/link.ts";
import { Netns, newRunPrefix } from "../../../lab/topology/netns.ts";
import { packetTimelines } from "../../../lab/observe/packet_timeline.ts";
import { buildLine, LINE, sendSegments } from "../../../tools/shaping/line.ts";
import { netemAvailable } from "../../../lab/topology/shaping/netem_probe.ts";
import { type ShapedLink, shapeLink } from "../../../lab/topology/shaping/shape_link.ts";
import { rootTest, until } from "../../_helpers.ts";

/** What a namespace holds of the shaping: nft tables, qdisc kinds, NFQUEUE rules, processes. */
async function inside(ns: Netns) {
  const nft = await run(["ip", "netns", "exec", ns.name, "nft", "list", "tables"]);
  const qdiscs = await run(["tc", "-n", ns.name, "qdisc", "show"]);
  const rules: string[] = [];
  for (const cmd of ["iptables", "ip6tables"]) {
    const r = await run([
      "ip",
      "netns",
      "exec",
      ns.name,
      cmd,
      "-w",
      "-t",
      "mangle",
      "-S",
      "POSTROUTING",
    ], {
      allowFailure: true,
    });
    rules.push(...r.stdout.split("\n").filter((l) => l.includes("NFQUEUE")));
  }
  const pids = await run(["ip", "netns", "pids", ns.name]);
  const programs = pids.stdout.split("\n").filter(Boolean).filter((pid) => {
    try {
      return Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes("delayer.ts");
    } catch {
      return false;
    }
  });
  return {
    tables: nft.stdout.split("\n").filter((l) => l.includes("bl_shape_")).map((l) => l.trim()),
    qdiscs: [...qdiscs.stdout.matchAll(/^qdisc (\S+)/gm)].map((m) => m[1]!).filter((k) =>
      k !== "noqueue" && k !== "noop"
    ),
    rules,
    delayers: programs.map(Number),
  };
}

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

/** A namespace pair joined by one veth: "c0" in the client, "s0" in the server. */
async function pair(family: 4 | 6 = 4) {
  const prefix = newRunPrefix();
  const client = await Netns.create(`${prefix}-c`);
  const server = await Netns.create(`${prefix}-s`);
  const [ca, sa] = family === 4
    ? ["10.213.240.2/24", "10.213.240.1/24"]
    : ["fd00:213:f0::2/64", "fd00:213:f0::1/64"];
  (await Link.create({ ns: client, ifname: "c0", cidr: ca }, {
    ns: server,
    ifname: "s0",
    cidr: sa,
  })).release();
  return {
    client,
    server,
    clientAddress: ca.split("/")[0]!,
    serverAddress: sa.split("/")[0]!,
    async [Symbol.asyncDispose]() {
      await client[Symbol.asyncDispose]();
      await server[Symbol.asyncDispose]();
    },
  };
}

rootTest(
  "shapeLink() delays with netem where the kernel has it, else NFQUEUE; with jitter NFQUEUE",
  async () => {
    await using p = await pair();
    const netem = await netemAvailable();
    const endpoint = { ns: p.client, ifname: "c0", direction: "egress" } as const;
    {
      await using shaped = await shapeLink(endpoint, { delayMs: 5 });
      equal(shaped.mechanism, netem ? "netem" : "nfqueue");
    }
    {
      await using shaped = await shapeLink(endpoint, { delayMs: 5, jitterMs: 1 });
      equal(shaped.mechanism, "nfqueue");
    }
    {
      await using shaped = await shapeLink(endpoint, { lossPercent: 1, rateKbit: 1000 });
      equal(shaped.mechanism, "none");
      equal((await inside(p.client)).qdiscs.join(), "tbf");
    }
    if (!netem) {
      await rejects(
        shapeLink(endpoint, { delayMs: 5 }, { mechanism: "netem" }),
        /Cannot shape link "c0" in namespace "bl-.*-c" with netem: this kernel has no sch_netem \(CONFIG_NET_SCH_NETEM\); use mechanism "auto" or "nfqueue"/,
      );
    }
    equal(
      JSON.stringify(await inside(p.client)),
      JSON.stringify({ tables: [], qdiscs: [], rules: [], delayers: [] }),
    );
  },
);

rootTest(
  "shapeLink() with NFQUEUE builds table, rate limiter, rules and delayer; disposal removes them all",
  async () => {
    await using p = await pair();
    const shaped = await shapeLink(
      { ns: p.client, ifname: "c0", direction: "egress" },
      { delayMs: 10, lossPercent: 1, rateKbit: 10_000 },
      { mechanism: "nfqueue" },
    );
    let pid: number;
    try {
      const built = await inside(p.client);
      equal(built.tables.join(), "table inet bl_shape_0");
      equal(built.qdiscs.join(), "tbf");
      equal(built.rules.length, 2, built.rules.join("\n"));
      ok(
        built.rules.every((r) => /-o c0 -j NFQUEUE --queue-num 0$/.test(r)),
        built.rules.join("\n"),
      );
      pid = shaped.delayerPid!;
      equal(built.delayers.join(), String(pid));
      const stats = await shaped.stats();
      equal(stats.mechanism, "nfqueue");
      equal(stats.delayer?.realtime, true);
    } finally {
      await shaped[Symbol.asyncDispose]();
    }
    equal(
      JSON.stringify(await inside(p.client)),
      JSON.stringify({ tables: [], qdiscs: [], rules: [], delayers: [] }),
    );
    equal(alive(pid), false);
    // Disposal is idempotent, and the final counters stay readable.
    await shaped[Symbol.asyncDispose]();
    equal((await shaped.stats()).mechanism, "nfqueue");
  },
);

rootTest(
  "shapeLink() gives each shaped interface of a namespace its own queue and table",
  async () => {
    await using p = await pair();
    (await Link.create(
      { ns: p.client, ifname: "c1", cidr: "10.213.241.2/24" },
      { ns: p.server, ifname: "s1", cidr: "10.213.241.1/24" },
    )).release();
    const opts = { mechanism: "nfqueue" } as const;
    await using a = await shapeLink({ ns: p.client, ifname: "c0", direction: "egress" }, {
      delayMs: 1,
    }, opts);
    await using b = await shapeLink({ ns: p.client, ifname: "c1", direction: "egress" }, {
      delayMs: 2,
    }, opts);
    equal(`${a.index} ${b.index}`, "0 1");
    const built = await inside(p.client);
    equal(built.tables.sort().join(), "table inet bl_shape_0,table inet bl_shape_1");
    equal(built.delayers.length, 2);
  },
);

rootTest("shapeLink() leaves nothing behind when its setup fails or is aborted", async () => {
  await using p = await pair();
  const endpoint = { ns: p.client, ifname: "c0", direction: "egress" } as const;
  const empty = JSON.stringify({ tables: [], qdiscs: [], rules: [], delayers: [] });
  // The delayer does not report ready in time: table and qdisc are built by then.
  await rejects(
    shapeLink(endpoint, { delayMs: 10, rateKbit: 1000 }, {
      mechanism: "nfqueue",
      readyTimeoutMs: 1,
    }),
    WaitTimeoutError,
  );
  equal(JSON.stringify(await inside(p.client)), empty);
  const controller = new AbortController();
  controller.abort(new Error("stop here"));
  await rejects(shapeLink(endpoint, { delayMs: 10 }, { signal: controller.signal }), /stop here/);
  await rejects(
    shapeLink({ ...endpoint, ifname: "nope0" }, { delayMs: 10 }),
    /Cannot shape link "nope0" in namespace "bl-.*": the namespace has no such interface .*; create the link first/,
  );
  await rejects(
    shapeLink({ ...endpoint, direction: "ingress" as "egress" }, { delayMs: 1 }),
    /direction "ingress" is not supported; shape the peer's end with direction "egress"/,
  );
  equal(JSON.stringify(await inside(p.client)), empty);
});

rootTest(
  "ShapedLink disposal tolerates its namespace deleted first, and the delayer is gone with it",
  async () => {
    const p = await pair();
    let shaped: ShapedLink | undefined;
    try {
      shaped = await shapeLink(
        { ns: p.client, ifname: "c0", direction: "egress" },
        { delayMs: 5 },
        {
          mechanism: "nfqueue",
        },
      );
    } finally {
      await p[Symbol.asyncDispose]();
    }
    const pid = shaped.delayerPid!;
    await until("the delayer to end with its namespace", () => alive(pid), (a) => !a);
    await shaped[Symbol.asyncDispose]();
  },
);

rootTest(
  "A killed delayer stops its link (no bypass): nothing gets through undelayed",
  async () => {
    await using line = await buildLine();
    await using shaped = await shapeLink(
      { ns: line.middle, ifname: LINE.shapedIf, direction: "egress" },
      { delayMs: 5 },
      { mechanism: "nfqueue" },
    );
    const rx = async () => {
      const out = await run(["ip", "-n", line.sink.name, "-s", "-j", "link", "show", "dev", "d0"]);
      return Number(
        (JSON.parse(out.stdout) as { stats64: { rx: { packets: number } } }[])[0]!.stats64.rx
          .packets,
      );
    };
    await sendSegments(line, { count: 20, perSecond: 1000, sport: 41000 });
    await until("20 segments through the delayer", rx, (n) => n >= 20);
    const before = await rx();
    Deno.kill(shaped.delayerPid!, "SIGKILL");
    await until("the delayer to die", () => alive(shaped.delayerPid!), (a) => !a);
    await sendSegments(line, { count: 50, perSecond: 1000, sport: 41001 });
    const offered = async () =>
      (await run([
        "ip",
        "netns",
        "exec",
        line.middle.name,
        "nft",
        "list",
        "counter",
        "inet",
        "bl_shape_0",
        "offered",
      ])).stdout;
    await until(
      "the 50 segments to be offered",
      offered,
      (t) => Number(/packets (\d+)/.exec(t)?.[1]) >= 70,
    );
    equal(await rx(), before, "packets reached the sink without the delayer");
    await rejects(
      shaped.stats(),
      /Cannot read the counters of the delayer of link "m1" .*: it exited with/,
    );
  },
);

rootTest("A full delay queue drops and counts what does not fit (queueLimit)", async () => {
  await using line = await buildLine();
  await using shaped = await shapeLink(
    { ns: line.middle, ifname: LINE.shapedIf, direction: "egress" },
    { delayMs: 100 },
    { queueLimit: 20 },
  );
  // 200 segments in 200 ms: about 100 would be held at once.
  await sendSegments(line, { count: 200, perSecond: 1000, sport: 42000 });
  // Every packet queued is delayed or dropped and counted. (The counters are read one after the
  // other, so a stray IPv6 packet can come between two reads: wait for the sum.)
  const stats = await until(
    "every packet queued to be delayed or counted as dropped",
    () => shaped.stats(),
    (s) =>
      s.held === 0 && s.offered >= 200 &&
      (s.mechanism !== "nfqueue" || s.delayed + s.queueDropped === s.queued),
  );
  ok(stats.queueDropped >= 100, JSON.stringify(stats));
  console.log(
    `[ OK ] ${stats.mechanism}: queue of 20, ${
      stats.queued ?? stats.offered
    } queued, ${stats.delayed} delayed, ${stats.queueDropped} dropped and counted`,
  );
});

// Local traffic, both directions shaped differently, over IPv4 and IPv6. On the wire, a
// segment is seen after its sender's egress delay: from the server's capture, SYN-ACK out →
// final ACK in is the client's delay; from the client's, SYN out → SYN-ACK in the server's.
for (const family of [4, 6] as const) {
  rootTest(
    `shapeLink() delays a TCP handshake each way by its own egress delay (IPv${family})`,
    async () => {
      await using p = await pair(family);
      const CLIENT_MS = 30;
      const SERVER_MS = 10;
      await using _up = await shapeLink({ ns: p.client, ifname: "c0", direction: "egress" }, {
        delayMs: CLIENT_MS,
      });
      await using _down = await shapeLink({ ns: p.server, ifname: "s0", direction: "egress" }, {
        delayMs: SERVER_MS,
      });
      const port = 18300 + family;
      const files = await Promise.all([
        Capture.tempFile("bl-shape-c"),
        Capture.tempFile("bl-shape-s"),
      ]);
      try {
        await using cc = await Capture.start(p.client, { port, file: files[0]!, iface: "c0" });
        await using sc = await Capture.start(p.server, { port, file: files[1]!, iface: "s0" });
        const server = new Deno.Command("ip", {
          args: [
            "netns",
            "exec",
            p.server.name,
            Deno.execPath(),
            "eval",
            `
          const l = Deno.listen({ hostname: "${p.serverAddress}", port: ${port} });
          console.log("listening");
          for (let i = 0; i < 3; i++) { const c = await l.accept(); c.close(); }
          l.close();`,
          ],
          stdout: "piped",
          stderr: "inherit",
        }).spawn();
        const reader = server.stdout.getReader();
        await reader.read(); // "listening"
        reader.releaseLock();
        await run(p.client.wrap([
          Deno.execPath(),
          "eval",
          `
        for (let i = 0; i < 3; i++) {
          const c = await Deno.connect({ hostname: "${p.serverAddress}", port: ${port} });
          c.close();
        }`,
        ]));
        await server.stdout.cancel();
        await server.status;
        const [client, srv] = [await cc.stop(), await sc.stop()];
        const onClient = packetTimelines(client, { serverPort: port, originMs: 0 });
        const onServer = packetTimelines(srv, { serverPort: port, originMs: 0 });
        equal(onClient.length, 3);
        equal(onServer.length, 3);
        for (const c of onClient) {
          const syn = c.events.find((e) => e.kind === "SYN")!;
          const synAck = c.events.find((e) => e.kind === "SYN-ACK")!;
          const s = onServer.find((x) => x.client === c.client)!;
          const sSynAck = s.events.find((e) => e.kind === "SYN-ACK")!;
          const sAck = s.events.find((e) => e.kind === "ACK" && e.dir === "in")!;
          const down = synAck.t - syn.t;
          const up = sAck.t - sSynAck.t;
          // At least the delay; at most 5 ms more (a scheduler tick on a busy 2-core machine).
          ok(down >= SERVER_MS && down < SERVER_MS + 5, `server→client ${down} ms`);
          ok(up >= CLIENT_MS && up < CLIENT_MS + 5, `client→server ${up} ms`);
        }
      } finally {
        for (const f of files) await Deno.remove(f).catch(() => {});
      }
    },
  );
}

rootTest(
  "ShapedLink.release() ends the delayer and leaves the rest to the namespace's deletion",
  async () => {
    await using p = await pair();
    const endpoint = { ns: p.client, ifname: "c0", direction: "egress" } as const;
    const shaped = await shapeLink(endpoint, { delayMs: 5, lossPercent: 1, rateKbit: 1000 }, {
      mechanism: "nfqueue",
    });
    const pid = shaped.delayerPid!;
    ok(alive(pid));
    await shaped.release();
    ok(!alive(pid), "the delayer has ended");
    const left = await inside(p.client);
    // No command ran for the rest: the namespace's deletion removes it with everything else.
    equal(left.tables.length, 1);
    equal(left.qdiscs.join(), "tbf");
    equal(left.rules.length, 2, "IPv4 and IPv6");
    equal(left.delayers.length, 0);
    await shaped[Symbol.asyncDispose](); // does nothing more
    equal((await inside(p.client)).tables.length, 1);
    // Its number stays taken while the namespace holds what is left: a new link gets the next.
    await using again = await shapeLink(endpoint, { delayMs: 5 }, { mechanism: "nfqueue" });
    equal(again.index, shaped.index + 1);
  },
);
