/**
 * A program the lab started inside a namespace, speaking JSON lines:
 * events on its stdout, commands on its stdin. Disposal asks it to exit,
 * then kills it by PID, and always reaps it.
 * @module
 */
import { fileURLToPath } from "node:url";
import { until } from "./wait.ts";
import { readLines } from "./lines.ts";

/** A line the program printed that is not JSON. */
export interface OutputLine {
  /** Always `"output"`. */
  event: "output";
  /** The line. */
  text: string;
}

/** One event a program printed, with the time it arrived. */
export type ProgramEvent<E extends { event: string }> = (E | OutputLine) & {
  /** performance.now() when the lab read it. */
  receivedAt: number;
};

/**
 * A running program speaking the protocol of `programs/protocol.ts`: commands
 * `C` on stdin, events `E` on stdout; `AsyncDisposable`.
 */
export class ManagedProcess<
  C extends { cmd: string } = { cmd: string },
  E extends { event: string } = { event: string },
> implements AsyncDisposable {
  readonly label: string;
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #events: ProgramEvent<E>[] = [];
  readonly #stderr: Promise<string>;
  readonly #pump: Promise<void>;
  #listeners: (() => void)[] = [];
  #exited = false;
  readonly status: Promise<Deno.CommandStatus>;

  constructor(label: string, argv: readonly string[]) {
    this.label = label;
    const [cmd, ...args] = argv;
    const child = new Deno.Command(cmd!, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    }).spawn();
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.status = child.status.then((s) => {
      this.#exited = true;
      this.#notify();
      return s;
    });
    this.#stderr = new Response(child.stderr).text().catch(() => "");
    this.#pump = (async () => {
      for await (const line of readLines(child.stdout)) {
        if (!line.trim()) continue;
        let parsed: E | OutputLine;
        try {
          parsed = JSON.parse(line);
          if (typeof parsed?.event !== "string") parsed = { event: "output", text: line };
        } catch {
          parsed = { event: "output", text: line };
        }
        this.#events.push({ ...parsed, receivedAt: performance.now() });
        this.#notify();
      }
    })().catch(() => {});
  }

  /** The PID of the program (`ip netns exec` execs, so it is the program itself). */
  get pid(): number {
    return this.#child.pid;
  }

  /** Whether it has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** Every event so far, in order. */
  get events(): readonly ProgramEvent<E>[] {
    return this.#events;
  }

  #notify(): void {
    const ls = this.#listeners;
    this.#listeners = [];
    for (const l of ls) l();
  }

  /** Resolves on the next event or exit. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.#listeners.push(resolve));
  }

  /**
   * Waits for the first event named `name` (or one of its `error` events, which throws).
   *
   * @throws {WaitTimeoutError} after `timeoutMs`, naming the event and the last event seen.
   */
  async waitForEvent<N extends E["event"]>(
    name: N,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<Extract<E, { event: N }> & { receivedAt: number }> {
    const found = () => this.#events.find((e) => e.event === name || e.event === "error");
    const ev = await until(
      `${this.label} to report "${name}"`,
      () => found() ?? (this.#exited ? "exited" as const : undefined),
      (v) => v !== undefined,
      {
        timeoutMs,
        intervalMs: 250,
        wake: () => this.changed(),
        show: () => JSON.stringify(this.#events.at(-1) ?? null),
        ...(signal ? { signal } : {}),
      },
    );
    if (ev === "exited" || ev === undefined) {
      const s = await this.status;
      throw new Error(
        `Cannot wait for ${this.label} to report "${name}": it exited with ${s.code}: ${
          (await this.#stderr).trim().slice(-500)
        }`,
      );
    }
    if (ev.event === "error") {
      throw new Error(`Cannot run ${this.label}: ${(ev as { message?: unknown }).message}`);
    }
    return ev as Extract<E, { event: N }> & { receivedAt: number };
  }

  /** Sends one command line. */
  async send(command: C): Promise<void> {
    await this.#write(command);
  }

  async #write(command: { cmd: string }): Promise<void> {
    if (this.#exited) return;
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(command) + "\n")).catch(
      () => {},
    );
  }

  /** Sends it a signal by PID (a no-op once it has exited). */
  kill(signal: Deno.Signal): void {
    if (this.#exited) return;
    try {
      this.#child.kill(signal);
    } catch { /* already gone */ }
  }

  /** Asks it to exit, kills it by PID after `graceMs`, and reaps it. Idempotent. */
  async stop(graceMs = 1000): Promise<void> {
    if (!this.#exited) {
      await this.#write({ cmd: "exit" });
      await this.#writer.close().catch(() => {});
      const t = setTimeout(() => {
        try {
          this.#child.kill("SIGKILL");
        } catch { /* already gone */ }
      }, graceMs);
      await this.status;
      clearTimeout(t);
    } else {
      await this.#writer.close().catch(() => {});
    }
    await this.#pump;
    await this.#stderr;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/**
 * The argv that runs one of the lab's Deno programs (a file next to the
 * caller, given as a URL) with its own permissions and arguments, without the
 * project's config, quietly. Wrap it with `Netns.wrap` to run it inside a namespace.
 */
export function denoProgramArgv(
  program: URL,
  flags: readonly string[],
  args: readonly string[],
): string[] {
  const path = program.protocol === "file:" ? fileURLToPath(program) : program.href;
  return [Deno.execPath(), "run", "--no-config", "--quiet", ...flags, path, ...args];
}
