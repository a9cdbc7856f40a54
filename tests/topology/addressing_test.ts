/**
 * Tests of `lab/topology/addressing.ts`: lab subnets and the addresses of a run.
 * @module
 */
import { deepStrictEqual as deepEqual, equal, throws } from "node:assert/strict";
import { planRuns } from "../../lab/describe/plan.ts";
import { defineExperiment } from "../../lab/describe/validate.ts";
import { parseSubnet, planAddresses } from "../../lab/topology/addressing.ts";

Deno.test("parseSubnet() takes private IPv4 /16s and unique-local IPv6 /48s only", () => {
  equal(parseSubnet("10.213.0.0/16", 4)(3, 10), "10.213.3.10/24");
  equal(parseSubnet("172.16.0.0/16", 4)(1, 1), "172.16.1.1/24");
  equal(parseSubnet("192.168.0.0/16", 4)(1, 2), "192.168.1.2/24");
  equal(parseSubnet("fd00:213::/48", 6)(1, 10), "fd00:213:0:1::a/64");
  equal(parseSubnet("fc12:3:4::/48", 6)(2, 2), "fc12:3:4:2::2/64");
  for (const bad of ["8.8.0.0/16", "10.213.0.0/24", "172.32.0.0/16", "garbage", "10.256.0.0/16"]) {
    throws(() => parseSubnet(bad, 4), /Cannot use lab subnet ".*": give a private IPv4 \/16/, bad);
  }
  for (const bad of ["2001:db8::/32", "fd00::/64", "fe80::/48"]) {
    throws(
      () => parseSubnet(bad, 6),
      /Cannot use lab prefix ".*": give a unique-local IPv6 \/48/,
      bad,
    );
  }
});

Deno.test("planAddresses() links the server to each host and gives each group its own address", () => {
  const [plan] = planRuns(defineExperiment({
    id: "addressing",
    title: "t",
    hypothesis: "h",
    hosts: { alpha: {}, srv: {}, beta: {} },
    server: { host: "srv", backlog: 1 },
    clients: [
      { name: "a1", host: "alpha", count: 1 },
      { name: "b1", host: "beta", count: 1 },
      { name: "a2", host: "alpha", count: 1 },
    ],
    observe: { intervalMs: 20, windowMs: 100 },
    expect: [{ name: "x", metric: "srv.ESTABLISHED", atLeast: 0 }],
    claims: { "A2.1": () => ({ verdict: "reproduced", evidence: "n" }) },
  }));
  const { links, addresses } = planAddresses(plan!, parseSubnet("10.213.0.0/16", 4));
  deepEqual(links, [
    {
      host: "alpha",
      server: { ifname: "veth1", cidr: "10.213.1.1/24" },
      client: {
        ifname: "veth0",
        cidr: "10.213.1.2/24",
        groups: ["10.213.1.10/24", "10.213.1.11/24"],
      },
    },
    {
      host: "beta",
      server: { ifname: "veth2", cidr: "10.213.2.1/24" },
      client: { ifname: "veth0", cidr: "10.213.2.2/24", groups: ["10.213.2.10/24"] },
    },
  ]);
  deepEqual(addresses, {
    "clients.a1": "10.213.1.10",
    "clients.a2": "10.213.1.11",
    alpha: "10.213.1.2",
    srv: "10.213.1.1",
    "clients.b1": "10.213.2.10",
    beta: "10.213.2.2",
  });
});
