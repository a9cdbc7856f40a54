/**
 * Unit tests of `lab/report/progress.ts` ({@linkcode Progress}, the times
 * cache) and of `lab/observe/machine.ts` (what a report says about the machine).
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  cpuModel,
  machineInfo,
  memoryMiB,
  osName,
  shellCommand,
} from "../../lab/observe/machine.ts";
import { Progress } from "../../lab/report/progress.ts";
import type { ExperimentOutline, ProgressEvent, RunResult } from "../../lab/results.ts";
import { readTimes, timesCachePath, writeTimes } from "../../lab/run/times.ts";

// ---------------------------------------------------------------------------
// Progress

const OUTLINES: ExperimentOutline[] = [
  { id: "queue-fills", runs: 2, lastMs: 5000, boundMs: 9000 },
  { id: "single", runs: 1, boundMs: 2000 },
];

const ERASE = "\r\x1b[2K";

function result(fields: Partial<RunResult> = {}): RunResult {
  return {
    params: {},
    mode: "fast",
    server: { host: "server", port: 8080, backlog: 1 },
    sysctls: {},
    addresses: {},
    passed: true,
    durationMs: 1000,
    phases: { build: 0, server: 0, clients: 0, observe: 0, collect: 0, teardown: 0 },
    observed: {},
    checks: [],
    samples: [],
    connections: [],
    timeline: [],
    rules: {},
    packets: {},
    ...fields,
  };
}

function start(
  experiment: string,
  index: number,
  of: number,
  params: Record<string, unknown>,
): ProgressEvent {
  return { kind: "run-start", experiment, index, of, params };
}

function end(experiment: string, index: number, of: number, r: RunResult): ProgressEvent {
  return { kind: "run-end", experiment, index, of, result: r };
}

/** A Progress with its output captured and a clock the test sets. */
function harness(live: boolean) {
  const writes: string[] = [];
  const clock = { ms: 0 };
  const progress = new Progress(OUTLINES, {
    live,
    write: (t) => writes.push(t),
    now: () => clock.ms,
    redrawMs: 5,
  });
  return { progress, writes, clock };
}

Deno.test("Progress in plain mode prints one line per finished run, as runs finish", () => {
  const { progress, writes, clock } = harness(false);
  clock.ms = 1000;
  progress.start();
  progress.onEvent(start("queue-fills", 0, 2, { backlog: 2, syncookies: 1 }));
  progress.onEvent(start("queue-fills", 1, 2, { backlog: 8, syncookies: 0 }));
  assert.deepStrictEqual(writes, [], "nothing on the start or a run's start");

  // Runs of two experiments interleave, and the second point finishes first.
  clock.ms = 1200;
  progress.onEvent(start("single", 0, 1, {}));
  clock.ms = 2500;
  const params2 = { backlog: 8, syncookies: 0 };
  progress.onEvent(
    end(
      "queue-fills",
      1,
      2,
      result({ params: params2, passed: false, error: "boom", durationMs: 1500 }),
    ),
  );
  clock.ms = 3000;
  progress.onEvent(end("single", 0, 1, result({ passed: false, durationMs: 1800 })));
  clock.ms = 4200;
  const params1 = { backlog: 2, syncookies: 1 };
  progress.onEvent(end("queue-fills", 0, 2, result({ params: params1, durationMs: 3200 })));

  assert.deepStrictEqual(writes, [
    "  [1/2] queue-fills run 2/2 (backlog=8 syncookies=0): error in 1.5 s\n",
    // No params, no last time: neither is mentioned; its last (only) run ends it.
    "  [2/2] single run 1/1: FAILED in 1.8 s; experiment 1.8 s\n",
    // The experiment's total (4200 - 1000 ms) once its last point ends, whichever that is.
    "  [1/2] queue-fills run 1/2 (backlog=2 syncookies=1): passed in 3.2 s; experiment 3.2 s (last time 5.0 s)\n",
  ]);
  progress.clear();
  progress.stop();
  assert.strictEqual(writes.length, 3, "clear() and stop() write nothing in plain mode");
});

Deno.test("Progress.line() shows runs done, elapsed time and the points running now", () => {
  const { progress, clock } = harness(true);
  try {
    assert.strictEqual(progress.line(), "", "nothing before the start");
    clock.ms = 1000;
    progress.start();
    assert.strictEqual(progress.line(), "[0/3 runs] 0.0 s");
    clock.ms = 2500;
    progress.onEvent(start("queue-fills", 0, 2, { backlog: 2, syncookies: 1 }));
    assert.strictEqual(
      progress.line(),
      "[0/3 runs] 1.5 s · queue-fills 1/2 backlog=2 syncookies=1",
      "one point running: with its params",
    );
    progress.onEvent(start("single", 0, 1, {}));
    progress.onEvent(start("queue-fills", 1, 2, { backlog: 8 }));
    clock.ms = 3750;
    assert.strictEqual(
      progress.line(),
      "[0/3 runs] 2.8 s · queue-fills 1/2, queue-fills 2/2, single 1/1",
      "several: each by its index, in the experiments' order",
    );
    progress.onEvent(end("queue-fills", 0, 2, result()));
    assert.strictEqual(progress.line(), "[1/3 runs] 2.8 s · queue-fills 2/2, single 1/1");
    progress.onEvent(end("queue-fills", 1, 2, result()));
    progress.onEvent(end("single", 0, 1, result()));
    clock.ms = 5000;
    assert.strictEqual(progress.line(), "[3/3 runs] 4.0 s");
    progress.onEvent(start("not-an-outline", 0, 1, {}));
    assert.strictEqual(progress.line(), "[3/3 runs] 4.0 s", "unknown experiments are ignored");
  } finally {
    progress.stop();
  }
});

/** Waits (bounded) until `writes` has more than `n` entries. */
async function moreWrites(writes: string[], n: number): Promise<void> {
  const deadline = performance.now() + 2000;
  while (writes.length <= n && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  assert.ok(writes.length > n, `a redraw within 2 s (writes: ${JSON.stringify(writes)})`);
}

Deno.test({
  name: "Progress in live mode redraws one line in place and stop() ends the timer",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const { progress, writes, clock } = harness(true);
    try {
      progress.clear();
      // (Not deepStrictEqual(writes, []): as an assertion function it would narrow writes to never[].)
      assert.strictEqual(writes.length, 0, "clear() erases nothing before anything was shown");

      clock.ms = 1000;
      progress.start();
      assert.strictEqual(writes.length, 1, "drawn at once on the start");
      assert.ok(writes[0]!.startsWith(`${ERASE}[0/3 runs]`), JSON.stringify(writes[0]));

      clock.ms = 1400;
      progress.onEvent(start("queue-fills", 0, 2, { backlog: 2 }));
      assert.strictEqual(writes.length, 2, "drawn at once on the run's start");
      assert.ok(writes[1]!.startsWith(`${ERASE}[0/3 runs] 0.4 s · queue-fills 1/2 backlog=2`));

      progress.onEvent(end("queue-fills", 0, 2, result({ params: { backlog: 2 } })));
      assert.ok(
        writes.every((w) => w.startsWith(ERASE) && !w.includes("\n")),
        "a finished run redraws the line rather than printing one",
      );

      // The timer redraws without any event.
      const drawn = writes.length;
      await moreWrites(writes, drawn);
      assert.ok(writes.at(-1)!.startsWith(`${ERASE}[1/3 runs]`));

      // Starting again keeps one timer (the sanitizer would see a second).
      progress.start();
      progress.onEvent(start("single", 0, 1, {}));

      const before = writes.length;
      progress.clear();
      assert.deepStrictEqual(writes.slice(before), [ERASE]);
      progress.clear();
      assert.strictEqual(writes.length, before + 1, "a second clear() writes nothing");

      // The next redraw brings the line back; stop() erases it again.
      await moreWrites(writes, before + 1);
      assert.ok(writes.at(-1)!.includes("single 1/1"), JSON.stringify(writes.at(-1)));
    } finally {
      progress.stop();
    }
    assert.strictEqual(writes.at(-1), ERASE, "stop() erased the shown line");
    const after = writes.length;
    progress.stop();
    progress.clear();
    assert.strictEqual(writes.length, after, "nothing more after stop()");
  },
});

// ---------------------------------------------------------------------------
// The times cache

Deno.test("writeTimes() and readTimes() round-trip and merge with existing entries", async () => {
  const dir = await Deno.makeTempDir({ prefix: "progress_test_" });
  try {
    const path = join(dir, "backlog-lab", "times.json");
    assert.deepStrictEqual(await readTimes(path), {}, "no file yet");
    await writeTimes({ "queue-fills:fast": 1234, "single:default": 50 }, path);
    assert.deepStrictEqual(await readTimes(path), {
      "queue-fills:fast": 1234,
      "single:default": 50,
    });
    await writeTimes({ "queue-fills:fast": 999, "other:faithful": 7 }, path);
    assert.deepStrictEqual(await readTimes(path), {
      "queue-fills:fast": 999,
      "single:default": 50,
      "other:faithful": 7,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readTimes() gives {} for an unreadable or garbage file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "progress_test_" });
  try {
    // A directory cannot be read as a file (permissions would not stop root).
    assert.deepStrictEqual(await readTimes(dir), {});
    const path = join(dir, "times.json");
    for (const text of ["not json {", "", "null", "42", '"text"']) {
      await Deno.writeTextFile(path, text);
      assert.deepStrictEqual(await readTimes(path), {}, JSON.stringify(text));
    }
    // A garbage file is replaced by a good one on the next write.
    await Deno.writeTextFile(path, "not json {");
    await writeTimes({ a: 1 }, path);
    assert.deepStrictEqual(await readTimes(path), { a: 1 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readTimes() gives {} for a JSON array", async () => {
  const dir = await Deno.makeTempDir({ prefix: "progress_test_" });
  try {
    const path = join(dir, "times.json");
    await Deno.writeTextFile(path, "[1, 2]");
    assert.deepStrictEqual(await readTimes(path), {});
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeTimes() does not throw when the cache cannot be written", async () => {
  const dir = await Deno.makeTempDir({ prefix: "progress_test_" });
  try {
    // A regular file where the cache's directory should be: mkdir fails even for root.
    const file = join(dir, "file");
    await Deno.writeTextFile(file, "x");
    const path = join(file, "backlog-lab", "times.json");
    await writeTimes({ a: 1 }, path);
    assert.deepStrictEqual(await readTimes(path), {});
    assert.strictEqual(await Deno.readTextFile(file), "x");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Runs `fn` with these environment variables (undefined = unset), then restores them. */
async function withEnv(
  vars: Record<string, string | undefined>,
  fn: () => void | Promise<void>,
): Promise<void> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) Deno.env.delete(k);
      else Deno.env.set(k, v);
    }
  };
  apply(vars);
  try {
    await fn();
  } finally {
    apply(saved);
  }
}

Deno.test("timesCachePath() honours XDG_CACHE_HOME, else HOME/.cache", async () => {
  const home = Deno.env.get("HOME");
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  await withEnv({ XDG_CACHE_HOME: "/tmp/xdg-cache", HOME: "/home/u" }, () => {
    assert.strictEqual(timesCachePath(), "/tmp/xdg-cache/backlog-lab/times.json");
  });
  await withEnv({ XDG_CACHE_HOME: undefined, HOME: "/home/u" }, () => {
    assert.strictEqual(timesCachePath(), "/home/u/.cache/backlog-lab/times.json");
  });
  await withEnv({ XDG_CACHE_HOME: undefined, HOME: undefined }, async () => {
    assert.strictEqual(timesCachePath(), undefined);
    assert.deepStrictEqual(await readTimes(), {});
    await writeTimes({ a: 1 }); // nowhere to write: nothing happens
  });
  const dir = await Deno.makeTempDir({ prefix: "progress_test_" });
  try {
    await withEnv({ XDG_CACHE_HOME: dir }, async () => {
      await writeTimes({ "queue-fills:fast": 42 });
      assert.deepStrictEqual(await readTimes(), { "queue-fills:fast": 42 });
    });
    assert.deepStrictEqual(
      JSON.parse(await Deno.readTextFile(join(dir, "backlog-lab", "times.json"))),
      { "queue-fills:fast": 42 },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.strictEqual(Deno.env.get("HOME"), home, "HOME restored");
  assert.strictEqual(Deno.env.get("XDG_CACHE_HOME"), xdg, "XDG_CACHE_HOME restored");
});

Deno.test("timesCachePath() treats an empty XDG_CACHE_HOME as unset", async () => {
  await withEnv({ XDG_CACHE_HOME: "", HOME: "/home/u" }, () => {
    assert.strictEqual(timesCachePath(), "/home/u/.cache/backlog-lab/times.json");
  });
});

// ---------------------------------------------------------------------------
// machine.ts

const X86_CPUINFO = `processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 79
model name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz
stepping\t: 1
flags\t\t: fpu vme de pse tsc

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 79
model name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz
stepping\t: 1
`;

const RASPBERRY_PI_CPUINFO = `processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3

Hardware\t: BCM2835
Revision\t: c03114
Serial\t\t: 10000000abcdef01
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
`;

const GRAVITON_CPUINFO = `processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x1
CPU part\t: 0xd0c
CPU revision\t: 1
`;

Deno.test("cpuModel() reads the model from x86 and ARM cpuinfo", () => {
  const cases: [string, string, string][] = [
    ["x86 model name", X86_CPUINFO, "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz"],
    ["ARM board Model", RASPBERRY_PI_CPUINFO, "Raspberry Pi 4 Model B Rev 1.4"],
    ["ARM Hardware", RASPBERRY_PI_CPUINFO.replace(/^Model.*\n/m, ""), "BCM2835"],
    ["ARM server CPU part", GRAVITON_CPUINFO, "0xd0c"],
    [
      "32-bit ARM model name",
      "model name\t: ARMv7 Processor rev 4 (v7l)\n",
      "ARMv7 Processor rev 4 (v7l)",
    ],
    ["empty", "", "unknown"],
    ["no known key", "processor\t: 0\nflags\t: fpu\n", "unknown"],
  ];
  for (const [name, text, expected] of cases) assert.strictEqual(cpuModel(text), expected, name);
});

Deno.test("cpuModel() does not read past an empty value", () => {
  assert.strictEqual(cpuModel("model name\t: \nstepping\t: 1\n"), "unknown");
});

Deno.test("memoryMiB() reads MemTotal in MiB", () => {
  const cases: [string, number][] = [
    ["MemTotal:       16323912 kB\nMemFree:         1234 kB\n", 15941],
    ["MemFree:         1234 kB\nMemTotal:        2097152 kB\n", 2048],
    ["MemFree:         1234 kB\n", 0],
    ["", 0],
  ];
  for (const [text, expected] of cases) assert.strictEqual(memoryMiB(text), expected, text);
});

Deno.test("osName() reads PRETTY_NAME, quoted or not", () => {
  const cases: [string, string][] = [
    ['NAME="Ubuntu"\nPRETTY_NAME="Ubuntu 24.04.1 LTS"\nID=ubuntu\n', "Ubuntu 24.04.1 LTS"],
    ["ID=alpine\nPRETTY_NAME=Alpine\n", "Alpine"],
    ['NAME="Debian GNU/Linux"\nID=debian\n', "unknown"],
    ['PRETTY_NAME=""\n', "unknown"],
    ["", "unknown"],
  ];
  for (const [text, expected] of cases) assert.strictEqual(osName(text), expected, text);
});

Deno.test("osName() strips single quotes", () => {
  assert.strictEqual(osName("PRETTY_NAME='Arch Linux'\n"), "Arch Linux");
});

Deno.test("shellCommand() quotes only the arguments a shell would split or expand", () => {
  const cases: [string[], string][] = [
    [["deno", "task", "lab"], "deno task lab"],
    [["--only=a,b", "x/y.ts", "k:v@h%1+2"], "--only=a,b x/y.ts k:v@h%1+2"],
    [["--report", "out dir"], "--report 'out dir'"],
    [["--only", "a|b"], "--only 'a|b'"],
    [["it's"], `'it'\\''s'`],
    [['say "hi"'], `'say "hi"'`],
    [["$HOME", "*.ts"], "'$HOME' '*.ts'"],
    [[""], "''"],
    [[], ""],
  ];
  for (const [argv, expected] of cases) {
    assert.strictEqual(shellCommand(argv), expected, JSON.stringify(argv));
  }
});

Deno.test("machineInfo() describes this machine", async () => {
  const info = await machineInfo();
  assert.ok(Number.isInteger(info.cores) && info.cores >= 1, `cores: ${info.cores}`);
  assert.strictEqual(info.deno, Deno.version.deno);
  assert.strictEqual(info.arch, Deno.build.arch);
  assert.strictEqual(info.hostname, Deno.hostname());
  assert.ok(info.cpu.length > 0);
  assert.ok(info.os.length > 0);
  if (Deno.build.os === "linux") assert.ok(info.memoryMiB > 0, `memoryMiB: ${info.memoryMiB}`);
});
