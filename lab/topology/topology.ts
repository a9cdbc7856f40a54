/**
 * The network of one run, as one `AsyncDisposable`: a namespace per host,
 * a veth link from the server's host to each other host (with an address per
 * client group), the sysctls written (and read back) inside each namespace,
 * and the packet rules. Built in two steps so the programs can start loading
 * as soon as the namespaces exist: {@linkcode Topology.create} makes the
 * namespaces, {@linkcode Topology.connect} the rest, concurrently.
 *
 * Disposal deletes the namespaces, which takes their links and nftables
 * tables with them (without `ip link del`'s ~30 ms wait for RCU); only a link
 * or table whose namespace could not be deleted is removed on its own.
 * @module
 */
import { disposeAll, settleAll } from "../base/resources.ts";
import type { RunRecord } from "../base/run_record.ts";
import type { PlannedRule, RunPlan } from "../describe/run_plan.ts";
import type { RuleRecord } from "../results.ts";
import { type AddressPlan, parseSubnet, planAddresses } from "./addressing.ts";
import { Link } from "./link.ts";
import { Netns, RECORDED_SYSCTLS } from "./netns.ts";
import { nftRuleText, Wire, type WireRule } from "./wire.ts";

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

  /** Deletes the namespaces (with everything inside them). Idempotent. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    try {
      await disposeAll([...this.#namespaces.values()]);
    } catch (err) {
      // A namespace that could not be deleted keeps its links and tables: remove those directly.
      await disposeAll([...this.#links, ...this.#wires.values()]).catch(() => {});
      throw err;
    }
    for (const l of this.#links) l.release();
    for (const w of this.#wires.values()) w.release();
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
