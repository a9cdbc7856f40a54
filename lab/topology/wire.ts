/**
 * Packet-drop rules inside one lab namespace, with nftables: a table
 * `inet backlog_lab` whose chains `in` (input hook) and `out` (output hook)
 * drop the TCP segments a {@linkcode WireRule} names (a handshake's final
 * ACK, the SYN-ACKs, …). Every `nft` call runs inside the namespace
 * (`ip netns exec <ns> nft …`), never in the host's.
 *
 * Each rule counts what it drops in a named counter object
 * (`bl_<rule name>`) that outlives the rule, so {@linkcode Wire.dropped}
 * reports removed rules too, with no packet lost between reading a counter
 * and deleting its rule.
 * @module
 */
import { run } from "../base/command.ts";
import { CommandError } from "../base/errors.ts";
import type { Netns } from "./netns.ts";
import { didYouMean } from "../base/suggest.ts";
import { RULE_PACKETS, type RulePacketKind } from "../vocabulary.ts";

/** A set of TCP segments to drop in one direction of one namespace. */
export interface WireRule {
  /** Unique among the Wire's active rules; letters, digits, `_`, `.`, `-` (at most 64). */
  name: string;
  /** "in": packets arriving at this namespace (input hook); "out": packets it sends (output hook). */
  direction: "in" | "out";
  /** Non-empty; a packet matching any kind is dropped. */
  packets: readonly RulePacketKind[];
  /** The server's TCP port. */
  port: number;
  /** Whether this namespace is the server's (its port is the local port) or a client's (the server port is the remote one). */
  side: "server" | "client";
  /** The IP version of the packets. */
  family: 4 | 6;
  /** Only packets to/from this peer or local address (e.g. one client group's own address); omitted = any. */
  clientAddress?: string;
}

/** The nftables table every Wire creates in its namespace. */
const TABLE = "backlog_lab";
const CHAINS = { in: "in", out: "out" } as const;
const KINDS = RULE_PACKETS;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

// The four control flags that tell the kinds apart, in nft's order; PSH,
// URG, ECE and CWR never decide a kind.
const FLAGS = [["fin", 1], ["syn", 2], ["rst", 4], ["ack", 8]] as const;
const [FIN, SYN, RST, ACK] = [1, 2, 4, 8];

/** Whether a segment whose FIN/SYN/RST/ACK bits are `v` is of `kind`. */
function isKind(kind: RulePacketKind, v: number): boolean {
  switch (kind) {
    case "syn":
      return (v & SYN) !== 0 && (v & ACK) === 0;
    case "syn-ack":
      return (v & SYN) !== 0 && (v & ACK) !== 0;
    case "ack":
      return v === ACK;
    case "rst":
      return (v & RST) !== 0;
    case "fin":
      return (v & FIN) !== 0;
    case "all":
      return true;
  }
}

function flagNames(bits: number): string {
  return FLAGS.filter(([, b]) => bits & b).map(([n]) => n).join("|");
}

/**
 * The `tcp flags …` match for a union of kinds: over exactly the flags the
 * union depends on, an `==` against one value or a set of values, or the
 * empty string when every segment matches.
 */
function flagsMatch(kinds: readonly RulePacketKind[]): string {
  const member = (v: number) => kinds.some((k) => isKind(k, v));
  let mask = 0;
  for (const [, bit] of FLAGS) {
    for (let v = 0; v < 16; v++) {
      if (member(v) !== member(v ^ bit)) {
        mask |= bit;
        break;
      }
    }
  }
  if (mask === 0) return "";
  const values = [...new Set([...Array(16).keys()].filter(member).map((v) => v & mask))]
    .sort((a, b) => a - b);
  const masked = mask & (mask - 1) ? `(${flagNames(mask)})` : flagNames(mask);
  const rhs = values.length === 1
    ? flagNames(values[0]!)
    : `{ ${values.map(flagNames).join(", ")} }`;
  return `tcp flags & ${masked} == ${rhs}`;
}

function isIpv4(s: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  return m !== null && m.slice(1).every((o) => Number(o) <= 255 && !/^0\d/.test(o));
}

function isIpv6(s: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(s) || !s.includes(":")) return false;
  try {
    new URL(`http://[${s}]/`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Checks a rule's shape and values.
 *
 * @throws {TypeError} for a field of the wrong type.
 * @throws {RangeError} for a value out of range, naming the rule and field.
 */
function validate(rule: WireRule): void {
  if (typeof rule !== "object" || rule === null) {
    throw new TypeError(`Invalid wire rule: expected an object, got ${JSON.stringify(rule)}`);
  }
  const label = typeof rule.name === "string" ? `"${rule.name}"` : "(unnamed)";
  const bad = (field: string, detail: string, Err: typeof TypeError = RangeError) =>
    new Err(`Invalid wire rule ${label}: field "${field}" ${detail}`);
  const shown = (v: unknown) => JSON.stringify(v) ?? String(v);
  const oneOf = (field: string, v: unknown, allowed: readonly string[]) => {
    if (typeof v !== "string") throw bad(field, "must be a string", TypeError);
    if (!allowed.includes(v)) {
      throw bad(field, `must be "${allowed.join('" or "')}", got "${v}"${didYouMean(v, allowed)}`);
    }
  };
  if (typeof rule.name !== "string") throw bad("name", "must be a string", TypeError);
  if (!NAME.test(rule.name)) {
    throw bad(
      "name",
      `must be 1 to 64 letters, digits, "_", "." or "-", starting with a letter or digit; got "${rule.name}"`,
    );
  }
  oneOf("direction", rule.direction, ["in", "out"]);
  oneOf("side", rule.side, ["server", "client"]);
  if (!Array.isArray(rule.packets)) throw bad("packets", "must be an array", TypeError);
  if (rule.packets.length === 0) throw bad("packets", "must name at least one packet kind");
  for (const [i, k] of rule.packets.entries()) {
    if (!KINDS.includes(k)) {
      throw bad(
        `packets[${i}]`,
        `must be one of "${KINDS.join('", "')}", got ${shown(k)}${didYouMean(String(k), KINDS)}`,
      );
    }
  }
  if (typeof rule.port !== "number") throw bad("port", "must be a number", TypeError);
  if (!Number.isInteger(rule.port) || rule.port < 1 || rule.port > 65535) {
    throw bad("port", `must be an integer from 1 to 65535, got ${rule.port}`);
  }
  if (rule.family !== 4 && rule.family !== 6) {
    throw bad("family", `must be 4 or 6, got ${shown(rule.family)}`);
  }
  if (rule.clientAddress !== undefined) {
    const a = rule.clientAddress;
    if (typeof a !== "string") throw bad("clientAddress", "must be a string", TypeError);
    if (!(rule.family === 4 ? isIpv4(a) : isIpv6(a))) {
      throw bad(
        "clientAddress",
        `must be an IPv${rule.family} address (family ${rule.family}), got "${a}"`,
      );
    }
  }
}

/** The counter object that counts a rule's drops. */
function counterName(ruleName: string): string {
  return `bl_${ruleName}`;
}

/**
 * The nft rule (without table and chain) that drops `rule`'s packets and
 * counts them in its named counter `bl_<name>`. The client address is the
 * source of packets that go to the server (a server's input, a client's
 * output) and the destination of those that come from it.
 *
 * @param rule the rule to express.
 * @returns e.g. `ip saddr 10.213.1.10 tcp dport 8080 tcp flags & (fin|syn|rst|ack) == ack counter name bl_late-ack drop`.
 * @throws {TypeError} for a field of the wrong type.
 * @throws {RangeError} for a value out of range, naming the rule and field.
 *
 * @example Drop the handshake's final ACK a client sends
 * ```ts
 * import { nftRuleText } from "./wire.ts";
 *
 * nftRuleText({
 *   name: "late-ack", direction: "out", side: "client", family: 4,
 *   packets: ["ack"], port: 8080, clientAddress: "10.213.1.10",
 * });
 * // "ip saddr 10.213.1.10 tcp dport 8080 tcp flags & (fin|syn|rst|ack) == ack counter name bl_late-ack drop"
 * ```
 */
export function nftRuleText(rule: WireRule): string {
  validate(rule);
  const toServer = (rule.side === "server") === (rule.direction === "in");
  const parts: string[] = [];
  if (rule.clientAddress !== undefined) {
    parts.push(
      `${rule.family === 4 ? "ip" : "ip6"} ${toServer ? "saddr" : "daddr"} ${rule.clientAddress}`,
    );
  } else {
    parts.push(`meta nfproto ${rule.family === 4 ? "ipv4" : "ipv6"}`);
  }
  parts.push(`tcp ${toServer ? "dport" : "sport"} ${rule.port}`);
  const flags = flagsMatch(rule.packets);
  if (flags) parts.push(flags);
  parts.push(`counter name ${counterName(rule.name)} drop`);
  return parts.join(" ");
}

interface Installed {
  chain: string;
  handle: number;
}

/**
 * The packet-drop rules of one lab namespace: an nftables table
 * `inet backlog_lab` there; `AsyncDisposable` (disposal deletes the table).
 *
 * @example Hold a connection in SYN_RECV, then let it complete
 * ```ts ignore
 * await using wire = await Wire.create(clientNs);
 * await wire.add({
 *   name: "late-ack", direction: "out", side: "client", family: 4,
 *   packets: ["ack"], port: 8080,
 * });
 * // … the server shows a SYN_RECV entry …
 * await wire.remove("late-ack");
 * console.log(await wire.dropped()); // { "late-ack": 3 }
 * ```
 */
export class Wire implements AsyncDisposable {
  readonly #ns: Netns;
  readonly #rules = new Map<string, Installed>();
  readonly #pending = new Set<string>();
  /** Rule names (active or removed) whose counter object exists. */
  readonly #counters = new Set<string>();
  #disposed = false;

  private constructor(ns: Netns) {
    this.#ns = ns;
  }

  /**
   * Creates the table `inet backlog_lab` in `ns` with chains `in` (hook
   * input) and `out` (hook output), both priority 0, policy accept.
   *
   * @throws {CommandError} when `nft` fails, e.g. when the table exists
   *   already (another Wire on the same namespace).
   */
  static async create(ns: Netns): Promise<Wire> {
    const script = [
      `create table inet ${TABLE}`,
      `add chain inet ${TABLE} ${CHAINS.in} { type filter hook input priority 0; policy accept; }`,
      `add chain inet ${TABLE} ${CHAINS.out} { type filter hook output priority 0; policy accept; }`,
      "",
    ].join("\n");
    await run(ns.wrap(["nft", "-f", "-"]), {
      stdin: script,
      action: `Cannot create the nftables table "inet ${TABLE}" in namespace "${ns.name}"`,
    });
    return new Wire(ns);
  }

  /**
   * Adds `rule` (and its counter, on first use of the name) in one nft
   * transaction. A name used before and removed counts on from where it was.
   *
   * @throws {TypeError} / {RangeError} for an invalid rule or a name
   *   that is active already.
   * @throws {CommandError} when `nft` rejects it.
   */
  async add(rule: WireRule): Promise<void> {
    const text = nftRuleText(rule);
    const action = `Cannot add wire rule "${rule.name}" in namespace "${this.#ns.name}"`;
    this.#assertLive(action);
    if (this.#rules.has(rule.name) || this.#pending.has(rule.name)) {
      throw new RangeError(`${action}: a rule with that name is active already`);
    }
    this.#pending.add(rule.name);
    try {
      const chain = CHAINS[rule.direction];
      const newCounter = !this.#counters.has(rule.name);
      const script = (newCounter ? `add counter inet ${TABLE} ${counterName(rule.name)}\n` : "") +
        `add rule inet ${TABLE} ${chain} ${text}\n`;
      const out = await run(this.#ns.wrap(["nft", "-a", "-e", "-f", "-"]), {
        stdin: script,
        action,
      });
      if (newCounter) this.#counters.add(rule.name);
      const handle = ruleHandleFromEcho(out.stdout);
      if (handle === undefined) {
        throw new Error(
          `${action}: nft did not echo the rule's handle: ${JSON.stringify(out.stdout)}`,
        );
      }
      this.#rules.set(rule.name, { chain, handle });
    } finally {
      this.#pending.delete(rule.name);
    }
  }

  /**
   * Removes the active rule `name`; its counter stays for {@linkcode Wire.dropped}.
   *
   * @throws {RangeError} when no active rule has that name.
   * @throws {CommandError} when `nft` fails.
   */
  async remove(name: string): Promise<void> {
    const action = `Cannot remove wire rule "${name}" in namespace "${this.#ns.name}"`;
    this.#assertLive(action);
    const installed = this.#rules.get(name);
    if (installed === undefined) {
      const active = this.active;
      throw new RangeError(
        `${action}: no such active rule (active: ${
          active.length ? active.map((n) => `"${n}"`).join(", ") : "none"
        })${didYouMean(name, active)}`,
      );
    }
    this.#rules.delete(name);
    try {
      await run(
        this.#ns.wrap([
          "nft",
          "delete",
          "rule",
          "inet",
          TABLE,
          installed.chain,
          "handle",
          String(installed.handle),
        ]),
        { action },
      );
    } catch (err) {
      this.#rules.set(name, installed);
      throw err;
    }
  }

  /** Names of the active rules, in the order they were added. */
  get active(): string[] {
    return [...this.#rules.keys()];
  }

  /**
   * Packets each active (and removed) rule has dropped so far, read from
   * the kernel's nft counters.
   *
   * @throws {CommandError} when `nft` fails.
   */
  async dropped(): Promise<Record<string, number>> {
    const action = `Cannot read the wire's drop counters in namespace "${this.#ns.name}"`;
    this.#assertLive(action);
    const out = await run(
      this.#ns.wrap(["nft", "-j", "list", "counters", "table", "inet", TABLE]),
      { action },
    );
    const byCounter = new Map<string, number>();
    const parsed = JSON.parse(out.stdout) as { nftables?: unknown };
    for (const item of Array.isArray(parsed.nftables) ? parsed.nftables : []) {
      const c = (item as { counter?: { name?: unknown; packets?: unknown } }).counter;
      if (c && typeof c.name === "string" && typeof c.packets === "number") {
        byCounter.set(c.name, c.packets);
      }
    }
    const result: Record<string, number> = {};
    for (const name of this.#counters) {
      const packets = byCounter.get(counterName(name));
      if (packets === undefined) {
        throw new Error(`${action}: nft lists no counter "${counterName(name)}"`);
      }
      result[name] = packets;
    }
    return result;
  }

  /**
   * Forgets the table without deleting it, for a namespace about to be
   * deleted (which takes its tables with it).
   */
  release(): void {
    this.#disposed = true;
    this.#rules.clear();
  }

  /** Deletes the table (rules and counters). Idempotent; tolerates the namespace being gone. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    const argv = this.#ns.wrap(["nft", "delete", "table", "inet", TABLE]);
    const r = await run(argv, { allowFailure: true });
    if (
      r.code !== 0 &&
      !/No such file or directory|Cannot open network namespace/i.test(r.stderr)
    ) {
      throw new CommandError(
        argv,
        r.code,
        r.stderr,
        `Cannot delete the nftables table "inet ${TABLE}" in namespace "${this.#ns.name}"`,
      );
    }
    this.#rules.clear();
  }

  #assertLive(action: string): void {
    if (this.#disposed) throw new Error(`${action}: the wire is disposed`);
  }
}

/**
 * The handle of the rule an `nft -a -e` transaction added, from its echo:
 * the line of the rule (not of its counter) ending in `# handle N`. nft
 * prints the rule the kernel echoes back; Linux 6.x echoes an appended rule
 * with its NLM_F_APPEND flag, so nft shows `add rule …`, while Linux 5.10
 * echoes it without, and the same nft (1.0.6) shows `insert rule …`.
 *
 * @example
 * ```ts
 * import { ruleHandleFromEcho } from "./wire.ts";
 * ruleHandleFromEcho("insert rule inet t out tcp dport 80 drop # handle 4\n"); // 4
 * ```
 */
export function ruleHandleFromEcho(echo: string): number | undefined {
  const handle = /^(?:add|insert) rule .*# handle (\d+)\s*$/m.exec(echo)?.[1];
  return handle === undefined ? undefined : Number(handle);
}
