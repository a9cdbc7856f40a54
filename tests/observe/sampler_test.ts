/**
 * Tests of `lab/observe/sampler.ts` against a real run's kernel: each metric
 * kind as the sampler reads it, next to what `ss` and `/proc` say, and its
 * errors.
 * @module
 */
import { deepStrictEqual as deepEqual, equal, ok, rejects } from "node:assert/strict";
import { Programs } from "../../lab/act/launch.ts";
import { KernelTextError } from "../../lab/base/errors.ts";
import { parseMetric } from "../../lab/describe/metric.ts";
import { planRuns } from "../../lab/describe/plan.ts";
import { defineExperiment } from "../../lab/describe/validate.ts";
import { readCounters, Sampler, statesOf } from "../../lab/observe/sampler.ts";
import { Netns, newRunPrefix } from "../../lab/topology/netns.ts";
import { Topology } from "../../lab/topology/topology.ts";
import { rootTest, until } from "../_helpers.ts";

const PLAN = planRuns(defineExperiment({
  id: "sampler-test",
  title: "t",
  hypothesis: "h",
  hosts: { server: {}, client: {} },
  server: { host: "server", backlog: 2 },
  clients: [
    { name: "first", host: "client", count: 3, afterConnect: { send: 100 } },
    { name: "more", host: "client", count: 2 },
  ],
  observe: { intervalMs: 20, windowMs: 100 },
  expect: [{ name: "x", metric: "server.ESTABLISHED", atLeast: 0 }],
  claims: { "A2.1": () => ({ verdict: "reproduced", evidence: "n" }) },
}))[0]!;

rootTest("Sampler reads each kind of metric from the kernel of each host", async () => {
  const metrics = [
    "server.ESTABLISHED",
    "server.ESTABLISHED@first",
    "server.ESTABLISHED@more",
    "client.SYN_SENT",
    "client.SYN_SENT@more",
    "server.recvQ",
    "server.sendQ",
    "server.recvQBytes",
    "client.sendQBytes",
    "server.openFiles",
    "server.TcpExtListenOverflows",
    "client.TcpExtTCPSynRetrans",
    "clients.first.connected", // a client program's tally: not the sampler's
  ].map((m) => parseMetric(m));
  await using topology = await Topology.create(PLAN, {
    prefix: `${newRunPrefix()}-s`,
    subnet: "10.213.0.0/16",
  });
  await using programs = Programs.launch(topology, PLAN);
  await topology.connect();
  const ready = await programs.listen();
  await programs.clientsReady();
  using sampler = new Sampler(topology.hosts, { ...PLAN, metrics }, topology.addresses);
  sampler.serverPid = ready.pid;
  await sampler.baseline();
  const before = await sampler.sample();
  equal(before["server.ESTABLISHED"], 0);
  equal(before["server.sendQ"], 2, "the LISTEN socket's limit, as ss -ltn shows it");
  equal(before["server.TcpExtListenOverflows"], 0, "counters are changes since the baseline");
  ok(!("clients.first.connected" in before));

  await programs.client("first").send({ cmd: "go" });
  await until("the first group queued", () => sampler.sample(), (v) => v["server.recvQ"] === 3);
  await programs.client("more").send({ cmd: "go" });
  const v = await until(
    "the late group's SYNs retransmitted against the full queue",
    () => sampler.sample(),
    (v) => v["client.TcpExtTCPSynRetrans"]! >= 2,
  );
  deepEqual(
    {
      established: v["server.ESTABLISHED"],
      first: v["server.ESTABLISHED@first"],
      more: v["server.ESTABLISHED@more"],
      synSent: v["client.SYN_SENT"],
      synSentMore: v["client.SYN_SENT@more"],
      recvQ: v["server.recvQ"],
      sendQ: v["server.sendQ"],
      bytes: v["server.recvQBytes"],
    },
    {
      established: 3,
      first: 3,
      more: 0,
      synSent: 2,
      synSentMore: 2,
      recvQ: 3,
      sendQ: 2,
      bytes: 300,
    },
  );
  ok(v["server.TcpExtListenOverflows"]! >= 2, String(v["server.TcpExtListenOverflows"]));
  // Each SYN_SENT socket has its SYN unacknowledged (one sequence number); the data was ACKed.
  equal(v["client.sendQBytes"], 2);
  ok(v["server.openFiles"]! >= 3, "the server process's descriptors");
  sampler.serverPid = 0;
  equal((await sampler.sample())["server.openFiles"], 0, "0 once the server is gone");
});

rootTest("Sampler refuses a counter the kernel lacks, naming it and the namespace", async () => {
  await using ns = await Netns.create(`${newRunPrefix()}-c`);
  using sampler = new Sampler([{ name: "server", ns }], {
    server: PLAN.server,
    family: 4,
    metrics: [{
      kind: "counter",
      name: "server.TcpExtNoSuchThing",
      host: "server",
      counter: "TcpExtNoSuchThing",
    }],
  });
  await sampler.baseline();
  await rejects(
    sampler.sample(),
    new RegExp(
      `Cannot read counter "TcpExtNoSuchThing" in namespace "${ns.name}": this kernel does not have it`,
    ),
  );
});

rootTest("readCounters() names the namespace whose holder process is gone", async () => {
  const ns = await Netns.create(`${newRunPrefix()}-g`);
  const procNet = ns.procNet;
  await ns[Symbol.asyncDispose]();
  await rejects(
    readCounters(ns),
    new RegExp(
      `Cannot read the counters of namespace "${ns.name}": the process holding the namespace \\(pid \\d+, a sleep the lab started\\) is gone, and its ${procNet}/(netstat|snmp) went with it`,
    ),
  );
});

rootTest(
  "readCounters() names the host whose namespace holder someone killed, and how it died",
  async () => {
    await using ns = await Netns.create(`${newRunPrefix()}-gk`);
    Deno.kill(ns.holderPid, "SIGKILL");
    await until("the holder to end", () => ns.holderEnded, (e) => e !== undefined);
    await rejects(
      readCounters(ns, "server"),
      new RegExp(
        `Cannot read the counters of host "server" \\(namespace "${ns.name}"\\): the process holding the namespace \\(pid ${ns.holderPid}, a sleep the lab started\\) was killed by SIGKILL, .*something outside the lab ended it`,
      ),
    );
  },
);

Deno.test("readCounters() fails with a KernelTextError naming the files when their text cannot be parsed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sampler_test_" });
  try {
    await Deno.writeTextFile(`${dir}/netstat`, "TcpExt: ListenOverflows ListenDrops\nTcpExt: 1\n");
    await Deno.writeTextFile(`${dir}/snmp`, "Tcp: RtoMin\nTcp: 200\n");
    const fake = { name: "bl-1-fake", procNet: dir } as unknown as Netns;
    const err = await readCounters(fake).catch((e) => e);
    ok(err instanceof KernelTextError, String(err));
    equal(err.file, `${dir}/{netstat,snmp}`);
    ok(err.message.startsWith("Cannot parse a counters table near "), err.message);
    ok(err.message.endsWith(`(in ${dir}/{netstat,snmp})`), err.message);
    // Not a TypeError, ReferenceError or SyntaxError: the run that read it fails, not the lab.
    ok(!(err instanceof TypeError || err instanceof SyntaxError));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("statesOf() asks the kernel for the states the metrics read, all of them for byte metrics", () => {
  const states = (names: string[]) =>
    statesOf(names.map((n) => parseMetric(n)).filter((m) => m.kind !== "client") as never);
  deepEqual(states(["server.ESTABLISHED", "client.SYN_SENT", "server.SYN_RECV@g"]), [
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
  ]);
  deepEqual(states(["server.recvQ", "server.TcpExtListenOverflows"]), ["LISTEN"]);
  equal(states(["server.ESTABLISHED", "client.recvQBytes"]), undefined);
  deepEqual(states(["server.openFiles"]), []);
});
