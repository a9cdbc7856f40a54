/**
 * One client group. Run inside a client namespace by the runner:
 *
 *   deno run --allow-net client_group.ts '<ClientGroupSpec as JSON>'
 *
 * It prints `{"event":"ready"}`, waits for `{"cmd":"go"}` on stdin, then opens
 * the group's connections (all at once, or one every `intervalMs`) and reports
 * what the kernel answered for each, as JSON lines with times in milliseconds
 * since "go":
 *
 *   {"event":"open","i":k,"t":…}                           connect() k is being called (staggered groups)
 *   {"event":"launched","n":N,"t":…}                      every connect() has been called
 *   {"event":"connect","i":k,"result":"ok"|"ECONNREFUSED"|…,"t":…,"ms":…}
 *   {"event":"after","i":k,"result":"data"|"eof"|"timeout"|"sent"|"ECONNRESET"|…,"t":…,"bytes":n}
 *   {"event":"deadline","i":k,"t":…,"phase":"connect"|"after"}   gave up; the socket was closed
 *
 * Sockets stay open (so the kernel's state is what is observed) until
 * `{"cmd":"close"}`, `{"cmd":"exit"}` or EOF on stdin.
 *
 * Commands on stdin (one JSON object a line):
 *   {"cmd":"go"}     open the connections
 *   {"cmd":"close"}  close (destroy) every socket of the group now; once all are
 *                    closed: {"event":"closed","n":N,"t":…}, N the sockets it
 *                    closed (those a deadline or an error had closed not counted).
 *                    A connection closed while connecting or in its follow-up
 *                    reports nothing more; a staggered group still launching
 *                    goes on opening its remaining connections.
 *   {"cmd":"exit"}   close every socket and exit 0 (EOF, SIGTERM and SIGINT do the same)
 * @module
 */
import net from "node:net";
import { emit, readLines } from "./_lines.ts";

/** What a client group does, as the runner passes it. */
export interface ClientGroupSpec {
  family: 4 | 6;
  /** Server address and port. */
  address: string;
  port: number;
  /** Source address to bind (the group's own address). */
  localAddress?: string;
  count: number;
  /** 0: all at once; otherwise one connect() every intervalMs. */
  intervalMs: number;
  /** Follow-up after connect() returns. */
  then:
    | { kind: "nothing" }
    | { kind: "send"; bytes: number }
    | { kind: "read"; timeoutMs: number }
    | { kind: "sendRead"; bytes: number; timeoutMs: number };
  /** Give up on a connection (close it) this long after its connect() began; 0 = never. */
  deadlineMs: number;
}

function main(): void {
  const spec = JSON.parse(Deno.args[0] ?? "{}") as ClientGroupSpec;
  const sockets: net.Socket[] = [];
  /** Per connection: stop its timers and events, then destroy it. */
  const closers: (() => Promise<boolean>)[] = [];
  let t0 = 0;
  const now = () => Math.round((performance.now() - t0) * 1000) / 1000;

  function open(i: number): void {
    const began = performance.now();
    let phase: "connect" | "after" | "done" = "connect";
    const options: net.NetConnectOpts = {
      host: spec.address,
      port: spec.port,
      family: spec.family,
    };
    if (spec.localAddress) options.localAddress = spec.localAddress;
    const s = net.connect(options);
    sockets.push(s);
    let timer: ReturnType<typeof setTimeout> | undefined;
    closers.push(() => {
      phase = "done";
      clearTimeout(timer);
      if (s.destroyed) return Promise.resolve(false);
      const closed = new Promise<boolean>((resolve) => s.once("close", () => resolve(true)));
      s.destroy();
      return closed;
    });
    if (spec.deadlineMs > 0) {
      timer = setTimeout(() => {
        if (phase === "done") return;
        emit({ event: "deadline", i, t: now(), phase });
        phase = "done";
        s.destroy();
      }, spec.deadlineMs);
    }
    const finish = (result: string, extra: Record<string, unknown> = {}) => {
      if (phase !== "after") return;
      phase = "done";
      clearTimeout(timer);
      emit({ event: "after", i, result, t: now(), ...extra });
    };
    s.on("connect", () => {
      if (phase !== "connect") return;
      emit({ event: "connect", i, result: "ok", t: now(), ms: performance.now() - began });
      const then = spec.then;
      if (then.kind === "nothing") {
        phase = "done";
        clearTimeout(timer);
        return;
      }
      phase = "after";
      if (then.kind === "send" || then.kind === "sendRead") {
        s.write(new Uint8Array(then.bytes), (err) => {
          if (err) finish((err as NodeJS.ErrnoException).code ?? String(err));
          else if (then.kind === "send") finish("sent", { bytes: then.bytes });
        });
      }
      if (then.kind === "read" || then.kind === "sendRead") {
        s.setTimeout(then.timeoutMs, () => finish("timeout"));
        s.on("data", (d: Uint8Array) => finish("data", { bytes: d.length }));
        s.on("end", () => finish("eof"));
      }
    });
    s.on("error", (err: NodeJS.ErrnoException) => {
      const code = err.code ?? err.name;
      if (phase === "connect") {
        phase = "done";
        clearTimeout(timer);
        emit({ event: "connect", i, result: code, t: now(), ms: performance.now() - began });
      } else finish(code);
    });
  }

  function go(): void {
    t0 = performance.now();
    if (spec.intervalMs <= 0 || spec.count === 0) {
      for (let i = 0; i < spec.count; i++) open(i);
      emit({ event: "launched", n: spec.count, t: now() });
      return;
    }
    let i = 0;
    const step = () => {
      emit({ event: "open", i, t: now() });
      open(i++);
      if (i < spec.count) setTimeout(step, spec.intervalMs);
      else emit({ event: "launched", n: spec.count, t: now() });
    };
    step();
  }

  const shutdown = () => {
    for (const s of sockets) s.destroy();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", shutdown);
  Deno.addSignalListener("SIGINT", shutdown);
  emit({ event: "ready", pid: Deno.pid });
  (async () => {
    for await (const line of readLines(Deno.stdin.readable)) {
      if (!line.trim()) continue;
      const cmd = JSON.parse(line) as { cmd?: string };
      if (cmd.cmd === "go") go();
      if (cmd.cmd === "close") {
        const closed = await Promise.all(closers.map((close) => close()));
        emit({ event: "closed", n: closed.filter(Boolean).length, t: now() });
      }
      if (cmd.cmd === "exit") break;
    }
    shutdown();
  })();
}

if (import.meta.main) main();
