/**
 * Whether the running kernel has `sch_netem`, found out once per process by
 * trying it in a throwaway namespace (never in the host's): a veth pair
 * inside it, and `tc qdisc add … netem delay 1ms` on one end. Adding the
 * qdisc also loads the module on kernels that build netem as one.
 * @module
 */
import { run } from "../../base/command.ts";
import { CommandError } from "../../base/errors.ts";
import { Netns, newRunPrefix } from "../netns.ts";

let probe: Promise<boolean> | undefined;

/** What tc says when the kernel has no such qdisc. */
const UNKNOWN_QDISC = /Specified qdisc kind is unknown|qdisc kind is unknown|Unknown qdisc/i;

/**
 * Whether the kernel can shape with netem. The first call probes; later
 * calls return the same answer. A probe that fails for another reason (no
 * root, no `ip`) throws and is tried again on the next call.
 *
 * @returns true when a netem qdisc could be added.
 * @throws {CommandError} when the probe itself cannot run.
 */
export function netemAvailable(): Promise<boolean> {
  probe ??= probeNetem().catch((err) => {
    probe = undefined;
    throw err;
  });
  return probe;
}

async function probeNetem(): Promise<boolean> {
  await using ns = await Netns.create(`${newRunPrefix()}-netem`);
  await run(["ip", "-n", ns.name, "link", "add", "p0", "type", "veth", "peer", "name", "p1"], {
    action: `Cannot probe for netem in namespace "${ns.name}"`,
  });
  const argv = ["tc", "-n", ns.name, "qdisc", "add", "dev", "p0", "root", "netem", "delay", "1ms"];
  const r = await run(argv, { allowFailure: true });
  if (r.code === 0) return true;
  if (UNKNOWN_QDISC.test(r.stderr)) return false;
  throw new CommandError(
    argv,
    r.code,
    r.stderr,
    `Cannot probe for netem in namespace "${ns.name}"`,
  );
}
