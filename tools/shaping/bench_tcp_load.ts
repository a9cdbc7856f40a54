/**
 * The issue's target load through shaped links: clients arriving at
 * `--rate` connections a second for `--seconds`, `--delay` ms away each way
 * with `--loss` % loss, each connection sending a 100-byte request and
 * reading a 100-byte reply. Root only; asserts nothing, leaves nothing.
 *
 *   deno run -A tools/shaping/bench_tcp_load.ts [--rate 400] [--seconds 20] [--delay 25]
 *       [--loss 1] [--mechanism auto|nfqueue|netem] [--json]
 *
 * A client namespace and a server namespace joined by one veth; each end's
 * egress is shaped. Prints the connections' outcomes and round trips, and
 * per direction what the shaping counted: packets, loss, queue drops, and
 * for the delayer its lateness and CPU (% of one core over the run).
 * @module
 */
import { parseArgs } from "node:util";
import { run } from "../../lab/base/command.ts";
import { Link } from "../../lab/topology/link.ts";
import { Netns, newRunPrefix } from "../../lab/topology/netns.ts";
import {
  shapeLink,
  type ShapeMechanism,
  type ShapeStats,
} from "../../lab/topology/shaping/shape_link.ts";

const SERVER = `
const [host, port] = Deno.args;
const l = Deno.listen({ hostname: host, port: Number(port) });
console.log("listening");
for await (const c of l) {
  (async () => {
    const buf = new Uint8Array(100);
    let got = 0;
    try {
      while (got < 100) { const n = await c.read(buf.subarray(got)); if (n === null) break; got += n; }
      if (got === 100) await c.write(buf);
    } catch { /* reset */ }
    try { c.close(); } catch { /* closed */ }
  })();
}`;

const CLIENT = `
const [host, port, rate, seconds] = Deno.args.map((a, i) => i === 0 ? a : Number(a));
const total = Math.round(rate * seconds);
const rtts = []; const failures = {};
const t0 = performance.now();
const one = async () => {
  const start = performance.now();
  try {
    const c = await Deno.connect({ hostname: host, port });
    await c.write(new Uint8Array(100));
    const buf = new Uint8Array(100); let got = 0;
    while (got < 100) { const n = await c.read(buf.subarray(got)); if (n === null) break; got += n; }
    c.close();
    if (got === 100) rtts.push(performance.now() - start); else failures.short = (failures.short ?? 0) + 1;
  } catch (e) { failures[e.name] = (failures[e.name] ?? 0) + 1; }
};
const running = [];
for (let i = 0; i < total; i++) {
  const wait = t0 + (i * 1000) / rate - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  running.push(one());
}
await Promise.all(running);
rtts.sort((a, b) => a - b);
const q = (x) => rtts.length ? rtts[Math.min(rtts.length - 1, Math.floor(x * rtts.length))] : NaN;
console.log(JSON.stringify({ total, ok: rtts.length, failures, medianMs: q(0.5), p99Ms: q(0.99), maxMs: q(1), wallMs: performance.now() - t0 }));`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rate: { type: "string", default: "400" },
      seconds: { type: "string", default: "20" },
      delay: { type: "string", default: "25" },
      loss: { type: "string", default: "1" },
      mechanism: { type: "string", default: "auto" },
      json: { type: "boolean", default: false },
    },
  });
  const shape = { delayMs: Number(values.delay), lossPercent: Number(values.loss) };
  const prefix = newRunPrefix();
  await using client = await Netns.create(`${prefix}-cli`);
  await using server = await Netns.create(`${prefix}-srv`);
  (await Link.create(
    { ns: client, ifname: "c0", cidr: "10.213.230.2/24" },
    { ns: server, ifname: "s0", cidr: "10.213.230.1/24" },
  )).release();
  // Each connection's handshake and data, on a fresh port range: raise the namespace's limits.
  await client.sysctls({ "net.ipv4.ip_local_port_range": "10000 65000" });
  await server.sysctls({ "net.core.somaxconn": "4096" });
  const options = { mechanism: values.mechanism as "auto" | ShapeMechanism };
  await using up = await shapeLink(
    { ns: client, ifname: "c0", direction: "egress" },
    shape,
    options,
  );
  await using down = await shapeLink(
    { ns: server, ifname: "s0", direction: "egress" },
    shape,
    options,
  );

  const srv = new Deno.Command("ip", {
    args: ["netns", "exec", server.name, Deno.execPath(), "eval", SERVER, "10.213.230.1", "18400"],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const reader = srv.stdout.getReader();
    await reader.read();
    reader.releaseLock();
    const before = await Promise.all([up.stats(), down.stats()]);
    const out = await run(
      client.wrap([
        Deno.execPath(),
        "eval",
        CLIENT,
        "10.213.230.1",
        "18400",
        values.rate,
        values.seconds,
      ]),
      { timeoutMs: Number(values.seconds) * 1000 + 120_000, action: "Cannot run the clients" },
    );
    const after = await Promise.all([up.stats(), down.stats()]);
    const clients = JSON.parse(out.stdout.trim().split("\n").at(-1)!);
    const wallMs = clients.wallMs as number;
    const direction = (name: string, b: ShapeStats, a: ShapeStats) => ({
      direction: name,
      mechanism: a.mechanism,
      packets: a.offered - b.offered,
      packetsPerSecond: Math.round(((a.offered - b.offered) / wallMs) * 1000),
      lost: a.lost - b.lost,
      queueDropped: a.queueDropped - b.queueDropped,
      lateness: a.lateness,
      cpuPercent: a.cpuMs === undefined
        ? undefined
        : Math.round(((a.cpuMs - (b.cpuMs ?? 0)) / wallMs) * 1000) / 10,
    });
    const report = {
      shape,
      rate: Number(values.rate),
      seconds: Number(values.seconds),
      clients,
      links: [
        direction("client → server", before[0]!, after[0]!),
        direction("server → client", before[1]!, after[1]!),
      ],
    };
    console.log(JSON.stringify(report, null, values.json ? undefined : 2));
  } finally {
    try {
      srv.kill("SIGKILL");
    } catch { /* gone */ }
    await srv.stdout.cancel().catch(() => {});
    await srv.status;
  }
}

if (import.meta.main) await main();
