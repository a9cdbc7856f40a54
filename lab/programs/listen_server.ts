/**
 * The experiment's server. Run inside the server namespace by the runner:
 *
 *   deno run --allow-ffi listen_server.ts <family 4|6> <address> <port> <backlog>
 *
 * It creates the socket through libc (`socket`, `setsockopt(SO_REUSEADDR)`,
 * `bind`, `listen(fd, backlog)`) because `Deno.listen` cannot set a backlog,
 * so the LISTEN socket's Send-Q in `ss -ltn` is `min(backlog, somaxconn)` for
 * exactly the backlog given. It never calls `accept()` unless told to.
 *
 * Events on stdout (one JSON object a line):
 *   {"event":"ready","pid":N} | {"event":"accepted","n":N,"total":N} | {"event":"error","message":"…"}
 * Commands on stdin (one JSON object a line):
 *   {"cmd":"accept","n":N}  accept up to N queued connections now (non-blocking)
 *   {"cmd":"exit"}          close everything and exit 0 (EOF on stdin does the same)
 * @module
 */
import { emit, readLines } from "./_lines.ts";

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const EAGAIN = 11;

const libc = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: { parameters: ["i32", "pointer", "pointer", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  strerror: { parameters: ["i32"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
});

function errno(): number {
  const p = libc.symbols.__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

function fail(action: string): never {
  const code = errno();
  const s = libc.symbols.strerror(code);
  const text = s === null ? `errno ${code}` : Deno.UnsafePointerView.getCString(s);
  emit({ event: "error", message: `${action} failed: ${text} (errno ${code})` });
  Deno.exit(1);
}

/** Builds a `sockaddr_in` or `sockaddr_in6` for `address:port`. */
export function sockaddr(family: 4 | 6, address: string, port: number): Uint8Array {
  const buf = new Uint8Array(family === 4 ? 16 : 28);
  const view = new DataView(buf.buffer);
  view.setUint16(0, family === 4 ? AF_INET : AF_INET6, true);
  view.setUint16(2, port, false);
  if (family === 4) {
    const parts = address.split(".").map(Number);
    if (parts.length !== 4 || parts.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) {
      throw new RangeError(`Cannot parse IPv4 address "${address}"`);
    }
    buf.set(parts, 4);
  } else {
    buf.set(ipv6Bytes(address), 8);
  }
  return buf;
}

function ipv6Bytes(address: string): number[] {
  const [head = "", tail = ""] = address.split("::");
  const h = head ? head.split(":") : [];
  const t = address.includes("::") ? (tail ? tail.split(":") : []) : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  if (groups.length !== 8) throw new RangeError(`Cannot parse IPv6 address "${address}"`);
  return groups.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

function main(): void {
  const [familyArg, address, portArg, backlogArg] = Deno.args;
  const family = familyArg === "6" ? 6 : 4;
  const port = Number(portArg);
  const backlog = Number(backlogArg);
  if (!address || !Number.isInteger(port) || !Number.isInteger(backlog)) {
    emit({ event: "error", message: "usage: listen_server.ts <4|6> <address> <port> <backlog>" });
    Deno.exit(2);
  }
  const fd = libc.symbols.socket(family === 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) fail("socket()");
  const one = new Uint8Array(new Int32Array([1]).buffer);
  if (libc.symbols.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) < 0) fail("setsockopt()");
  const sa = sockaddr(family, address, port);
  if (libc.symbols.bind(fd, sa, sa.length) < 0) fail(`bind(${address}:${port})`);
  if (libc.symbols.listen(fd, backlog) < 0) fail(`listen(${backlog})`);

  const accepted: number[] = [];
  const shutdown = () => {
    for (const c of accepted) libc.symbols.close(c);
    libc.symbols.close(fd);
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", shutdown);
  Deno.addSignalListener("SIGINT", shutdown);
  emit({ event: "ready", pid: Deno.pid });

  (async () => {
    for await (const line of readLines(Deno.stdin.readable)) {
      if (!line.trim()) continue;
      let cmd: { cmd?: string; n?: number };
      try {
        cmd = JSON.parse(line);
      } catch {
        emit({ event: "error", message: `Cannot parse command line "${line}"` });
        continue;
      }
      if (cmd.cmd === "exit") break;
      if (cmd.cmd === "accept") {
        let n = 0;
        while (n < (cmd.n ?? 0)) {
          const c = libc.symbols.accept4(fd, null, null, SOCK_NONBLOCK);
          if (c < 0) {
            if (errno() === EAGAIN) break;
            fail("accept4()");
          }
          accepted.push(c);
          n++;
        }
        emit({ event: "accepted", n, total: accepted.length });
      }
    }
    shutdown();
  })();
}

if (import.meta.main) main();
