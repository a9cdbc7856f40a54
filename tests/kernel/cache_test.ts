import {
  deepStrictEqual as deepEqual,
  match,
  ok as assert,
  rejects,
  strictEqual as equal,
} from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { downloadFile, type DownloadProgress, fetchBytes } from "../../lab/kernel/_fetch.ts";
import { fetchKernel, listKernels } from "../../lab/kernel/cache.ts";
import { DEBIAN_SUITES, type KernelRef } from "../../lab/kernel/debian.ts";
import { DownloadError } from "../../lab/kernel/errors.ts";
import { TESTDATA, withTempDir, xzCompress } from "./_helpers.ts";
import { hasCommand } from "../../lab/base/command.ts";

const URL_ = "https://deb.example/pool/k.deb";

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A fetch serving `body` in chunks of 100 KiB. */
function serve(body: Uint8Array, init: ResponseInit = {}): typeof fetch {
  return ((_input: unknown, reqInit?: RequestInit) => {
    let o = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (reqInit?.signal?.aborted) return c.error(reqInit.signal.reason);
        if (o >= body.length) return c.close();
        c.enqueue(body.slice(o, o + 102_400));
        o += 102_400;
      },
    });
    return Promise.resolve(new Response(stream, init));
  }) as typeof fetch;
}

async function leftovers(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

Deno.test("downloadFile() writes a checked file and reports progress up to the total", async () => {
  await withTempDir(async (dir) => {
    const body = new Uint8Array(300_000).map((_, i) => (i * 7919) % 251);
    const seen: DownloadProgress[] = [];
    const dest = join(dir, "k.deb");
    await downloadFile(URL_, dest, {
      fetch: serve(body),
      sha256: sha256(body),
      size: body.length,
      onProgress: (p) => seen.push(p),
    });
    deepEqual(await Deno.readFile(dest), body);
    deepEqual(await leftovers(dir), ["k.deb"]);
    assert(seen.length >= 2);
    for (let i = 1; i < seen.length; i++) assert(seen[i]!.bytes >= seen[i - 1]!.bytes);
    deepEqual(seen.at(-1), { url: URL_, bytes: body.length, total: body.length });
  });
});

Deno.test("downloadFile() refuses a SHA256 mismatch, naming the URL and both hashes, and leaves nothing", async () => {
  await withTempDir(async (dir) => {
    const body = new TextEncoder().encode("not the kernel you asked for");
    const want = "0".repeat(64);
    const dest = join(dir, "k.deb");
    await rejects(downloadFile(URL_, dest, { fetch: serve(body), sha256: want }), (e: unknown) => {
      assert(e instanceof DownloadError);
      equal(e.url, URL_);
      match(e.message, /^Cannot verify "https:\/\/deb\.example\/pool\/k\.deb": its SHA256 is "/);
      assert(e.message.includes(`"${sha256(body)}"`), e.message);
      assert(e.message.includes(`the index says "${want}"`), e.message);
      return true;
    });
    deepEqual(await leftovers(dir), [], "no partial file and no file under the final name");
  });
});

Deno.test("downloadFile() refuses a short body, an HTTP error and a stalled body, naming the URL", async () => {
  await withTempDir(async (dir) => {
    const dest = join(dir, "k.deb");
    const body = new Uint8Array(1000);
    await rejects(
      downloadFile(URL_, dest, { fetch: serve(body), size: 2000 }),
      /Cannot download "https:\/\/deb\.example\/pool\/k\.deb": got 1000 bytes, the index says 2000/,
    );
    await rejects(
      downloadFile(URL_, dest, { fetch: serve(body, { status: 503, statusText: "Busy" }) }),
      /Cannot download "https:\/\/deb\.example\/pool\/k\.deb": the server answered 503 Busy/,
    );
    // Headers arrive, then the body stalls: the idle deadline ends it.
    const stalled = ((_: unknown, init?: RequestInit) => {
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new Uint8Array(10));
          init?.signal?.addEventListener("abort", () => c.error(init.signal!.reason));
        },
      });
      return Promise.resolve(new Response(stream));
    }) as typeof fetch;
    await rejects(
      downloadFile(URL_, dest, { fetch: stalled, idleTimeoutMs: 200 }),
      /Cannot download "https:\/\/deb\.example\/pool\/k\.deb": no data for 200 ms/,
    );
    // No answer at all: the header deadline ends it.
    const silent = ((_: unknown, init?: RequestInit) =>
      new Promise<Response>((_r, reject) =>
        init?.signal?.addEventListener("abort", () =>
          reject(init.signal!.reason))
      )) as typeof fetch;
    await rejects(
      fetchBytes(URL_, { fetch: silent, headersTimeoutMs: 200 }),
      /Cannot download "https:\/\/deb\.example\/pool\/k\.deb": no response within 200 ms/,
    );
    deepEqual(await leftovers(dir), []);
  });
});

Deno.test("downloadFile() stops when aborted and says so", async () => {
  await withTempDir(async (dir) => {
    const ac = new AbortController();
    const silent = ((_: unknown, init?: RequestInit) =>
      new Promise<Response>((_r, reject) =>
        init?.signal?.addEventListener("abort", () =>
          reject(init.signal!.reason))
      )) as typeof fetch;
    const p = downloadFile(URL_, join(dir, "k.deb"), { fetch: silent, signal: ac.signal });
    ac.abort();
    await rejects(p, /Cannot download "https:\/\/deb\.example\/pool\/k\.deb": aborted/);
    deepEqual(await leftovers(dir), []);
  });
});

/** Builds a tiny kernel .deb: boot/vmlinuz-<r> and lib/modules/<r>/ with one (empty) module. */
async function fakeKernelDeb(dir: string, release: string): Promise<Uint8Array> {
  const root = join(dir, "pkg");
  const mods = join(root, "lib", "modules", release);
  await Deno.mkdir(join(root, "DEBIAN"), { recursive: true });
  await Deno.mkdir(join(root, "boot"), { recursive: true });
  await Deno.mkdir(join(mods, "kernel", "fs"), { recursive: true });
  await Deno.writeTextFile(
    join(root, "DEBIAN", "control"),
    `Package: linux-image-${release}-unsigned\nVersion: 9.9.9-1\nArchitecture: amd64\nMaintainer: t <t@t>\nDescription: t\n`,
  );
  await Deno.writeTextFile(join(root, "boot", `vmlinuz-${release}`), "not really a kernel");
  await Deno.writeTextFile(join(mods, "modules.order"), "kernel/fs/x.ko\n");
  await Deno.writeTextFile(join(mods, "modules.builtin"), "");
  const deb = join(dir, "k.deb");
  const out = await new Deno.Command("dpkg-deb", {
    args: ["--build", "--root-owner-group", root, deb],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
  return await Deno.readFile(deb);
}

// depmod comes with kmod; as root on Debian the library installs it, else the test needs it.
const CAN_DEPMOD = Deno.uid() === 0 || await hasCommand("depmod");
if (!CAN_DEPMOD) {
  console.warn("\n*** SKIPPING the fetchKernel() unpack test: install kmod (depmod) ***\n");
}

Deno.test({
  name: "fetchKernel() downloads once, unpacks vmlinuz and modules, runs depmod, and lists it",
  ignore: !CAN_DEPMOD,
}, async () => {
  await withTempDir(async (dir) => {
    const release = "9.9.9-1-amd64";
    const deb = await fakeKernelDeb(dir, release);
    const cacheDir = join(dir, "cache");
    let requests = 0;
    const f = ((...args: Parameters<typeof fetch>) => {
      requests++;
      return serve(deb)(...args);
    }) as typeof fetch;
    const ref: KernelRef = {
      kind: "debian",
      spec: "9.9.9-1",
      release,
      abi: "9.9.9-1",
      version: "9.9.9-1",
      upstream: "9.9.9",
      suite: "bullseye",
      packages: [{
        package: `linux-image-${release}-unsigned`,
        version: "9.9.9-1",
        filename: "pool/main/l/linux/k.deb",
        url: URL_,
        sha256: sha256(deb),
        size: deb.length,
      }],
    };
    const k = await fetchKernel(ref, { cacheDir, fetch: f });
    equal(k.release, release);
    equal(await Deno.readTextFile(k.vmlinuz), "not really a kernel");
    equal(k.modulesDir, join(cacheDir, "unpacked", `${release}_9.9.9-1`, "lib/modules", release));
    assert((await Deno.stat(join(k.modulesDir, "modules.dep"))).isFile, "depmod wrote modules.dep");
    const again = await fetchKernel(ref, { cacheDir, fetch: f });
    equal(again.vmlinuz, k.vmlinuz);
    equal(requests, 1, "the package was downloaded once");
    deepEqual(await leftovers(join(cacheDir, "unpacked")), [`${release}_9.9.9-1`]);

    // The listing: what is cached, and what the (recorded) archive offers.
    const indexes = join(cacheDir, "indexes");
    await Deno.mkdir(indexes, { recursive: true });
    for (const s of DEBIAN_SUITES) {
      await Deno.copyFile(
        join(TESTDATA, `${s.name}.Packages`),
        join(indexes, `${s.name}.Packages`),
      );
    }
    const listing = await listKernels({ cacheDir, offline: true });
    deepEqual(listing.cached.map((c) => c.release), [release]);
    const sid = listing.offered.find((o) => o.suite === "sid");
    equal(sid?.series, "sid");
    equal(listing.offered.find((o) => o.release === "5.10.0-46-amd64")?.series, "5.10");
    equal(listing.offered.find((o) => o.abi === "6.1.0-0.deb11.52")?.series, undefined);
    assert(listing.offered.every((o) => !o.cached));
  });
});

Deno.test("fetchKernel() refuses a corrupt package and caches nothing", async () => {
  await withTempDir(async (dir) => {
    const cacheDir = join(dir, "cache");
    const ref: KernelRef = {
      kind: "debian",
      spec: "9.9.9-1",
      release: "9.9.9-1-amd64",
      abi: "9.9.9-1",
      version: "9.9.9-1",
      upstream: "9.9.9",
      suite: "bullseye",
      packages: [{
        package: "linux-image-9.9.9-1-amd64-unsigned",
        version: "9.9.9-1",
        filename: "pool/k.deb",
        url: URL_,
        sha256: "ab".repeat(32),
        size: 4,
      }],
    };
    await rejects(
      fetchKernel(ref, { cacheDir, fetch: serve(new Uint8Array(4)) }),
      (e: unknown) => e instanceof DownloadError && e.url === URL_,
    );
    deepEqual(await leftovers(join(cacheDir, "debs")), []);
    await rejects(Deno.stat(join(cacheDir, "unpacked")));
  });
});

Deno.test("loadSuiteKernels() keeps only the kernel stanzas of an index in the cache", async () => {
  await withTempDir(async (cacheDir) => {
    const { loadSuiteKernels } = await import("../../lab/kernel/debian.ts");
    const suite = DEBIAN_SUITES.find((s) => s.name === "bullseye")!;
    const other = "Package: hello\nVersion: 1\nFilename: pool/h.deb\nSize: 1\nSHA256: aa\n\n";
    const text = other + Deno.readTextFileSync(join(TESTDATA, "bullseye.Packages"));
    const xz = await xzCompress(new TextEncoder().encode(text));
    const ks = await loadSuiteKernels(suite, {
      cacheDir,
      fetch: (() => Promise.resolve(new Response(xz as BodyInit))) as typeof fetch,
    });
    equal(ks.length, 2);
    const cached = await Deno.readTextFile(join(cacheDir, "indexes", "bullseye.Packages"));
    assert(!cached.includes("Package: hello"));
    assert(cached.includes("Package: linux-image-5.10.0-32-amd64-unsigned"));
  });
});
