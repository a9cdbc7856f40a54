/**
 * Starting the lab's programs in tests, as the lab starts them (typed by
 * `lab/act/programs/protocol.ts`).
 * @module
 */
import { type ClientProcess, programArgv, type ServerProcess } from "../lab/act/launch.ts";
import { ManagedProcess } from "../lab/base/process.ts";
import type {
  ClientCommand,
  ClientEvent,
  ClientGroupSpec,
  ServerCommand,
  ServerEvent,
  ServerSpec,
} from "../lab/act/programs/protocol.ts";
import type { Netns } from "../lab/topology/netns.ts";

export type { ClientProcess, ServerProcess };

/** listen_server.ts in `ns` with this spec. */
export function startServer(ns: Netns, spec: ServerSpec): ServerProcess {
  return new ManagedProcess<ServerCommand, ServerEvent>(
    `the server in "${ns.name}"`,
    ns.wrap(programArgv("listen_server.ts", spec)),
  );
}

/**
 * client_group.ts in `ns` with this spec, after `prefix` (e.g. `prlimit …`),
 * with the program's permissions or `flags`.
 */
export function startClients(
  ns: Netns,
  spec: ClientGroupSpec,
  options: { prefix?: readonly string[]; flags?: readonly string[] } = {},
): ClientProcess {
  return new ManagedProcess<ClientCommand, ClientEvent>(
    `the clients in "${ns.name}"`,
    ns.wrap([...options.prefix ?? [], ...programArgv("client_group.ts", spec, options.flags)]),
  );
}

/** The events of `p` named `name`, typed. */
export function eventsNamed<E extends { event: string }, N extends E["event"]>(
  p: ManagedProcess<{ cmd: string }, E>,
  name: N,
): Extract<E, { event: N }>[] {
  return p.events.filter((e) => e.event === name) as unknown as Extract<E, { event: N }>[];
}
