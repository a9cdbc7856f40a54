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
import { hostSysctls, hostVeths, namespacesWith, rootTest } from "../_helpers.ts";

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
