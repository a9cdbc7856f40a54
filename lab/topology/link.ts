/**
 * veth links between two lab namespaces, created inside them (the host
 * namespace never sees either end), with addresses from the lab subnet.
 * @module
 */
import { run } from "../base/command.ts";
import type { Netns } from "./netns.ts";

/** One end of a link. */
export interface LinkEnd {
  ns: Netns;
  ifname: string;
  /** Address with prefix length, e.g. `10.213.1.1/24`. */
  cidr: string;
  /** More addresses for this end (e.g. one per client group), same form. */
  extra?: readonly string[];
}

/** A veth pair; `AsyncDisposable` (deleting one end removes both). */
export class Link implements AsyncDisposable {
  readonly a: LinkEnd;
  readonly b: LinkEnd;
  #disposed = false;

  private constructor(a: LinkEnd, b: LinkEnd) {
    this.a = a;
    this.b = b;
  }

  /**
   * Creates the pair, addresses both ends and brings them up: one `ip -batch`
   * inside each namespace (two processes, whatever the number of addresses).
   */
  static async create(a: LinkEnd, b: LinkEnd): Promise<Link> {
    const link = new Link(a, b);
    const v6 = a.cidr.includes(":");
    const configure = (e: LinkEnd) => [
      ...[e.cidr, ...(e.extra ?? [])].map((cidr) =>
        `addr add ${cidr} dev ${e.ifname}${v6 ? " nodad" : ""}`
      ),
      `link set ${e.ifname} up`,
    ];
    const action = `Cannot create link ${a.ns.name}:${a.ifname} <-> ${b.ns.name}:${b.ifname}`;
    try {
      await batch(a.ns.name, [
        `link add ${a.ifname} type veth peer name ${b.ifname} netns ${b.ns.name}`,
        ...configure(a),
      ], action);
      await batch(b.ns.name, configure(b), action);
    } catch (err) {
      await link[Symbol.asyncDispose]();
      throw err;
    }
    return link;
  }

  /** The address of an end without the prefix length. */
  static address(end: LinkEnd): string {
    return end.cidr.split("/")[0]!;
  }

  /**
   * Forgets the link without deleting it: deleting a namespace removes its
   * links too, without the wait for the kernel's RCU grace period (~30 ms)
   * that `ip link del` makes.
   */
  release(): void {
    this.#disposed = true;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await run(["ip", "-n", this.a.ns.name, "link", "del", this.a.ifname], { allowFailure: true });
  }
}

/** Runs `ip -n <ns> -batch -` with these commands, one a line. */
async function batch(ns: string, commands: readonly string[], action: string): Promise<void> {
  await run(["ip", "-n", ns, "-batch", "-"], { stdin: commands.join("\n") + "\n", action });
}
