import {
  deepStrictEqual as deepEqual,
  match,
  ok as assert,
  rejects,
  strictEqual as equal,
  throws,
} from "node:assert/strict";
import { join } from "node:path";
import {
  gunzip,
  readNewc,
  S_IFCHR,
  S_IFDIR,
  S_IFLNK,
  S_IFREG,
  writeNewc,
} from "../../lab/kernel/cpio.ts";
import {
  buildInitramfs,
  findStaticBusybox,
  GUEST_MODULES,
  initScript,
  isStaticElf,
  MODPROBE_SCRIPT,
  moduleName,
  parseModulesBuiltin,
  parseModulesDep,
  planModules,
} from "../../lab/kernel/initramfs.ts";
import { PreflightError } from "../../lab/base/errors.ts";
import { fakeModulesDir, TESTDATA, withTempDir } from "./_helpers.ts";

const enc = new TextEncoder();

Deno.test("writeNewc() and readNewc() round-trip files, directories, links and device nodes", () => {
  const entries = [
    { name: "bin", mode: S_IFDIR | 0o755 },
    { name: "bin/a", mode: S_IFREG | 0o755, data: enc.encode("12345") },
    { name: "bin/sh", mode: S_IFLNK | 0o777, data: enc.encode("busybox") },
    { name: "dev", mode: S_IFDIR | 0o755 },
    { name: "dev/console", mode: S_IFCHR | 0o600, rdev: { major: 5, minor: 1 } },
  ];
  const bytes = writeNewc(entries);
  equal(bytes.length % 4, 0);
  deepEqual(readNewc(bytes), entries);
  deepEqual(writeNewc(entries), bytes, "the same input gives the same bytes");
  throws(() => writeNewc([{ name: "/abs", mode: S_IFREG }]), /names must be relative/);
  throws(() => readNewc(enc.encode("070702".padEnd(120, "0"))), /bad magic "070702" at offset 0/);
});

Deno.test("writeNewc() output is what cpio(1) lists", async (t) => {
  const cpio = await new Deno.Command("sh", { args: ["-c", "command -v cpio"], stdout: "null" })
    .output();
  if (!cpio.success) {
    t.step({ name: "cpio(1) is not installed", ignore: true, fn: () => {} });
    return;
  }
  const bytes = writeNewc([
    { name: "etc", mode: S_IFDIR | 0o755 },
    { name: "etc/x", mode: S_IFREG | 0o644, data: enc.encode("abc") },
    { name: "dev/null", mode: S_IFCHR | 0o666, rdev: { major: 1, minor: 3 } },
  ]);
  const child = new Deno.Command("cpio", {
    args: ["-t", "-v", "--quiet"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(bytes);
  await w.close();
  const out = await child.output();
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  deepEqual(lines.map((l) => l.split(/\s+/).at(-1)), ["etc", "etc/x", "dev/null"]);
  match(lines[2]!, /^crw-rw-rw-.*1,\s+3/);
});

Deno.test("parseModulesDep() and moduleName() read recorded modules.dep lines", () => {
  const dep = parseModulesDep(Deno.readTextFileSync(join(TESTDATA, "modules-7.2.dep")));
  deepEqual(dep.get("9p"), {
    path: "kernel/fs/9p/9p.ko.xz",
    deps: ["kernel/net/9p/9pnet.ko.xz", "kernel/fs/netfs/netfs.ko.xz"],
  });
  equal(moduleName("kernel/drivers/char/hw_random/virtio-rng.ko"), "virtio_rng");
  equal(moduleName("kernel/arch/x86/crypto/crc32c-intel.ko.zst"), "crc32c_intel");
  deepEqual(
    [...parseModulesBuiltin(Deno.readTextFileSync(join(TESTDATA, "modules-5.10.builtin")))],
    ["ipv6", "af_packet"],
  );
});

Deno.test("planModules() loads dependencies first, each once, and skips built-in modules", () => {
  const dep = parseModulesDep(Deno.readTextFileSync(join(TESTDATA, "modules-7.2.dep")));
  const builtin = parseModulesBuiltin(
    Deno.readTextFileSync(join(TESTDATA, "modules-7.2.builtin")),
  );
  const plan = planModules(GUEST_MODULES, dep, builtin);
  const names = plan.load.map(moduleName);
  equal(new Set(names).size, names.length, "each module once");
  for (const m of dep.values()) {
    if (!plan.load.includes(m.path)) continue;
    for (const d of m.deps) {
      assert(plan.load.indexOf(d) < plan.load.indexOf(m.path), `${d} before ${m.path}`);
    }
  }
  deepEqual(names.slice(0, 6), ["virtio_mmio", "netfs", "9pnet", "9pnet_virtio", "9p", "overlay"]);
  assert(names.includes("tcp_diag") && names.indexOf("inet_diag") < names.indexOf("tcp_diag"));
  deepEqual(plan.builtin, ["af_packet"]);
  // Optional modules this excerpt lacks are reported, not fatal.
  assert(plan.absent.includes("nft_counter"));
  assert(plan.absent.includes("sch_tbf"));
});

Deno.test("planModules() names a required module the kernel lacks, and the fix", () => {
  const dep = parseModulesDep("kernel/fs/overlayfs/overlay.ko:\n");
  throws(
    () => planModules(GUEST_MODULES, dep, new Set()),
    /Cannot build an initramfs: the kernel has neither built in nor as a module "virtio_mmio" \(.*\), "9pnet_virtio" .* use a kernel of the generic amd64 flavour/,
  );
});

Deno.test("initScript() mounts the 9p shares, runs run.sh chrooted and reports the exit code", async () => {
  const s = initScript({ release: "5.10.0-32-amd64", hostModulesDir: "/c/it's/lib/modules/5.10" });
  const lines = s.split("\n");
  equal(lines[0], "#!/bin/busybox sh");
  const order = [
    "mount -t proc proc /proc",
    'insmod "/lib/modules/$m"',
    'mount -t 9p -o "$opts" blctl /ctl',
    ". /ctl/vm.env",
    'mount -t 9p -o "$opts,ro,cache=loose" blroot /lower',
    "mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot",
    "echo /bin/bl-modprobe > /proc/sys/kernel/modprobe",
    'mount -t 9p -o "$opts" blshare "/newroot$BL_SHARE"',
    "> /ctl/guest.json",
    'say "READY"',
    "chroot /newroot /bin/sh /run/backlog-lab-vm/run.sh",
    'echo "$rc" > /ctl/exit-code.tmp && mv /ctl/exit-code.tmp /ctl/exit-code',
    "sync",
    "reboot -f",
  ];
  let at = -1;
  for (const piece of order) {
    const i = lines.findIndex((l, n) => n > at && l.includes(piece));
    assert(i > at, `"${piece}" after line ${at}:\n${s}`);
    at = i;
  }
  // Paths are quoted for sh; the probe mode stops before any module or mount.
  assert(s.includes(`mods=/newroot'/c/it'"'"'s/lib/modules/5.10'`));
  assert(s.indexOf("backlog_lab.mode=probe") < s.indexOf("insmod"));
  // No network device is configured, only loopback.
  assert(!/udhcpc|ip (addr|route) add|eth0/.test(s));
  // Every failure path ends the guest, so QEMU exits instead of hanging.
  match(s, /fail\(\) \{ say "FAILED: \$\*"; sync; reboot -f;/);
  const sh = await new Deno.Command("sh", { args: ["-n", "-c", s], stderr: "piped" }).output();
  assert(sh.success, `sh -n: ${new TextDecoder().decode(sh.stderr)}`);
});

Deno.test("isStaticElf() tells a static busybox from a dynamic program", async () => {
  assert(!isStaticElf(await Deno.readFile(Deno.execPath())), "deno is dynamically linked");
  assert(!isStaticElf(enc.encode("#!/bin/sh\n")));
});

Deno.test("buildInitramfs() holds init, busybox, console, the planned modules in order, decompressed", async () => {
  await withTempDir(async (dir) => {
    const release = "7.2.13+deb14-amd64";
    const modulesDir = await fakeModulesDir(dir, release);
    const busybox = join(dir, "busybox");
    await Deno.writeTextFile(busybox, "static busybox");
    const initramfs = await buildInitramfs({ release, modulesDir }, { busybox });
    const entries = readNewc(await gunzip(initramfs.bytes));
    const byName = new Map(entries.map((e) => [e.name, e]));
    const text = (n: string) => new TextDecoder().decode(byName.get(n)?.data);
    for (const d of ["bin", "dev", "proc", "sys", "lower", "rw", "newroot", "ctl", "lib/modules"]) {
      equal(byName.get(d)?.mode, S_IFDIR | 0o755, d);
    }
    deepEqual(byName.get("dev/console"), {
      name: "dev/console",
      mode: S_IFCHR | 0o600,
      rdev: { major: 5, minor: 1 },
    });
    equal(byName.get("init")?.mode, S_IFREG | 0o755);
    equal(
      text("init"),
      initScript({ release, hostModulesDir: await Deno.realPath(modulesDir) }),
    );
    equal(text("bin/busybox"), "static busybox");
    equal(text("bin/bl-modprobe"), MODPROBE_SCRIPT);
    const order = text("etc/backlog-lab/modules").trim().split("\n");
    deepEqual(order, initramfs.modules.load.map((p) => `${moduleName(p)}.ko`));
    equal(order[0], "virtio_mmio.ko");
    for (const f of order) equal(text(`lib/modules/${f}`), `ELF of ${f.replace(/\.ko$/, "")}`);
    const modules = entries.filter((e) => e.name.startsWith("lib/modules/") && e.data);
    equal(modules.length, order.length, "only the planned modules are in the archive");
  });
});

Deno.test("findStaticBusybox() names a dynamic busybox and the package to install", async () => {
  await rejects(findStaticBusybox([Deno.execPath(), "/nonexistent/busybox"]), (e: unknown) => {
    assert(e instanceof PreflightError);
    match(e.message, /Missing a statically linked busybox \(needed for the guest's initramfs\)/);
    assert(e.message.includes(`"${Deno.execPath()}" is dynamically linked`), e.message);
    match(e.message, /install it with `sudo apt-get install -y busybox-static`/);
    return true;
  });
});
