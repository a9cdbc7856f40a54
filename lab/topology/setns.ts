/**
 * Running synchronous code with the lab process's JS thread inside a lab
 * network namespace: `setns(CLONE_NEWNET)` moves only the calling thread,
 * and FFI calls declared without `nonblocking`, like sync ops such as
 * `Deno.readLinkSync`, run on the JS thread. So a socket created in
 * {@linkcode withNetns}'s callback belongs to the namespace for good, while
 * the thread itself goes back to the host namespace before the call returns.
 * Deno's async ops run on other threads, which never leave the host namespace.
 *
 * Nothing is assumed: before and after each switch the thread's namespace is
 * read back from `/proc/thread-self/ns/net` and compared by inode, and the
 * thread is checked to be one and the same for libc (`gettid()`) and for
 * Deno's sync ops (`/proc/thread-self`) throughout. (It is the process's main
 * thread under `deno run`; `deno test` runs tests on another thread.) A failed
 * switch back leaves the process in an unknown namespace; it then exits
 * (code 70) rather than go on.
 *
 * The library is opened on first use, so importing this module needs no
 * `--allow-ffi`.
 * @module
 */
import { readErrno } from "../base/libc_constants.ts";

/**
 * The libc functions the lab calls in-process (namespaces, netlink, the
 * kernel probe's sockets), as `Deno.dlopen` takes them.
 */
export const LIBC_SYMBOLS = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  setns: { parameters: ["i32", "i32"], result: "i32" },
  gettid: { parameters: [], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "u64"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  strerror: { parameters: ["i32"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/** The loaded libc functions {@linkcode libc} returns. */
export type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

let library: Deno.DynamicLibrary<typeof LIBC_SYMBOLS> | undefined;

/**
 * The process's libc (`libc.so.6`), opened on the first call. Every function
 * runs on the calling JS thread (none is `nonblocking`), so `errno` is that thread's.
 *
 * @returns the functions the lab uses.
 * @throws {Deno.errors.NotCapable} without `--allow-ffi`.
 */
export function libc(): Libc {
  library ??= Deno.dlopen("libc.so.6", LIBC_SYMBOLS);
  return library.symbols;
}

/** An `errno` value and its text, as `strerror()` gives it. */
export interface Errno {
  /** The number, e.g. 22. */
  code: number;
  /** The text, e.g. "Invalid argument". */
  text: string;
}

/**
 * The calling thread's `errno`, read right after a libc call failed.
 *
 * @returns its number and `strerror()` text.
 */
export function lastErrno(): Errno {
  const lib = libc();
  const code = readErrno(lib);
  return { code, text: errnoText(code) };
}

/** `strerror(code)`, e.g. "Invalid argument". */
export function errnoText(code: number): string {
  const s = libc().strerror(code);
  return s === null ? `errno ${code}` : Deno.UnsafePointerView.getCString(s);
}

/** `"<text> (errno <n>)"` for messages. */
export function describeErrno(e: Errno): string {
  return `${e.text} (errno ${e.code})`;
}

const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
const CLONE_NEWNET = 0x40000000;
const THREAD_NS = "/proc/thread-self/ns/net";
/** Exit code when the thread cannot be brought back home (EX_SOFTWARE). */
const EXIT_UNKNOWN_NAMESPACE = 70;
const NAME = /^bl-[A-Za-z0-9_.-]*$/;

/** The namespace the JS thread started in: an fd kept open, and its `net:[inode]` link. */
let home: { fd: number; link: string } | undefined;
/** The namespace the JS thread is in, while inside {@linkcode withNetns}. */
let inside: string | undefined;

function cString(s: string): Uint8Array {
  return new TextEncoder().encode(`${s}\0`);
}

/**
 * The calling thread as `/proc/thread-self` names it (`<pid>/task/<tid>`),
 * checked to be the thread libc's calls run on, and not a worker's.
 */
function jsThread(action: string): string {
  if ("WorkerGlobalScope" in globalThis) {
    throw new Error(`${action}: this code runs in a Worker; call it from the main JS thread`);
  }
  let self: string;
  try {
    self = Deno.readLinkSync("/proc/thread-self");
  } catch (err) {
    throw new Error(`${action}: cannot read /proc/thread-self (is /proc mounted?)`, {
      cause: err,
    });
  }
  const ffi = `${Deno.pid}/task/${libc().gettid()}`;
  if (self !== ffi) {
    throw new Error(
      `${action}: Deno's sync ops run on thread "${self}" but libc's calls on "${ffi}"; setns() would move a thread the checks cannot see`,
    );
  }
  return self;
}

/**
 * `net:[<inode>]` of the file fd `fd` refers to: `stat()` through
 * `/proc/thread-self/fd/<fd>` reaches the open file itself.
 */
function fdLink(fd: number): string {
  return `net:[${Deno.statSync(`/proc/thread-self/fd/${fd}`).ino}]`;
}

/** Opens the home namespace's fd once, before the first setns. */
function homeNamespace(action: string): { fd: number; link: string } {
  if (home !== undefined) return home;
  const lib = libc();
  const fd = lib.open(cString(THREAD_NS), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw new Error(`${action}: cannot open ${THREAD_NS}: ${describeErrno(lastErrno())}`);
  }
  const link = Deno.readLinkSync(THREAD_NS);
  const opened = fdLink(fd);
  if (opened !== link || !/^net:\[\d+\]$/.test(link)) {
    lib.close(fd);
    throw new Error(
      `${action}: the namespace fd opened from ${THREAD_NS} is "${opened}" but the thread's namespace is "${link}"`,
    );
  }
  home = { fd, link };
  return home;
}

/**
 * The network namespace inode of the calling thread.
 *
 * @returns the inode of `/proc/thread-self/ns/net`, as `net:[<inode>]` shows it.
 * @throws {Error} when the link is not of that form.
 */
export function currentNetnsInode(): number {
  const link = Deno.readLinkSync(THREAD_NS);
  const m = /^net:\[(\d+)\]$/.exec(link);
  if (!m) throw new Error(`Cannot read the thread's network namespace: "${link}" is not net:[N]`);
  return Number(m[1]);
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === "object" || typeof v === "function") && v !== null &&
    typeof (v as { then?: unknown }).then === "function";
}

/**
 * Puts thread `thread` back into its home namespace and checks it by inode;
 * when that fails nothing is safe any more, so the process exits.
 */
function goHome(name: string, thread: string, h: { fd: number; link: string }): void {
  let problem: string | undefined;
  try {
    const now = Deno.readLinkSync("/proc/thread-self");
    if (now !== thread) {
      problem = `the code now runs on thread "${now}", not "${thread}" that entered`;
    } else if (libc().setns(h.fd, CLONE_NEWNET) !== 0) {
      problem = `setns() back failed: ${describeErrno(lastErrno())}`;
    } else {
      const seen = Deno.readLinkSync(THREAD_NS);
      if (seen !== h.link) problem = `the thread is in "${seen}", not "${h.link}"`;
    }
  } catch (err) {
    problem = `checking the namespace failed: ${err instanceof Error ? err.message : err}`;
  }
  if (problem === undefined) return;
  const message =
    `backlog-lab: FATAL: cannot return thread ${thread} from namespace "${name}" to the host namespace ${h.link}: ${problem}. The process is in an unknown network namespace; exiting (${EXIT_UNKNOWN_NAMESPACE}) so that nothing acts in the wrong namespace.\n`;
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(message));
  } finally {
    Deno.exit(EXIT_UNKNOWN_NAMESPACE);
  }
}

/**
 * Runs `fn` with the JS thread inside lab network namespace `name`
 * (`/run/netns/<name>`), then moves the thread back, checking both switches
 * by inode. Sockets `fn` creates stay in `name`. `fn` must be synchronous and
 * must not start asynchronous work (a thread it made Deno start could start
 * inside the namespace).
 *
 * @param name a lab namespace: starts with "bl-", then letters, digits, `_`, `.`, `-`.
 * @param fn synchronous code to run inside.
 * @returns what `fn` returns.
 * @throws {RangeError} for a name that is not a lab namespace's.
 * @throws {TypeError} when `fn` returns a promise or other thenable (after returning home).
 * @throws {Error} when already inside a `withNetns()` call, when called from a
 *   Worker, or when opening or entering the namespace fails (with errno).
 *
 * @example Create a netlink socket inside a namespace
 * ```ts ignore
 * import { libc, withNetns } from "./setns.ts";
 *
 * const fd = withNetns("bl-123-abcd-server", () => libc().socket(16, 3, 4));
 * ```
 */
export function withNetns<T>(name: string, fn: () => T): T {
  const action = `Cannot enter namespace "${name}"`;
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new RangeError(
      `${action}: lab namespace names start with "bl-" and have only letters, digits, "_", "." and "-"`,
    );
  }
  if (inside !== undefined) {
    throw new Error(
      `${action}: the JS thread is inside namespace "${inside}" already (withNetns() calls cannot nest)`,
    );
  }
  const thread = jsThread(action);
  const h = homeNamespace(action);
  const before = Deno.readLinkSync(THREAD_NS);
  if (before !== h.link) {
    throw new Error(
      `${action}: the JS thread is in namespace "${before}", not the host's "${h.link}" it started in`,
    );
  }
  const path = `/run/netns/${name}`;
  let want: string;
  try {
    want = `net:[${Deno.statSync(path).ino}]`;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error(`${action}: ${path} does not exist (create it with Netns.create())`, {
        cause: err,
      });
    }
    throw new Error(`${action}: cannot stat ${path}`, { cause: err });
  }
  const lib = libc();
  const fd = lib.open(cString(path), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw new Error(`${action}: open("${path}") failed: ${describeErrno(lastErrno())}`);
  inside = name;
  let result: T;
  try {
    const opened = fdLink(fd);
    if (opened !== want) {
      throw new Error(`${action}: ${path} was "${want}" but the fd opened is "${opened}"`);
    }
    if (lib.setns(fd, CLONE_NEWNET) !== 0) {
      throw new Error(`${action}: setns() failed: ${describeErrno(lastErrno())}`);
    }
    const now = jsThread(action);
    if (now !== thread) {
      throw new Error(`${action}: the thread changed from "${thread}" to "${now}"`);
    }
    const seen = Deno.readLinkSync(THREAD_NS);
    if (seen !== want) {
      throw new Error(`${action}: after setns() the thread is in "${seen}", not "${want}"`);
    }
    result = fn();
  } finally {
    lib.close(fd);
    goHome(name, thread, h);
    inside = undefined;
  }
  if (isThenable(result)) {
    // Its rejection would be unhandled otherwise; the TypeError reports the misuse.
    Promise.resolve(result).catch(() => {});
    throw new TypeError(
      `Cannot run an asynchronous function inside namespace "${name}": withNetns() needs a synchronous function (only the JS thread switches, and only until it returns)`,
    );
  }
  return result;
}
