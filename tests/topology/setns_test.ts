import { ok, strictEqual as equal, throws } from "node:assert/strict";
import { run } from "../../lab/base/command.ts";
import { Netns, newRunPrefix } from "../../lab/topology/netns.ts";
import { currentNetnsInode, libc, withNetns } from "../../lab/topology/setns.ts";
import { rootTest } from "../_helpers.ts";

const THREAD_NS = "/proc/thread-self/ns/net";
const SOMAXCONN = "/proc/sys/net/core/somaxconn";

// libc stays loaded for the process's life: load it before the tests, or the
// resource sanitizer counts it as the first test's leak.
libc();

function inodeOf(ns: Netns): number {
  return Deno.statSync(`/run/netns/${ns.name}`).ino!;
}

Deno.test("withNetns() refuses names that are not a lab namespace's", () => {
  const before = Deno.readLinkSync(THREAD_NS);
  for (const name of ["", "foo", "netns-bl-x", "bl-a/b", "bl-a b", "bl-..\n", "bl-x;rm"]) {
    let called = false;
    throws(() => withNetns(name, () => called = true), (err: Error) => {
      ok(err instanceof RangeError, `${JSON.stringify(name)}: ${err}`);
      ok(err.message.includes('start with "bl-"'), err.message);
      return true;
    });
    equal(called, false);
  }
  equal(Deno.readLinkSync(THREAD_NS), before);
});

rootTest("withNetns() runs fn inside the namespace and returns to the original one", async () => {
  await using ns = await Netns.create(`${newRunPrefix()}-sn`);
  const before = Deno.readLinkSync(THREAD_NS);
  const seen = withNetns(ns.name, () => ({
    link: Deno.readLinkSync(THREAD_NS),
    inode: currentNetnsInode(),
    thread: Deno.readLinkSync("/proc/thread-self"),
  }));
  equal(seen.link, `net:[${inodeOf(ns)}]`);
  equal(seen.inode, inodeOf(ns));
  equal(seen.thread, Deno.readLinkSync("/proc/thread-self"));
  equal(Deno.readLinkSync(THREAD_NS), before);
  equal(`net:[${currentNetnsInode()}]`, before);
});

/** Each thread of this process (`/proc/self/task/<tid>`) → its `net:[inode]`. */
function threadNamespaces(): Map<string, string> {
  const out = new Map<string, string>();
  for (const t of Deno.readDirSync("/proc/self/task")) {
    try {
      out.set(t.name, Deno.readLinkSync(`/proc/self/task/${t.name}/ns/net`));
    } catch { /* the thread ended meanwhile */ }
  }
  return out;
}

rootTest("withNetns() moves only the calling thread", async () => {
  await using ns = await Netns.create(`${newRunPrefix()}-sn`);
  const host = Deno.readLinkSync(THREAD_NS);
  const self = Deno.readLinkSync("/proc/thread-self").split("/").at(-1)!;
  const during = withNetns(ns.name, threadNamespaces);
  equal(during.get(self), `net:[${inodeOf(ns)}]`);
  const moved = [...during].filter(([, link]) => link !== host).map(([tid]) => tid);
  equal(JSON.stringify(moved), JSON.stringify([self]));
  ok(during.size > 1, `only ${during.size} thread(s) seen`);
  ok([...threadNamespaces().values()].every((link) => link === host));
});

rootTest("withNetns() under deno run moves the process's main thread and back", async () => {
  await using ns = await Netns.create(`${newRunPrefix()}-sn`);
  const script = `
    import { withNetns } from ${
    JSON.stringify(new URL("../../lab/topology/setns.ts", import.meta.url).href)
  };
    const r = (p) => Deno.readLinkSync(p);
    const inside = withNetns(${
    JSON.stringify(ns.name)
  }, () => [r("/proc/thread-self"), r("/proc/thread-self/ns/net")]);
    console.log(JSON.stringify({ pid: Deno.pid, inside, after: r("/proc/thread-self/ns/net") }));
  `;
  const out = await run([Deno.execPath(), "eval", "--no-config", script]);
  const got = JSON.parse(out.stdout) as { pid: number; inside: string[]; after: string };
  equal(got.inside[0], `${got.pid}/task/${got.pid}`);
  equal(got.inside[1], `net:[${inodeOf(ns)}]`);
  equal(got.after, Deno.readLinkSync(THREAD_NS));
});

rootTest("withNetns() writes a sysctl inside the namespace only", async () => {
  await using ns = await Netns.create(`${newRunPrefix()}-sn`);
  const host = Deno.readTextFileSync(SOMAXCONN);
  // Never the host's value, so a write that reached the host would show.
  const value = host.trim() === "77" ? "78" : "77";
  withNetns(ns.name, () => Deno.writeTextFileSync(SOMAXCONN, value));
  const inside = await run(["ip", "netns", "exec", ns.name, "cat", SOMAXCONN]);
  equal(inside.stdout.trim(), value);
  equal(Deno.readTextFileSync(SOMAXCONN), host);
  equal(withNetns(ns.name, () => Deno.readTextFileSync(SOMAXCONN).trim()), value);
});

rootTest("withNetns() returns to the original namespace when fn throws", async () => {
  await using ns = await Netns.create(`${newRunPrefix()}-sn`);
  const before = Deno.readLinkSync(THREAD_NS);
  const boom = new Error("boom");
  let inside = "";
  throws(() =>
    withNetns(ns.name, () => {
      inside = Deno.readLinkSync(THREAD_NS);
      throw boom;
    }), (err) => err === boom);
  equal(inside, `net:[${inodeOf(ns)}]`);
  equal(Deno.readLinkSync(THREAD_NS), before);
});

rootTest("withNetns() refuses nested calls and returns to the original namespace", async () => {
  const prefix = newRunPrefix();
  await using a = await Netns.create(`${prefix}-a`);
  await using b = await Netns.create(`${prefix}-b`);
  const before = Deno.readLinkSync(THREAD_NS);
  let innerRan = false;
  throws(
    () => withNetns(a.name, () => withNetns(b.name, () => innerRan = true)),
    (err: Error) => {
      ok(err.message.includes(`Cannot enter namespace "${b.name}"`), err.message);
      ok(err.message.includes(`inside namespace "${a.name}" already`), err.message);
      return true;
    },
  );
  equal(innerRan, false);
  equal(Deno.readLinkSync(THREAD_NS), before);
  // The depth flag is cleared: a later call works.
  equal(withNetns(b.name, () => currentNetnsInode()), inodeOf(b));
});

rootTest("withNetns() refuses an async fn after returning to the original namespace", async () => {
  await using ns = await Netns.create(`${newRunPrefix()}-sn`);
  const before = Deno.readLinkSync(THREAD_NS);
  // deno-lint-ignore require-await
  throws(() => withNetns(ns.name, async () => 1), (err: Error) => {
    ok(err instanceof TypeError, String(err));
    ok(err.message.includes("synchronous function"), err.message);
    return true;
  });
  equal(Deno.readLinkSync(THREAD_NS), before);
  // A rejected promise is handled, not left to crash the process.
  // deno-lint-ignore require-await
  throws(() => withNetns(ns.name, async () => Promise.reject(new Error("late"))), TypeError);
  await new Promise((r) => setTimeout(r, 0));
  equal(Deno.readLinkSync(THREAD_NS), before);
});

rootTest("withNetns() names a namespace that does not exist", () => {
  const before = Deno.readLinkSync(THREAD_NS);
  const name = `${newRunPrefix()}-missing`;
  throws(() => withNetns(name, () => 0), (err: Error) => {
    ok(err.message.includes(`Cannot enter namespace "${name}"`), err.message);
    ok(err.message.includes("does not exist"), err.message);
    return true;
  });
  equal(Deno.readLinkSync(THREAD_NS), before);
  return Promise.resolve();
});

rootTest("withNetns() exits with 70 when it cannot return the thread home", async () => {
  await using ns = await Netns.create(`${newRunPrefix()}-sn`);
  // fn closes the fd of the home namespace, so the setns() back fails (EBADF).
  const script = `
    import { libc, withNetns } from ${
    JSON.stringify(new URL("../../lab/topology/setns.ts", import.meta.url).href)
  };
    const home = Deno.statSync("/proc/thread-self/ns/net");
    withNetns(${JSON.stringify(ns.name)}, () => {
      for (const e of [...Deno.readDirSync("/proc/thread-self/fd")]) {
        try {
          const s = Deno.statSync("/proc/thread-self/fd/" + e.name);
          if (s.ino === home.ino && s.dev === home.dev) libc().close(Number(e.name));
        } catch { /* the directory's own fd */ }
      }
    });
    console.log("survived");
  `;
  const out = await run([Deno.execPath(), "eval", "--no-config", script], { allowFailure: true });
  equal(out.code, 70, out.stderr);
  equal(out.stdout, "");
  ok(out.stderr.includes(`cannot return thread`), out.stderr);
  ok(out.stderr.includes(`from namespace "${ns.name}"`), out.stderr);
  ok(out.stderr.includes("setns() back failed: Bad file descriptor (errno 9)"), out.stderr);
});
