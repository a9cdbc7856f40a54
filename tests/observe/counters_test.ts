/**
 * Unit tests of the counter parser against `/proc/net/netstat`, `/proc/net/snmp`
 * and `nstat -az` text captured from real namespaces (tests/testdata/).
 * @module
 */
import assert, {
  deepStrictEqual as deepEqual,
  match,
  strictEqual as equal,
  throws,
} from "node:assert/strict";
import { KernelTextError } from "../../lab/base/errors.ts";
import { counterDeltas, parseCounters } from "../../lab/observe/counters.ts";
import { KNOWN_COUNTERS } from "../../lab/describe/counter_names.ts";

function testdata(name: string): string {
  return Deno.readTextFileSync(new URL(`../testdata/${name}`, import.meta.url));
}

/** `nstat -az` output as name → value. */
function parseNstat(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.trim() || line.startsWith("#")) continue;
    const [name, value] = line.trim().split(/\s+/);
    out.set(name!, Number(value));
  }
  return out;
}

const fresh = () =>
  parseCounters(testdata("proc_net_netstat_fresh.txt"), testdata("proc_net_snmp_fresh.txt"));
const server = () =>
  parseCounters(testdata("proc_net_netstat_server.txt"), testdata("proc_net_snmp_server.txt"));

/**
 * Values `nstat` leaves out: iproute2's nstat.c `useless_numbers[]` (settings
 * and gauges, not counters).
 */
const NSTAT_SKIPS = [
  "IpForwarding",
  "IpDefaultTTL",
  "TcpRtoAlgorithm",
  "TcpRtoMin",
  "TcpRtoMax",
  "TcpMaxConn",
  "TcpCurrEstab",
];

const SERVER_VALUES: [string, number][] = [
  ["TcpExtListenOverflows", 6],
  ["TcpExtListenDrops", 6],
  ["TcpExtTCPPureAcks", 3],
  ["TcpExtSyncookiesSent", 0],
  ["TcpExtTCPReqQFullDrop", 0],
  ["TcpExtTCPReqQFullDoCookies", 0],
  ["TcpExtTCPAODroppedIcmps", 0],
  ["IpExtInOctets", 696],
  ["IpExtOutOctets", 180],
  ["IpExtInNoECTPkts", 12],
  ["IpForwarding", 2],
  ["IpDefaultTTL", 64],
  ["IpInReceives", 12],
  ["IpOutNoRoutes", 2],
  ["IpOutTransmits", 3],
  ["TcpRtoAlgorithm", 1],
  ["TcpRtoMin", 200],
  ["TcpRtoMax", 120000],
  ["TcpMaxConn", -1],
  ["TcpActiveOpens", 0],
  ["TcpPassiveOpens", 3],
  ["TcpCurrEstab", 3],
  ["TcpInSegs", 12],
  ["TcpOutSegs", 3],
  ["TcpOutRsts", 0],
];

for (const [name, value] of SERVER_VALUES) {
  Deno.test(`parseCounters() reads ${name} = ${value} from the server's netstat + snmp`, () => {
    const c = server();
    assert(name in c, `${name} missing`);
    equal(c[name], value);
  });
}

Deno.test("parseCounters() reads every counter of a fresh namespace as 0 (settings aside)", () => {
  const c = fresh();
  const nonZero = Object.entries(c).filter(([, v]) => v !== 0);
  deepEqual(Object.fromEntries(nonZero), {
    IpForwarding: 2,
    IpDefaultTTL: 64,
    TcpRtoAlgorithm: 1,
    TcpRtoMin: 200,
    TcpRtoMax: 120000,
    TcpMaxConn: -1,
  });
  for (const v of Object.values(c)) assert(Number.isFinite(v));
});

Deno.test("parseCounters() yields one name per column of every table", () => {
  const count = (text: string) => {
    let n = 0;
    const lines = text.split("\n").filter((l) => l.trim());
    for (let i = 0; i < lines.length; i += 2) n += lines[i]!.trim().split(/\s+/).length - 1;
    return n;
  };
  const netstat = testdata("proc_net_netstat_fresh.txt");
  const snmp = testdata("proc_net_snmp_fresh.txt");
  equal(Object.keys(parseCounters(netstat)).length, count(netstat));
  equal(Object.keys(parseCounters(snmp)).length, count(snmp));
  equal(Object.keys(fresh()).length, count(netstat) + count(snmp));
  // Prefixes: every table of both files.
  const prefixes = new Set(
    Object.keys(fresh()).map((k) =>
      /^(TcpExt|IpExt|MPTcpExt|Ip|Icmp|Tcp|UdpLite|Udp)/.exec(k)?.[1]
    ),
  );
  deepEqual(
    [...prefixes].sort(),
    ["Icmp", "Ip", "IpExt", "MPTcpExt", "Tcp", "TcpExt", "Udp", "UdpLite"],
  );
});

Deno.test("parseCounters() names match nstat's: every parsed name is in nstat -az, except nstat's skips", () => {
  const nstat = parseNstat(testdata("nstat_fresh.txt"));
  const c = fresh();
  const missing = Object.keys(c).filter((k) => !nstat.has(k));
  deepEqual(missing.sort(), [...NSTAT_SKIPS].sort());
  // Where both have a name, both read the same value.
  for (const [k, v] of Object.entries(c)) {
    if (nstat.has(k)) equal(nstat.get(k), v, k);
  }
});

Deno.test("parseCounters() names match nstat's: every Tcp*/TcpExt* name of nstat -az is parsed", () => {
  const nstat = parseNstat(testdata("nstat_fresh.txt"));
  const c = fresh();
  const tcp = [...nstat.keys()].filter((k) => k.startsWith("Tcp"));
  assert(tcp.length > 100, `only ${tcp.length} Tcp names in nstat_fresh.txt`);
  assert(tcp.includes("TcpExtListenOverflows"));
  assert(tcp.includes("TcpOutRsts"));
  deepEqual(tcp.filter((k) => !(k in c)), []);
  // The rest nstat shows comes from /proc/net/snmp6, which parseCounters is not given.
  const others = [...nstat.keys()].filter((k) => !(k in c));
  assert(others.length > 0);
  for (const k of others) match(k, /^(Ip6|Icmp6|Udp6|UdpLite6)/);
});

Deno.test("parseCounters() names match the nstat names of a client namespace too", () => {
  const nstat = parseNstat(testdata("nstat_client.txt"));
  const c = fresh();
  const tcp = [...nstat.keys()].filter((k) => k.startsWith("Tcp"));
  deepEqual(tcp.filter((k) => !(k in c)), []);
  equal(nstat.get("TcpExtTCPSynRetrans"), 3);
});

Deno.test("KNOWN_COUNTERS is exactly the Tcp, TcpExt, Ip and IpExt names of a fresh namespace", () => {
  const names = Object.keys(fresh()).filter((k) => /^(Tcp|Ip)/.test(k) && !k.startsWith("Icmp"));
  deepEqual([...KNOWN_COUNTERS].sort(), names.sort());
  assert(KNOWN_COUNTERS.has("TcpExtListenOverflows"));
  assert(!KNOWN_COUNTERS.has("TcpExtListenOverflow"));
});

Deno.test("parseCounters() merges several texts, a later one winning on a shared name", () => {
  deepEqual(
    parseCounters("TcpExt: A B\nTcpExt: 1 2\n", "Tcp: C\nTcp: 3\n", "TcpExt: B\nTcpExt: 9\n"),
    { TcpExtA: 1, TcpExtB: 9, TcpC: 3 },
  );
  deepEqual(parseCounters(), {});
  deepEqual(parseCounters(""), {});
});

Deno.test("parseCounters() skips blank lines between tables and reads negative values", () => {
  deepEqual(parseCounters("\nTcp: MaxConn X\n\nTcp: -1 7\n\n"), { TcpMaxConn: -1, TcpX: 7 });
});

const MALFORMED: { why: string; text: string }[] = [
  { why: "a values line with fewer values than names", text: "TcpExt: A B C\nTcpExt: 1 2\n" },
  { why: "a values line with more values than names", text: "TcpExt: A B\nTcpExt: 1 2 3\n" },
  { why: "a values line of another table", text: "TcpExt: A B\nIpExt: 1 2\n" },
  { why: "a names line without a prefix colon", text: "TcpExt A B\nTcpExt A B\n" },
  {
    why: "the server's TcpExt values with one value dropped",
    text: testdata("proc_net_netstat_server.txt").replace("TcpExt: 0 ", "TcpExt: "),
  },
  {
    why: "a values line missing from between two tables",
    text: "TcpExt: A B\nIpExt: C D\nIpExt: 1 2\n",
  },
];

for (const c of MALFORMED) {
  Deno.test(`parseCounters() throws KernelTextError on ${c.why}`, () => {
    throws(() => parseCounters(c.text), (err: unknown) => {
      equal((err as Error).constructor, KernelTextError);
      match((err as Error).message, /Cannot parse a counters table near "/);
      return true;
    });
  });
}

Deno.test("parseCounters() throws on the first bad text of several", () => {
  throws(
    () => parseCounters(testdata("proc_net_snmp_fresh.txt"), "Tcp: A B\nTcp: 1\n"),
    KernelTextError,
  );
});

Deno.test("counterDeltas() subtracts before from after, by name", () => {
  deepEqual(counterDeltas({ A: 1, B: 5 }, { A: 4, B: 5 }), { A: 3, B: 0 });
});

Deno.test("counterDeltas() counts a name missing before as 0 and drops names missing after", () => {
  deepEqual(counterDeltas({ Gone: 9, A: 1 }, { A: 2, New: 7 }), { A: 1, New: 7 });
  deepEqual(counterDeltas({}, {}), {});
  deepEqual(counterDeltas({ A: 5 }, { A: 2 }), { A: -3 });
});

Deno.test("counterDeltas() from a fresh namespace to the server gives its overflows", () => {
  const d = counterDeltas(fresh(), server());
  equal(d.TcpExtListenOverflows, 6);
  equal(d.TcpExtListenDrops, 6);
  equal(d.TcpPassiveOpens, 3);
  equal(d.TcpCurrEstab, 3);
  equal(d.TcpMaxConn, 0);
  equal(d.TcpRtoMin, 0);
  equal(d.TcpExtSyncookiesSent, 0);
  deepEqual(Object.keys(d).sort(), Object.keys(server()).sort());
  const moved = Object.entries(d).filter(([, v]) => v !== 0).map(([k]) => k).sort();
  deepEqual(moved, [
    "IpExtInNoECTPkts",
    "IpExtInOctets",
    "IpExtOutOctets",
    "IpInDelivers",
    "IpInReceives",
    "IpOutNoRoutes",
    "IpOutRequests",
    "IpOutTransmits",
    "TcpCurrEstab",
    "TcpExtListenDrops",
    "TcpExtListenOverflows",
    "TcpExtTCPPureAcks",
    "TcpInSegs",
    "TcpOutSegs",
    "TcpPassiveOpens",
  ]);
});

Deno.test("counterDeltas() does not modify its arguments", () => {
  const before = { A: 1 };
  const after = { A: 3, B: 2 };
  counterDeltas(before, after);
  deepEqual(before, { A: 1 });
  deepEqual(after, { A: 3, B: 2 });
});

Deno.test({
  name: "parseCounters() throws KernelTextError on a trailing names line without values",

  fn: () => {
    throws(() => parseCounters("TcpExt: A B\n"), KernelTextError);
    throws(() => parseCounters("TcpExt: A\nTcpExt: 1\nIpExt: B C\n"), KernelTextError);
  },
});

Deno.test({
  name: "parseCounters() throws KernelTextError on a non-numeric value",

  fn: () => {
    throws(() => parseCounters("TcpExt: A B\nTcpExt: 1 x\n"), KernelTextError);
  },
});
