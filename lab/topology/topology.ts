/**
 * The network of one run, as one `AsyncDisposable`: a namespace per host,
 * a veth link from the server's host to each other host (with an address per
 * client group), each link's declared shape per direction (delay, loss, rate:
 * `shaping/`), the sysctls written (and read back) inside each namespace,
 * and the packet rules. Built in two steps so the programs can start loading
 * as soon as the namespaces exist: {@linkcode Topology.create} makes the
 * namespaces, {@linkcode Topology.connect} the rest, concurrently.
 *
 * Disposal first ends the shaping's delayers (read their counters before,
 * with `linkRecords()`), then deletes the namespaces, which takes their links,
 * nftables tables, qdiscs and iptables rules with them (without `ip link
 * del`'s ~30 ms wait for RCU, or a command for each); only a link or table
 * whose namespace could not be deleted is removed on its own.
 * @module
 */
import { disposeAll, settleAll } from "../base/resources.ts";
import type { NormalizedShape } from "../describe/link_shape.ts";
import type { RunRecord } from "../base/run_record.ts";
import type { PlannedRule, RunPlan } from "../describe/run_plan.ts";
import type { LinkStatsRecord, RuleRecord, ShapedDirectionRecord } from "../results.ts";
import { type AddressPlan, parseSubnet, planAddresses } from "./addressing.ts";
import { Link } from "./link.ts";
import { Netns, RECORDED_SYSCTLS } from "./netns.ts";
import { nftRuleText, Wire, type WireRule } from "./wire.ts";
import { type ShapedLink, shapeLink, type ShapeStats } from "./shaping/shaping.ts";

/** A direction of a client host's link, as `links` of a definition names it. */
export type LinkDirection = "toServer" | "toClient";

/** One shaped direction of a link. */
interface Shaped {
  /** The client host at the far end of the link. */
  host: string;
  direction: LinkDirection;
  /** `<host>:<ifname>` of the interface whose egress is shaped. */
  where: string;
  link: ShapedLink;
}

/** Options of {@linkcode Topology.create}. */
export interface TopologyOptions {
  /** Namespace names are `<prefix>-<host>`; it must start with the lab's `bl-` prefix. */
  prefix: string;
  /** The lab subnet of the plan's family (see `parseSubnet`). */
  subnet: string;
  /** The run record the namespaces are written into (default: the process's own). */
  record?: RunRecord;
}

/** A run's namespaces, links, sysctls and packet rules; `AsyncDisposable`. */
export class Topology implements AsyncDisposable {
  /** The plan it was built for. */
  readonly plan: RunPlan;
  /** Host → address, and `clients.<group>` → the group's own address. */
  readonly addresses: Record<string, string>;
  /** Host → every recorded sysctl as read back after writing (filled by `connect`). */
  readonly sysctls: Record<string, Record<string, string>> = {};
  readonly #namespaces: Map<string, Netns>;
  readonly #links: Link[] = [];
  readonly #wires = new Map<string, Wire>();
  readonly #rules = new Map<string, WireRule & { host: string }>();
  readonly #shaped: Shaped[] = [];
  readonly #layout: AddressPlan;
  readonly #linking = new Map<string, Promise<void>>();
  #disposed = false;

  private constructor(plan: RunPlan, namespaces: Map<string, Netns>, layout: AddressPlan) {
    this.plan = plan;
    this.#namespaces = namespaces;
    this.#layout = layout;
    this.addresses = layout.addresses;
    for (const r of plan.rules) this.#rules.set(r.name, this.#wireRule(r));
  }

  /**
   * Creates every host's namespace, concurrently; on failure removes those made.
   *
   * @throws {RangeError} for a subnet that is not a lab subnet.
   */
  static async create(plan: RunPlan, options: TopologyOptions): Promise<Topology> {
    const layout = planAddresses(plan, parseSubnet(options.subnet, plan.family));
    const created = await Promise.allSettled(
      plan.hosts.map((h) =>
        Netns.create(
          `${options.prefix}-${h.name}`,
          options.record ? { record: options.record } : {},
        )
      ),
    );
    const made = created.flatMap((c) => c.status === "fulfilled" ? [c.value] : []);
    const failed = created.find((c) => c.status === "rejected");
    if (failed) {
      await disposeAll(made);
      throw (failed as PromiseRejectedResult).reason;
    }
    return new Topology(plan, new Map(plan.hosts.map((h, i) => [h.name, made[i]!])), layout);
  }

  /** The namespace of `host`. */
  ns(host: string): Netns {
    const ns = this.#namespaces.get(host);
    if (ns === undefined) throw new RangeError(`Cannot find host "${host}" in this topology`);
    return ns;
  }

  /** Every host with its namespace, the server's first. */
  get hosts(): { name: string; ns: Netns }[] {
    return this.plan.hosts.map((h) => ({ name: h.name, ns: this.ns(h.name) }));
  }

  /**
   * Links the hosts, writes and reads back the sysctls, and installs the rules
   * that are on from the start, all at once; every part is awaited (so it is
   * removed with the topology) before a failure is thrown.
   */
  async connect(): Promise<void> {
    const ruleHosts = [...new Set(this.plan.rules.map((r) => r.host))];
    const links = this.#layout.links.map(async (l) => {
      this.#links.push(
        await Link.create(
          { ns: this.ns(this.plan.server.host), ...l.server },
          {
            ns: this.ns(l.host),
            ifname: l.client.ifname,
            cidr: l.client.cidr,
            extra: l.client.groups,
          },
        ),
      );
    });
    for (const h of this.plan.hosts) {
      const mine = this.#layout.links.flatMap((l, i) =>
        l.host === h.name || h.name === this.plan.server.host ? [links[i]!] : []
      );
      const linking = Promise.all(mine).then(() => {});
      linking.catch(() => {}); // connect() reports the failure; a waiter gets it too
      this.#linking.set(h.name, linking);
    }
    await settleAll([
      ...links,
      // Each declared direction is shaped once its veth exists.
      ...this.#layout.links.map(async (l, i) => {
        await links[i];
        const shape = this.plan.links.find((x) => x.host === l.host);
        await settleAll([
          this.#shape(l.host, "toServer", shape?.toServer, { host: l.host, ...l.client }),
          this.#shape(l.host, "toClient", shape?.toClient, {
            host: this.plan.server.host,
            ...l.server,
          }),
        ]);
      }),
      ...this.plan.hosts.map(async (h) => {
        this.sysctls[h.name] = await this.ns(h.name).sysctls(h.sysctls, RECORDED_SYSCTLS);
      }),
      ...ruleHosts.map(async (host) => {
        const wire = await Wire.create(this.ns(host));
        this.#wires.set(host, wire);
        for (const r of this.plan.rules) {
          if (r.host === host && r.initially === "on") await wire.add(this.#rules.get(r.name)!);
        }
      }),
    ]);
  }

  /**
   * The lab's interfaces in `host`'s namespace: the server's host has one per
   * other host (`veth1`, `veth2`, …), every other host one (`veth0`).
   */
  interfaces(host: string): string[] {
    return this.#layout.links.flatMap((l) =>
      host === this.plan.server.host ? [l.server.ifname] : l.host === host ? [l.client.ifname] : []
    );
  }

  /**
   * Resolves once every link of `host` exists (while {@linkcode Topology.connect}
   * runs), e.g. to capture on its interfaces; rejects when one could not be made.
   *
   * @throws {Error} when `connect()` has not been called.
   */
  linked(host: string): Promise<void> {
    const linking = this.#linking.get(host);
    if (linking === undefined) {
      return Promise.reject(
        new Error(`Cannot wait for the links of "${host}": call connect() first`),
      );
    }
    return linking;
  }

  /** Turns on the packet rule `name`. */
  async addRule(name: string): Promise<void> {
    const rule = this.#rule(name);
    await this.#wires.get(rule.host)!.add(rule);
  }

  /** Turns off the packet rule `name`. */
  async removeRule(name: string): Promise<void> {
    await this.#wires.get(this.#rule(name).host)!.remove(name);
  }

  /** Shapes packets leaving `end` (one direction of `host`'s link), unless there is no shape. */
  async #shape(
    host: string,
    direction: LinkDirection,
    shape: NormalizedShape | undefined,
    end: { host: string; ifname: string },
  ): Promise<void> {
    if (shape === undefined) return;
    const { delayMs, jitterMs, lossPercent, rateKbit, rateQueueMs } = shape;
    const link = await shapeLink(
      { ns: this.ns(end.host), ifname: end.ifname, direction: "egress" },
      {
        delayMs,
        jitterMs,
        lossPercent,
        ...(rateKbit === undefined ? {} : { rateKbit, rateQueueMs }),
      },
    );
    this.#shaped.push({ host, direction, where: `${end.host}:${end.ifname}`, link });
  }

  /**
   * Each shaped link direction: its shape, mechanism and counters now (read
   * at the end of the observation). A direction whose counters cannot be
   * read (its delayer exited) has `stats: null` and the reason in `problem`.
   */
  async linkRecords(): Promise<
    Record<string, Partial<Record<LinkDirection, ShapedDirectionRecord>>>
  > {
    const records: Record<string, Partial<Record<LinkDirection, ShapedDirectionRecord>>> = {};
    await Promise.all(this.#shaped.map(async (s) => {
      const { delayMs, jitterMs, lossPercent, rateKbit, rateQueueMs } = s.link.shape;
      const record: ShapedDirectionRecord = {
        shape: {
          delayMs,
          jitterMs,
          lossPercent,
          ...(rateKbit === undefined ? {} : { rateKbit, rateQueueMs }),
        },
        mechanism: s.link.mechanism,
        interface: s.where,
        stats: null,
      };
      try {
        record.stats = statsRecord(await s.link.stats());
      } catch (err) {
        record.problem = err instanceof Error ? err.message : String(err);
      }
      (records[s.host] ??= {})[s.direction] = record;
    }));
    return records;
  }

  /** Writes one sysctl in `host`'s namespace; returns `name = value` as read back. */
  async setSysctl(host: string, name: string, value: string): Promise<string> {
    const back = await this.ns(host).sysctls({ [name]: value });
    return `${name} = ${back[name]}`;
  }

  /** Each packet rule: its host, its nft text and the packets it dropped so far. */
  async ruleRecords(): Promise<Record<string, RuleRecord>> {
    const records: Record<string, RuleRecord> = {};
    for (const [name, r] of this.#rules) {
      records[name] = { host: r.host, nft: nftRuleText(r), dropped: 0 };
    }
    for (const [host, wire] of this.#wires) {
      for (const [name, n] of Object.entries(await wire.dropped())) {
        if (records[name]?.host === host) records[name]!.dropped = n;
      }
    }
    return records;
  }

  /**
   * Ends the shaping's delayers (each releases what it holds), then deletes
   * the namespaces, with everything inside them: the shaping's rules, qdiscs
   * and tables go with them, like the links and packet rules. Idempotent; the
   * namespaces are deleted whatever ending the delayers did, and every
   * failure is kept.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    const errors: unknown[] = [];
    const ended = await Promise.allSettled(this.#shaped.map((s) => s.link.release()));
    for (const r of ended) if (r.status === "rejected") errors.push(r.reason);
    try {
      await disposeAll([...this.#namespaces.values()]);
      for (const l of this.#links) l.release();
      for (const w of this.#wires.values()) w.release();
    } catch (err) {
      // A namespace that could not be deleted keeps its links and tables: remove those directly.
      await disposeAll([...this.#links, ...this.#wires.values()]).catch(() => {});
      errors.push(err);
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, "Cannot remove the run's network");
  }

  #rule(name: string): WireRule & { host: string } {
    const rule = this.#rules.get(name);
    if (rule === undefined) throw new RangeError(`Cannot find packet rule "${name}"`);
    return rule;
  }

  #wireRule(r: PlannedRule): WireRule & { host: string } {
    const rule: WireRule & { host: string } = {
      name: r.name,
      host: r.host,
      direction: r.direction,
      packets: r.packets,
      port: this.plan.server.port,
      side: r.host === this.plan.server.host ? "server" : "client",
      family: this.plan.family,
    };
    if (r.group !== undefined) rule.clientAddress = this.addresses[`clients.${r.group}`]!;
    return rule;
  }
}

/** The counters of a shaped direction as results record them. */
function statsRecord(stats: ShapeStats): LinkStatsRecord {
  const { mechanism: _mechanism, shape: _shape, delayer: _delayer, ...record } = stats;
  if (record.lateness !== undefined) record.lateness = { ...record.lateness };
  return record;
}
