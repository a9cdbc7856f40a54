import {
  deepStrictEqual as deepEqual,
  match,
  ok as assert,
  rejects,
  strictEqual as equal,
  throws,
} from "node:assert/strict";
import { nftRuleText, ruleHandleFromEcho, Wire, type WireRule } from "../../lab/topology/wire.ts";
import type { RulePacketKind } from "../../lab/vocabulary.ts";
import { Netns, newRunPrefix } from "../../lab/topology/netns.ts";
import { run } from "../../lab/base/command.ts";
import { CommandError } from "../../lab/base/errors.ts";
import { namespacesWith, rootTest, until } from "../_helpers.ts";

const BASE: WireRule = {
  name: "r",
  direction: "out",
  side: "client",
  family: 4,
  packets: ["ack"],
  port: 8080,
  clientAddress: "10.213.1.10",
};
const { clientAddress: _, ...ANY_ADDRESS } = BASE;

Deno.test("ruleHandleFromEcho() reads the rule's handle as Linux 5.10 and 6.18 echo it", async () => {
  // Recorded from `nft -a -e -f -` (nft 1.0.6) adding a counter and a rule: 5.10 echoes the
  // appended rule as "insert rule", 6.18 as "add rule"; the counter's handle is not the rule's.
  const dir = new URL("../testdata/nft/", import.meta.url);
  const old = await Deno.readTextFile(new URL("echo_linux_5.10.txt", dir));
  const now = await Deno.readTextFile(new URL("echo_linux_6.18.txt", dir));
  equal(ruleHandleFromEcho(old), 4);
  equal(ruleHandleFromEcho(now), 3);
  equal(
    ruleHandleFromEcho("add counter inet t c { # handle 3 packets 0 bytes 0 }\n"),
    undefined,
  );
  equal(ruleHandleFromEcho(""), undefined);
});

Deno.test("nftRuleText() matches each packet kind by its TCP flags", () => {
  const cases: [RulePacketKind, string][] = [
    ["syn", "tcp flags & (syn|ack) == syn"],
    ["syn-ack", "tcp flags & (syn|ack) == syn|ack"],
    ["ack", "tcp flags & (fin|syn|rst|ack) == ack"],
    ["rst", "tcp flags & rst == rst"],
    ["fin", "tcp flags & fin == fin"],
  ];
  for (const [kind, flags] of cases) {
    equal(
      nftRuleText({ ...BASE, packets: [kind] }),
      `ip saddr 10.213.1.10 tcp dport 8080 ${flags} counter name bl_r drop`,
      kind,
    );
  }
  equal(
    nftRuleText({ ...BASE, packets: ["all"] }),
    "ip saddr 10.213.1.10 tcp dport 8080 counter name bl_r drop",
  );
});

Deno.test("nftRuleText() matches a union of kinds over just the flags it depends on", () => {
  const cases: [RulePacketKind[], string][] = [
    [["syn", "syn-ack"], "tcp flags & syn == syn"],
    [["rst", "fin"], "tcp flags & (fin|rst) == { fin, rst, fin|rst }"],
    [
      ["syn", "ack"],
      "tcp flags & (fin|syn|rst|ack) == { syn, fin|syn, syn|rst, fin|syn|rst, ack }",
    ],
    [["ack", "ack"], "tcp flags & (fin|syn|rst|ack) == ack"],
    [["syn", "all"], ""],
    [
      ["syn", "syn-ack", "ack", "rst", "fin"],
      "tcp flags & (fin|syn|rst|ack) == { fin, syn, " +
      "fin|syn, rst, fin|rst, syn|rst, fin|syn|rst, ack, fin|ack, syn|ack, fin|syn|ack, rst|ack, " +
      "fin|rst|ack, syn|rst|ack, fin|syn|rst|ack }",
    ],
  ];
  for (const [packets, flags] of cases) {
    const want = ["meta nfproto ipv4 tcp dport 8080", flags, "counter name bl_r drop"]
      .filter(Boolean).join(" ");
    equal(nftRuleText({ ...ANY_ADDRESS, packets }), want);
  }
});

Deno.test("nftRuleText() puts the client address and server port on the right ends", () => {
  // Toward the server: a server's input, a client's output. From it: the other two.
  const cases: [WireRule["side"], WireRule["direction"], string][] = [
    ["server", "in", "saddr ADDR tcp dport 8080"],
    ["server", "out", "daddr ADDR tcp sport 8080"],
    ["client", "out", "saddr ADDR tcp dport 8080"],
    ["client", "in", "daddr ADDR tcp sport 8080"],
  ];
  for (const [side, direction, ends] of cases) {
    for (
      const [family, ip, addr] of [[4, "ip", "10.213.1.10"], [6, "ip6", "fd00:213::a"]] as const
    ) {
      const rule: WireRule = { ...BASE, side, direction, family, clientAddress: addr };
      equal(
        nftRuleText(rule),
        `${ip} ${
          ends.replace("ADDR", addr)
        } tcp flags & (fin|syn|rst|ack) == ack counter name bl_r drop`,
        `${side} ${direction} IPv${family}`,
      );
      const { clientAddress: _a, ...anyAddress } = rule;
      equal(
        nftRuleText(anyAddress),
        `meta nfproto ipv${family} ${ends.replace(/^\S+ ADDR /, "")} ` +
          "tcp flags & (fin|syn|rst|ack) == ack counter name bl_r drop",
        `${side} ${direction} IPv${family} any address`,
      );
    }
  }
});

Deno.test("nftRuleText() rejects invalid rules naming the rule and field", () => {
  const cases: [Record<string, unknown>, typeof Error, RegExp][] = [
    [{ name: "" }, RangeError, /wire rule "": field "name" must be 1 to 64/],
    [{ name: "a b" }, RangeError, /field "name" .* got "a b"/],
    [{ name: "x".repeat(65) }, RangeError, /field "name"/],
    [{ name: 7 }, TypeError, /wire rule \(unnamed\): field "name" must be a string/],
    [
      { direction: "input" },
      RangeError,
      /"r": field "direction" must be "in" or "out", got "input"/,
    ],
    [{ side: "srv" }, RangeError, /field "side" must be "server" or "client", got "srv"/],
    [{ side: 1 }, TypeError, /field "side" must be a string/],
    [{ packets: [] }, RangeError, /field "packets" must name at least one packet kind/],
    [{ packets: "ack" }, TypeError, /field "packets" must be an array/],
    [
      { packets: ["ack", "synack"] },
      RangeError,
      /field "packets\[1\]" must be one of .* got "synack"; did you mean "syn-ack"\?/,
    ],
    [{ port: 0 }, RangeError, /field "port" must be an integer from 1 to 65535, got 0/],
    [{ port: 70000 }, RangeError, /got 70000/],
    [{ port: 80.5 }, RangeError, /got 80\.5/],
    [{ port: "80" }, TypeError, /field "port" must be a number/],
    [{ family: 5 }, RangeError, /field "family" must be 4 or 6, got 5/],
    [
      { clientAddress: "fd00::1" },
      RangeError,
      /"clientAddress" must be an IPv4 address .* "fd00::1"/,
    ],
    [{ clientAddress: "10.0.0.256" }, RangeError, /"clientAddress" must be an IPv4/],
    [{ family: 6 }, RangeError, /"clientAddress" must be an IPv6 address .* "10\.213\.1\.10"/],
    [{ family: 6, clientAddress: "fd00::1::2" }, RangeError, /must be an IPv6/],
    [{ clientAddress: 10 }, TypeError, /"clientAddress" must be a string/],
  ];
  for (const [patch, Err, message] of cases) {
    throws(() => nftRuleText({ ...BASE, ...patch } as unknown as WireRule), (err: Error) => {
      assert(err instanceof Err, `${JSON.stringify(patch)}: ${err}`);
      match(err.message, /^Invalid wire rule /);
      match(err.message, message);
      return true;
    });
  }
  throws(() => nftRuleText(null as unknown as WireRule), TypeError);
});

/** `ss` lines of `ns` in TCP state `state` whose `port` is `which` (sport/dport). */
async function sockets(
  ns: Netns,
  state: string,
  which: "sport" | "dport",
  port: number,
): Promise<string[]> {
  const out = await run(["ss", "-N", ns.name, "-Htn", "state", state, `( ${which} = :${port} )`]);
  return out.stdout.split("\n").filter(Boolean);
}

/**
 * Starts, inside `ns`, a listener on 127.0.0.1:`port` that never accepts and
 * a client that connects to it and sends one byte; lo traffic crosses both
 * the output and the input hook. Lives at most a minute; disposal ends it.
 */
function listenAndConnect(ns: Netns, port: number): Deno.ChildProcess {
  const code = `
    const l = Deno.listen({ hostname: "127.0.0.1", port: ${port} });
    setTimeout(() => Deno.exit(0), 60_000);
    const c = await Deno.connect({ hostname: "127.0.0.1", port: ${port} });
    await c.write(new Uint8Array([1]));`;
  const [cmd, ...args] = ns.wrap([Deno.execPath(), "eval", code]);
  return new Deno.Command(cmd!, {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
    env: { DENO_NO_UPDATE_CHECK: "1" },
  }).spawn();
}

rootTest(
  "Wire.add() holds a connection in SYN_RECV by dropping the client's final ACK, until remove()",
  async () => {
    const port = 8080;
    await using ns = await Netns.create(`${newRunPrefix()}-wa`);
    await using wire = await Wire.create(ns);
    await wire.add({
      name: "late-ack",
      direction: "out",
      side: "client",
      family: 4,
      packets: ["ack"],
      port,
      clientAddress: "127.0.0.1",
    });
    deepEqual(wire.active, ["late-ack"]);
    await using _peers = listenAndConnect(ns, port);
    await until(
      "a SYN_RECV entry on the server",
      async () => (await sockets(ns, "syn-recv", "sport", port)).length === 1,
      (ok) => ok,
    );
    // The client believes it is connected; the server never saw the ACK.
    equal((await sockets(ns, "established", "dport", port)).length, 1);
    deepEqual(await sockets(ns, "established", "sport", port), []);
    assert(((await wire.dropped())["late-ack"] ?? 0) > 0);

    await wire.remove("late-ack");
    deepEqual(wire.active, []);
    // The client's retransmitted data (or its ACK of a retransmitted SYN-ACK)
    // now gets through and completes the handshake.
    await until(
      "the server's side to be ESTABLISHED",
      async () => (await sockets(ns, "established", "sport", port)).length === 1,
      (ok) => ok,
    );
    deepEqual(await sockets(ns, "syn-recv", "sport", port), []);
    const dropped = (await wire.dropped())["late-ack"] ?? 0;
    assert(dropped > 0, `dropped ${dropped}`);
  },
);

rootTest(
  "Wire.add() keeps the client in SYN-SENT by dropping SYNs at the server's input",
  async () => {
    const port = 8081;
    await using ns = await Netns.create(`${newRunPrefix()}-ws`);
    await using wire = await Wire.create(ns);
    await wire.add({
      name: "no-syn",
      direction: "in",
      side: "server",
      family: 4,
      packets: ["syn"],
      port,
    });
    await using _peers = listenAndConnect(ns, port);
    await until(
      "the client in SYN-SENT with its SYN dropped",
      async () =>
        (await sockets(ns, "syn-sent", "dport", port)).length === 1 &&
        ((await wire.dropped())["no-syn"] ?? 0) > 0,
      (ok) => ok,
    );
    deepEqual(await sockets(ns, "syn-recv", "sport", port), []);
    deepEqual(await sockets(ns, "established", "dport", port), []);

    await wire.remove("no-syn");
    // The next SYN retransmission (1 s, 3 s, … after the first) gets through.
    await until(
      "the connection to be ESTABLISHED",
      async () => (await sockets(ns, "established", "sport", port)).length === 1,
      (ok) => ok,
    );
    deepEqual(await sockets(ns, "syn-sent", "dport", port), []);
  },
);

rootTest("Wire.add() installs every kind, family, side and direction nft accepts", async () => {
  await using ns = await Netns.create(`${newRunPrefix()}-wk`);
  await using wire = await Wire.create(ns);
  const kinds: RulePacketKind[][] = [["syn"], ["syn-ack"], ["ack"], ["rst"], ["fin"], ["all"], [
    "rst",
    "fin",
  ], ["syn", "ack"]];
  const names: string[] = [];
  for (const [i, packets] of kinds.entries()) {
    for (const family of [4, 6] as const) {
      for (const side of ["server", "client"] as const) {
        for (const direction of ["in", "out"] as const) {
          const name = `k${i}-v${family}-${side}-${direction}`;
          const clientAddress = i % 2 ? undefined : family === 4 ? "10.213.1.10" : "fd00:213::a";
          await wire.add({
            name,
            packets,
            family,
            side,
            direction,
            port: 8080,
            ...(clientAddress ? { clientAddress } : {}),
          });
          names.push(name);
        }
      }
    }
  }
  deepEqual(wire.active, names);
  const listed = await run(ns.wrap(["nft", "list", "table", "inet", "backlog_lab"]));
  equal(listed.stdout.match(/ drop$/gm)?.length, names.length);
  const dropped = await wire.dropped();
  deepEqual(Object.keys(dropped), names);
  assert(Object.values(dropped).every((n) => n === 0));

  // Removing one rule leaves the others; its name can be used again.
  await wire.remove(names[3]!);
  deepEqual(wire.active, names.filter((n) => n !== names[3]));
  await wire.add({ ...BASE, name: names[3]! });
  equal(wire.active.at(-1), names[3]);
});

rootTest("Wire.remove() and Wire.add() name the rule that is unknown or taken", async () => {
  await using ns = await Netns.create(`${newRunPrefix()}-we`);
  await using wire = await Wire.create(ns);
  await wire.add(BASE);
  await rejects(wire.add({ ...BASE, direction: "in" }), (err: Error) => {
    assert(err instanceof RangeError);
    match(
      err.message,
      /Cannot add wire rule "r" in namespace "bl-.*": a rule with that name is active/,
    );
    return true;
  });
  await rejects(wire.remove("R"), (err: Error) => {
    assert(err instanceof RangeError);
    match(
      err.message,
      /Cannot remove wire rule "R" .*: no such active rule \(active: "r"\); did you mean "r"\?/,
    );
    return true;
  });
  // A second Wire on the same namespace would share its table: refused.
  await rejects(Wire.create(ns), (err: Error) => {
    assert(err instanceof CommandError);
    match(
      err.message,
      /Cannot create the nftables table "inet backlog_lab" in namespace .*File exists/,
    );
    return true;
  });
  await wire.remove("r");
  await rejects(wire.remove("r"), /no such active rule \(active: none\)/);
});

rootTest(
  "Wire disposal deletes the table, twice safely, and tolerates a deleted namespace",
  async () => {
    const prefix = newRunPrefix();
    {
      await using ns = await Netns.create(`${prefix}-wd`);
      const wire = await Wire.create(ns);
      await wire.add(BASE);
      await wire[Symbol.asyncDispose]();
      await wire[Symbol.asyncDispose]();
      equal((await run(ns.wrap(["nft", "list", "tables"]))).stdout.trim(), "");
      await rejects(wire.add(BASE), /the wire is disposed/);

      const orphan = await Wire.create(ns);
      await ns[Symbol.asyncDispose]();
      await orphan[Symbol.asyncDispose]();
    }
    deepEqual(await namespacesWith(prefix), []);
  },
);
