import {
  deepStrictEqual as deepEqual,
  match,
  ok as assert,
  rejects,
  strictEqual as equal,
} from "node:assert/strict";
import { Capture, CaptureIncompleteError, droppedPackets } from "../../lab/observe/capture.ts";
import { run } from "../../lab/base/command.ts";
import { CommandError } from "../../lab/base/errors.ts";
import { Netns, newRunPrefix } from "../../lab/topology/netns.ts";
import { eventsOf, packetTimelines } from "../../lab/observe/packet_timeline.ts";
import { cliPrefix, labProcesses, rootTest, spawnCli, until } from "../_helpers.ts";

const PORT = 18213;

// One connection over IPv4 and one over IPv6 on lo, each sending 3 bytes, then closed.
const CONNECT_SCRIPT = `
const port = Number(Deno.args[0]);
for (const hostname of ["127.0.0.1", "::1"]) {
  using listener = Deno.listen({ hostname, port });
  using client = await Deno.connect({ hostname, port });
  using server = await listener.accept();
  await client.write(new Uint8Array([1, 2, 3]));
  await server.read(new Uint8Array(8));
}`;

/** A temporary capture file, removed on disposal. */
async function tempCaptureFile(): Promise<AsyncDisposable & { path: string }> {
  const path = await Capture.tempFile("bl-capture-test");
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path).catch(() => {}),
  };
}

function isRunning(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

rootTest("Capture.stop() returns the handshakes of connections made just before it", async () => {
  await using ns = await Netns.create(`${newRunPrefix()}-cap`);
  await using file = await tempCaptureFile();
  const originMs = Date.now();
  await using capture = await Capture.start(ns, { port: PORT, file: file.path, iface: "lo" });
  equal(capture.file, file.path);
  await ns.exec([Deno.execPath(), "eval", CONNECT_SCRIPT, String(PORT)]);
  const elapsedMs = Date.now() - originMs;
  const packets = await capture.stop();

  const timelines = packetTimelines(packets, { serverPort: PORT, originMs });
  deepEqual(timelines.map((c) => [c.client.replace(/:\d+$/, ""), c.server]), [
    ["127.0.0.1", `127.0.0.1:${PORT}`],
    ["[::1]", `[::1]:${PORT}`],
  ]);
  for (const c of timelines) {
    const handshake = c.events.slice(0, 3);
    deepEqual(handshake.map((e) => [e.dir, e.kind]), [["in", "SYN"], ["out", "SYN-ACK"], [
      "in",
      "ACK",
    ]]);
    const [syn, synAck, ack] = handshake;
    assert(syn!.t < synAck!.t && synAck!.t < ack!.t, JSON.stringify(handshake));
    equal(synAck!.ack, (syn!.seq + 1) >>> 0);
    equal(ack!.ack, (synAck!.seq + 1) >>> 0);
    deepEqual(eventsOf(c, "DATA", "in").map((e) => e.len), [3]);
    assert(eventsOf(c, "FIN").length >= 1, `no FIN: ${JSON.stringify(c.events)}`);
    assert(c.events.every((e) => !e.retransmit), JSON.stringify(c.events));
    // Kernel timestamps against the wall clock, which has 1 ms resolution.
    assert(c.events.every((e) => e.t >= -1 && e.t <= elapsedMs + 1), JSON.stringify(c.events));
  }

  // The precision reported is the one in the file's magic number.
  const magic = new DataView((await Deno.readFile(file.path)).buffer).getUint32(0, true);
  equal(magic, capture.precision === "nano" ? 0xa1b23c4d : 0xa1b2c3d4);

  // tcpdump reads the file too, and sees as many packets as the parser.
  const read = await run(["tcpdump", "-r", file.path, "-n"]);
  equal(read.stdout.split("\n").filter(Boolean).length, packets.length);
  deepEqual(await capture.stop(), packets);
});

rootTest("Capture disposal without stop() ends tcpdump and keeps the file", async () => {
  await using ns = await Netns.create(`${newRunPrefix()}-capd`);
  await using file = await tempCaptureFile();
  let pid: number;
  {
    await using capture = await Capture.start(ns, { port: PORT, file: file.path });
    pid = capture.pid;
    assert(isRunning(pid), `tcpdump ${pid} is not running`);
    await capture[Symbol.asyncDispose]();
  }
  assert(!isRunning(pid), `tcpdump ${pid} is still running`);
  const pids = await run(["ip", "netns", "pids", ns.name]);
  equal(pids.stdout.trim().split("\n").length, 1, `left in the namespace: ${pids.stdout}`);
  assert((await Deno.stat(file.path)).isFile);
});

rootTest("Capture.start() names the namespace when tcpdump cannot start", async () => {
  await using ns = await Netns.create(`${newRunPrefix()}-cape`);
  await using file = await tempCaptureFile();
  await rejects(
    Capture.start(ns, { port: PORT, file: file.path, iface: "nosuch0" }),
    (err: Error) => {
      assert(err instanceof CommandError, String(err));
      match(err.message, new RegExp(`Cannot start tcpdump in namespace "${ns.name}"`));
      match(err.message, /nosuch0/);
      return true;
    },
  );
  await rejects(
    Capture.start(ns, { port: 70000, file: file.path }),
    (err: Error) => err instanceof RangeError && /port "70000" is out of range/.test(err.message),
  );
  // start() has spawned tcpdump by the time it returns its promise: the abort kills it.
  const controller = new AbortController();
  const starting = Capture.start(ns, { port: PORT, file: file.path, signal: controller.signal });
  controller.abort(new Error("stop now"));
  await rejects(starting, /stop now/);
  const pids = await run(["ip", "netns", "pids", ns.name]);
  equal(pids.stdout.trim().split("\n").length, 1, `left in the namespace: ${pids.stdout}`);
});

Deno.test("droppedPackets() reads what tcpdump's exit summary says was lost", () => {
  deepEqual(
    droppedPackets(
      "12 packets captured\n12 packets received by filter\n0 packets dropped by kernel",
    ),
    [],
  );
  deepEqual(
    droppedPackets(
      "9 packets captured\n40 packets received by filter\n31 packets dropped by kernel\n2 packets dropped by interface",
    ),
    ["31 packets dropped by the kernel", "2 packets dropped by the interface"],
  );
});

for (const signal of ["SIGTERM", "SIGKILL"] as const) {
  rootTest(
    `Capture.stop() refuses a capture whose tcpdump ended by ${signal} before it`,
    async () => {
      await using ns = await Netns.create(`${newRunPrefix()}-capk`);
      await using file = await tempCaptureFile();
      await using capture = await Capture.start(ns, { port: PORT, file: file.path, iface: "lo" });
      Deno.kill(capture.pid, signal); // not the lab: someone else on the machine
      await until("tcpdump to end", () => isRunning(capture.pid), (running) => !running);
      await rejects(capture.stop(), (err: Error) => {
        assert(err instanceof CaptureIncompleteError, String(err));
        match(
          err.message,
          new RegExp(
            `Cannot use the capture in namespace "${ns.name}": tcpdump ended before the lab stopped it \\(${
              signal === "SIGKILL" ? "killed by SIGKILL" : "it exited \\(status 0"
            }`,
          ),
        );
        return true;
      });
    },
  );
}

rootTest(
  "a run whose tcpdump is killed by someone else fails, saying so, and decides no claim",
  async () => {
    // The issue's reproducer: kill -TERM a run's tcpdump soon after it starts.
    const child = spawnCli(["--json", "--filter", "client-syn-retransmission"]);
    const prefix = cliPrefix(child.pid);
    try {
      // A tcpdump of the run, once its run is past building (its captures started): its
      // namespace has a client socket in SYN-SENT, which exists only after the release.
      const netnsOf = (pid: number) =>
        Deno.readTextFileSync(`/proc/${pid}/environ`).split("\0").find((v) =>
          v.startsWith("BACKLOG_LAB_NETNS=")
        )?.slice("BACKLOG_LAB_NETNS=".length);
      const released = async () => {
        for (const pid of labProcesses(prefix)) {
          try {
            if (!Deno.readTextFileSync(`/proc/${pid}/cmdline`).startsWith("tcpdump\0")) continue;
            const ns = netnsOf(pid);
            if (ns === undefined) continue;
            const ss = await new Deno.Command("ip", {
              args: ["netns", "exec", ns, "ss", "-Htn", "state", "syn-sent"],
              stdout: "piped",
              stderr: "null",
            }).output();
            if (new TextDecoder().decode(ss.stdout).trim()) return pid;
          } catch { /* gone meanwhile */ }
        }
        return undefined;
      };
      const pid = await until("a released run's tcpdump", released, (p) => p !== undefined, {
        timeoutMs: 30_000,
      });
      Deno.kill(pid!, "SIGTERM");
      const out = await child.output();
      const doc = JSON.parse(new TextDecoder().decode(out.stdout));
      equal(out.code, 1);
      const e = doc.experiments[0];
      equal(e.passed, false);
      const errors = e.runs.flatMap((r: { error?: string }) => r.error ? [r.error] : []);
      equal(errors.length, 1, JSON.stringify(errors));
      match(
        errors[0],
        /Cannot use the capture in namespace "bl-[^"]+": tcpdump ended before the lab stopped it/,
      );
      for (const l of doc.ledger.filter((x: { experiments: string[] }) => x.experiments.length)) {
        equal(l.verdict, "undecided", `${l.claim}: ${l.evidence}`);
      }
      deepEqual(labProcesses(prefix), []);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
    }
  },
);
