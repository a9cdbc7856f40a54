/**
 * Starting a run's programs inside its namespaces: the server
 * (`programs/listen_server.ts`) and one client process per group
 * (`programs/client_group.ts`), each given its spec as one JSON argument and
 * spoken to with the typed commands of `programs/protocol.ts`. The programs
 * start loading as soon as the namespaces exist; the server creates its
 * socket only when told to listen, the clients connect only on "go".
 * @module
 */
import { scaled } from "../base/time_scale.ts";
import { disposeAll } from "../base/resources.ts";
import type { RunPlan } from "../describe/run_plan.ts";
import type { AcceptPolicy } from "../describe/types.ts";
import type { Topology } from "../topology/topology.ts";
import { denoProgramArgv, ManagedProcess } from "../base/process.ts";
import type {
  ClientCommand,
  ClientEvent,
  ClientGroupSpec,
  ServerCommand,
  ServerEvent,
  ServerPolicy,
  ServerSpec,
} from "./programs/protocol.ts";

/** How long a program may take to report ready (Deno's first start compiles it). */
export const READY_TIMEOUT_MS = 30_000;

/** The lab's programs and the permissions each runs with. */
const PROGRAM_FLAGS = {
  "listen_server.ts": ["--allow-ffi", "--allow-read=/proc"],
  "client_group.ts": ["--allow-net", "--allow-ffi"],
} as const;

/** A program of the lab. */
export type ProgramName = keyof typeof PROGRAM_FLAGS;

/**
 * The command that runs one of the lab's programs with its spec (wrap it with
 * `Netns.wrap` to run it inside a namespace). `flags` replaces the program's
 * permissions, e.g. to run the client without FFI.
 */
export function programArgv(
  name: ProgramName,
  spec: ServerSpec | ClientGroupSpec,
  flags: readonly string[] = PROGRAM_FLAGS[name],
): string[] {
  return denoProgramArgv(new URL(`./programs/${name}`, import.meta.url), flags, [
    JSON.stringify(spec),
  ]);
}

/** The server program. */
export type ServerProcess = ManagedProcess<ServerCommand, ServerEvent>;
/** A client group's program. */
export type ClientProcess = ManagedProcess<ClientCommand, ClientEvent>;

/** The accept policy in the server program's terms. */
export function serverPolicy(policy: AcceptPolicy): ServerPolicy {
  if (policy === "never") return "never";
  if (policy === "all") return { kind: "all" };
  if ("batch" in policy) return { kind: "batch", n: policy.batch, everyMs: policy.everyMs };
  return { kind: "rate", perSecond: policy.perSecond };
}

/** A run's server and client programs; `AsyncDisposable` (each asked to exit, then killed by PID). */
export class Programs implements AsyncDisposable {
  /** The server. */
  readonly server: ServerProcess;
  /** One process per client group, in the plan's group order. */
  readonly clients: readonly ClientProcess[];
  readonly #plan: RunPlan;

  private constructor(plan: RunPlan, server: ServerProcess, clients: ClientProcess[]) {
    this.#plan = plan;
    this.server = server;
    this.clients = clients;
  }

  /** Starts every program of the plan inside its namespace (they load while the network is built). */
  static launch(topology: Topology, plan: RunPlan): Programs {
    const serverNs = topology.ns(plan.server.host);
    const address = topology.addresses[plan.server.host]!;
    const server = new ManagedProcess<ServerCommand, ServerEvent>(
      `the server in "${serverNs.name}"`,
      serverNs.wrap(programArgv("listen_server.ts", {
        family: plan.family,
        address,
        port: plan.server.port,
        backlog: plan.server.backlog,
        waitToListen: true,
        ...(plan.server.maxOpenFiles === undefined
          ? {}
          : { maxOpenFiles: plan.server.maxOpenFiles }),
        ...(plan.server.serve === undefined ? {} : { serve: plan.server.serve }),
      })),
    );
    const clients = plan.groups.map((g) => {
      const ns = topology.ns(g.host);
      return new ManagedProcess<ClientCommand, ClientEvent>(
        `client group "${g.name}" in "${ns.name}"`,
        ns.wrap(programArgv("client_group.ts", {
          family: plan.family,
          address,
          port: plan.server.port,
          localAddress: topology.addresses[`clients.${g.name}`]!,
          count: g.count,
          intervalMs: g.intervalMs,
          ...(g.arrivals === undefined ? {} : { arrivals: g.arrivals }),
          then: g.then,
          deadlineMs: g.deadlineMs,
        })),
      );
    });
    return new Programs(plan, server, clients);
  }

  /** The process of client group `name`. */
  client(name: string): ClientProcess {
    const i = this.#plan.groups.findIndex((g) => g.name === name);
    if (i < 0) throw new RangeError(`Cannot find client group "${name}"`);
    return this.clients[i]!;
  }

  /** Tells the loaded server to listen; returns its `ready` event. */
  async listen(signal?: AbortSignal): Promise<Extract<ServerEvent, { event: "ready" }>> {
    await this.server.waitForEvent("loaded", scaled(READY_TIMEOUT_MS), signal);
    await this.server.send({ cmd: "listen" });
    return await this.server.waitForEvent("ready", scaled(READY_TIMEOUT_MS), signal);
  }

  /** Waits until every client group is ready for "go". */
  async clientsReady(signal?: AbortSignal): Promise<void> {
    await Promise.all(
      this.clients.map((c) => c.waitForEvent("ready", scaled(READY_TIMEOUT_MS), signal)),
    );
  }

  /** Sends "go" to every group that starts with the run (not those a step starts). */
  async go(): Promise<void> {
    const stepStarted = new Set(
      this.#plan.timeline.flatMap((s) => s.action.kind === "startGroup" ? [s.action.group] : []),
    );
    await Promise.all(
      this.#plan.groups.map((g, i) =>
        stepStarted.has(g.name) ? undefined : this.clients[i]!.send({ cmd: "go" })
      ),
    );
  }

  /** Ends every program (clients and server at once). */
  async [Symbol.asyncDispose](): Promise<void> {
    await disposeAll([this.server, ...this.clients]);
  }
}
