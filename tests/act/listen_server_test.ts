import {
  deepStrictEqual as deepEqual,
  ok,
  rejects,
  strictEqual as equal,
} from "node:assert/strict";
import { run } from "../../lab/base/command.ts";
import { Netns, newRunPrefix } from "../../lab/topology/netns.ts";
import { parseSs, type SocketRow, type TcpState } from "../../lab/observe/socket_table.ts";
import type {
  ClientGroupSpec,
  ServerEvent,
  ServerPolicy,
  ServerSpec,
} from "../../lab/act/programs/protocol.ts";
import {
  type ClientProcess,
  eventsNamed,
  type ServerProcess,
  startClients as startClientProgram,
  startServer as startServerProgram,
} from "../_programs.ts";
import { rootTest, until } from "../_helpers.ts";

/** Each test has a namespace of its own, where nothing else listens: any port is free. */
const PORT = 8080;
/** Deno's first start of a program compiles it. */
const READY_MS = 30_000;
/** For what the kernel does at once on loopback, with room for a loaded machine. */
const KERNEL_MS = 10_000;

/** Starts listen_server.ts in `ns` as the lab does, on 127.0.0.1:PORT. */
function startServer(
  ns: Netns,
  backlog: number,
  options: Pick<ServerSpec, "maxOpenFiles" | "waitToListen"> = {},
): ServerProcess {
  return startServerProgram(ns, {
    family: 4,
    address: "127.0.0.1",
    port: PORT,
    backlog,
    ...options,
  });
}

/** Starts client_group.ts in `ns` as the lab does: `count` connections at once, then nothing. */
function startClients(ns: Netns, count: number): ClientProcess {
  const spec: ClientGroupSpec = {
    family: 4,
    address: "127.0.0.1",
    port: PORT,
    localAddress: "127.0.0.1",
    count,
    intervalMs: 0,
    then: { kind: "nothing" },
    deadlineMs: 0,
  };
  // Without --allow-ffi: the client's node:net fallback.
  return startClientProgram(ns, spec, { flags: ["--allow-net"] });
}

/** Waits for the clients' "ready", sends "go" and waits until every connect() was called. */
async function release(clients: ClientProcess): Promise<void> {
  await clients.waitForEvent("ready", READY_MS);
  await clients.send({ cmd: "go" });
  await clients.waitForEvent("launched", KERNEL_MS);
}

function policy(server: ServerProcess, p: ServerPolicy): Promise<void> {
  return server.send({ cmd: "policy", policy: p });
}

function eventsOf<N extends ServerEvent["event"]>(
  p: ServerProcess,
  name: N,
): Extract<ServerEvent, { event: N }>[] {
  return eventsNamed(p, name);
}

function acceptedTotal(server: ServerProcess): number {
  return eventsOf(server, "accepted").reduce((sum, e) => sum + Number(e.n), 0);
}

/** The LISTEN socket of PORT as `ss -ltn` shows it (inet_diag), if there is one. */
async function listenSocket(ns: Netns): Promise<SocketRow | undefined> {
  const out = await run(["ss", "-N", ns.name, "-Hltn", "sport", "=", `:${PORT}`]);
  return parseSs(out.stdout).find((r) => r.state === "LISTEN" && r.localPort === PORT);
}

async function recvQ(ns: Netns): Promise<number | undefined> {
  return (await listenSocket(ns))?.recvQ;
}

/** The connections of PORT, by side and state: `server` has PORT as local port, `client` as peer. */
async function connections(
  ns: Netns,
): Promise<
  { server: Partial<Record<TcpState, number>>; client: Partial<Record<TcpState, number>> }
> {
  const out = await run(["ss", "-N", ns.name, "-Htan"]);
  const server: Partial<Record<TcpState, number>> = {};
  const client: Partial<Record<TcpState, number>> = {};
  for (const r of parseSs(out.stdout)) {
    if (r.state === "LISTEN") continue;
    if (r.localPort === PORT) server[r.state] = (server[r.state] ?? 0) + 1;
    else if (r.remotePort === PORT) client[r.state] = (client[r.state] ?? 0) + 1;
  }
  return { server, client };
}

/**
 * Samples Recv-Q until it is 0 and returns the values seen, each once, in
 * order (consecutive repeats dropped).
 */
async function drainSteps(ns: Netns): Promise<number[]> {
  const steps: number[] = [];
  await until("Recv-Q 0", async () => {
    const q = await recvQ(ns);
    if (q !== undefined && q !== steps.at(-1)) steps.push(q);
    return q;
  }, (q) => q === 0);
  return steps;
}

function assertNonIncreasing(steps: readonly number[]): void {
  ok(steps.every((q, i) => i === 0 || q < steps[i - 1]!), `Recv-Q went ${steps.join(" → ")}`);
}

/** Waits for the server's "ready", releases the clients and waits until `queued` wait in the queue. */
async function queueUp(
  ns: Netns,
  server: ServerProcess,
  clients: ClientProcess,
  queued: number,
): Promise<void> {
  await server.waitForEvent("ready", READY_MS);
  await release(clients);
  await until(`Recv-Q ${queued}`, () => recvQ(ns), (q) => q === queued);
}

const NEVER_CASES = [
  { backlog: 2, clients: 5, queued: 3 },
  { backlog: 8, clients: 4, queued: 4 },
];

for (const c of NEVER_CASES) {
  rootTest(
    `listen_server.ts policy "never" leaves min(n, backlog + 1) queued: backlog ${c.backlog}, ${c.clients} clients, Recv-Q ${c.queued}`,
    async () => {
      await using ns = await Netns.create(`${newRunPrefix()}-ls`);
      await using server = startServer(ns, c.backlog);
      await using clients = startClients(ns, c.clients);
      await server.waitForEvent("ready", READY_MS);
      await policy(server, "never");
      await release(clients);
      await until(`Recv-Q ${c.queued}`, () => recvQ(ns), (q) => q === c.queued);
      const listen = await listenSocket(ns);
      equal(listen?.sendQ, c.backlog);
      // The connections the queue holds are the server's only full sockets.
      equal((await connections(ns)).server.ESTABLISHED, c.queued);
      deepEqual(eventsOf(server, "accepted"), []);
    },
  );
}

rootTest(
  `listen_server.ts policy {"kind":"all"} drains the queue and accepts later arrivals`,
  async () => {
    await using ns = await Netns.create(`${newRunPrefix()}-ls`);
    await using server = startServer(ns, 8);
    await using clients = startClients(ns, 6);
    await queueUp(ns, server, clients, 6);
    await policy(server, { kind: "all" });
    await until("Recv-Q 0", () => recvQ(ns), (q) => q === 0);
    await until("6 accepted", () => acceptedTotal(server), (n) => n === 6);
    await using late = startClients(ns, 2);
    await release(late);
    await until("8 accepted", () => acceptedTotal(server), (n) => n === 8);
    equal(await recvQ(ns), 0);
    equal(eventsOf(server, "accepted").at(-1)?.total, 8);
    // Accepted connections stay open: 8 ESTABLISHED server sockets outside the queue.
    equal((await connections(ns)).server.ESTABLISHED, 8);
  },
);

rootTest(
  `listen_server.ts policy {"kind":"batch","n":2,"everyMs":200} drains the queue in steps`,
  async () => {
    await using ns = await Netns.create(`${newRunPrefix()}-ls`);
    await using server = startServer(ns, 8);
    await using clients = startClients(ns, 8);
    await queueUp(ns, server, clients, 8);
    await policy(server, { kind: "batch", n: 2, everyMs: 200 });
    const steps = await drainSteps(ns);
    assertNonIncreasing(steps);
    const between = steps.filter((q) => q > 0 && q < 8);
    ok(between.length >= 2, `Recv-Q went ${steps.join(" → ")}: fewer than 2 intermediate values`);
    await until("8 accepted", () => acceptedTotal(server), (n) => n === 8);
    const batches = eventsOf(server, "accepted");
    ok(batches.length >= 2, `one batch took everything: ${JSON.stringify(batches)}`);
    // Each event reports one batch: totals grow by n.
    batches.reduce((total, e) => {
      equal(e.total, total + Number(e.n));
      return Number(e.total);
    }, 0);
  },
);

rootTest(`listen_server.ts policy {"kind":"rate","perSecond":20} drains the queue`, async () => {
  await using ns = await Netns.create(`${newRunPrefix()}-ls`);
  await using server = startServer(ns, 8);
  await using clients = startClients(ns, 8);
  await queueUp(ns, server, clients, 8);
  await policy(server, { kind: "rate", perSecond: 20 });
  const steps = await drainSteps(ns);
  assertNonIncreasing(steps);
  await until("8 accepted", () => acceptedTotal(server), (n) => n === 8);
  ok(eventsOf(server, "accepted").length >= 2, "the accepts were spread over several turns");
});

rootTest(
  `listen_server.ts {"maxOpenFiles":openFiles+3} accepts 3 and reports EMFILE once per episode`,
  async () => {
    await using ns = await Netns.create(`${newRunPrefix()}-ls`);
    // The limit is set before "ready" reports openFiles: learn openFiles from a
    // first start, and start again in the unlikely case the next one opens a different number.
    let openFiles = 0;
    {
      await using probe = startServer(ns, 8, { maxOpenFiles: 1024 });
      openFiles = Number((await probe.waitForEvent("ready", READY_MS)).openFiles);
    }
    for (let attempt = 1;; attempt++) {
      const limit = openFiles + 3;
      await using server = startServer(ns, 8, { maxOpenFiles: limit });
      const ready = await server.waitForEvent("ready", READY_MS);
      if (ready.openFiles !== openFiles && attempt < 3) {
        openFiles = Number(ready.openFiles);
        continue;
      }
      equal(ready.openFiles, openFiles);
      equal(ready.maxOpenFiles, limit);
      await using clients = startClients(ns, 8);
      await release(clients);
      await until("Recv-Q 8", () => recvQ(ns), (q) => q === 8);
      await policy(server, { kind: "all" });

      const refused = await server.waitForEvent("accept-error", KERNEL_MS);
      equal(refused.errno, "EMFILE");
      equal(refused.total, 3);
      equal(refused.openFiles, limit);
      await until("Recv-Q 5", () => recvQ(ns), (q) => q === 5);
      equal(acceptedTotal(server), 3);
      equal([...Deno.readDirSync(`/proc/${server.pid}/fd`)].length, limit);

      // The policy keeps running without repeating the report; a new command
      // begins a new episode, which is reported once more.
      await server.send({ cmd: "accept", n: 1 });
      await until(
        "a second accept-error",
        () => eventsOf(server, "accept-error").length,
        (n) => n >= 2,
      );
      equal(eventsOf(server, "accept-error").length, 2);
      equal(acceptedTotal(server), 3);
      equal(await recvQ(ns), 5);
      return;
    }
  },
);

rootTest(
  `listen_server.ts {"maxOpenFiles":3} reports that more files are already open and exits 1`,
  async () => {
    await using ns = await Netns.create(`${newRunPrefix()}-ls`);
    await using server = startServer(ns, 8, { maxOpenFiles: 3 });
    await rejects(
      server.waitForEvent("ready", READY_MS),
      /Cannot lower RLIMIT_NOFILE to 3: \d+ files are already open/,
    );
    equal((await server.status).code, 1);
    equal(await listenSocket(ns), undefined);
  },
);

const EXITS = [
  { how: `{"cmd":"exit"}`, stop: (s: ServerProcess) => s.send({ cmd: "exit" }) },
  { how: "SIGTERM", stop: (s: ServerProcess) => Deno.kill(s.pid, "SIGTERM") },
  { how: "SIGINT", stop: (s: ServerProcess) => Deno.kill(s.pid, "SIGINT") },
];

for (const e of EXITS) {
  rootTest(
    `listen_server.ts ${e.how} closes the accepted connections and the LISTEN socket and exits 0`,
    async () => {
      await using ns = await Netns.create(`${newRunPrefix()}-ls`);
      await using server = startServer(ns, 8);
      await using clients = startClients(ns, 4);
      await queueUp(ns, server, clients, 4);
      await server.send({ cmd: "accept", n: 2 });
      await until("2 accepted", () => acceptedTotal(server), (n) => n === 2);
      equal(await recvQ(ns), 2);

      await e.stop(server);
      equal((await server.status).code, 0);
      await until("no LISTEN socket", () => listenSocket(ns), (l) => l === undefined);
      // close() sent FIN on the 2 accepted connections (the server's side closes
      // actively) and reset the 2 still queued (gone).
      // (Polled until it holds: one `ss` dump is not atomic while sockets change state.)
      const closing = ["FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSING"];
      await until(
        "the server's side of the 2 accepted connections closing actively, the 2 queued gone",
        () => connections(ns),
        ({ server }) =>
          Object.keys(server).every((s) => closing.includes(s)) &&
          Object.values(server).reduce((a, b) => a + b, 0) === 2,
      );
    },
  );
}

rootTest(
  `client_group.ts {"cmd":"close"} closes every connection: CLOSE_WAIT on the server, FIN_WAIT2 on the client`,
  async () => {
    await using ns = await Netns.create(`${newRunPrefix()}-ls`);
    await using server = startServer(ns, 8);
    await using clients = startClients(ns, 4);
    await queueUp(ns, server, clients, 4);
    await server.send({ cmd: "accept", n: 2 });
    await until("2 accepted", () => acceptedTotal(server), (n) => n === 2);

    await clients.send({ cmd: "close" });
    const closed = await clients.waitForEvent("closed", KERNEL_MS);
    equal(closed.n, 4);
    // Accepted or still queued, the server's sockets got the FIN and wait for
    // their own close(); the clients' wait for the server's FIN.
    const states = await until(
      "4 CLOSE_WAIT server sockets and 4 FIN_WAIT2 client sockets",
      () => connections(ns),
      (c) => c.server.CLOSE_WAIT === 4 && c.client.FIN_WAIT2 === 4,
    );
    deepEqual(states, { server: { CLOSE_WAIT: 4 }, client: { FIN_WAIT2: 4 } });
    // The two never accepted stay in the accept queue.
    equal(await recvQ(ns), 2);
    ok(!clients.exited, "the group keeps running after close");
  },
);

Deno.test("parseServerSpec() takes serve and names what is wrong with it", async () => {
  const { parseServerSpec } = await import("../../lab/act/programs/listen_server.ts");
  const base = { family: 4, address: "127.0.0.1", port: PORT, backlog: 2 };
  deepEqual(parseServerSpec(JSON.stringify({ ...base, serve: { replyBytes: 100 } })).serve, {
    replyBytes: 100,
  });
  for (const serve of [{}, { replyBytes: 0 }, { replyBytes: 1.5 }, "yes"]) {
    let message = "";
    try {
      parseServerSpec(JSON.stringify({ ...base, serve }));
    } catch (err) {
      message = (err as Error).message;
    }
    ok(/"serve" must be \{"replyBytes": a positive integer\}/.test(message), message);
  }
});

rootTest(
  `listen_server.ts with "serve" reads each accepted connection's request, replies and closes it`,
  async () => {
    await using ns = await Netns.create(`${newRunPrefix()}-ls`);
    await using server = startServerProgram(ns, {
      family: 4,
      address: "127.0.0.1",
      port: PORT,
      backlog: 16,
      serve: { replyBytes: 300 },
    });
    await server.waitForEvent("ready", READY_MS);
    await policy(server, { kind: "all" });
    const count = 12;
    await using clients = startClientProgram(ns, {
      family: 4,
      address: "127.0.0.1",
      port: PORT,
      localAddress: "127.0.0.1",
      count,
      intervalMs: 0,
      // A request, then read the reply; the socket stays open, so the server closes first.
      then: { kind: "sendRead", bytes: 40, timeoutMs: KERNEL_MS },
      deadlineMs: 0,
    });
    await release(clients);
    const answered = await until(
      `${count} replies`,
      () => eventsNamed(clients, "after"),
      (es) => es.length >= count,
    );
    ok(answered.every((e) => e.result === "data" && Number(e.bytes) > 0), JSON.stringify(answered));
    await until(
      `${count} served`,
      () => eventsOf(server, "served").at(-1)?.total,
      (n) => n === count,
    );
    // The server closed each one after its reply: no connection of its stays ESTABLISHED, and the
    // client that reads sees the end of the stream and closes too.
    await until(
      "no ESTABLISHED connection on either side",
      () => connections(ns),
      (c) => !c.server.ESTABLISHED && !c.client.ESTABLISHED && !c.server.CLOSE_WAIT,
    );
    equal(acceptedTotal(server), count);
  },
);

rootTest(
  `listen_server.ts with "serve" closes a connection whose client leaves before its request`,
  async () => {
    await using ns = await Netns.create(`${newRunPrefix()}-ls`);
    await using server = startServerProgram(ns, {
      family: 4,
      address: "127.0.0.1",
      port: PORT,
      backlog: 16,
      serve: { replyBytes: 10 },
    });
    await server.waitForEvent("ready", READY_MS);
    await using clients = startClients(ns, 3);
    await release(clients);
    await until("3 queued", () => recvQ(ns), (q) => q === 3);
    // The clients close without a request; then the server accepts: each read ends at once.
    await clients.send({ cmd: "close" });
    await clients.waitForEvent("closed", KERNEL_MS);
    await policy(server, { kind: "all" });
    await until("3 accepted", () => acceptedTotal(server), (n) => n === 3);
    await until(
      "the server holds none of them",
      () => connections(ns),
      (c) => !c.server.ESTABLISHED && !c.server.CLOSE_WAIT,
    );
    deepEqual(eventsOf(server, "served"), [], "nothing was answered");
  },
);
