/**
 * Performing a timeline step's action on a run: start or close a client
 * group, turn a packet rule on or off, write a sysctl, make the server accept
 * or change its policy, stop the server.
 * @module
 */
import type { PlannedAction } from "../describe/run_plan.ts";
import type { Topology } from "../topology/topology.ts";
import { type Programs, serverPolicy } from "./launch.ts";

/** What an action acts on. */
export interface ActionTarget {
  /** The run's network. */
  topology: Topology;
  /** The run's programs. */
  programs: Programs;
}

/**
 * Performs `action`.
 *
 * @returns what is worth recording (a sysctl as read back), if anything.
 */
export async function perform(
  action: PlannedAction,
  { topology, programs }: ActionTarget,
): Promise<string | undefined> {
  switch (action.kind) {
    case "startGroup":
      await programs.client(action.group).send({ cmd: "go" });
      return;
    case "closeGroup":
      await programs.client(action.group).send({ cmd: "close" });
      return;
    case "addRule":
      await topology.addRule(action.rule);
      return;
    case "removeRule":
      await topology.removeRule(action.rule);
      return;
    case "sysctl":
      return await topology.setSysctl(action.host, action.name, action.value);
    case "accept":
      await programs.server.send({ cmd: "accept", n: action.n });
      return;
    case "acceptPolicy":
      await programs.server.send({ cmd: "policy", policy: serverPolicy(action.policy) });
      return;
    case "stopServer":
      if (action.how === "SIGKILL") programs.server.kill("SIGKILL");
      else await programs.server.send({ cmd: "exit" });
      return;
  }
}
