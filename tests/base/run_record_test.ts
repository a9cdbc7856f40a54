import {
  deepStrictEqual as deepEqual,
  ok,
  rejects,
  strictEqual as equal,
} from "node:assert/strict";
import { join } from "node:path";
import { allRecords, deadRuns, isRecordedProcess, RunRecord } from "../../lab/base/run_record.ts";
import { startDeadRun as startRun } from "../_helpers.ts";

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "bl-records-test-" });
  try {
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** Whether another process could take the lock (flock -n), i.e. whether the run looks dead. */
async function lockIsFree(file: string): Promise<boolean> {
  const out = await new Deno.Command("flock", { args: ["-n", file, "true"] }).output();
  return out.code === 0;
}

Deno.test("RunRecord.create() holds the record's lock for its life; disposal removes it", async () => {
  await withRoot(async (root) => {
    const record = await RunRecord.create({ root });
    try {
      ok(/^bl-\d+-[0-9a-f]{4}$/.test(record.id), record.id);
      equal(record.dir, join(root, record.id));
      equal(await lockIsFree(join(record.dir, "lock")), false, "a live run's lock is held");
      deepEqual((await Deno.readDir(root)[Symbol.asyncIterator]().next()).value?.name, record.id);
      await record.addNamespace(`${record.id}-1-server`);
      await record.addPath("/tmp/bl-nothing");
      const entries = await record.entries();
      deepEqual(entries.map((e) => e.kind), ["run", "netns", "path"]);
      equal(record.tempPath("x.pcap"), join(record.dir, "tmp", "x.pcap"));
      deepEqual(await deadRuns(root), [], "a live run is not dead");
      deepEqual((await allRecords(root)).map((r) => r.id), [record.id]);
    } finally {
      await record[Symbol.asyncDispose]();
    }
    await rejects(Deno.stat(record.dir), Deno.errors.NotFound);
  });
});

Deno.test("RunRecord refuses names and paths that are not the lab's to record", async () => {
  await withRoot(async (root) => {
    await using record = await RunRecord.create({ root });
    ok(throws(() => record.addNamespace("eth0")));
    ok(throws(() => record.addPath("relative/file")));
    ok(throws(() => record.addPath("/")));
    ok(throws(() => record.tempPath("../escape")));
    await rejects(record.addProcess(4_000_000, "qemu"), /is not running/);
    await rejects(record.addProcess(Deno.pid, ""), /without a cmdline token/);
  });
});

function throws(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch (err) {
    return err instanceof RangeError;
  }
}

Deno.test("deadRuns() returns a SIGKILLed run's record, with what it named, holding its lock", async () => {
  await withRoot(async (root) => {
    const outside = join(root, "outside.tmp");
    const run = await startRun(root, ["process=sleep 601", `path=${outside}`]);
    const pid = Number(run.lines.find((l) => l.startsWith("process "))!.split(" ")[1]);
    try {
      deepEqual(await deadRuns(root), [], "not while it lives");
      run.child.kill("SIGKILL");
      await run.child.status;
      const [dead, ...more] = await deadRuns(root);
      deepEqual(more, []);
      equal(dead!.id, run.id);
      deepEqual(dead!.entries.map((e) => e.kind), ["run", "process", "path"]);
      const proc = dead!.entries.find((e) => e.kind === "process")!;
      ok(proc.kind === "process" && isRecordedProcess(proc), "the recorded process is still it");
      ok(proc.kind === "process" && !isRecordedProcess({ ...proc, token: "qemu-system" }));
      ok(proc.kind === "process" && !isRecordedProcess({ ...proc, startTime: "1" }), "reused pid");
      equal(await lockIsFree(join(dead!.dir, "lock")), false, "held while being reaped");
      deepEqual(await deadRuns(root), [], "one reaper at a time");
      await dead![Symbol.asyncDispose]();
      await rejects(Deno.stat(dead!.dir), Deno.errors.NotFound, "record and tmp/ removed");
      ok(await Deno.stat(outside), "a recorded path is the reaper's to remove, not deadRuns()'s");
    } finally {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
      try {
        run.child.kill("SIGKILL");
      } catch { /* gone */ }
      await run.child.status;
      await run.child.stdout.cancel().catch(() => {});
    }
  });
});

Deno.test("deadRuns() ignores directories that are not run records", async () => {
  await withRoot(async (root) => {
    await Deno.mkdir(join(root, "vms"));
    await Deno.mkdir(join(root, "bl-1-x")); // no lock file: not a record
    deepEqual(await deadRuns(root), []);
    ok(await Deno.stat(join(root, "bl-1-x")));
    ok(await Deno.stat(join(root, "vms")));
  });
});

Deno.test("RunRecord.create() never reuses the id of a record that exists", async () => {
  await withRoot(async (root) => {
    await using a = await RunRecord.create({ root });
    await rejects(RunRecord.create({ root, id: a.id }), /it exists/);
  });
});
