/**
 * The guest's initramfs: a static busybox, an `/init` script, and only the
 * kernel modules the guest needs (with their dependencies from
 * `modules.dep`, decompressed, loaded in order with `insmod`).
 *
 * `/init` loads the modules, mounts the host's `/` read-only over virtio-9p
 * with a tmpfs overlay on top (so Deno, iproute2, nft, tcpdump and the
 * project are simply there), mounts the run's control directory and share
 * directory, and runs the control directory's `run.sh` chrooted into that
 * root. It writes the exit code into the control directory and reboots,
 * which ends QEMU (`-no-reboot`). The guest kernel's full modules
 * directory is bind-mounted at `/lib/modules/<release>` inside, so the
 * kernel's module autoloading (through the host's `modprobe`) finds any
 * module not preloaded.
 * @module
 */
import { join } from "node:path";
import { type CpioEntry, gunzip, gzip, S_IFCHR, S_IFDIR, S_IFREG, writeNewc } from "./cpio.ts";
import { exec } from "./_exec.ts";
import type { UnpackedKernel } from "./cache.ts";
import { PreflightError } from "../base/errors.ts";

/** A module the guest wants. */
export interface GuestModule {
  /** The module name (`-` and `_` are the same), e.g. `9pnet_virtio`. */
  name: string;
  /** Without it the guest cannot boot; when neither built in nor a module, building fails. */
  required: boolean;
  /** What it is for. */
  why: string;
}

/** The modules the guest loads at boot, in this order (each after its dependencies). */
export const GUEST_MODULES: readonly GuestModule[] = [
  { name: "virtio_mmio", required: true, why: "the microvm machine's virtio devices" },
  { name: "9pnet_virtio", required: true, why: "9p over virtio" },
  { name: "9p", required: true, why: "the host's root, control and share directories" },
  { name: "overlay", required: true, why: "a writable root over the read-only host root" },
  { name: "virtio_rng", required: false, why: "entropy early in boot" },
  { name: "ipv6", required: false, why: "the lab's IPv6 subnet" },
  { name: "af_packet", required: false, why: "tcpdump captures" },
  { name: "inet_diag", required: false, why: "socket dumps over netlink (ss, the lab's sampler)" },
  { name: "tcp_diag", required: false, why: "TCP socket dumps over netlink" },
  // libcrc32c (nf_tables, nf_conntrack) asks the crypto API for "crc32c" when loaded; with no
  // modprobe in the initramfs that request fails unless the algorithm is loaded first.
  { name: "crc32c_generic", required: false, why: "crc32c for libcrc32c (until 6.12)" },
  { name: "crc32c_cryptoapi", required: false, why: "crc32c for the crypto API (7.x)" },
  { name: "veth", required: false, why: "links between the lab's namespaces" },
  { name: "nf_tables", required: false, why: "packet rules (nft)" },
  { name: "nft_counter", required: false, why: "nft counters (a module before 6.1)" },
  { name: "nft_objref", required: false, why: "named nft counters (a module before 6.12)" },
  { name: "nf_conntrack", required: false, why: "nft connection tracking" },
  { name: "nft_ct", required: false, why: "nft ct expressions" },
  { name: "nft_reject_inet", required: false, why: "nft reject rules" },
  { name: "tun", required: false, why: "tun/tap devices" },
  { name: "ifb", required: false, why: "ingress shaping" },
  { name: "sch_netem", required: false, why: "delay and loss (tc netem)" },
  { name: "sch_tbf", required: false, why: "rate limits (tc tbf)" },
  { name: "sch_htb", required: false, why: "rate limits (tc htb)" },
  { name: "sch_ingress", required: false, why: "tc ingress hooks" },
  { name: "cls_u32", required: false, why: "tc u32 filters" },
  { name: "cls_flower", required: false, why: "tc flower filters" },
  { name: "act_gact", required: false, why: "tc drop actions" },
  { name: "act_mirred", required: false, why: "tc redirect to ifb" },
];

/** A module's name from its path: `kernel/fs/9p/9p.ko.xz` → `9p`; `-` becomes `_`. */
export function moduleName(path: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1);
  return base.replace(/\.ko(\.(xz|zst|gz))?$/, "").replaceAll("-", "_");
}

/** `modules.dep`: each module's path (relative to the modules directory) and its dependencies' paths. */
export function parseModulesDep(text: string): Map<string, { path: string; deps: string[] }> {
  const map = new Map<string, { path: string; deps: string[] }>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const path = line.slice(0, colon).trim();
    const deps = line.slice(colon + 1).trim().split(/\s+/).filter(Boolean);
    map.set(moduleName(path), { path, deps });
  }
  return map;
}

/** `modules.builtin`: the names of modules built into the image. */
export function parseModulesBuiltin(text: string): Set<string> {
  return new Set(text.split("\n").map((l) => l.trim()).filter(Boolean).map(moduleName));
}

/** Which wanted modules are loaded (paths, in load order), built in, or absent. */
export interface ModulePlan {
  /** Module paths relative to the modules directory, dependencies first. */
  load: string[];
  /** Wanted modules built into the image. */
  builtin: string[];
  /** Optional wanted modules this kernel has neither built in nor as a module. */
  absent: string[];
}

/**
 * Orders the modules to load: each wanted module after its dependencies
 * (depth first over `modules.dep`), each once; built-in ones are skipped.
 *
 * @throws {Error} naming a required module the kernel lacks, and the fix.
 */
export function planModules(
  wanted: readonly GuestModule[],
  dep: ReadonlyMap<string, { path: string; deps: string[] }>,
  builtin: ReadonlySet<string>,
): ModulePlan {
  const byPath = new Map([...dep.values()].map((m) => [m.path, m]));
  const load: string[] = [];
  const seen = new Set<string>();
  const visit = (path: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    for (const d of byPath.get(path)?.deps ?? []) visit(d);
    load.push(path);
  };
  const plan: ModulePlan = { load, builtin: [], absent: [] };
  const missing: string[] = [];
  for (const w of wanted) {
    const name = w.name.replaceAll("-", "_");
    if (builtin.has(name)) {
      plan.builtin.push(name);
      continue;
    }
    const m = dep.get(name);
    if (m) visit(m.path);
    else if (w.required) missing.push(`"${name}" (${w.why})`);
    else plan.absent.push(name);
  }
  if (missing.length) {
    throw new Error(
      `Cannot build an initramfs: the kernel has neither built in nor as a module ${
        missing.join(", ")
      }; use a kernel of the generic amd64 flavour (the cloud flavour has no 9p)`,
    );
  }
  return plan;
}

/** Options of {@linkcode initScript}. */
export interface InitScriptOptions {
  /** The guest kernel's release. */
  release: string;
  /** The host path of the guest kernel's full modules directory (seen through the 9p root). */
  hostModulesDir: string;
}

/**
 * The `/init` script (busybox sh). Its protocol with the host:
 *
 * - console lines starting `backlog-lab-init: `; `READY` once the root is
 *   up and the command starts; `FAILED: <what>` before it gives up;
 * - kernel parameter `backlog_lab.mode=probe`: print `READY probe` as soon
 *   as userspace runs, then reboot (the accelerator probe);
 * - 9p tags: `blroot` (the host's `/`, read-only), `blctl` (the run's
 *   control directory: `vm.env`, `run.sh` in, `exit-code` out), `blshare`
 *   (optional, read-write, at `$BL_SHARE` from `vm.env`).
 */
export function initScript(options: InitScriptOptions): string {
  const q = shellQuote;
  return `#!/bin/busybox sh
# backlog-lab guest init (generated by lab/kernel/initramfs.ts).
/bin/busybox --install -s /bin
export PATH=/bin
say() { echo "backlog-lab-init: $*"; }
fail() { say "FAILED: $*"; sync; reboot -f; sleep 10; exit 1; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say "started $(uname -r)"
for arg in $(cat /proc/cmdline); do
  case "$arg" in backlog_lab.mode=probe) say "READY probe"; reboot -f; sleep 10; exit 0;; esac
done
while read -r m; do
  insmod "/lib/modules/$m" || say "cannot load module $m"
done < /etc/backlog-lab/modules
opts=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o "$opts" blctl /ctl || fail "cannot mount the control directory (9p tag blctl)"
. /ctl/vm.env || fail "cannot read /ctl/vm.env"
mount -t 9p -o "$opts,ro,cache=loose" blroot /lower || fail "cannot mount the host root (9p tag blroot)"
mount -t tmpfs -o mode=0755 tmpfs /rw || fail "cannot mount a tmpfs for the overlay"
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot ||
  fail "cannot mount the overlay root"
mount -t proc proc /newroot/proc || fail "cannot mount /proc in the root"
mount -t sysfs sysfs /newroot/sys || fail "cannot mount /sys in the root"
mount -t cgroup2 cgroup2 /newroot/sys/fs/cgroup 2>/dev/null
mount -t devtmpfs devtmpfs /newroot/dev || fail "cannot mount /dev in the root"
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
mount -t tmpfs -o mode=0755 tmpfs /newroot/run || fail "cannot mount /run in the root"
mkdir -p /newroot/run/backlog-lab-vm /newroot/run/netns
mount --bind /ctl /newroot/run/backlog-lab-vm || fail "cannot bind the control directory"
# The kernel runs its module loader with PID 1's root (this initramfs): hand requests to the
# modprobe of the root the command sees, which finds this kernel's modules through the bind below.
echo /bin/bl-modprobe > /proc/sys/kernel/modprobe
mods=/newroot${q(options.hostModulesDir)}
if [ -d "$mods" ]; then
  mkdir -p /newroot/lib/modules/${q(options.release)} &&
    mount --bind "$mods" /newroot/lib/modules/${q(options.release)} ||
    say "cannot bind the modules directory; module autoloading will fail"
fi
if [ -n "$BL_SHARE" ]; then
  mkdir -p "/newroot$BL_SHARE" || fail "cannot create $BL_SHARE"
  mount -t 9p -o "$opts" blshare "/newroot$BL_SHARE" || fail "cannot mount the share directory (9p tag blshare)"
fi
hostname "\${BL_HOSTNAME:-backlog-lab-guest}"
ip link set lo up 2>/dev/null
echo "{\\"release\\":\\"$(uname -r)\\",\\"memTotalKiB\\":$(awk '/MemTotal/{print $2}' /proc/meminfo),\\"cpus\\":$(grep -c ^processor /proc/cpuinfo),\\"tcpMaxSynBacklog\\":$(cat /proc/sys/net/ipv4/tcp_max_syn_backlog),\\"somaxconn\\":$(cat /proc/sys/net/core/somaxconn)}" > /ctl/guest.json
say "READY"
chroot /newroot /bin/sh /run/backlog-lab-vm/run.sh
rc=$?
echo "$rc" > /ctl/exit-code.tmp && mv /ctl/exit-code.tmp /ctl/exit-code
sync
say "DONE exit $rc"
reboot -f
sleep 10
`;
}

/** The module loader the kernel calls (`/proc/sys/kernel/modprobe`): the root's own modprobe. */
export const MODPROBE_SCRIPT = `#!/bin/busybox sh
exec /bin/busybox chroot /newroot /sbin/modprobe "$@"
`;

/** Single-quotes a string for sh. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'"'"'`)}'`;
}

/** What {@linkcode buildInitramfs} built. */
export interface Initramfs {
  /** The gzip-compressed newc archive. */
  bytes: Uint8Array;
  /** Which modules are loaded, built in, or absent. */
  modules: ModulePlan;
}

/** Options of {@linkcode buildInitramfs}. */
export interface BuildInitramfsOptions {
  /** A statically linked busybox; default: found with {@linkcode findStaticBusybox}. */
  busybox?: string;
  /** The modules to load; default {@linkcode GUEST_MODULES}. */
  modules?: readonly GuestModule[];
}

/**
 * Builds the initramfs for one kernel: `/init`, `/bin/busybox`,
 * `/dev/console`, the planned modules (decompressed) under
 * `/lib/modules/<file>` and their load order in `/etc/backlog-lab/modules`.
 *
 * @throws {PreflightError} when no static busybox is installed (with the install command).
 * @throws {Error} when a required module is missing.
 */
export async function buildInitramfs(
  kernel: Pick<UnpackedKernel, "release" | "modulesDir">,
  options: BuildInitramfsOptions = {},
): Promise<Initramfs> {
  const busybox = options.busybox ?? await findStaticBusybox();
  const dep = parseModulesDep(await Deno.readTextFile(join(kernel.modulesDir, "modules.dep")));
  const builtinText = await Deno.readTextFile(join(kernel.modulesDir, "modules.builtin")).catch(
    () => "",
  );
  const plan = planModules(options.modules ?? GUEST_MODULES, dep, parseModulesBuiltin(builtinText));
  const enc = new TextEncoder();
  const dir = (name: string): CpioEntry => ({ name, mode: S_IFDIR | 0o755 });
  const entries: CpioEntry[] = [
    ...["bin", "dev", "etc", "etc/backlog-lab", "proc", "sys", "lower", "rw", "newroot", "ctl"].map(
      dir,
    ),
    ...["lib", "lib/modules", "tmp", "root"].map(dir),
    { name: "dev/console", mode: S_IFCHR | 0o600, rdev: { major: 5, minor: 1 } },
    { name: "dev/null", mode: S_IFCHR | 0o666, rdev: { major: 1, minor: 3 } },
    { name: "bin/busybox", mode: S_IFREG | 0o755, data: await Deno.readFile(busybox) },
    { name: "bin/bl-modprobe", mode: S_IFREG | 0o755, data: enc.encode(MODPROBE_SCRIPT) },
    {
      name: "init",
      mode: S_IFREG | 0o755,
      data: enc.encode(
        initScript({
          release: kernel.release,
          hostModulesDir: await Deno.realPath(kernel.modulesDir),
        }),
      ),
    },
  ];
  const files: string[] = [];
  for (const path of plan.load) {
    const file = `${moduleName(path)}.ko`;
    files.push(file);
    entries.push({
      name: `lib/modules/${file}`,
      mode: S_IFREG | 0o644,
      data: await readModule(join(kernel.modulesDir, path)),
    });
  }
  entries.push({
    name: "etc/backlog-lab/modules",
    mode: S_IFREG | 0o644,
    data: enc.encode(files.map((f) => f + "\n").join("")),
  });
  return { bytes: await gzip(writeNewc(entries)), modules: plan };
}

/** A module file's ELF bytes, decompressed (busybox insmod may not read .xz or .zst). */
async function readModule(path: string): Promise<Uint8Array> {
  if (path.endsWith(".xz")) return (await exec(["xz", "-dc", path], { timeoutMs: 60_000 })).stdout;
  if (path.endsWith(".zst")) {
    return (await exec(["zstd", "-dc", path], { timeoutMs: 60_000 })).stdout;
  }
  if (path.endsWith(".gz")) return await gunzip(await Deno.readFile(path));
  return await Deno.readFile(path);
}

/** Whether an ELF file is statically linked (no PT_INTERP program header). */
export function isStaticElf(bytes: Uint8Array): boolean {
  if (bytes.length < 64 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[4] !== 2) return false;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const phoff = Number(v.getBigUint64(32, true));
  const phentsize = v.getUint16(54, true);
  const phnum = v.getUint16(56, true);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > bytes.length) return false;
    if (v.getUint32(off, true) === 3) return false; // PT_INTERP: dynamically linked
  }
  return true;
}

/**
 * The path of a statically linked busybox (Debian's `busybox-static`).
 *
 * @param candidates the paths to try, in order.
 * @throws {PreflightError} with the install command when there is none.
 */
export async function findStaticBusybox(
  candidates: readonly string[] = [
    "/bin/busybox",
    "/usr/bin/busybox",
    "/usr/lib/initramfs-tools/bin/busybox",
  ],
): Promise<string> {
  const seen: string[] = [];
  for (const p of candidates) {
    const bytes = await Deno.readFile(p).catch(() => undefined);
    if (!bytes) continue;
    if (isStaticElf(bytes)) return p;
    seen.push(p);
  }
  throw new PreflightError([
    `Missing a statically linked busybox (needed for the guest's initramfs)${
      seen.length ? `; ${seen.map((s) => `"${s}"`).join(", ")} is dynamically linked` : ""
    }: install it with \`sudo apt-get install -y busybox-static\``,
  ]);
}
