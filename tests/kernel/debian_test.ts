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
  DEBIAN_SUITES,
  type DebianKernel,
  kernelsFromIndex,
  loadSuiteKernels,
  pickKernel,
  resolveKernel,
  suitesFor,
} from "../../lab/kernel/debian.ts";
import { parseDeb822 } from "../../lab/kernel/deb822.ts";
import { DownloadError, KernelSpecError } from "../../lab/kernel/errors.ts";
import { compareDebianVersions } from "../../lab/kernel/_debian_version.ts";
import { TESTDATA, withTempDir, xzCompress } from "./_helpers.ts";

/** Every kernel of the recorded index excerpts (real stanzas of Debian's indexes). */
function recorded(): DebianKernel[] {
  return DEBIAN_SUITES.flatMap((s) =>
    kernelsFromIndex(Deno.readTextFileSync(join(TESTDATA, `${s.name}.Packages`)), s)
  );
}

Deno.test("parseDeb822() splits stanzas and joins continuation lines", () => {
  const text = "Package: a\nVersion: 1\nDescription: one\n two\n .\n three\n\n\nPackage: b\n";
  deepEqual(parseDeb822(text), [
    { Package: "a", Version: "1", Description: "one\ntwo\n\nthree" },
    { Package: "b" },
  ]);
  deepEqual(parseDeb822(text, (raw) => raw.includes("Package: b")), [{ Package: "b" }]);
});

Deno.test("parseDeb822() names the line that is not a field", () => {
  throws(() => parseDeb822("Package: a\n\nnot a field\n"), /line 3 is not "Field: value"/);
  throws(() => parseDeb822(" orphan\n"), /line 1 continues no field/);
});

Deno.test("compareDebianVersions() orders like dpkg", () => {
  const cases: [string, string, number][] = [
    ["5.10.262-1", "5.10.223-1", 1],
    ["6.12.115-2~deb12u1", "6.12.115-2", -1],
    ["1:1.0", "2.0", 1],
    ["6.1.176-1", "6.1.176-1", 0],
    ["7.2.13-1", "7.2.9-1", 1],
    ["1.0~rc1", "1.0", -1],
    ["1.0a", "1.0", 1],
  ];
  for (const [a, b, sign] of cases) {
    equal(Math.sign(compareDebianVersions(a, b)), sign, `${a} vs ${b}`);
  }
});

Deno.test("kernelsFromIndex() keeps only generic amd64 unsigned images, newest first", () => {
  const bullseye = DEBIAN_SUITES.find((s) => s.name === "bullseye")!;
  const ks = kernelsFromIndex(
    Deno.readTextFileSync(join(TESTDATA, "bullseye.Packages")),
    bullseye,
  );
  // The excerpt also holds the cloud flavour and the signed image: both left out.
  deepEqual(ks.map((k) => k.release), ["5.10.0-32-amd64", "5.10.0-30-amd64"]);
  const k = ks[0]!;
  equal(k.abi, "5.10.0-32");
  equal(k.version, "5.10.223-1");
  equal(k.upstream, "5.10.223");
  equal(k.suite, "bullseye");
  equal(k.packages.length, 1);
  equal(
    k.packages[0]!.url,
    "https://deb.debian.org/debian/pool/main/l/linux/linux-image-5.10.0-32-amd64-unsigned_5.10.223-1_amd64.deb",
  );
  equal(k.packages[0]!.sha256, "53a0ada535b8b35b3ee80ead5ab88036591963941c42dff6881bdb741deebead");
  equal(k.packages[0]!.size, 54645720);
});

Deno.test("kernelsFromIndex() joins sid's split image with its modules and base packages", () => {
  const sid = DEBIAN_SUITES.find((s) => s.name === "sid")!;
  const ks = kernelsFromIndex(Deno.readTextFileSync(join(TESTDATA, "sid.Packages")), sid);
  equal(ks.length, 1, "the cloud flavour and the meta package are left out");
  const k = ks[0]!;
  equal(k.release, "7.2.13+deb14-amd64");
  equal(k.abi, "7.2.13+deb14");
  deepEqual(k.packages.map((p) => p.package), [
    "linux-binary-unsigned-7.2.13+deb14-amd64",
    "linux-modules-7.2.13+deb14-amd64",
    "linux-base-7.2.13+deb14-amd64",
  ]);
  equal(k.packages[1]!.sha256, "a37a3d200915c4cf524e90c81bbb2a8b683d292cd00873e89c23b2ef32b1bf11");
});

Deno.test("kernelsFromIndex() drops a split image whose modules are not in the index", () => {
  const sid = DEBIAN_SUITES.find((s) => s.name === "sid")!;
  const text = Deno.readTextFileSync(join(TESTDATA, "sid.Packages"));
  const noModules = text.split("\n\n").filter((s) =>
    !s.startsWith("Package: linux-modules-7.2.13+deb14-amd64\n")
  ).join("\n\n");
  deepEqual(kernelsFromIndex(noModules, sid), []);
});

Deno.test("pickKernel() resolves each series to its newest kernel in its own suites", () => {
  const ks = recorded();
  const table: [string, string, string][] = [
    ["5.10", "5.10.0-46-amd64", "bullseye-security"],
    ["5.10@bullseye", "5.10.0-32-amd64", "bullseye"],
    ["6.1", "6.1.0-56-amd64", "bookworm-security"], // not bullseye-security's 6.1 backport
    ["6.1@bookworm", "6.1.0-50-amd64", "bookworm"],
    ["6.12", "6.12.118+deb13-amd64", "trixie-security"], // not bookworm-security's backport
    ["6.12@trixie", "6.12.117+deb13-amd64", "trixie"],
    ["sid", "7.2.13+deb14-amd64", "sid"],
  ];
  for (const [spec, release, suite] of table) {
    const ref = pickKernel(spec, ks);
    assert(ref.kind === "debian");
    equal(ref.release, release, spec);
    equal(ref.suite, suite, spec);
    equal(ref.spec, spec);
  }
});

Deno.test("pickKernel() resolves an exact ABI name, release, package or upstream version", () => {
  const ks = recorded();
  for (const spec of ["5.10.0-32", "5.10.0-32-amd64", "5.10.223-1", "5.10.223"]) {
    const ref = pickKernel(spec, ks);
    assert(ref.kind === "debian");
    equal(ref.release, "5.10.0-32-amd64", spec);
  }
  const backport = pickKernel("6.12.117+deb12", ks);
  assert(backport.kind === "debian");
  equal(backport.suite, "bookworm-security");
  const split = pickKernel("7.2.13+deb14", ks);
  assert(split.kind === "debian");
  equal(split.packages.length, 3);
});

Deno.test("pickKernel() names the spec and what exists when nothing matches", () => {
  const ks = recorded();
  const err = (() => {
    try {
      pickKernel("4.19", ks);
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  assert(err instanceof KernelSpecError);
  equal(err.spec, "4.19");
  match(err.message, /^Cannot resolve kernel "4\.19": /);
  match(err.message, /series: 5\.10, 6\.1, 6\.12, sid/);
  match(err.message, /bullseye: 5\.10\.0-32, 5\.10\.0-30/);
  match(err.message, /sid: 7\.2\.13\+deb14/);
  match(err.message, /path to a \.deb/);
  throws(() => pickKernel("5.10@buster", ks), /unknown suite "buster" \(known suites: bullseye,/);
  throws(() => pickKernel("5.10.0-99", ks), /Cannot resolve kernel "5\.10\.0-99"/);
});

Deno.test("suitesFor() reads only the suites a spec can be in", () => {
  deepEqual(suitesFor("5.10").map((s) => s.name), ["bullseye", "bullseye-security"]);
  deepEqual(suitesFor("5.10.0-32").map((s) => s.name), ["bullseye", "bullseye-security"]);
  deepEqual(suitesFor("sid").map((s) => s.name), ["sid"]);
  deepEqual(suitesFor("6.12@bookworm-security").map((s) => s.name), ["bookworm-security"]);
  equal(suitesFor("7.2.13+deb14").length, DEBIAN_SUITES.length);
});

/** A fetch that serves the recorded excerpts as each suite's Packages.xz, counting requests. */
async function fakeArchive(): Promise<{ fetch: typeof fetch; requests: string[] }> {
  const bodies = new Map<string, Uint8Array>();
  for (const s of DEBIAN_SUITES) {
    const url = `${s.base}/dists/${s.name}/main/binary-amd64/Packages.xz`;
    bodies.set(url, await xzCompress(Deno.readFileSync(join(TESTDATA, `${s.name}.Packages`))));
  }
  const requests: string[] = [];
  const f = (input: string | URL | Request) => {
    const url = String(input);
    requests.push(url);
    const body = bodies.get(url);
    return Promise.resolve(
      body
        ? new Response(body as BodyInit)
        : new Response("not found", { status: 404, statusText: "Not Found" }),
    );
  };
  return { fetch: f as typeof fetch, requests };
}

Deno.test("resolveKernel() fetches the series' indexes once and reuses the cached copy", async () => {
  await withTempDir(async (cacheDir) => {
    const archive = await fakeArchive();
    const ref = await resolveKernel("5.10", { cacheDir, fetch: archive.fetch });
    assert(ref.kind === "debian");
    equal(ref.release, "5.10.0-46-amd64");
    deepEqual(archive.requests, [
      "https://deb.debian.org/debian/dists/bullseye/main/binary-amd64/Packages.xz",
      "https://security.debian.org/debian-security/dists/bullseye-security/main/binary-amd64/Packages.xz",
    ]);
    await resolveKernel("5.10.0-32", { cacheDir, fetch: archive.fetch });
    equal(archive.requests.length, 2, "the second spec used the cached indexes");
    const offline = await resolveKernel("5.10@bullseye", { cacheDir, offline: true });
    equal(offline.release, "5.10.0-32-amd64");
  });
});

Deno.test("resolveKernel() looks in every suite for an exact name not in its series' suites", async () => {
  await withTempDir(async (cacheDir) => {
    const archive = await fakeArchive();
    const ref = await resolveKernel("6.1.0-0.deb11.52", { cacheDir, fetch: archive.fetch });
    assert(ref.kind === "debian");
    equal(ref.suite, "bullseye-security");
  });
});

Deno.test("loadSuiteKernels() names the index URL that failed", async () => {
  await withTempDir(async (cacheDir) => {
    const notFound = () =>
      Promise.resolve(new Response("", { status: 404, statusText: "Not Found" }));
    const suite = DEBIAN_SUITES[0]!;
    await rejects(
      loadSuiteKernels(suite, { cacheDir, fetch: notFound }),
      (e: unknown) =>
        e instanceof DownloadError &&
        e.url === "https://deb.debian.org/debian/dists/bullseye/main/binary-amd64/Packages.xz" &&
        /Cannot download ".*bullseye.*Packages\.xz": the server answered 404 Not Found/.test(
          e.message,
        ),
    );
    await rejects(
      loadSuiteKernels(suite, { cacheDir, offline: true }),
      /Cannot read the index of "bullseye" offline: .* does not exist; run once with network access/,
    );
    const garbage = () => Promise.resolve(new Response("not xz"));
    await rejects(
      loadSuiteKernels(suite, { cacheDir, fetch: garbage }),
      /Cannot decompress "https:\/\/deb\.debian\.org\/debian\/dists\/bullseye\/.*": xz exited with 1/,
    );
  });
});

Deno.test("resolveKernel() takes a local directory with vmlinuz and lib/modules/<release>", async () => {
  await withTempDir(async (dir) => {
    const mods = join(dir, "lib", "modules", "9.9.9-test");
    await Deno.mkdir(mods, { recursive: true });
    await Deno.writeTextFile(join(mods, "modules.order"), "");
    await rejects(resolveKernel(dir), /holds no "vmlinuz"/);
    await Deno.writeTextFile(join(dir, "vmlinuz"), "image");
    const ref = await resolveKernel(dir);
    deepEqual(ref, {
      kind: "dir",
      spec: dir,
      vmlinuz: join(await Deno.realPath(dir), "vmlinuz"),
      modulesDir: join(await Deno.realPath(dir), "lib/modules/9.9.9-test"),
      release: "9.9.9-test",
    });
  });
});

Deno.test("resolveKernel() reads a local .deb's package name, and refuses other packages", async () => {
  await withTempDir(async (dir) => {
    const build = async (pkg: string) => {
      const root = join(dir, pkg);
      await Deno.mkdir(join(root, "DEBIAN"), { recursive: true });
      await Deno.writeTextFile(
        join(root, "DEBIAN", "control"),
        `Package: ${pkg}\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: t <t@t>\nDescription: t\n`,
      );
      const deb = join(dir, `${pkg}.deb`);
      const out = await new Deno.Command("dpkg-deb", {
        args: ["--build", "--root-owner-group", root, deb],
        stdout: "null",
        stderr: "piped",
      }).output();
      assert(out.success, new TextDecoder().decode(out.stderr));
      return deb;
    };
    const deb = await build("linux-image-9.9.9-test-amd64-unsigned");
    const ref = await resolveKernel(deb);
    assert(ref.kind === "deb");
    equal(ref.release, "9.9.9-test-amd64");
    equal(ref.version, "1.0-1");
    await rejects(
      resolveKernel(await build("hello")),
      /Cannot use ".*hello\.deb" as a kernel: its package "hello" is not a linux-image package/,
    );
    await rejects(
      resolveKernel(join(dir, "missing.deb")),
      /Cannot resolve kernel ".*missing\.deb": no such file or directory/,
    );
  });
});

Deno.test("resolveKernel() refuses an empty spec", async () => {
  await rejects(resolveKernel(""), (e: unknown) => e instanceof KernelSpecError);
});
