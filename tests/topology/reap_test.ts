import { deepStrictEqual as deepEqual, match, ok, strictEqual as equal } from "node:assert/strict";
import { join } from "node:path";
import { run } from "../../lab/base/command.ts";
import { RunRecord } from "../../lab/base/run_record.ts";
import { Netns } from "../../lab/topology/netns.ts";
import { reapDeadRuns } from "../../lab/topology/reap.ts";
import { isolated, namespacesWith, rootTest, startDeadRun, until } from "../_helpers.ts";

// Names carry this test's own pid: an older lab on the machine (which took any
// `bl-<pid>-` of a dead pid for its own) leaves them alone while this test runs.
const OURS = `bl-${Deno.pid}`;

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "bl-reap-test-" });
  try {
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return !Deno.readTextFileSync(`/proc/${pid}/stat`).includes(") Z ");
  } catch {
    return false;
  }
}

rootTest(
  "reapDeadRuns() removes what a SIGKILLed run recorded: namespaces, processes, paths, temp files",
  async () => {
    await withRoot(async (root) => {
      const name = `${OURS}-dead-1-server`;
      const outside = join(root, "report.partial");
      const dead = await startDeadRun(root, [
        `netns=${name}`,
        "process=sleep 601",
        `path=${outside}`,
      ]);
      const inside = (await run(["ip", "netns", "pids", name])).stdout.trim().split("\n").map(
        Number,
      );
      const recorded = Number(dead.lines.find((l) => l.startsWith("process "))!.split(" ")[1]);
      try {
        dead.child.kill("SIGKILL");
        await dead.child.status;
        ok(inside.length > 0 && inside.every(alive), "its processes outlive it");
        const result = await reapDeadRuns(root);
        deepEqual(result.runs, [dead.id]);
        deepEqual(result.namespaces, [name]);
        deepEqual(result.processes, [recorded]);
        deepEqual(result.paths, [outside]);
        deepEqual(result.skipped, []);
        deepEqual(await namespacesWith(name), []);
        // SIGKILL is delivered asynchronously: wait for the processes to be gone.
        await until(
          "every process of the dead run to end",
          () => [recorded, ...inside].filter(alive),
          (left) => left.length === 0,
        );
        deepEqual([...Deno.readDirSync(root)], [], "its record, with its tmp/, is gone");
      } finally {
        for (const pid of [...inside, recorded]) {
          try {
            Deno.kill(pid, "SIGKILL");
          } catch { /* gone */ }
        }
        await run(["ip", "netns", "del", name], { allowFailure: true });
        await dead.child.stdout.cancel().catch(() => {});
      }
    });
  },
);

rootTest("reapDeadRuns() leaves a live run's namespaces alone", async () => {
  await withRoot(async (root) => {
    await using record = await RunRecord.create({ root });
    await using ns = await Netns.create(`${record.id}-live`, { record });
    const result = await reapDeadRuns(root);
    deepEqual(result.runs, []);
    deepEqual(await namespacesWith(ns.name), [ns.name]);
    ok(!result.unrecorded.includes(ns.name), "a recorded namespace is not foreign");
  });
});

rootTest(
  "reapDeadRuns() touches nothing no record names and skips a recorded junk entry, reporting both",
  async () => {
    await withRoot(async (root) => {
      const foreign = `${OURS}-ffff-foreign`;
      const junk = `${OURS}-junk-1-server`;
      await run(["ip", "netns", "add", foreign]);
      try {
        // A dead run whose record names a "namespace" that is a plain directory.
        const dead = await startDeadRun(root, []);
        dead.child.kill("SIGKILL");
        await dead.child.status;
        await dead.child.stdout.cancel().catch(() => {});
        await Deno.writeTextFile(
          join(root, dead.id, "record.jsonl"),
          JSON.stringify({ kind: "netns", name: junk }) + "\n",
          { append: true },
        );
        await Deno.mkdir(`/run/netns/${junk}`);
        const result = await reapDeadRuns(root);
        deepEqual(result.runs, [dead.id]);
        deepEqual(result.namespaces, []);
        equal(result.skipped.length, 1);
        match(result.skipped[0]!, new RegExp(`namespace "${junk}": .* is not a namespace mount`));
        ok(result.unrecorded.includes(foreign), JSON.stringify(result.unrecorded));
        deepEqual(await namespacesWith(foreign), [foreign]);
        ok((await Deno.stat(`/run/netns/${junk}`)).isDirectory, "the junk entry is untouched");
      } finally {
        await run(["ip", "netns", "del", foreign], { allowFailure: true });
        await Deno.remove(`/run/netns/${junk}`).catch(() => {});
      }
    });
  },
);

rootTest(
  "the CLI leaves the issue's foreign namespaces and junk entry alone, and the process inside",
  async () => {
    // The reproducer, in a mount namespace of its own (see isolated()).
    const r = await isolated(`
      ip netns add bl-1-x
      ip netns exec bl-1-x sleep 7777 &
      holder=$!
      trap 'kill -9 $holder 2>/dev/null || true' EXIT
      ip netns add bl-99999-mine; ip netns add bl-$$-x; ip netns add bl-12-34-56
      mkdir /run/netns/bl-99997-abcd-1-server
      set +e
      "$DENO" run -A main.ts --filter somaxconn-clamps
      echo "exit $?"
      set -e
      echo "namespaces $(ls /run/netns | sort | tr '\\n' ' ')"
      kill -0 $holder && echo "sleep alive"
    `);
    match(r.stdout, /^exit 0$/m, r.stderr);
    ok(!/Removed \d+ namespaces/.test(r.stdout), r.stdout);
    match(
      r.stdout,
      /Left alone: .*bl-1-x.*bl-12-34-56.*bl-99997-abcd-1-server.*bl-99999-mine/s,
    );
    const left = /^namespaces (.*)$/m.exec(r.stdout)?.[1]?.trim().split(" ") ?? [];
    for (const n of ["bl-1-x", "bl-99999-mine", "bl-12-34-56", "bl-99997-abcd-1-server"]) {
      ok(left.includes(n), `${n} survives: ${left.join(" ")}`);
    }
    equal(left.length, 5, `and bl-<shell pid>-x, nothing of the lab: ${left.join(" ")}`);
    match(r.stdout, /^sleep alive$/m);
  },
);

rootTest(
  "a live lab in another PID namespace keeps its namespaces while another lab starts",
  async () => {
    const r = await isolated(`
    unshare --pid --fork --mount-proc --propagation unchanged \\
      "$DENO" run -A main.ts --json --filter synack-retransmission > /tmp/bl-pidns-$$.json 2>/dev/null &
    first=$!
    # Until its namespaces exist (it is pid 1 there, so they are bl-1-…), 30 s at most.
    i=0
    until ls /run/netns | grep -q '^bl-1-.*-server$'; do
      i=$((i+1)); [ $i -lt 1500 ] || { echo "never started"; exit 1; }
      sleep 0.02
    done
    set +e
    "$DENO" run -A main.ts --filter somaxconn-clamps > /dev/null 2>&1
    echo "second $?"
    wait $first
    echo "first $?"
    rm -f /tmp/bl-pidns-$$.json
  `);
    match(r.stdout, /^second 0$/m, r.stdout + r.stderr);
    match(r.stdout, /^first 0$/m, "the lab in the other PID namespace lost nothing");
  },
);
