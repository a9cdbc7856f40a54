/**
 * Tests of `lab/topology/topology.ts`: a run's namespaces, links, sysctls and
 * packet rules built as one disposable, and removed whole.
 * @module
 */
import { deepStrictEqual as deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { run } from "../../lab/base/command.ts";
import { planRuns } from "../../lab/describe/plan.ts";
import { defineExperiment } from "../../lab/describe/validate.ts";
import { newRunPrefix } from "../../lab/topology/netns.ts";
import { Topology } from "../../lab/topology/topology.ts";
import { startClients, startServer } from "../_programs.ts";
import {
  hostSysctls,
  hostVeths,
  labProcesses,
  namespacesWith,
  rootTest,
  until,
} from "../_helpers.ts";

function plan(somaxconn: number | string = 64) {
  return planRuns(defineExperiment({
    id: "topology-test",
    title: "t",
    hypothesis: "h",
    hosts: {
      server: { sysctls: { "net.core.somaxconn": somaxconn } },
      client: { sysctls: { "net.ipv4.tcp_syn_retries": 2 } },
    },
    server: { host: "server", port: 9000, backlog: 4 },
    rules: {
      hold: { host: "client", direction: "out", packets: "ack", group: "held" },
      later: { host: "server", direction: "in", packets: "syn", initially: "off" },
    },
    clients: [{ name: "held", host: "client", count: 1 }, {
      name: "free",
      host: "client",
      count: 1,
    }],
    observe: { intervalMs: 20, windowMs: 100 },
    expect: [{ name: "x", metric: "server.ESTABLISHED", atLeast: 0 }],
    claims: { "A2.1": () => ({ verdict: "reproduced", evidence: "n" }) },
  }))[0]!;
}

rootTest(
  "Topology builds namespaces, links, sysctls and rules, and disposal removes them all",
  async () => {
    const prefix = `${newRunPrefix()}-1`;
    const sysctlsBefore = hostSysctls();
    {
      await using topology = await Topology.create(plan(), { prefix, subnet: "10.213.0.0/16" });
      deepEqual((await namespacesWith(prefix)).sort(), [`${prefix}-client`, `${prefix}-server`]);
      await topology.connect();
      deepEqual(topology.addresses, {
        "clients.held": "10.213.1.10",
        "clients.free": "10.213.1.11",
        client: "10.213.1.2",
        server: "10.213.1.1",
      });
      equal(topology.sysctls.server!["net.core.somaxconn"], "64");
      equal(topology.sysctls.client!["net.ipv4.tcp_syn_retries"], "2");
      ok(
        "net.ipv4.tcp_syncookies" in topology.sysctls.server!,
        "the recorded sysctls are read too",
      );
      const route = await run(topology.ns("client").wrap(["ip", "route", "get", "10.213.1.1"]));
      match(route.stdout, /dev veth0 src 10\.213\.1\.2/);
      // The rule on from the start is installed; the other one is added and removed on demand.
      let rules = await topology.ruleRecords();
      deepEqual(Object.keys(rules), ["hold", "later"]);
      match(rules.hold!.nft, /10\.213\.1\.10/);
      equal(rules.hold!.host, "client");
      const nft = async (host: string) =>
        (await run(topology.ns(host).wrap(["nft", "list", "table", "inet", "backlog_lab"]))).stdout;
      match(await nft("client"), /10\.213\.1\.10/);
      await topology.addRule("later");
      match(await nft("server"), /dport 9000/);
      await topology.removeRule("later");
      rules = await topology.ruleRecords();
      equal(rules.later!.dropped, 0);
      equal(
        await topology.setSysctl("server", "net.ipv4.tcp_abort_on_overflow", "1"),
        "net.ipv4.tcp_abort_on_overflow = 1",
      );
      await rejects(topology.addRule("nope"), /Cannot find packet rule "nope"/);
    }
    deepEqual(await namespacesWith(prefix), []);
    deepEqual(await hostVeths(), []);
    deepEqual(hostSysctls(), sysctlsBefore);
  },
);

rootTest(
  "Topology.connect() fails on a sysctl the kernel rejects, and disposal still removes everything",
  async () => {
    const prefix = `${newRunPrefix()}-2`;
    {
      await using topology = await Topology.create(plan(-5), { prefix, subnet: "10.213.0.0/16" });
      await rejects(
        topology.connect(),
        /Cannot set sysctl "net\.core\.somaxconn" in namespace ".*-server": value "-5"/,
      );
    }
    deepEqual(await namespacesWith(prefix), []);
  },
);

rootTest(
  "Topology.create() refuses a subnet that is not a lab subnet before making anything",
  async () => {
    const prefix = `${newRunPrefix()}-3`;
    await rejects(
      Topology.create(plan(), { prefix, subnet: "8.8.0.0/16" }),
      /Cannot use lab subnet "8\.8\.0\.0\/16"/,
    );
    deepEqual(await namespacesWith(prefix), []);
  },
);

function shapedPlan(toClient: Record<string, number> = { delayMs: 20, lossPercent: 2 }) {
  return planRuns(defineExperiment({
    id: "topology-links-test",
    title: "t",
    hypothesis: "h",
    hosts: { server: {}, client: {}, other: {} },
    server: { host: "server", port: 9000, backlog: 4 },
    links: { client: { toServer: { delayMs: 30 }, toClient } },
    clients: [{ name: "c", host: "client", count: 1 }],
    observe: { intervalMs: 20, windowMs: 100 },
    expect: [{ name: "x", metric: "server.ESTABLISHED", atLeast: 0 }],
    claims: { "A2.1": () => ({ verdict: "reproduced", evidence: "n" }) },
  }))[0]!;
}

/** How long a connect() from `from` to a listener on the server host takes, ms (one handshake). */
async function connectMs(topology: Topology, from: string): Promise<number> {
  // The server's end of `from`'s link: .1 of the link's /24.
  const address = topology.addresses[from]!.replace(/\.\d+$/, ".1");
  await using server = startServer(topology.ns("server"), {
    family: 4,
    address,
    port: 9000,
    backlog: 4,
  });
  await server.waitForEvent("ready", 30_000);
  await using clients = startClients(topology.ns(from), {
    family: 4,
    address,
    port: 9000,
    count: 1,
    intervalMs: 0,
    then: { kind: "nothing" },
    deadlineMs: 0,
  });
  await clients.waitForEvent("ready", 30_000);
  await clients.send({ cmd: "go" });
  const done = await clients.waitForEvent("connect", 30_000);
  equal(done.result, "ok");
  return done.ms;
}

rootTest(
  "Topology shapes each declared link direction, records it, and removes it before the namespaces",
  async () => {
    const prefix = `${newRunPrefix()}-4`;
    {
      await using topology = await Topology.create(shapedPlan(), {
        prefix,
        subnet: "10.213.0.0/16",
      });
      await topology.connect();
      // A handshake crosses both directions: 30 + 20 ms, never less (a SYN-ACK lost to the 2 %
      // loss is resent, which only adds).
      const rtt = await connectMs(topology, "client");
      ok(rtt >= 50, `round trip ${rtt} ms`);
      // The other client host's link is not shaped: the handshake is far quicker.
      ok(await connectMs(topology, "other") < 30);
      const links = await topology.linkRecords();
      deepEqual(Object.keys(links), ["client"]);
      const { toServer, toClient } = links.client!;
      deepEqual(toServer!.shape, { delayMs: 30, jitterMs: 0, lossPercent: 0 });
      deepEqual(toClient!.shape, { delayMs: 20, jitterMs: 0, lossPercent: 2 });
      equal(toServer!.interface, "client:veth0");
      equal(toClient!.interface, "server:veth1");
      const mechanism = toServer!.mechanism;
      ok(mechanism === "netem" || mechanism === "nfqueue", mechanism);
      // Statistics that could not be read say why (`problem`), before any number is looked at.
      equal(toServer!.problem, undefined);
      equal(toClient!.problem, undefined);
      ok(toServer!.stats!.offered >= 1 && toClient!.stats!.delayed >= 1, JSON.stringify(links));
      equal(toServer!.stats!.queueDropped, 0);
      if (mechanism === "nfqueue") ok(labProcesses(prefix).length >= 5, "two delayers run");
    }
    deepEqual(await namespacesWith(prefix), []);
    deepEqual(labProcesses(prefix), []);
  },
);

rootTest(
  "Topology.linkRecords() names a delayer that stopped, and disposal still removes everything",
  async () => {
    const prefix = `${newRunPrefix()}-5`;
    const before = new Set(labProcesses(prefix));
    {
      await using topology = await Topology.create(shapedPlan({ delayMs: 10 }), {
        prefix,
        subnet: "10.213.0.0/16",
      });
      await topology.connect();
      const records = await topology.linkRecords();
      if (records.client!.toServer!.mechanism !== "nfqueue") return; // netem has no process
      // Kill the delayers (the lab's processes in these namespaces that are not holders).
      const delayers = labProcesses(prefix).filter((pid) =>
        !before.has(pid) &&
        Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes("delayer.ts")
      );
      equal(delayers.length, 2);
      for (const pid of delayers) Deno.kill(pid, "SIGKILL");
      await until(
        "the delayers gone",
        () => labProcesses(prefix),
        (l) => !l.some((p) => delayers.includes(p)),
      );
      const broken = await topology.linkRecords();
      equal(broken.client!.toServer!.stats, null);
      match(broken.client!.toServer!.problem ?? "", /delayer/);
    }
    deepEqual(await namespacesWith(prefix), []);
    deepEqual(labProcesses(prefix), []);
  },
);
