import { deepStrictEqual as deepEqual, match, ok, strictEqual as equal } from "node:assert/strict";
import { tmpdir } from "node:os";
import { defineExperiment } from "../../lab/describe/validate.ts";
import { Lab } from "../../lab/run/lab.ts";
import { preflight } from "../../lab/topology/preflight.ts";
import { labProcesses, namespacesWith, rootTest, until } from "../_helpers.ts";

/** Capture files the lab left in the temp directory for `prefix`. */
function leftCaptures(prefix: string): string[] {
  return [...Deno.readDirSync(tmpdir())].map((e) => e.name).filter((n) => n.startsWith(prefix));
}

async function assertNothingLeft(prefix: string): Promise<void> {
  deepEqual(await namespacesWith(prefix), []);
  deepEqual(labProcesses(prefix), []);
  deepEqual(leftCaptures(prefix), []);
}

// Two held clients' ACKs are dropped, then released; the server accepts on a schedule,
// a sysctl changes mid-run, and the server closes: every step is recorded with its time.
const stepping = defineExperiment({
  id: "stepping",
  title: "timeline steps",
  hypothesis: "steps happen in order, on their conditions",
  claims: { "A0.5": () => ({ verdict: "partly", evidence: "test" }) },
  hosts: { server: {}, client: {} },
  server: { host: "server", backlog: 4 },
  rules: { hold: { host: "client", direction: "out", packets: "ack", group: "held" } },
  clients: [{ name: "held", host: "client", count: 2 }],
  timeline: [
    {
      name: "held requests",
      when: { metric: "server.SYN_RECV@held", equals: 2 },
      do: { removeRule: "hold" },
    },
    {
      name: "abort on",
      afterStep: "held requests",
      do: { sysctl: { host: "server", name: "net.ipv4.tcp_abort_on_overflow", value: 1 } },
    },
    { name: "accept one", when: { metric: "server.recvQ", equals: 2 }, do: { accept: 1 } },
    { name: "accept rest", afterStep: "accept one", delayMs: 100, do: { acceptPolicy: "all" } },
    {
      name: "close",
      afterStep: "accept rest",
      when: { metric: "server.recvQ", equals: 0 },
      do: { stopServer: "close" },
    },
  ],
  capture: ["server"],
  // The held ACKs come back with the first SYN-ACK retransmission, 1 s after the SYN.
  observe: { intervalMs: 20, windowMs: 4000 },
  expect: [
    { name: "held in SYN_RECV", metric: "server.SYN_RECV@held", equals: 2, over: "peak" },
    { name: "listener gone", metric: "server.LISTEN", equals: 0, stableMs: 100 },
  ],
  expectPackets: [
    {
      name: "SYN-ACK twice",
      host: "server",
      kind: "SYN-ACK",
      from: "server",
      group: "held",
      count: { equals: 2 },
    },
  ],
});

rootTest(
  "Lab.runPlan() performs timeline steps in order, with rules, captures and accepts",
  async () => {
    await using lab = new Lab();
    await preflight(lab.prefix);
    const result = await lab.runExperiment(stepping);
    const run = result.runs[0]!;
    equal(run.error, undefined);
    ok(run.passed, JSON.stringify(run.checks));
    deepEqual(run.timeline.map((s) => s.name), [
      "held requests",
      "abort on",
      "accept one",
      "accept rest",
      "close",
    ]);
    const times = run.timeline.map((s) => s.atMs);
    deepEqual(times, [...times].sort((a, b) => a - b));
    equal(run.timeline[1]!.result, "net.ipv4.tcp_abort_on_overflow = 1");
    ok(run.timeline[3]!.atMs - run.timeline[2]!.atMs >= 100, "delayMs is waited");
    // The rule dropped the held clients' ACKs until it was removed (kernel counter).
    ok(run.rules.hold!.dropped >= 2, `dropped ${run.rules.hold!.dropped}`);
    match(run.rules.hold!.nft, /^ip saddr 10\.213\.1\.10 tcp dport 8080/);
    equal(run.addresses["clients.held"], "10.213.1.10");
    // The capture saw both connections' handshakes, and the SYN-ACK retransmission.
    const conns = run.packets.server!;
    equal(conns.length, 2);
    for (const c of conns) {
      const kinds = c.events.map((e) => e.kind);
      ok(kinds.includes("SYN") && kinds.includes("SYN-ACK"), kinds.join(" "));
      ok(c.events.some((e) => e.kind === "SYN-ACK" && e.retransmit), "a retransmitted SYN-ACK");
    }
    const check = run.checks.find((c) => c.name === "SYN-ACK twice")!;
    ok(check.passed, check.detail);
    await assertNothingLeft(lab.prefix);
  },
);

rootTest(
  "Lab.runPlan() reports a step whose condition never held, and removes everything",
  async () => {
    await using lab = new Lab();
    await preflight(lab.prefix);
    const def = defineExperiment({
      ...stepping,
      id: "never",
      timeline: [{
        name: "never",
        when: { metric: "server.SYN_RECV", equals: 99 },
        do: { accept: 1 },
      }],
      observe: { intervalMs: 20, windowMs: 300 },
      expect: [{ name: "x", metric: "server.SYN_RECV", atLeast: 0, over: "peak" }],
      expectPackets: [],
    });
    const result = await lab.runExperiment(def);
    const run = result.runs[0]!;
    equal(run.passed, false);
    match(
      run.error ?? "",
      /Cannot perform step "never": server\.SYN_RECV = 99 did not hold within 300 ms \(last value 2\)/,
    );
    await assertNothingLeft(lab.prefix);
  },
);

rootTest("Lab.runPlan() removes rules, captures and processes when aborted mid-run", async () => {
  const controller = new AbortController();
  await using lab = new Lab({ signal: controller.signal });
  await preflight(lab.prefix);
  const def = defineExperiment({
    ...stepping,
    id: "aborted",
    timeline: [],
    observe: { intervalMs: 20, windowMs: 5000 },
  });
  const started = lab.runExperiment(def, {});
  // Abort once the capture and the rule are certainly in place: the held requests exist.
  for (let i = 0; i < 200; i++) {
    const out = await new Deno.Command("ip", { args: ["netns", "list"], stdout: "piped" }).output();
    if (new TextDecoder().decode(out.stdout).includes(`${lab.prefix}-1-server`)) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 300));
  controller.abort(new Error("test abort"));
  let error: unknown;
  try {
    await started;
  } catch (err) {
    error = err;
  }
  ok(error instanceof Error);
  await assertNothingLeft(lab.prefix);
});

rootTest("a server with maxOpenFiles accepts until EMFILE; the rest stay queued", async () => {
  await using lab = new Lab();
  await preflight(lab.prefix);
  // A Deno server has 24 files open at start (stdio, epoll, runtime sockets, cache databases).
  const def = defineExperiment({
    id: "fd-limit",
    title: "fd limit",
    hypothesis: "accept() stops at the open-file limit",
    claims: { "A2.6": () => ({ verdict: "partly", evidence: "test" }) },
    hosts: { server: {}, client: {} },
    server: { host: "server", backlog: 16, accept: "all", maxOpenFiles: 27 },
    clients: [{ name: "c", host: "client", count: 8 }],
    observe: { intervalMs: 20, windowMs: 3000 },
    expect: [
      { name: "fds at the limit", metric: "server.openFiles", equals: 27 },
      { name: "queued", metric: "server.recvQ", equals: 5 },
      { name: "all connected", metric: "clients.c.connected", equals: 8 },
    ],
  });
  const run = (await lab.runExperiment(def)).runs[0]!;
  ok(run.passed, JSON.stringify(run.checks) + (run.error ?? ""));
  await assertNothingLeft(lab.prefix);
});

// Clients 20 ms away each way, arriving for 2 s; one delayer is killed in the middle.
const shaped = defineExperiment({
  id: "shaped",
  title: "a run over a delayed link",
  hypothesis: "a delayer that stops breaks the run's evidence",
  claims: { "A4.7": () => ({ verdict: "reproduced", evidence: "test" }) },
  hosts: { server: {}, client: {} },
  server: { host: "server", backlog: 64, accept: "all", serve: { replyBytes: 10 } },
  links: { client: { toServer: { delayMs: 20 }, toClient: { delayMs: 20 } } },
  clients: [{
    name: "users",
    host: "client",
    arrivals: { perSecond: 50, forMs: 2000 },
    afterConnect: { send: 10, read: { timeoutMs: 1000 }, close: true },
    deadlineMs: 2000,
  }],
  observe: { intervalMs: 50, windowMs: 6000 },
  expect: [{ name: "every client done", metric: "clients.users.active", equals: 0 }],
});

rootTest(
  "Lab records a run's links and what its clients felt, and fails a run whose delayer stopped",
  async () => {
    await using lab = new Lab();
    await preflight(lab.prefix);
    const sound = await lab.runExperiment(shaped);
    const run = sound.runs[0]!;
    ok(sound.passed, run.error ?? JSON.stringify(run.checks));
    const link = run.links?.client;
    ok(link?.toServer && link.toClient, JSON.stringify(run.links));
    equal(link.toServer.shape.delayMs, 20);
    equal(link.toServer.problem, undefined);
    const users = run.experience?.users;
    equal(users?.connections, 100);
    equal(users?.outcomes.connected, 100);
    // A handshake is one round trip across both directions: at least 40 ms.
    ok(users!.connectMs!.p50 >= 40, JSON.stringify(users!.connectMs));
    ok(users!.firstByteMs!.p50 >= 80, "two round trips: the handshake, then request and reply");
    await assertNothingLeft(lab.prefix);
    if (link.toServer.mechanism !== "nfqueue") return; // netem: no delayer process to stop

    const broken = lab.runExperiment(shaped);
    // Kill the first delayer that shows up (a process of this lab running delayer.ts).
    const delayer = await until(
      "a delayer running",
      () =>
        labProcesses(lab.prefix).find((pid) => {
          try {
            return Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes("delayer.ts");
          } catch {
            return false;
          }
        }),
      (pid) => pid !== undefined,
      30_000,
    );
    // Once clients have connected through it, so that the run is under way.
    await until(
      "clients connected",
      async () => {
        const [client] = (await namespacesWith(lab.prefix)).filter((n) => n.endsWith("-client"));
        if (client === undefined) return 0;
        const ss = await new Deno.Command("ss", { args: ["-N", client, "-Htan"], stdout: "piped" })
          .output();
        return new TextDecoder().decode(ss.stdout).split("\n").filter((l) => l.includes(":8080"))
          .length;
      },
      (n) => n > 0,
      30_000,
    );
    Deno.kill(delayer!, "SIGKILL");
    const result = await broken;
    equal(result.passed, false);
    match(
      result.runs[0]!.error ?? "",
      /^Cannot trust the run's network: the delayer of link (client → server|server → client) \(\w+:veth\d\) stopped during the run/,
    );
    match(result.runs[0]!.error ?? "", /so the run decides nothing/);
    await assertNothingLeft(lab.prefix);
  },
);
