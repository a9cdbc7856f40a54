/**
 * The serving half of `listen_server.ts`: for each accepted connection, read
 * a request (the first bytes that arrive), write a reply, close, as a real
 * server does once it has accepted. The connections wait in one epoll set
 * (level-triggered) that a worker thread waits on, so the accept timers and
 * the commands on stdin go on while requests arrive.
 * @module
 */
import {
  EAGAIN,
  EINTR,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_MOD,
  EPOLL_DATA_OFFSET,
  EPOLL_EVENT_SIZE,
  EPOLLIN,
  EPOLLOUT,
  EPOLLRDHUP,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  readErrno,
} from "../../base/libc_constants.ts";

/** Events one `epoll_wait()` returns at most. */
const EPOLL_BATCH = 256;
/** Bytes one `recv()` or `send()` moves at most. */
const IO_CHUNK = 65536;

function openLibc() {
  return Deno.dlopen("libc.so.6", {
    recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
    send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
    close: { parameters: ["i32"], result: "i32" },
    epoll_create1: { parameters: ["i32"], result: "i32" },
    epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
    // On a worker thread, so waiting leaves the event loop free for timers and commands.
    epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32", nonblocking: true },
    __errno_location: { parameters: [], result: "pointer" },
  });
}

/** One connection being served. */
interface Served {
  fd: number;
  /** Reply bytes not yet sent; -1 until the request has arrived. */
  unsent: number;
  /** Whether the epoll set waits for writability. */
  wantsOut: boolean;
}

/** What {@linkcode Servant} reports. */
export interface ServantEvents {
  /** `n` connections were answered and closed since the last report (`total` in all). */
  served(n: number, total: number): void;
  /** The epoll set cannot be waited on any more. */
  broken(message: string): void;
}

/**
 * Serves accepted connections: each is read once a request arrives, answered
 * with `replyBytes` bytes and closed. A connection that ends or fails before
 * it is answered is closed too (not counted as served).
 */
export class Servant {
  readonly #libc = openLibc().symbols;
  readonly #epfd: number;
  readonly #reply: Uint8Array;
  readonly #replyBytes: number;
  readonly #events: ServantEvents;
  readonly #conns = new Map<number, Served>();
  readonly #ctl = new Uint8Array(EPOLL_EVENT_SIZE);
  readonly #ready = new Uint8Array(EPOLL_EVENT_SIZE * EPOLL_BATCH);
  readonly #in = new Uint8Array(IO_CHUNK);
  #total = 0;
  #waiting = false;

  /**
   * A servant that answers with `replyBytes` bytes.
   *
   * @throws {Error} when the epoll set cannot be created.
   */
  constructor(replyBytes: number, events: ServantEvents) {
    this.#reply = new Uint8Array(Math.min(replyBytes, IO_CHUNK)).fill(0x78);
    this.#replyBytes = replyBytes;
    this.#events = events;
    this.#epfd = this.#libc.epoll_create1(EPOLL_CLOEXEC);
    if (this.#epfd < 0) throw new Error(`Cannot create an epoll set (errno ${this.#errno()})`);
  }

  /** Connections answered and closed so far. */
  get total(): number {
    return this.#total;
  }

  /** Connections accepted and not yet answered. */
  get open(): number {
    return this.#conns.size;
  }

  /** Takes an accepted (non-blocking) connection: serves it now if its request is there. */
  add(fd: number): void {
    const c: Served = { fd, unsent: -1, wantsOut: false };
    this.#conns.set(fd, c);
    if (!this.#control(c, EPOLL_CTL_ADD, EPOLLIN | EPOLLRDHUP)) {
      this.#close(c);
      return;
    }
    const served = this.#total;
    this.#handle(c, EPOLLIN);
    if (this.#total > served) this.#events.served(this.#total - served, this.#total);
    if (!this.#waiting) {
      this.#waiting = true;
      this.#wait().catch((err) => this.#events.broken((err as Error).message));
    }
  }

  /** Closes every connection not yet answered. */
  closeAll(): void {
    for (const c of [...this.#conns.values()]) this.#close(c);
  }

  #errno(): number {
    return readErrno(this.#libc);
  }

  #control(c: Served, op: number, events: number): boolean {
    const view = new DataView(this.#ctl.buffer);
    view.setUint32(0, events, true);
    view.setInt32(EPOLL_DATA_OFFSET, c.fd, true);
    view.setUint32(EPOLL_DATA_OFFSET + 4, 0, true);
    return this.#libc.epoll_ctl(this.#epfd, op, c.fd, this.#ctl) === 0;
  }

  async #wait(): Promise<void> {
    const view = new DataView(this.#ready.buffer);
    let failures = 0;
    for (;;) {
      const n = await this.#libc.epoll_wait(this.#epfd, this.#ready, EPOLL_BATCH, -1);
      if (n < 0) {
        // errno belongs to the worker thread; EINTR is the one failure to expect.
        if (++failures === 3) throw new Error("epoll_wait() failed 3 times in a row");
        continue;
      }
      failures = 0;
      const served = this.#total;
      for (let k = 0; k < n; k++) {
        const at = k * EPOLL_EVENT_SIZE;
        const c = this.#conns.get(view.getInt32(at + EPOLL_DATA_OFFSET, true));
        if (c !== undefined) this.#handle(c, view.getUint32(at, true));
      }
      if (this.#total > served) this.#events.served(this.#total - served, this.#total);
    }
  }

  /** Reads the request (once), then writes what is left of the reply; closes when done or failed. */
  #handle(c: Served, ready: number): void {
    if (c.unsent < 0) {
      if ((ready & ~EPOLLOUT) === 0) return;
      const n = Number(this.#libc.recv(c.fd, this.#in, BigInt(IO_CHUNK), MSG_DONTWAIT));
      if (n < 0) {
        const code = this.#errno();
        if (code !== EAGAIN && code !== EINTR) this.#close(c);
        return;
      }
      // 0: the client closed before sending a request.
      if (n === 0) return this.#close(c);
      c.unsent = this.#replyBytes;
    }
    while (c.unsent > 0) {
      const chunk = this.#reply.subarray(0, Math.min(c.unsent, this.#reply.length));
      const n = Number(
        this.#libc.send(c.fd, chunk, BigInt(chunk.length), MSG_DONTWAIT | MSG_NOSIGNAL),
      );
      if (n >= 0) {
        c.unsent -= n;
        continue;
      }
      const code = this.#errno();
      if (code === EAGAIN || code === EINTR) {
        if (!c.wantsOut) {
          c.wantsOut = true;
          this.#control(c, EPOLL_CTL_MOD, EPOLLOUT);
        }
        return;
      }
      return this.#close(c);
    }
    this.#total++;
    this.#close(c);
  }

  #close(c: Served): void {
    if (!this.#conns.delete(c.fd)) return;
    // Leaves the epoll set with its last descriptor.
    this.#libc.close(c.fd);
  }
}
