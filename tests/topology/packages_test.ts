import {
  deepStrictEqual as deepEqual,
  match,
  ok as assert,
  rejects,
  strictEqual as equal,
} from "node:assert/strict";
import {
  ensureTools,
  IPTABLES,
  NFT,
  TC,
  TCPDUMP,
  type ToolNeed,
} from "../../lab/topology/packages.ts";
import { PreflightError } from "../../lab/base/errors.ts";

const DEBIAN = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
`;
const MINT = `NAME="Linux Mint"
ID=linuxmint
ID_LIKE="ubuntu debian"
`;
const FEDORA = `NAME="Fedora Linux"
ID=fedora
VERSION_ID=40
`;

const MISSING: ToolNeed = {
  command: "bl-no-such-tool",
  debianPackage: "bl-no-such-pkg",
  why: "testing",
};
const OTHER: ToolNeed = { command: "bl-no-such-tool-2", debianPackage: "bl-pkg-2", why: "more" };

Deno.test("NFT, TCPDUMP, IPTABLES and TC name their commands and Debian packages", () => {
  deepEqual(NFT, { command: "nft", debianPackage: "nftables", why: "packet rules" });
  deepEqual(TCPDUMP, { command: "tcpdump", debianPackage: "tcpdump", why: "packet capture" });
  deepEqual(IPTABLES, {
    command: "iptables",
    debianPackage: "iptables",
    why: "link delay without netem (NFQUEUE)",
  });
  deepEqual(TC, { command: "tc", debianPackage: "iproute2", why: "link shaping (tc)" });
});

Deno.test("ensureTools() does nothing when every command is present", async () => {
  const lines: string[] = [];
  const got = await ensureTools([{ command: "sh", debianPackage: "dash", why: "shell" }], {
    log: (l) => lines.push(l),
    osRelease: DEBIAN,
    isRoot: true,
  });
  deepEqual(got, { installed: [] });
  deepEqual(lines, []);
  deepEqual(await ensureTools([]), { installed: [] });
});

Deno.test("ensureTools() gives the exact apt-get command for each missing tool on Debian", async () => {
  for (
    const [osRelease, options] of [
      [DEBIAN, { install: false, isRoot: true }],
      [DEBIAN, { isRoot: false }],
      [MINT, { install: false, isRoot: true }],
    ] as const
  ) {
    const lines: string[] = [];
    await rejects(
      ensureTools([MISSING, { command: "sh", debianPackage: "dash", why: "shell" }, OTHER], {
        ...options,
        osRelease,
        log: (l) => lines.push(l),
      }),
      (err: Error) => {
        assert(err instanceof PreflightError);
        deepEqual(err.problems, [
          'Missing the "bl-no-such-tool" command (needed for testing): install it with `sudo apt-get install -y bl-no-such-pkg`',
          'Missing the "bl-no-such-tool-2" command (needed for more): install it with `sudo apt-get install -y bl-pkg-2`',
        ]);
        match(
          err.message,
          /^Cannot run the lab on this machine:\n {2}- Missing the "bl-no-such-tool"/,
        );
        return true;
      },
    );
    deepEqual(lines, [], "nothing is installed, so nothing is logged");
  }
});

Deno.test("ensureTools() names the command and package on a non-Debian system", async () => {
  for (const osRelease of [FEDORA, ""]) {
    await rejects(
      ensureTools([MISSING, MISSING], { osRelease, isRoot: true }),
      (err: Error) => {
        assert(err instanceof PreflightError);
        equal(err.problems.length, 1, "a command listed twice is one problem");
        equal(
          err.problems[0],
          'Missing the "bl-no-such-tool" command (needed for testing): install the package that provides "bl-no-such-tool" with your system\'s package manager (on Debian/Ubuntu it is "bl-no-such-pkg")',
        );
        assert(!err.message.includes("apt-get"));
        return true;
      },
    );
  }
});
