/**
 * Tests of `lab/topology/link.ts`: a veth pair made inside two lab
 * namespaces, with every address on its end, never seen by the host
 * namespace, and removed by disposal (or left to its namespace's deletion
 * once released).
 * @module
 */
import { match, strictEqual as equal } from "node:assert/strict";
import { run } from "../../lab/base/command.ts";
import { Link } from "../../lab/topology/link.ts";
import { Netns, newRunPrefix } from "../../lab/topology/netns.ts";
import { rootTest } from "../_helpers.ts";

async function links(ns: Netns): Promise<string> {
  return (await run(["ip", "-n", ns.name, "-o", "link", "show", "type", "veth"])).stdout;
}

rootTest("Link.create() joins two namespaces without touching the host namespace", async () => {
  const prefix = newRunPrefix();
  await using a = await Netns.create(`${prefix}-a`);
  await using b = await Netns.create(`${prefix}-b`);
  const hostBefore = (await run(["ip", "-o", "link", "show", "type", "veth"])).stdout;
  await using link = await Link.create(
    { ns: a, ifname: "veth1", cidr: "10.213.1.1/24" },
    { ns: b, ifname: "veth0", cidr: "10.213.1.2/24", extra: ["10.213.1.10/24", "10.213.1.11/24"] },
  );
  const addrs = (await run(["ip", "-n", b.name, "-o", "addr", "show", "dev", "veth0"])).stdout;
  for (const cidr of ["10.213.1.2/24", "10.213.1.10/24", "10.213.1.11/24"]) {
    match(addrs, new RegExp(cidr));
  }
  match(await links(a), /veth1@/);
  match(await links(b), /veth0@/);
  equal((await run(["ip", "-o", "link", "show", "type", "veth"])).stdout, hostBefore);
  equal(Link.address(link.a), "10.213.1.1");
  equal(Link.address(link.b), "10.213.1.2");
  // The group addresses are reached over the link.
  match((await run(["ip", "-n", a.name, "route", "get", "10.213.1.11"])).stdout, /dev veth1/);
});

rootTest("Link disposal deletes both ends; a released link is left to its namespace", async () => {
  const prefix = newRunPrefix();
  await using a = await Netns.create(`${prefix}-a`);
  await using b = await Netns.create(`${prefix}-b`);
  {
    await using _link = await Link.create(
      { ns: a, ifname: "veth1", cidr: "10.213.1.1/24" },
      { ns: b, ifname: "veth0", cidr: "10.213.1.2/24" },
    );
  }
  equal(await links(a), "");
  equal(await links(b), "");
  const kept = await Link.create(
    { ns: a, ifname: "veth2", cidr: "10.213.2.1/24" },
    { ns: b, ifname: "veth0", cidr: "10.213.2.2/24" },
  );
  kept.release();
  await kept[Symbol.asyncDispose]();
  match(await links(a), /veth2@/, "a released link is not deleted by disposal");
});

rootTest("Link.create() removes what it made when an address is refused", async () => {
  const prefix = newRunPrefix();
  await using a = await Netns.create(`${prefix}-a`);
  await using b = await Netns.create(`${prefix}-b`);
  let failed = false;
  try {
    await Link.create(
      { ns: a, ifname: "veth1", cidr: "10.213.1.1/24" },
      { ns: b, ifname: "veth0", cidr: "not-an-address" },
    );
  } catch (err) {
    failed = true;
    match(
      (err as Error).message,
      new RegExp(`Cannot create link ${a.name}:veth1 <-> ${b.name}:veth0`),
    );
  }
  equal(failed, true);
  equal(await links(a), "");
  equal(await links(b), "");
});
