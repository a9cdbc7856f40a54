import {
  deepStrictEqual as deepEqual,
  match,
  ok as assert,
  rejects,
  strictEqual as equal,
} from "node:assert/strict";
import { Netns, newRunPrefix, waitUntilInside } from "../../lab/topology/netns.ts";
import { run } from "../../lab/base/command.ts";
import { hostSysctls, namespacesWith, rootTest } from "../_helpers.ts";

rootTest("Netns.create() brings lo up and disposal removes the namespace", async () => {
  const prefix = newRunPrefix();
  {
    await using ns = await Netns.create(`${prefix}-a`);
    const lo = await run(["ip", "-n", ns.name, "-o", "link", "show", "lo"]);
    match(lo.stdout, /state UNKNOWN|,UP/);
    // The holder's /proc view is the namespace's: only lo, no host interfaces.
    const dev = await Deno.readTextFile(`${ns.procNet}/dev`);
    deepEqual(dev.split("\n").slice(2).filter(Boolean).map((l) => l.trim().split(":")[0]), ["lo"]);
    deepEqual(await namespacesWith(prefix), [`${prefix}-a`]);
  }
  deepEqual(await namespacesWith(prefix), []);
});

rootTest("Netns.sysctls() writes inside the namespace only and reads back", async () => {
  const before = hostSysctls();
  await using ns = await Netns.create(`${newRunPrefix()}-s`);
  const got = await ns.sysctls({ "net.core.somaxconn": "7", "net.ipv4.tcp_syncookies": "2" }, [
    "net.ipv4.tcp_synack_retries",
  ]);
  equal(got["net.core.somaxconn"], "7");
  equal(got["net.ipv4.tcp_syncookies"], "2");
  match(got["net.ipv4.tcp_synack_retries"] ?? "", /^\d+$/);
  deepEqual(hostSysctls(), before);
});

rootTest(
  "Netns.sysctls() names an unknown key with a suggestion, and a rejected value",
  async () => {
    await using ns = await Netns.create(`${newRunPrefix()}-e`);
    await rejects(ns.sysctls({ "net.core.somaxcon": "8" }), (err: Error) => {
      assert(err instanceof RangeError);
      match(err.message, /no such per-namespace sysctl; did you mean "net\.core\.somaxconn"/);
      match(err.message, new RegExp(`namespace "${ns.name}"`));
      return true;
    });
    await rejects(ns.sysctls({ "net.core.somaxconn": "-1" }), /value "-1" was rejected/);
  },
);

rootTest(
  "Netns.create() returns only once its holder reads the namespace's tables, not the host's",
  async () => {
    await using ns = await Netns.create(`${newRunPrefix()}-h`);
    const pid = Number(/^\/proc\/(\d+)\/net$/.exec(ns.procNet)?.[1]);
    const inode = (await Deno.stat(`/run/netns/${ns.name}`)).ino;
    equal(await Deno.readLink(`/proc/${pid}/ns/net`), `net:[${inode}]`);
    await rejects(
      waitUntilInside(Deno.pid, ns.name, 30),
      /Timed out after 30 ms waiting for process \d+ to enter namespace "bl-[^"]+": last value "net:\[\d+\]"/,
    );
  },
);
