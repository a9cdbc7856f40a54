/**
 * The protocol between the lab and its two programs, types only: each
 * program takes one JSON spec as its argument, reads commands on stdin and
 * prints events on stdout, one JSON object a line. Times (`t`) are
 * milliseconds since the command that started the activity ("go" for the
 * clients, the policy or accept command for the server).
 * @module
 */
import type { ArrivalPlan } from "../../describe/arrivals.ts";
import type { FollowUpSpec } from "../../describe/run_plan.ts";

/** When the server calls `accept4()`, in the program's terms. */
export type ServerPolicy =
  | "never"
  | { kind: "all" }
  | { kind: "batch"; n: number; everyMs: number }
  | { kind: "rate"; perSecond: number };

/** The server program's argument (`listen_server.ts '<ServerSpec as JSON>'`). */
export interface ServerSpec {
  /** IP version. */
  family: 4 | 6;
  /** The address to bind. */
  address: string;
  /** The port to bind. */
  port: number;
  /** The `backlog` passed verbatim to `listen()`. */
  backlog: number;
  /** Lower `RLIMIT_NOFILE` (soft and hard) to this once listening. */
  maxOpenFiles?: number;
  /** Serve each accepted connection: read a request, write `replyBytes` bytes, close. */
  serve?: { replyBytes: number };
  /**
   * Load, print `loaded`, and create the socket only on a `listen` command:
   * the lab starts the program while it still builds the namespace.
   */
  waitToListen?: boolean;
}

/** A command to the server. */
export type ServerCommand =
  | { cmd: "listen" }
  | { cmd: "policy"; policy: ServerPolicy }
  | { cmd: "accept"; n: number }
  | { cmd: "exit" };

/** An event of the server. */
export type ServerEvent =
  | { event: "loaded"; pid: number }
  | { event: "ready"; pid: number; openFiles: number; maxOpenFiles: number }
  | { event: "accepted"; n: number; total: number; t: number }
  | { event: "served"; n: number; total: number; t: number }
  | { event: "accept-error"; errno: "EMFILE" | "ENFILE"; total: number; openFiles: number }
  | { event: "error"; message: string };

/** The client program's argument (`client_group.ts '<ClientGroupSpec as JSON>'`). */
export interface ClientGroupSpec {
  /** IP version. */
  family: 4 | 6;
  /** Server address. */
  address: string;
  /** Server port. */
  port: number;
  /** Source address to bind (the group's own address). */
  localAddress?: string;
  /** Connections to open. */
  count: number;
  /** 0: all at once; otherwise one connect() every intervalMs (fractional for a rate). */
  intervalMs: number;
  /** Sustained arrivals: connection k starts at `arrivalTimes(arrivals)[k]` (`count` is theirs). */
  arrivals?: ArrivalPlan;
  /** Follow-up after connect() returns. */
  then: FollowUpSpec;
  /** Give up on a connection (close it) this long after its connect() began; 0 = never. */
  deadlineMs: number;
}

/** A command to a client group. */
export type ClientCommand = { cmd: "go" } | { cmd: "close" } | { cmd: "exit" };

/** An event of a client group; `i` is the connection's index in its group. */
export type ClientEvent =
  | { event: "ready"; pid: number; maxOpenFiles?: number }
  | { event: "open"; i: number; t: number }
  | { event: "launched"; n: number; t: number }
  | { event: "connect"; i: number; result: string; t: number; ms: number }
  | { event: "after"; i: number; result: string; t: number; bytes?: number; ms?: number }
  | { event: "deadline"; i: number; t: number; phase: "connect" | "after" }
  | { event: "closed"; n: number; t: number }
  | { event: "error"; message: string };
