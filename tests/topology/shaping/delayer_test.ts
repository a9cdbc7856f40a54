import { deepStrictEqual as deepEqual, ok, strictEqual as equal } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Netns, newRunPrefix } from "../../../lab/topology/netns.ts";
import { MAX_ODD_RECV_ERRORS, recvErrorAction } from "../../../lab/topology/shaping/delayer.ts";
import { rootTest } from "../../_helpers.ts";

const DELAYER = fileURLToPath(new URL("../../../lab/topology/shaping/delayer.ts", import.meta.url));

/** Runs the delayer with `args` (inside `ns` when given), stdin piped. */
function spawn(args: string[], ns?: Netns): Deno.ChildProcess {
  const argv = [Deno.execPath(), "run", "--no-config", "--quiet", "--allow-ffi", DELAYER, ...args];
  const [cmd, ...rest] = ns ? ns.wrap(argv) : argv;
  return new Deno.Command(cmd!, { args: rest, stdin: "piped", stdout: "piped", stderr: "piped" })
    .spawn();
}

/** The JSON events of a finished program. */
async function finish(
  child: Deno.ChildProcess,
): Promise<{ code: number; events: Record<string, unknown>[] }> {
  const out = await child.output();
  const events = new TextDecoder().decode(out.stdout).split("\n").filter(Boolean).map((l) =>
    JSON.parse(l)
  );
  return { code: out.code, events };
}

/** Reads stdout until the first event, without closing it. */
async function firstEvent(child: Deno.ChildProcess): Promise<Record<string, unknown>> {
  const reader = child.stdout.getReader();
  let text = "";
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
  } finally {
    reader.releaseLock();
  }
  return JSON.parse(text.split("\n")[0]!);
}

Deno.test("delayer.ts refuses bad arguments: exit 2 with an error event naming the argument", async () => {
  const cases: [string[], RegExp][] = [
    [[], /expected 4 or 5 arguments \(usage: delayer.ts <queue>/],
    [["70000", "5", "0", "100"], /queue "70000" must be an integer from 0 to 65535/],
    [["1", "5", "0", "0"], /queue length "0" must be a positive integer/],
    [["1", "5", "9", "100"], /jitter "9" ms must be from 0 to the delay \(5 ms\)/],
    [["1", "5", "0", "100", "120"], /priority "120" must be an integer from 0 to 99/],
  ];
  for (const [args, message] of cases) {
    const child = spawn(args);
    await child.stdin.close();
    const { code, events } = await finish(child);
    equal(code, 2, JSON.stringify(args));
    equal(events[0]?.event, "error");
    ok(message.test(String(events[0]?.message)), String(events[0]?.message));
  }
});

rootTest(
  "delayer.ts binds its queue, answers stats, and exits 0 when its stdin closes (the lab died)",
  async () => {
    await using ns = await Netns.create(`${newRunPrefix()}-dl`);
    const child = spawn(["3", "10", "0", "100"], ns);
    const ready = await firstEvent(child);
    deepEqual([ready.event, ready.queue, ready.realtime], ["ready", 3, false]);
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode('{"cmd":"stats","reply":1}\n'));
    await w.close();
    const { code, events } = await finish(child);
    equal(code, 0);
    const stats = events.find((e) => e.event === "stats")!;
    deepEqual([stats.reply, stats.received, stats.held], [1, 0, 0]);
  },
);

rootTest("delayer.ts reports a queue another process has bound, and exits 1", async () => {
  await using ns = await Netns.create(`${newRunPrefix()}-dl`);
  const first = spawn(["0", "10", "0", "100"], ns);
  try {
    equal((await firstEvent(first)).event, "ready");
    const second = spawn(["0", "10", "0", "100"], ns);
    await second.stdin.close();
    const { code, events } = await finish(second);
    equal(code, 1);
    equal(
      events[0]?.message,
      "Cannot bind NFQUEUE 0: another process has bound queue 0 in this namespace",
    );
  } finally {
    await first.stdin.close();
    await finish(first);
  }
});

Deno.test("recvErrorAction() reads past a stray recv() error, but not three in a row", () => {
  const [EINTR, ENOENT, EAGAIN, ENOBUFS, EBADF] = [4, 2, 11, 105, 9];
  equal(recvErrorAction(EAGAIN, 1), "done");
  equal(recvErrorAction(EINTR, 5), "retry");
  equal(recvErrorAction(ENOBUFS, 5), "overrun");
  equal(recvErrorAction(ENOENT, 1), "retry");
  equal(recvErrorAction(ENOENT, MAX_ODD_RECV_ERRORS - 1), "retry");
  equal(recvErrorAction(EBADF, MAX_ODD_RECV_ERRORS), "fail");
});
