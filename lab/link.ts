/**
 * veth links between two lab namespaces, created inside them (the host
 * namespace never sees either end), with addresses from the lab subnet.
 * @module
 */
import { run } from "./command.ts";
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

  /** Creates the pair, addresses both ends and brings them up. */
  static async create(a: LinkEnd, b: LinkEnd): Promise<Link> {
    const link = new Link(a, b);
    const v6 = a.cidr.includes(":");
    const script = [
      `ip -n ${a.ns.name} link add ${a.ifname} type veth peer name ${b.ifname} netns ${b.ns.name}`,
      ...[a, b].flatMap((e) => [
        ...[e.cidr, ...(e.extra ?? [])].map((cidr) =>
          `ip -n ${e.ns.name} addr add ${cidr} dev ${e.ifname}${v6 ? " nodad" : ""}`
        ),
        `ip -n ${e.ns.name} link set ${e.ifname} up`,
      ]),
    ].join(" && ");
    try {
      await run(["sh", "-c", script], {
        action: `Cannot create link ${a.ns.name}:${a.ifname} <-> ${b.ns.name}:${b.ifname}`,
      });
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

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await run(["ip", "-n", this.a.ns.name, "link", "del", this.a.ifname], { allowFailure: true });
  }
}
