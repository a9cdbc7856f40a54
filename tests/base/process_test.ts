/**
 * Tests of `lab/act/process.ts`: a program speaking JSON lines, driven and
 * ended by PID. The programs here are small shell scripts, so these tests
 * need no root.
 * @module
 */
import {
  deepStrictEqual as deepEqual,
  match,
  ok,
  rejects,
  strictEqual as equal,
} from "node:assert/strict";
import { WaitTimeoutError } from "../../lab/base/errors.ts";
import { ManagedProcess } from "../../lab/base/process.ts";

type Cmd = { cmd: "echo"; text: string } | { cmd: "exit" };
type Ev = { event: "ready"; pid: number } | { event: "echo"; text: string } | {
  event: "error";
  message: string;
};

/** A shell program: prints ready, then answers each command line until "exit". */
const ECHO = `
echo '{"event":"ready","pid":'$$'}'
echo 'not json'
while read -r line; do
  case "$line" in
    *'"exit"'*) exit 0 ;;
    *) printf '{"event":"echo","text":%s}\\n' "$(printf %s "$line" | sed 's/.*"text":\\("[^"]*"\\).*/\\1/')" ;;
  esac
done`;

function start(script: string): ManagedProcess<Cmd, Ev> {
  return new ManagedProcess<Cmd, Ev>("the test program", ["sh", "-c", script]);
}

Deno.test("ManagedProcess reads JSON events in order, keeps other lines as output, and sends commands", async () => {
  await using p = start(ECHO);
  const ready = await p.waitForEvent("ready", 10_000);
  equal(ready.pid, p.pid);
  ok(ready.receivedAt > 0);
  await p.send({ cmd: "echo", text: "hello" });
  const echo = await p.waitForEvent("echo", 10_000);
  equal(echo.text, "hello");
  deepEqual(p.events.map((e) => e.event), ["ready", "output", "echo"]);
  equal(p.events[1]!.event === "output" && p.events[1]!.text, "not json");
});

Deno.test("ManagedProcess.waitForEvent() throws the program's error event", async () => {
  await using p = start(`echo '{"event":"error","message":"Cannot bind: in use"}'; exec sleep 5`);
  await rejects(
    p.waitForEvent("ready", 10_000),
    /^Error: Cannot run the test program: Cannot bind: in use$/,
  );
});

Deno.test("ManagedProcess.waitForEvent() says when the program exited first, with its stderr", async () => {
  await using p = start(`echo 'boom on stderr' >&2; exit 3`);
  await rejects(
    p.waitForEvent("ready", 10_000),
    /^Error: Cannot wait for the test program to report "ready": it exited with 3: boom on stderr$/,
  );
  equal(p.exited, true);
});

Deno.test("ManagedProcess.waitForEvent() times out naming the event and the last event seen", async () => {
  await using p = start(`echo '{"event":"echo","text":"x"}'; exec sleep 5`);
  const err = await p.waitForEvent("ready", 100).catch((e) => e);
  ok(err instanceof WaitTimeoutError, String(err));
  match(
    err.message,
    /^Timed out after 100 ms waiting for the test program to report "ready": last value .*"event":"echo"/,
  );
});

Deno.test("ManagedProcess.waitForEvent() stops at once when its signal aborts", async () => {
  await using p = start(`exec sleep 5`);
  const controller = new AbortController();
  const waiting = p.waitForEvent("ready", 10_000, controller.signal);
  controller.abort(new Error("stop now"));
  await rejects(waiting, /stop now/);
});

Deno.test("ManagedProcess.stop() asks it to exit, then kills it by PID after the grace period", async () => {
  const polite = start(ECHO);
  await polite.waitForEvent("ready", 10_000);
  await polite.stop();
  equal((await polite.status).code, 0, "it exited on the exit command");

  // A program that ignores commands and SIGTERM is killed.
  const stubborn = start(`trap '' TERM; echo '{"event":"ready","pid":'$$'}'; exec sleep 30`);
  await stubborn.waitForEvent("ready", 10_000);
  const t0 = performance.now();
  await stubborn.stop(50);
  const status = await stubborn.status;
  equal(status.signal, "SIGKILL");
  ok(performance.now() - t0 < 10_000);
  await stubborn.stop(); // idempotent
});

Deno.test("ManagedProcess.send() after exit does nothing", async () => {
  await using p = start(`exit 0`);
  await p.status;
  await p.send({ cmd: "echo", text: "late" });
  p.kill("SIGTERM");
  equal(p.exited, true);
});
