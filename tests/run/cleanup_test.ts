import {
  deepStrictEqual as deepEqual,
  match,
  ok,
  rejects,
  strictEqual as equal,
} from "node:assert/strict";
import { defineExperiment } from "../../lab/describe/validate.ts";
import { Lab } from "../../lab/run/lab.ts";
import { preflight } from "../../lab/topology/preflight.ts";
import { RUNS_ROOT } from "../../lab/base/run_record.ts";
import {
  hostSysctls,
  hostVeths,
  labProcesses,
  namespacesWith,
  rootTest,
  runCli,
  spawnCli,
  until,
} from "../_helpers.ts";

function tiny(overrides: { somaxconn?: number; equals?: number; windowMs?: number } = {}) {
  return defineExperiment({
    id: "tiny",
    title: "tiny",
    hypothesis: "listen(1) queues 2",
    hosts: {
      server: { sysctls: { "net.core.somaxconn": overrides.somaxconn ?? 4096 } },
      client: {},
    },
    server: { host: "server", backlog: 1 },
    clients: [{ name: "c", host: "client", count: 3, start: { intervalMs: 2 } }],
    observe: { intervalMs: 20, windowMs: overrides.windowMs ?? 300 },
    expect: [{ name: "queued", metric: "server.ESTABLISHED", equals: overrides.equals ?? 2 }],
    claims: { "A2.1": () => ({ verdict: "reproduced", evidence: "n/a" }) },
  });
}

async function assertNothingLeft(
  prefix: string,
  sysctlsBefore: Record<string, string>,
): Promise<void> {
  deepEqual(await namespacesWith(prefix), [], "no namespace of the run is left");
  deepEqual(labProcesses(prefix), [], "no process of the lab is left");
  deepEqual(await hostVeths(), [], "no veth in the host namespace");
  deepEqual(hostSysctls(), sysctlsBefore, "the host's sysctls are unchanged");
}

rootTest("Lab.runExperiment() removes everything after a normal run", async () => {
  const before = hostSysctls();
  await using lab = new Lab();
  await preflight(lab.prefix);
  const r = await lab.runExperiment(tiny());
  ok(r.passed);
  await assertNothingLeft(lab.prefix, before);
});

rootTest(
  "Lab.runExperiment() removes everything after a failed expectation, reporting the last value",
  async () => {
    const before = hostSysctls();
    await using lab = new Lab();
    const r = await lab.runExperiment(tiny({ equals: 99 }));
    equal(r.passed, false);
    const check = r.runs[0]!.checks[0]!;
    equal(check.passed, false);
    equal(check.observed, 2, "the last value seen is reported");
    match(check.expected, /= 99/);
    await assertNothingLeft(lab.prefix, before);
  },
);

rootTest("Lab.runExperiment() removes everything after an error while building", async () => {
  const before = hostSysctls();
  await using lab = new Lab();
  const r = await lab.runExperiment(tiny({ somaxconn: -1 }));
  equal(r.passed, false);
  match(
    r.runs[0]!.error ?? "",
    /Cannot set sysctl "net\.core\.somaxconn" in namespace "bl-.*-server": value "-1" was rejected/,
  );
  await assertNothingLeft(lab.prefix, before);
});

rootTest("Lab.runExperiment() removes everything when aborted mid-observation", async () => {
  const before = hostSysctls();
  const controller = new AbortController();
  await using lab = new Lab({ signal: controller.signal });
  const running = lab.runExperiment(tiny({ equals: 99, windowMs: 20_000 }));
  await until(
    "the server to listen",
    async () =>
      labProcesses(lab.prefix).length >= 3 && (await namespacesWith(lab.prefix)).length === 2,
    (ok) => ok,
  );
  controller.abort(new Error("test abort"));
  await rejects(running, /test abort/);
  await assertNothingLeft(lab.prefix, before);
});

for (
  const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
    ["SIGHUP", 129],
    ["SIGQUIT", 131],
  ] as const
) {
  rootTest(`the CLI removes everything on ${signal} and exits ${code}`, async () => {
    const before = hostSysctls();
    const child = spawnCli(["--filter", "syn-dropped"]);
    const prefix = `bl-${child.pid}-`;
    try {
      await until(
        "the run's namespaces",
        async () => (await namespacesWith(prefix)).some((n) => n.endsWith("-1-client")),
        (ok) => ok,
      );
      await until("its programs", () => labProcesses(prefix).length >= 4, (ok) => ok);
      child.kill(signal);
      const out = await child.output();
      equal(out.code, code);
      match(
        new TextDecoder().decode(out.stderr),
        new RegExp(`Interrupted by ${signal}; every namespace and process`),
      );
      await assertNothingLeft(prefix, before);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
    }
  });
}

rootTest(
  "a new run removes what a SIGKILLed run left behind, temporary files included",
  async () => {
    const before = hostSysctls();
    // An experiment with captures, so that the run has temporary files (pcaps).
    const child = spawnCli(["--filter", "ss-queues"]);
    const prefix = `bl-${child.pid}-`;
    const runDirs = () =>
      [...Deno.readDirSync(RUNS_ROOT)].filter((e) => e.name.startsWith(prefix)).map((e) =>
        `${RUNS_ROOT}/${e.name}`
      );
    const pcaps = () =>
      runDirs().flatMap((d) =>
        [...Deno.readDirSync(`${d}/tmp`)].filter((f) => f.name.endsWith(".pcap"))
      );
    await until(
      "the run's namespaces",
      async () => (await namespacesWith(prefix)).some((n) => n.endsWith("-1-client")),
      (ok) => ok,
    );
    await until("its programs", () => labProcesses(prefix).length >= 4, (ok) => ok);
    await until("its capture file", () => pcaps().length, (n) => n > 0);
    child.kill("SIGKILL");
    const killed = await child.output();
    equal(killed.signal, "SIGKILL");
    const left = await namespacesWith(prefix);
    ok(left.length >= 2, `a SIGKILLed run leaves its namespaces (${left.join(", ")})`);
    ok(labProcesses(prefix).length > 0, "and its processes");
    const [dir] = runDirs();
    ok(dir && pcaps().length > 0, "and its run directory with its pcaps");

    const next = await runCli(["--filter", "syn-dropped"]);
    equal(next.code, 0, next.stderr);
    match(
      next.stdout,
      new RegExp(`Removed ${left.length} namespaces left by a dead run: ${prefix}`),
    );
    await assertNothingLeft(prefix, before);
    await rejects(Deno.stat(dir!), Deno.errors.NotFound, "its run directory and pcaps are gone");
    deepEqual(runDirs(), []);
  },
);

rootTest(
  "a client group whose start condition never holds fails the run clearly, leaving nothing",
  async () => {
    const before = hostSysctls();
    await using lab = new Lab();
    const r = await lab.runExperiment(defineExperiment({
      id: "never-starts",
      title: "never",
      hypothesis: "the late group waits for a queue that never fills",
      hosts: { server: {}, client: {} },
      server: { host: "server", backlog: 1 },
      clients: [
        { name: "fill", host: "client", count: 1 },
        {
          name: "late",
          host: "client",
          count: 1,
          startWhen: { metric: "server.ESTABLISHED", equals: 5 },
        },
      ],
      observe: { intervalMs: 20, windowMs: 200 },
      expect: [{ name: "queued", metric: "server.ESTABLISHED", equals: 1, over: "always" }],
      claims: { "A2.1": () => ({ verdict: "reproduced", evidence: "n/a" }) },
    }));
    equal(r.passed, false);
    match(
      r.runs[0]!.error ?? "",
      /Cannot start client group "late": server\.ESTABLISHED = 5 did not hold within 200 ms \(last value 1\)/,
    );
    await assertNothingLeft(lab.prefix, before);
  },
);
