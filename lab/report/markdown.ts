/**
 * `report.md`: kernel, machine, command, sysctls, every experiment with its
 * observed vs expected, charts and packet timelines, and the claims ledger
 * linked to its evidence. `directory.ts` writes it with the rest of a report.
 * @module
 */
import type {
  ConnectionTimeline,
  Distribution,
  ExperimentResult,
  LabReport,
  LedgerEntry,
  RunResult,
} from "../results.ts";
import { modeText, paramsText, seconds } from "../base/format.ts";
import { markdownCell, markdownTable } from "./table.ts";

/** The anchor id of an experiment's section. */
export function experimentAnchor(id: string): string {
  return `exp-${id}`;
}

/** The anchor id of a claim's evidence in an experiment's section. */
export function claimAnchor(experiment: string, claim: string): string {
  return `claim-${claim.replace(/[^A-Za-z0-9_-]/g, "-")}-${experiment}`;
}

/** The what-ifs of an experiment as the command line writes them: `backlog=0,1000`. */
function whatIf(e: ExperimentResult): string {
  return Object.entries(e.overrides ?? {}).map(([k, vs]) => `${k}=${vs.join(",")}`).join(" ");
}

function runAnchor(experiment: string, index: number): string {
  return `run-${experiment}-${index + 1}`;
}

function runParams(run: RunResult): string {
  return paramsText(run.params, ", ") || "single run";
}

/** Each recorded sysctl's most common value over every namespace of the report. */
function baselineSysctls(report: LabReport): Map<string, string> {
  const counts = new Map<string, Map<string, number>>();
  for (const e of report.experiments) {
    for (const r of e.runs) {
      for (const values of Object.values(r.sysctls)) {
        for (const [k, v] of Object.entries(values)) {
          const c = counts.get(k) ?? new Map<string, number>();
          c.set(v, (c.get(v) ?? 0) + 1);
          counts.set(k, c);
        }
      }
    }
  }
  return new Map(
    [...counts].sort(([a], [b]) => a.localeCompare(b)).map((
      [k, c],
    ) => [k, [...c].sort((a, b) => b[1] - a[1])[0]![0]]),
  );
}

function verdictCounts(ledger: readonly LedgerEntry[]): string {
  const counts = new Map<string, number>();
  for (const l of ledger) counts.set(l.verdict, (counts.get(l.verdict) ?? 0) + 1);
  return [...counts].map(([v, n]) => `${n} ${v}`).join(", ");
}

/** `report.md`'s text. */
export function reportMarkdown(report: LabReport): string {
  const m = report.machine;
  const passed = report.experiments.filter((e) => e.passed).length;
  const baseline = baselineSysctls(report);
  const catalogue = report.ledger.filter((l) => l.source === undefined && !l.claim.includes(":"));
  const own = report.ledger.filter((l) => !catalogue.includes(l));
  const decided = catalogue.filter((l) => l.experiments.length > 0);
  const undecided = catalogue.filter((l) => l.experiments.length === 0);
  const whatIfs = report.experiments.filter((e) => e.overrides);
  const out: string[] = [];
  out.push(
    `# backlog-lab on Linux ${report.kernel}`,
    "",
    markdownTable(["", ""], [
      ["kernel", `Linux ${report.kernel} (${m.arch})`],
      ["machine", `${m.cpu}, ${m.cores} cores, ${(m.memoryMiB / 1024).toFixed(1)} GiB memory`],
      ["system", `${m.os}, Deno ${m.deno}, host ${m.hostname}`],
      ["date", report.startedAt],
      ["command", `\`${report.command}\``],
      ...(whatIfs.length
        ? [[
          "what-if",
          whatIfs.map((e) => `\`--set ${whatIf(e)}\` (${e.id})`).join("; ") +
          ": these parameters took the values given instead of the experiment's own",
        ]]
        : []),
      [
        "result",
        `${passed} of ${report.experiments.length} experiments passed in ${
          seconds(report.durationMs)
        }; claims: ${verdictCounts(decided) || "none decided"}${
          own.length ? `; claims of your own: ${verdictCounts(own)}` : ""
        }`,
      ],
    ]),
    "",
    "Every number below was read from the kernel: socket states and the LISTEN socket's queues " +
      "over inet_diag netlink (what `ss` reads), counters from `/proc/<pid>/net/netstat` and `snmp` " +
      "(changes since the clients were released), packets from tcpdump inside the namespaces. " +
      "Times are milliseconds since the clients were released.",
    "",
    "## Contents",
    "",
    "- [Claims ledger](#claims-ledger)",
    ...(own.length ? ["- [Claims of your own](#own-claims)"] : []),
    "- [Sysctls](#sysctls)",
    ...report.experiments.map((e) =>
      `- [${e.id}](#${experimentAnchor(e.id)}): ${markdownCell(e.title)}${
        e.passed ? "" : " (FAILED)"
      }`
    ),
    "",
  );

  out.push('<a id="claims-ledger"></a>', "", "## Claims ledger", "");
  if (decided.length) {
    out.push(
      "Each verdict links to the evidence in the experiment that decided it.",
      "",
      markdownTable(
        ["claim", "statement", "verdict", "evidence", "decided by"],
        decided.map((l) => [
          l.claim,
          l.statement,
          l.experiments.length
            ? `[${l.verdict}](#${claimAnchor(l.experiments[0]!, l.claim)})`
            : l.verdict,
          l.evidence,
          l.experiments.map((x) => `[${x}](#${experimentAnchor(x)})`).join(", ") || "–",
        ]),
      ),
      "",
    );
  } else {
    out.push("No experiment of this run decides a claim of the built-in catalogue.", "");
  }
  if (decided.length && undecided.length) {
    out.push(
      `Not decided by the experiments of this run: ${undecided.map((l) => l.claim).join(", ")}.`,
      "",
    );
  }
  if (own.length) out.push(...ownClaimsSection(own));

  out.push(
    '<a id="sysctls"></a>',
    "",
    "## Sysctls",
    "",
    "The value most namespaces of this run had, read back after setting. Each run lists the ones " +
      "its namespaces had otherwise.",
    "",
    markdownTable(["sysctl", "value"], [...baseline].map(([k, v]) => [`\`${k}\``, v])),
    "",
  );

  for (const e of report.experiments) out.push(...experimentSection(e, baseline));
  return out.join("\n");
}

/** Claims of your own: statement, source (a link), verdict linked to its evidence, deciders. */
function ownClaimsSection(own: readonly LedgerEntry[]): string[] {
  return [
    '<a id="own-claims"></a>',
    "",
    "## Claims of your own",
    "",
    "From the claims files given to this run, each with its source. A claim no experiment of the " +
    "run decided is undecided.",
    "",
    markdownTable(
      ["claim", "statement", "source", "verdict", "evidence", "decided by"],
      own.map((l) => [
        l.claim,
        l.statement,
        l.source
          ? `[${markdownCell(l.source.title)}](${l.source.url})${
            l.source.file ? ` (\`${l.source.file}\`)` : ""
          }`
          : "–",
        l.experiments.length
          ? `[${l.verdict}](#${claimAnchor(l.experiments[0]!, l.claim)})`
          : l.verdict,
        l.evidence,
        l.experiments.map((x) => `[${x}](#${experimentAnchor(x)})`).join(", ") || "–",
      ]),
    ),
    "",
  ];
}

/** Per run, each metric the experiment names with its last and highest value. */
function observedSection(e: ExperimentResult): string[] {
  const metrics = e.metrics ?? [];
  if (metrics.length === 0 || e.runs.length === 0) return [];
  const rows: string[][] = [];
  for (const run of e.runs) {
    metrics.forEach((m, i) => {
      const o = run.observed[m];
      rows.push([
        i === 0 ? runParams(run) : "",
        `\`${m}\``,
        o ? String(o.final) : "–",
        o ? String(o.peak) : "–",
      ]);
    });
  }
  return [
    "**Observed** (each metric's last value and its highest over the window)",
    "",
    markdownTable(["run", "metric", "final", "peak"], rows),
    "",
  ];
}

function experimentSection(e: ExperimentResult, baseline: Map<string, string>): string[] {
  const status = e.skipped ? `skipped: ${e.skipped}` : e.passed ? "passed" : "FAILED";
  const out = [
    `<a id="${experimentAnchor(e.id)}"></a>`,
    "",
    `## ${e.id}: ${e.title}`,
    "",
    `**Hypothesis.** ${e.hypothesis}`,
    "",
    `${e.file ? `\`${e.file}\`, ` : ""}${e.runs.length} run${e.runs.length === 1 ? "" : "s"}, ${
      modeText(e.mode, e.shortened)
    }${e.mode === "default" ? "" : ", "}${seconds(e.durationMs)}: **${status}**.`,
    "",
  ];
  if (e.overrides) {
    out.push(
      `**What-if.** Run with \`--set ${whatIf(e)}\`: these parameters took the values given ` +
        `instead of the experiment's own matrix${
          Object.keys(e.claims).length ? ", and its verdicts say so" : ""
        }.`,
      "",
    );
  }
  const claims = Object.entries(e.claims);
  if (claims.length === 0 && !e.skipped) out.push(...observedSection(e));
  if (claims.length) {
    out.push("**Claims decided**", "");
    for (const [id, d] of claims) {
      const text = "error" in d ? `rule error: ${d.error}` : `**${d.verdict}**: ${d.evidence}`;
      out.push(`- <a id="${claimAnchor(e.id, id)}"></a>${id}: ${text}`);
    }
    out.push("");
  }
  for (const [i, run] of e.runs.entries()) out.push(...runSection(e, run, i, baseline));
  return out;
}

function runSection(
  e: ExperimentResult,
  run: RunResult,
  index: number,
  baseline: Map<string, string>,
): string[] {
  const out = [
    `<a id="${runAnchor(e.id, index)}"></a>`,
    "",
    `### ${e.id}, run ${index + 1}: ${runParams(run)}`,
    "",
    `${run.passed ? "Passed" : "**Failed**"} in ${
      seconds(run.durationMs)
    } (${run.samples.length} ` +
    `samples; build ${run.phases.build} ms, teardown ${run.phases.teardown} ms).`,
    "",
  ];
  if (run.error) out.push(`**Error:** ${markdownCell(run.error)}`, "");
  const differing = Object.entries(run.sysctls).flatMap(([host, values]) =>
    Object.entries(values).filter(([k, v]) => baseline.get(k) !== v).map(([k, v]) =>
      `${host}: \`${k}\` = ${v}`
    )
  );
  out.push(
    `Sysctls: ${
      differing.length ? differing.join("; ") : "as in [Sysctls](#sysctls)"
    } (namespaces: ${Object.keys(run.sysctls).join(", ")}).`,
    "",
  );
  if (run.checks.length) {
    out.push(
      markdownTable(
        ["check", "metric", "expected", "observed", ""],
        run.checks.map((c) => [
          c.name,
          `\`${c.metric}\``,
          c.expected,
          `${c.observed ?? "–"}${c.atMs === null ? "" : ` at ${Math.round(c.atMs)} ms`}${
            c.detail ? `: ${c.detail}` : ""
          }`,
          c.passed ? "ok" : c.timingLimited ? "timing-limited (not judged here)" : "**FAIL**",
        ]),
      ),
      "",
    );
  }
  out.push(...linksSection(run), ...experienceSection(run));
  if (run.timeline.length) {
    out.push(
      "Timeline: " +
        run.timeline.map((s) =>
          `${Math.round(s.atMs)} ms ${s.name}${s.result ? ` (${s.result})` : ""}`
        ).join("; ") + ".",
      "",
    );
  }
  if (run.charts) {
    out.push(
      `![${
        markdownCell(`${e.id}, ${runParams(run)}: sockets and queues over time`)
      }](${run.charts.svg})`,
      "",
      `Chart as [SVG](${run.charts.svg}) or [PNG](${run.charts.png}).`,
      "",
    );
  }
  const groupOf = new Map(
    Object.entries(run.addresses).flatMap(([k, a]) =>
      k.startsWith("clients.") ? [[a, k.slice("clients.".length)]] : []
    ),
  );
  for (const [host, conns] of Object.entries(run.packets)) {
    out.push(...packetSection(host, conns, groupOf, run.pcaps?.[host]));
  }
  return out;
}

/** A duration for tables: `61 ms` below a second, `2.10 s` from one on. */
function duration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : seconds(ms);
}

/** p50 / p90 / p99 / max of a distribution, or – for none. */
function spread(d: Distribution | null): string {
  return d === null
    ? "–"
    : `${duration(d.p50)} / ${duration(d.p90)} / ${duration(d.p99)} / ${duration(d.max)}`;
}

/** Each shaped link direction: its shape, mechanism and counters. */
function linksSection(run: RunResult): string[] {
  const rows: string[][] = [];
  for (const [host, link] of Object.entries(run.links ?? {})) {
    for (
      const [k, label] of [
        ["toServer", `${host} → ${run.server.host}`],
        ["toClient", `${run.server.host} → ${host}`],
      ] as const
    ) {
      const r = link[k];
      if (!r) continue;
      const sh = r.shape;
      const shape = [
        `${sh.delayMs} ms${sh.jitterMs ? ` ± ${sh.jitterMs} ms` : ""}`,
        ...(sh.lossPercent ? [`${sh.lossPercent} % loss`] : []),
        ...(sh.rateKbit ? [`${sh.rateKbit} kbit/s`] : []),
      ].join(", ");
      const st = r.stats;
      const late = st?.lateness;
      rows.push([
        label,
        shape,
        r.mechanism,
        st ? `${st.offered} / ${st.lost} / ${st.delayed}` : "–",
        st ? String(st.queueDropped) : "–",
        late ? `${late.medianMs} / ${late.p99Ms} / ${late.maxMs} ms` : "–",
        r.problem ? `**${r.problem}**` : "ok",
      ]);
    }
  }
  if (!rows.length) return [];
  return [
    markdownTable(
      [
        "link",
        "shape",
        "delay by",
        "packets offered / lost / delayed",
        "queue drops",
        "lateness p50 / p99 / max",
        "",
      ],
      rows,
    ),
    "",
  ];
}

/** What each client group felt: outcomes and the connect() and first-byte distributions. */
function experienceSection(run: RunResult): string[] {
  const groups = Object.entries(run.experience ?? {}).filter(([, x]) => x.connections > 0);
  if (!groups.length) return [];
  return [
    markdownTable(
      [
        "clients",
        "connected / reset / refused / timed out / other / pending",
        "connect() p50 / p90 / p99 / max",
        "first reply byte p50 / p90 / p99 / max",
      ],
      groups.map(([g, x]) => {
        const o = x.outcomes;
        return [
          `${g} (${x.connections})`,
          `${o.connected} / ${o.reset} / ${o.refused} / ${o.timedOut} / ${o.failed} / ${o.pending}`,
          spread(x.connectMs),
          spread(x.firstByteMs),
        ];
      }),
    ),
    "",
  ];
}

/** How many connections and packets per connection a report's packet table shows. */
export const PACKET_TABLE_LIMITS = { connections: 4, packets: 12 };

/**
 * The connections worth showing: those with a RST or a retransmission first,
 * then the rest, in capture order.
 */
export function notableConnections(conns: readonly ConnectionTimeline[]): ConnectionTimeline[] {
  const notable = (c: ConnectionTimeline) => c.events.some((e) => e.kind === "RST" || e.retransmit);
  return [...conns.filter(notable), ...conns.filter((c) => !notable(c))];
}

function packetSection(
  host: string,
  conns: ConnectionTimeline[],
  groupOf: Map<string, string>,
  pcap?: string,
): string[] {
  const shown = notableConnections(conns).slice(0, PACKET_TABLE_LIMITS.connections);
  const out = [
    `Packets captured in \`${host}\`: ${conns.length} connection${conns.length === 1 ? "" : "s"}, ${
      conns.reduce((n, c) => n + c.events.length, 0)
    } segments${pcap ? ` ([pcap](${pcap}), opens in Wireshark or \`tcpdump -r\`)` : ""}.${
      conns.length > shown.length
        ? ` The ${shown.length} shown are those with a RST or a retransmission first.`
        : ""
    }`,
    "",
  ];
  if (!shown.length) return out;
  const rows: string[][] = [];
  for (const c of shown) {
    const events = c.events.slice(0, PACKET_TABLE_LIMITS.packets);
    const group = groupOf.get(c.client.replace(/^\[?(.*?)\]?:\d+$/, "$1"));
    const name = `${c.client}${group ? ` (${group})` : ""}`;
    for (const [k, ev] of events.entries()) {
      rows.push([
        k === 0 ? name : "",
        ev.t.toFixed(1),
        ev.dir === "in" ? "client → server" : "server → client",
        ev.kind + (ev.len ? ` (${ev.len} B)` : ""),
        ev.retransmit ? "retransmission" : "",
      ]);
    }
    if (c.events.length > events.length) {
      rows.push(["", "…", "", `${c.events.length - events.length} more`, ""]);
    }
  }
  out.push(markdownTable(["connection", "t (ms)", "direction", "segment", ""], rows), "");
  return out;
}
