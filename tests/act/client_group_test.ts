import { deepStrictEqual as deepEqual, ok, strictEqual as equal, throws } from "node:assert/strict";
import { Link } from "../../lab/topology/link.ts";
import { Netns, newRunPrefix } from "../../lab/topology/netns.ts";
import { OPEN_FILES_MARGIN, parseClientGroupSpec } from "../../lab/act/programs/client_group.ts";
import { arrivalTimes } from "../../lab/describe/arrivals.ts";
import type { ClientEvent, ClientGroupSpec } from "../../lab/act/programs/protocol.ts";
import {
  type ClientProcess,
  eventsNamed,
  type ServerProcess,
  startClients as startClientProgram,
  startServer as startServerProgram,
} from "../_programs.ts";
import { rootTest, until } from "../_helpers.ts";

const PORT = 8080;
/** Deno's first start of a program compiles it. */
const READY_MS = 30_000;
/** For what the kernel does at once on loopback, with room for a loaded machine. */
const KERNEL_MS = 10_000;
/** 10,000 handshakes take about a second here; this is room for a machine busy with other runs. */
const BULK_MS = 60_000;
/** `CAP_SYS_RESOURCE`: may raise a hard resource limit. */
const CAP_SYS_RESOURCE = 24;

function spec(overrides: Partial<ClientGroupSpec>): ClientGroupSpec {
  return {
    family: 4,
    address: "127.0.0.1",
    port: PORT,
    localAddress: "127.0.0.1",
    count: 1,
    intervalMs: 0,
    then: { kind: "nothing" },
    deadlineMs: 0,
    ...overrides,
  };
}

/** listen_server.ts in `ns` as the lab starts it. */
function startServer(ns: Netns, address: string, backlog: number): ServerProcess {
  return startServerProgram(ns, { family: 4, address, port: PORT, backlog });
}

/** client_group.ts in `ns` as the lab starts it, after `prefix` (e.g. `prlimit …`). */
function startClients(ns: Netns, s: ClientGroupSpec, prefix: string[] = []): ClientProcess {
  return startClientProgram(ns, s, { prefix });
}

/** A server in `ns` on 127.0.0.1 that accepts everything, once it listens. */
async function acceptingServer(ns: Netns, backlog: number): Promise<ServerProcess> {
  const server = startServer(ns, "127.0.0.1", backlog);
  await server.waitForEvent("ready", READY_MS);
  await server.send({ cmd: "policy", policy: { kind: "all" } });
  return server;
}

function eventsOf<N extends ClientEvent["event"]>(
  p: ClientProcess,
  name: N,
): Extract<ClientEvent, { event: N }>[] {
  return eventsNamed(p, name);
}

/** Counts of each value of `key` among `events`. */
function tally<E extends object>(events: readonly E[], key: keyof E): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of events) counts[String(e[key])] = (counts[String(e[key])] ?? 0) + 1;
  return counts;
}

/** Whether this process (and so a child it starts as root) has `cap` in its effective set. */
function hasCapability(cap: number): boolean {
  const status = Deno.readTextFileSync("/proc/self/status");
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? "0";
  return ((BigInt(`0x${hex}`) >> BigInt(cap)) & 1n) === 1n;
}

Deno.test("parseClientGroupSpec() accepts the runner's spec", () => {
  const s = spec({ then: { kind: "sendRead", bytes: 100, timeoutMs: 500 }, intervalMs: 2 });
  deepEqual(parseClientGroupSpec(JSON.stringify(s)), s);
});

Deno.test("parseClientGroupSpec() names the field that is wrong", () => {
  throws(() => parseClientGroupSpec("{"), { name: "TypeError", message: /not JSON/ });
  throws(
    () => parseClientGroupSpec(JSON.stringify({ ...spec({}), family: 5 })),
    { name: "TypeError", message: /"family" must be 4 or 6/ },
  );
  throws(
    () => parseClientGroupSpec(JSON.stringify(spec({ count: -1 }))),
    { name: "RangeError", message: /"count" must be a non-negative integer/ },
  );
  throws(
    () => parseClientGroupSpec(JSON.stringify({ ...spec({}), then: { kind: "wait" } })),
    { name: "TypeError", message: /unknown "then.kind" "wait"/ },
  );
});

rootTest(
  "client_group.ts connects 10,000 at once over a veth to a server that accepts all",
  async () => {
    const count = 10_000;
    const prefix = newRunPrefix();
    await using srv = await Netns.create(`${prefix}-cgs`);
    await using cli = await Netns.create(`${prefix}-cgc`);
    await using _link = await Link.create(
      { ns: srv, ifname: "veth0", cidr: "10.213.1.1/24" },
      { ns: cli, ifname: "veth1", cidr: "10.213.1.2/24" },
    );
    // A namespace's somaxconn is 4096: the accept queue holds what the server has not yet taken.
    await using server = startServer(srv, "10.213.1.1", 4096);
    await server.waitForEvent("ready", READY_MS);
    await server.send({ cmd: "policy", policy: { kind: "all" } });
    await using clients = startClients(
      cli,
      spec({ address: "10.213.1.1", localAddress: "10.213.1.2", count }),
    );
    const ready = await clients.waitForEvent("ready", READY_MS);
    ok(
      Number(ready.maxOpenFiles) >= count + OPEN_FILES_MARGIN,
      `maxOpenFiles ${ready.maxOpenFiles}`,
    );
    await clients.send({ cmd: "go" });
    const connects = await until(
      `${count} connect events`,
      () => eventsOf(clients, "connect"),
      (es) => es.length >= count,
      BULK_MS,
    );
    deepEqual(tally(connects, "result"), { ok: count });
    equal(new Set(connects.map((e) => e.i)).size, count);
    equal((await clients.waitForEvent("launched", KERNEL_MS)).n, count);
  },
);

rootTest(
  "client_group.ts reports a hard open-file limit it cannot raise and exits 1 before ready",
  async () => {
    await using ns = await Netns.create(`${newRunPrefix()}-cgl`);
    // Without CAP_SYS_RESOURCE even root cannot raise a hard limit.
    await using clients = startClients(ns, spec({ count: 1000 }), [
      "prlimit",
      "--nofile=100:100",
      "setpriv",
      "--inh-caps=-sys_resource",
      "--bounding-set=-sys_resource",
    ]);
    equal((await clients.status).code, 1);
    const events = clients.events.map((e) => e.event);
    deepEqual(events, ["error"]);
    const message = String(eventsOf(clients, "error")[0]?.message);
    ok(message.includes(`${1000 + OPEN_FILES_MARGIN} open files are needed`), message);
    ok(message.includes("RLIMIT_NOFILE is 100 (hard limit 100)"), message);
    ok(message.includes("ulimit -Hn"), message);
  },
);

rootTest(
  "client_group.ts raises a hard open-file limit below its need only with CAP_SYS_RESOURCE",
  async () => {
    await using ns = await Netns.create(`${newRunPrefix()}-cgr`);
    const needed = 1000 + OPEN_FILES_MARGIN;
    await using clients = startClients(ns, spec({ count: 1000 }), ["prlimit", "--nofile=100:100"]);
    await until("ready or exit", () => clients.events.length > 0 || clients.exited, (v) => v);
    if (hasCapability(CAP_SYS_RESOURCE)) {
      const ready = await clients.waitForEvent("ready", READY_MS);
      equal(ready.maxOpenFiles, needed);
    } else {
      equal((await clients.status).code, 1);
      deepEqual(clients.events.map((e) => e.event), ["error"]);
      ok(
        String(eventsOf(clients, "error")[0]?.message).includes(`${needed} open files are needed`),
      );
    }
  },
);

rootTest(
  "client_group.ts opens a staggered group's connections in order, one open each",
  async () => {
    const count = 50;
    await using ns = await Netns.create(`${newRunPrefix()}-cgi`);
    await using _server = await acceptingServer(ns, 64);
    await using clients = startClients(ns, spec({ count, intervalMs: 2 }));
    await clients.waitForEvent("ready", READY_MS);
    await clients.send({ cmd: "go" });
    await until(
      `${count} connect events`,
      () => eventsOf(clients, "connect").length,
      (n) => n >= count,
    );
    const launched = await clients.waitForEvent("launched", KERNEL_MS);
    equal(launched.n, count);
    const opens = eventsOf(clients, "open");
    deepEqual(
      opens.map((e) => e.i),
      Array.from({ length: count }, (_, i) => i),
    );
    // Each connection's open comes before its connect, and every open before "launched".
    const order = clients.events.map((e) => `${e.event}:${"i" in e ? e.i : ""}`);
    for (let i = 0; i < count; i++) ok(order.indexOf(`open:${i}`) < order.indexOf(`connect:${i}`));
    ok(order.indexOf(`open:${count - 1}`) < order.indexOf("launched:"));
    deepEqual(tally(eventsOf(clients, "connect"), "result"), { ok: count });
  },
);

rootTest("client_group.ts reports ECONNREFUSED for each connect() no one listens for", async () => {
  await using ns = await Netns.create(`${newRunPrefix()}-cgn`);
  await using clients = startClients(ns, spec({ count: 3 }));
  await clients.waitForEvent("ready", READY_MS);
  await clients.send({ cmd: "go" });
  const connects = await until(
    "3 connect events",
    () => eventsOf(clients, "connect"),
    (es) => es.length >= 3,
  );
  deepEqual(tally(connects, "result"), { ECONNREFUSED: 3 });
});

rootTest(
  `client_group.ts {"cmd":"close"} closes every connection it holds and counts them`,
  async () => {
    await using ns = await Netns.create(`${newRunPrefix()}-cgx`);
    await using _server = await acceptingServer(ns, 64);
    await using clients = startClients(
      ns,
      spec({ count: 20, then: { kind: "read", timeoutMs: 60_000 } }),
    );
    await clients.waitForEvent("ready", READY_MS);
    await clients.send({ cmd: "go" });
    await until("20 connect events", () => eventsOf(clients, "connect").length, (n) => n >= 20);
    await clients.send({ cmd: "close" });
    equal((await clients.waitForEvent("closed", KERNEL_MS)).n, 20);
    // Closed while reading: no "after" for any of them.
    deepEqual(eventsOf(clients, "after"), []);
  },
);

Deno.test("parseClientGroupSpec() takes arrivals and close, and names what is wrong with them", () => {
  const arrivals = { perSecond: 400, forMs: 1000, process: "poisson" as const, seed: 3 };
  const s = spec({
    count: 397,
    intervalMs: 2.5,
    arrivals,
    then: { kind: "sendRead", bytes: 100, timeoutMs: 1000, close: true },
  });
  deepEqual(parseClientGroupSpec(JSON.stringify(s)), s);
  throws(
    () =>
      parseClientGroupSpec(
        JSON.stringify(spec({ arrivals: { ...arrivals, process: "x" as never } })),
      ),
    { name: "TypeError", message: /"arrivals" must be/ },
  );
  throws(
    () =>
      parseClientGroupSpec(
        JSON.stringify({ ...spec({}), then: { kind: "send", bytes: 1, close: false } }),
      ),
    { name: "TypeError", message: /"then.close" must be true or absent/ },
  );
});

for (const process of ["fixed", "poisson"] as const) {
  rootTest(
    `client_group.ts opens ${process} arrivals open-loop, never before their times`,
    async () => {
      const arrivals = { perSecond: 200, forMs: 300, process, seed: 5 };
      const times = arrivalTimes(arrivals);
      await using ns = await Netns.create(`${newRunPrefix()}-cga`);
      await using _server = await acceptingServer(ns, 64);
      await using clients = startClients(
        ns,
        spec({ count: times.length, intervalMs: 1000 / arrivals.perSecond, arrivals }),
      );
      await clients.waitForEvent("ready", READY_MS);
      await clients.send({ cmd: "go" });
      equal((await clients.waitForEvent("launched", KERNEL_MS)).n, times.length);
      const opens = eventsOf(clients, "open");
      deepEqual(opens.map((e) => e.i), Array.from({ length: times.length }, (_, i) => i));
      // Each connection opens at or after its arrival time (times are in µs; 1 µs of rounding).
      for (const e of opens) {
        ok(e.t >= times[e.i]! - 0.001, `open ${e.i} at ${e.t}, due ${times[e.i]}`);
      }
      await until(
        `${times.length} connect events`,
        () => eventsOf(clients, "connect").length,
        (n) => n >= times.length,
      );
      deepEqual(tally(eventsOf(clients, "connect"), "result"), { ok: times.length });
    },
  );
}

rootTest(
  "client_group.ts reports the first reply byte's time and closes after its follow-up",
  async () => {
    await using ns = await Netns.create(`${newRunPrefix()}-cgb`);
    await using server = startServerProgram(ns, {
      family: 4,
      address: "127.0.0.1",
      port: PORT,
      backlog: 64,
      serve: { replyBytes: 100 },
    });
    await server.waitForEvent("ready", READY_MS);
    await using clients = startClients(
      ns,
      spec({ count: 10, then: { kind: "sendRead", bytes: 50, timeoutMs: KERNEL_MS, close: true } }),
    );
    await clients.waitForEvent("ready", READY_MS);
    await clients.send({ cmd: "go" });
    // The server accepts only once every client has connected: each reply waits for that.
    await until("10 connected", () => eventsOf(clients, "connect").length, (n) => n >= 10);
    await server.send({ cmd: "policy", policy: { kind: "all" } });
    const replies = await until(
      "10 replies",
      () => eventsOf(clients, "after"),
      (es) => es.length >= 10,
    );
    const connectMs = new Map(eventsOf(clients, "connect").map((e) => [e.i, e.ms]));
    for (const r of replies) {
      equal(r.result, "data");
      // From the start of connect(): after connect() returned, before the event's own time.
      ok(r.ms !== undefined && r.ms >= connectMs.get(r.i)!, JSON.stringify(r));
    }
    // close: the client closed each socket after its reply; nothing is left to close.
    await clients.send({ cmd: "close" });
    equal((await clients.waitForEvent("closed", KERNEL_MS)).n, 0);
  },
);
