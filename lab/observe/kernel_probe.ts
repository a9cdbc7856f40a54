/**
 * Probing the kernel the lab runs on, once per lab run, into the
 * {@linkcode KernelFacts} every experiment is planned with: the release, the
 * sysctls of a fresh namespace with their values (preflight reads them), how
 * the machine runs (native, or a VM's accelerator, as the VM runner says),
 * the time scale, and behaviour probes: small measurements of what the
 * kernel does where kernels differ, since a version number cannot say it
 * (changes are backported to stable kernels).
 * @module
 */
import { AF_INET, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM } from "../base/libc_constants.ts";
import { scaled, timeScale } from "../base/time_scale.ts";
import { until } from "../base/wait.ts";
import type { KernelBehaviour, KernelFacts, KernelMachine } from "../results.ts";
import type { ProbeNamespace } from "../topology/preflight.ts";
import { describeErrno, lastErrno, libc, withNetns } from "../topology/setns.ts";
import { parseProcNetTcp } from "./socket_table.ts";

/** The environment variable in which a VM runner tells the guest's lab how it runs (`kvm`, `tcg`). */
export const MACHINE_ENV = "BACKLOG_LAB_MACHINE";

/** How the lab's machine runs: `$BACKLOG_LAB_MACHINE` (`kvm`, `tcg`) in a VM, else `native`. */
export function machineKind(): KernelMachine {
  const m = Deno.env.get(MACHINE_ENV);
  return m === "kvm" || m === "tcg" ? m : "native";
}

/** What {@linkcode kernelFacts} puts together. */
export interface KernelFactsInput {
  /** `uname -r` (preflight's). */
  release: string;
  /** A fresh namespace's sysctls with their values (preflight's). */
  sysctls: Readonly<Record<string, string>>;
  /** What {@linkcode probeBehaviour} measured. */
  behaviour: KernelBehaviour;
}

/** The facts to plan with: preflight's and the probes', the machine kind and the time scale. */
export function kernelFacts(input: KernelFactsInput): KernelFacts {
  return {
    release: input.release,
    sysctls: input.sysctls,
    behaviour: input.behaviour,
    machine: machineKind(),
    timeScale: timeScale(),
    probed: true,
  };
}

/** What no probe measured: every behaviour unknown. */
export function unknownBehaviour(): KernelBehaviour {
  return { synQueueExtra: null };
}

/**
 * Runs every behaviour probe in `ns`, a fresh namespace of the lab's (the
 * probes may change its sysctls); a probe that cannot tell gives `null`.
 *
 * @throws the signal's reason when it aborts; a `TypeError` (a bug of the probe).
 */
export async function probeBehaviour(
  ns: ProbeNamespace,
  signal?: AbortSignal,
): Promise<KernelBehaviour> {
  const behaviour = unknownBehaviour();
  try {
    const kept = await probeSynQueue(ns, signal);
    behaviour.synQueueExtra = kept === 1 ? 0 : kept === 2 ? 1 : null;
  } catch (err) {
    signal?.throwIfAborted();
    if (err instanceof TypeError) throw err;
  }
  return behaviour;
}

const IPPROTO_TCP = 6;
const TCP_DEFER_ACCEPT = 9;
const EINPROGRESS = 115;
const PROBE_PORT = 4099;
const PROBE_CLIENTS = 4;

/**
 * How many request sockets a listener with listen(fd, 1) keeps, in a fresh
 * namespace `ns` (whose tcp_syncookies it sets to 0): 1 where `inet_csk_reqsk_queue_is_full()`
 * tests `qlen >= sk_max_ack_backlog`, 2 where it tests `>` (commit
 * 3479c7549fb1, v6.13, and its stable backports).
 *
 * On loopback, inside the namespace: the listener has TCP_DEFER_ACCEPT, so
 * the kernel drops each client's bare final ACK and keeps the request in
 * SYN_RECV (`tcp_check_req()`), and 4 clients connect one after the other.
 * Every client either got its SYN-ACK (ESTABLISHED, one request each) or
 * had its SYN dropped for a full SYN queue (SYN_SENT, resent only after 1 s);
 * the probe waits until the table shows that and reads the requests.
 *
 * @returns the number of request sockets kept.
 * @throws {Error} when the namespace, a socket call or the wait fails.
 */
export async function probeSynQueue(ns: ProbeNamespace, signal?: AbortSignal): Promise<number> {
  await ns.sysctls({ "net.ipv4.tcp_syncookies": "0" });
  const lib = libc();
  const fds: number[] = [];
  try {
    withNetns(ns.name, () => {
      const socket = () => {
        const fd = lib.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) throw new Error(`socket() failed: ${describeErrno(lastErrno())}`);
        fds.push(fd);
        return fd;
      };
      const addr = loopback(PROBE_PORT);
      const listener = socket();
      const seconds = new Uint8Array(new Int32Array([30]).buffer);
      if (lib.setsockopt(listener, IPPROTO_TCP, TCP_DEFER_ACCEPT, seconds, 4) !== 0) {
        throw new Error(`setsockopt(TCP_DEFER_ACCEPT) failed: ${describeErrno(lastErrno())}`);
      }
      if (lib.bind(listener, addr, addr.length) !== 0) {
        throw new Error(`bind() failed: ${describeErrno(lastErrno())}`);
      }
      if (lib.listen(listener, 1) !== 0) {
        throw new Error(`listen() failed: ${describeErrno(lastErrno())}`);
      }
      for (let i = 0; i < PROBE_CLIENTS; i++) {
        const c = socket();
        if (lib.connect(c, addr, addr.length) !== 0 && lastErrno().code !== EINPROGRESS) {
          throw new Error(`connect() failed: ${describeErrno(lastErrno())}`);
        }
      }
    });
    const table = () =>
      parseProcNetTcp(Deno.readTextFileSync(`${ns.procNet}/tcp`)).filter((r) =>
        r.localPort === PROBE_PORT || r.remotePort === PROBE_PORT
      );
    const settled = (rows: ReturnType<typeof table>) => {
      const clients = rows.filter((r) => r.remotePort === PROBE_PORT);
      const connected = clients.filter((r) => r.state === "ESTABLISHED").length;
      const waiting = clients.filter((r) => r.state === "SYN_SENT").length;
      const requests = rows.filter((r) => r.localPort === PROBE_PORT && r.state === "SYN_RECV");
      return connected + waiting === PROBE_CLIENTS && requests.length === connected &&
        connected > 0;
    };
    const rows = await until("the probe's clients to be answered or dropped", table, settled, {
      timeoutMs: scaled(5_000),
      intervalMs: 10,
      ...(signal ? { signal } : {}),
    });
    return rows.filter((r) => r.localPort === PROBE_PORT && r.state === "SYN_RECV").length;
  } finally {
    for (const fd of fds) lib.close(fd);
  }
}

/** A `struct sockaddr_in` for 127.0.0.1:port. */
function loopback(port: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint16(0, AF_INET, true);
  v.setUint16(2, port, false);
  b.set([127, 0, 0, 1], 4);
  return b;
}
