/**
 * Tests of `lab/describe/kernel.ts` and of planning for a kernel
 * (`planExperiment(def, { kernel })`): sysctls set only where they exist,
 * values as functions of the kernel, `requires` skipping points, windows
 * stretched by the time scale; and the kernel-aware expectations of the
 * shipped experiments, planned for fake kernels (5.10 before and after the
 * SYN-queue backport, 6.12, 6.18, one whose probe could not tell).
 * @module
 */
import { deepStrictEqual as deepEqual, equal, match, ok, throws } from "node:assert/strict";
import { ExperimentDefinitionError } from "../../lab/base/errors.ts";
import {
  hasChange,
  hasSysctl,
  KERNEL_CHANGES,
  type KernelFacts,
  MAX_WINDOW_STRETCH_MS,
  stretchedWindowMs,
  sysctlNumber,
  unprobedKernel,
} from "../../lab/describe/kernel.ts";
import { loadExperiments } from "../../lab/describe/load.ts";
import { planExperiment } from "../../lab/describe/plan.ts";
import type { PlannedExperiment } from "../../lab/describe/run_plan.ts";
import { defineExperiment } from "../../lab/describe/validate.ts";
import { ROOT } from "../_helpers.ts";

/** A fresh namespace's sysctls of Linux 6.18 (the kernel the experiments were written on). */
const SYSCTLS_6_18: Record<string, string> = {
  "net.core.somaxconn": "4096",
  "net.ipv4.tcp_max_syn_backlog": "2048",
  "net.ipv4.tcp_syncookies": "1",
  "net.ipv4.tcp_abort_on_overflow": "0",
  "net.ipv4.tcp_synack_retries": "5",
  "net.ipv4.tcp_syn_retries": "6",
  "net.ipv4.tcp_syn_linear_timeouts": "4",
  "net.ipv4.tcp_rto_min_us": "200000",
  "net.ipv4.tcp_rto_max_ms": "120000",
  "net.ipv4.ip_local_port_range": "32768\t60999",
};

/** Fake facts: 6.18's sysctls minus `without`, a SYN-queue answer, native unless said. */
function kernel(
  release: string,
  synQueueExtra: 0 | 1 | null,
  without: string[] = [],
  extra: Partial<KernelFacts> = {},
): KernelFacts {
  const sysctls = Object.fromEntries(
    Object.entries(SYSCTLS_6_18).filter(([k]) => !without.includes(k)),
  );
  return {
    release,
    sysctls,
    behaviour: { synQueueExtra },
    machine: "native",
    timeScale: 1,
    probed: true,
    ...extra,
  };
}

const LINEAR = "net.ipv4.tcp_syn_linear_timeouts";
const RTO_MIN = "net.ipv4.tcp_rto_min_us";
const RTO_MAX = "net.ipv4.tcp_rto_max_ms";
/** 5.10.223 (bullseye's main archive): before the backport of 3479c7549fb1, no 6.x sysctls. */
const K5_10_223 = kernel("5.10.0-32-amd64", 0, [LINEAR, RTO_MIN, RTO_MAX]);
/** 5.10.262 (bullseye-security): the backport, still no 6.x sysctls. */
const K5_10_262 = kernel("5.10.0-46-amd64", 1, [LINEAR, RTO_MIN, RTO_MAX]);
/** 6.12.118: linear timeouts and rto_min_us, no rto_max_ms. */
const K6_12 = kernel("6.12.118+deb13-amd64", 1, [RTO_MAX]);
const K6_18 = kernel("6.18.44", 1);
/** A kernel whose SYN-queue probe could not tell. */
const UNKNOWN = kernel("9.9.9", null);

function tiny(extra: Record<string, unknown> = {}) {
  return defineExperiment({
    id: "tiny",
    title: "t",
    hypothesis: "h",
    matrix: { linear: [4, 0] },
    hosts: {
      server: {},
      client: {
        sysctls: {
          "net.core.somaxconn": 4096,
          [LINEAR]: (p: { linear: number }, k: KernelFacts) =>
            hasSysctl(k, LINEAR) ? p.linear : undefined,
        },
      },
    },
    server: { host: "server", backlog: (_p: unknown, k: KernelFacts) => k.release === "x" ? 1 : 2 },
    clients: [{ name: "c", host: "client", count: 3 }],
    observe: { intervalMs: 20, windowMs: 1000 },
    expect: [{
      name: "queued",
      metric: "server.ESTABLISHED",
      equals: (_p: unknown, k: KernelFacts) => k.behaviour.synQueueExtra ?? 7,
    }],
    claims: { "A2.1": () => ({ verdict: "reproduced", evidence: "n" }) },
    ...extra,
  } as never);
}

Deno.test("hasSysctl() and sysctlNumber() read a fresh namespace's sysctls; unprobed facts assume all", () => {
  ok(hasSysctl(K6_18, LINEAR));
  ok(!hasSysctl(K5_10_223, LINEAR));
  ok(
    hasSysctl(unprobedKernel(), LINEAR),
    "planning without a kernel takes the definition as written",
  );
  equal(sysctlNumber(K6_18, RTO_MAX), 120_000);
  equal(sysctlNumber(K6_12, RTO_MAX), undefined);
  equal(sysctlNumber(unprobedKernel(), RTO_MAX), undefined);
});

Deno.test("hasChange() tells a change by the probe or the sysctl, never by the version", () => {
  const byCommit = (c: string) => KERNEL_CHANGES.find((x) => x.commit === c)!;
  const synQueue = byCommit("3479c7549fb1");
  equal(hasChange(K5_10_223, synQueue), false);
  equal(hasChange(K5_10_262, synQueue), true, "5.10.262 has the backport, whatever its version");
  equal(hasChange(UNKNOWN, synQueue), undefined);
  equal(hasChange(K6_12, byCommit("ccce324dabfe")), true);
  equal(hasChange(K5_10_262, byCommit("ccce324dabfe")), false);
  equal(hasChange(K6_12, byCommit("1280c26228bd")), false);
  equal(hasChange(unprobedKernel(), byCommit("1280c26228bd")), undefined);
});

Deno.test("planExperiment() sets a sysctl only where a function gives a value, and gives functions the kernel", () => {
  const on618 = planExperiment(tiny(), { kernel: K6_18 });
  deepEqual(on618.plans.map((p) => p.hosts[1]!.sysctls[LINEAR]), ["4", "0"]);
  equal(on618.plans[0]!.expectations[0]!.min, 1);
  const old = planExperiment(tiny(), { kernel: K5_10_223 });
  deepEqual(old.plans.map((p) => Object.keys(p.hosts[1]!.sysctls)), [
    ["net.core.somaxconn"],
    ["net.core.somaxconn"],
  ]);
  equal(old.plans[0]!.expectations[0]!.min, 0);
  equal(old.kernel, K5_10_223);
  equal(planExperiment(tiny(), { kernel: UNKNOWN }).plans[0]!.expectations[0]!.max, 7);
  equal(planExperiment(tiny(), { kernel: { ...K6_18, release: "x" } }).plans[0]!.server.backlog, 1);
});

Deno.test("planExperiment() refuses a sysctl the kernel lacks, naming the field and how to make it optional", () => {
  const def = tiny({
    hosts: { server: {}, client: { sysctls: { [RTO_MAX]: 120000 } } },
  });
  throws(() => planExperiment(def, { kernel: K6_12 }), (e: unknown) => {
    ok(e instanceof ExperimentDefinitionError);
    match(e.message, /hosts\.client\.sysctls\.net\.ipv4\.tcp_rto_max_ms/);
    match(e.message, /this kernel has no sysctl "net\.ipv4\.tcp_rto_max_ms"/);
    match(e.message, /this is Linux 6\.12\.118\+deb13-amd64/);
    match(e.message, /hasSysctl\(k, "net\.ipv4\.tcp_rto_max_ms"\) \? value : undefined/);
    return true;
  });
  // Unprobed facts (loading, --list) plan it as written.
  equal(planExperiment(def).plans.length, 2);
});

Deno.test("planExperiment() skips the points `requires` refuses, with the reason, in matrix order", () => {
  const def = tiny({
    requires: (p: { linear: number }, k: KernelFacts) =>
      p.linear === 4 && !hasSysctl(k, LINEAR) ? `no ${LINEAR} on ${k.release}` : undefined,
  });
  const old = planExperiment(def, { kernel: K5_10_223 });
  deepEqual(old.plans.map((p) => p.params), [{ linear: 0 }]);
  deepEqual(old.plans.map((p) => [p.index, p.of]), [[1, 2]], "a plan keeps its matrix index");
  deepEqual(old.skipped, [{
    params: { linear: 4 },
    index: 0,
    reason: `no ${LINEAR} on 5.10.0-32-amd64`,
  }]);
  deepEqual(planExperiment(def, { kernel: K6_18 }).skipped, []);
  const never = tiny({ requires: () => "emulated" });
  const all = planExperiment(never, { kernel: K6_18 });
  equal(all.plans.length, 0);
  deepEqual(all.skipped.map((s) => s.reason), ["emulated", "emulated"]);
  throws(
    () => planExperiment(tiny({ requires: () => "" }), { kernel: K6_18 }),
    /requires.*a reason \(a non-empty string\) or undefined/,
  );
  throws(() => tiny({ requires: "tcg" }), /requires.*expected a function/);
});

Deno.test("planExperiment() stretches the observation window by the kernel's time scale, never below it, by 2 min at most", () => {
  equal(
    planExperiment(tiny(), { kernel: { ...K6_18, timeScale: 20 } }).plans[0]!.observe.windowMs,
    20_000,
  );
  // A 33 s window on a 70 times slower guest: 33 s + 2 min, not 38 min.
  equal(stretchedWindowMs(33_000, { ...K6_18, timeScale: 70 }), 33_000 + MAX_WINDOW_STRETCH_MS);
  equal(MAX_WINDOW_STRETCH_MS, 120_000);
  equal(stretchedWindowMs(8_000, { ...K6_18, timeScale: 10 }), 80_000);
  equal(stretchedWindowMs(8_000, { ...K6_18, timeScale: 20 }), 128_000);
  equal(planExperiment(tiny(), { kernel: K6_18 }).plans[0]!.observe.windowMs, 1000);
  equal(
    planExperiment(tiny(), { kernel: { ...K6_18, timeScale: 0.5 } }).plans[0]!.observe.windowMs,
    1000,
  );
});

Deno.test("defineExperiment() checks kernelChanges against KERNEL_CHANGES", () => {
  tiny({ kernelChanges: ["3479c7549fb1"] });
  throws(
    () => tiny({ kernelChanges: ["3479c7549fb2"] }),
    /kernelChanges\[0\].*did you mean "3479c7549fb1"/,
  );
  throws(() => tiny({ kernelChanges: "3479c7549fb1" }), /kernelChanges.*an array of commit ids/);
});

// ---------------------------------------------------------------------------
// The shipped experiments, planned for other kernels

const shipped = await loadExperiments([`${ROOT}experiments`]);
function planned(id: string, k: KernelFacts): PlannedExperiment {
  const e = shipped.find((x) => x.definition.id === id);
  ok(e && "plans" in e, `no experiment ${id}`);
  return planExperiment(e.definition, { kernel: k });
}
const point = (e: PlannedExperiment, params: Record<string, unknown>) => {
  const p = e.plans.find((x) => Object.entries(params).every(([k, v]) => x.params[k] === v));
  ok(p, `no point ${JSON.stringify(params)} in ${e.definition.id}`);
  return p;
};
const check = (p: ReturnType<typeof point>, name: string) => {
  const c = p.expectations.find((x) => x.name === name);
  ok(c, `no check "${name}"`);
  return [c.min, c.max];
};

Deno.test("every shipped experiment plans on 5.10, 6.12, 6.18 and an unknown kernel", () => {
  for (
    const k of [K5_10_223, K5_10_262, K6_12, K6_18, UNKNOWN, {
      ...K6_18,
      timeScale: 20,
      machine: "tcg" as const,
    }]
  ) {
    for (const e of shipped) {
      if (!("plans" in e)) continue;
      const p = planExperiment(e.definition, { kernel: k });
      ok(
        p.plans.length + p.skipped.length === e.plans.length,
        `${e.definition.id} on ${k.release}`,
      );
    }
  }
});

Deno.test("syn-queue-bound expects backlog + 1 after commit 3479c7549fb1, the backlog before, and either when unknown", () => {
  const at = { backlog: 4, maxSynBacklog: 2048 };
  for (
    const [k, cookies1, cookies0] of [
      [K5_10_223, [4, 4], [4, 4]],
      [K5_10_262, [5, 5], [5, 5]],
      [K6_18, [5, 5], [5, 5]],
      [UNKNOWN, [4, 5], [4, 5]],
    ] as const
  ) {
    const e = planned("syn-queue-bound", k);
    deepEqual(check(point(e, { ...at, syncookies: 1 }), "SYN_RECV bound"), cookies1, k.release);
    deepEqual(check(point(e, { ...at, syncookies: 0 }), "SYN_RECV bound"), cookies0, k.release);
  }
  // B=64, M=16, cookies 0: the quarter rule binds on both sides (13).
  deepEqual(
    check(
      point(planned("syn-queue-bound", K5_10_223), {
        backlog: 64,
        maxSynBacklog: 16,
        syncookies: 0,
      }),
      "SYN_RECV bound",
    ),
    [13, 13],
  );
  // A cookie for every held SYN beyond the queue: one more where the queue holds one less.
  const cookies = (k: KernelFacts) =>
    check(point(planned("syn-queue-bound", k), { ...at, syncookies: 1 }), "cookies sent");
  deepEqual(cookies(K5_10_223), [7, 7]);
  deepEqual(cookies(K6_18), [6, 6]);
  deepEqual(cookies(UNKNOWN), [6, 7]);
});

Deno.test("client-syn-retransmission runs only the default point where tcp_syn_linear_timeouts is missing, and predicts doubling", () => {
  const old = planned("client-syn-retransmission", K5_10_223);
  deepEqual(old.plans.map((p) => p.params.linear), ["default"]);
  match(
    old.skipped[0]!.reason,
    /no net\.ipv4\.tcp_syn_linear_timeouts \(commit ccce324dabfe, v6\.5\)/,
  );
  const p = old.plans[0]!;
  equal(p.hosts[1]!.sysctls[LINEAR], undefined, "the default point leaves the sysctl alone");
  // Doubling from 1 s with tcp_syn_retries 1: SYNs at 0 and 1 s, one retransmission each.
  deepEqual(p.packetExpectations[0]!.count, { min: 2, max: 2 });
  deepEqual(check(p, "SYNs retransmitted"), [2, 2]);
  const now = planned("client-syn-retransmission", K6_12);
  deepEqual(now.plans.map((x) => x.params.linear), ["default", 0]);
  // Linear 4 (the default): SYNs at 0, 1, 2 s: two retransmissions each.
  deepEqual(check(now.plans[0]!, "SYNs retransmitted"), [4, 4]);
  equal(now.plans[1]!.hosts[1]!.sysctls[LINEAR], "0");
});

Deno.test("syn-storm-syncookies requires a machine that sends 10,000 SYNs in time", () => {
  const tcg = planned("syn-storm-syncookies", { ...K6_18, machine: "tcg", timeScale: 18 });
  equal(tcg.plans.length, 0);
  match(tcg.skipped[0]!.reason, /10,000 SYNs must go out within the first SYN-ACK retransmission/);
  equal(planned("syn-storm-syncookies", K5_10_223).plans.length, 2);
  // The storm's bound follows the kernel: 4096 before the backport, 4097 after.
  deepEqual(
    check(point(planned("syn-storm-syncookies", K5_10_223), { syncookies: 1 }), "SYN_RECV bound"),
    [4096, 4096],
  );
  deepEqual(
    check(point(planned("syn-storm-syncookies", K6_18), { syncookies: 1 }), "SYN_RECV bound"),
    [4097, 4097],
  );
});

Deno.test("slow-server-under-sustained-load scales its load down 8× on a machine too slow for it, keeping its ratios", () => {
  const shape = (k: KernelFacts) => {
    const p = point(planned("slow-server-under-sustained-load", k), {
      abortOnOverflow: 1,
      syncookies: 0,
    });
    const g = p.groups[0]!;
    return {
      backlog: p.server.backlog,
      accept: p.server.accept,
      perSecond: g.arrivals?.perSecond,
      forMs: g.arrivals?.forMs,
      bound: check(p, "accept queue bound")[1],
      delayMs: p.links[0]?.toServer?.delayMs,
    };
  };
  deepEqual(shape(K6_18), {
    backlog: 16,
    accept: { perSecond: 200 },
    perSecond: 400,
    forMs: 1000,
    bound: 17,
    delayMs: 25,
  });
  // Time scale 4 is still native enough; above it (a TCG guest) the load is scaled.
  equal(shape({ ...K6_18, machine: "kvm", timeScale: 4 }).backlog, 16);
  deepEqual(shape({ ...K5_10_223, machine: "tcg", timeScale: 74 }), {
    backlog: 2,
    accept: { perSecond: 25 },
    perSecond: 50,
    forMs: 8000,
    bound: 3,
    delayMs: 25,
  });
  // Whether the scaled load resets anyone is recorded there, never a failure; natively it is.
  const limited = (k: KernelFacts) =>
    point(planned("slow-server-under-sustained-load", k), { abortOnOverflow: 1, syncookies: 0 })
      .expectations.filter((e) => e.timingLimited).map((e) => e.name);
  deepEqual(limited(K6_18), []);
  deepEqual(limited({ ...K5_10_223, machine: "tcg", timeScale: 74 }), [
    "resets with abort_on_overflow",
    "RSTs sent with abort_on_overflow",
  ]);
});
