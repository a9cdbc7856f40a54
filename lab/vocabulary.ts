/**
 * The lab's vocabulary, defined once: TCP states, packet kinds as a capture
 * classifies them, packet kinds a rule matches, run modes, verdicts and the
 * ways a check is judged. Each is a constant list (for validation and
 * did-you-mean hints) and the type of its members. Every stage uses these.
 * @module
 */

/** TCP states as the kernel names them (`include/net/tcp_states.h`), in its numbering from 1. */
export const TCP_STATES = [
  "ESTABLISHED",
  "SYN_SENT",
  "SYN_RECV",
  "FIN_WAIT1",
  "FIN_WAIT2",
  "TIME_WAIT",
  "CLOSE",
  "CLOSE_WAIT",
  "LAST_ACK",
  "LISTEN",
  "CLOSING",
  "NEW_SYN_RECV",
] as const;

/** A TCP state name. */
export type TcpState = (typeof TCP_STATES)[number];

/**
 * What a captured segment is, by its flags and payload: RST wins over
 * everything; SYN-ACK = SYN and ACK; SYN; FIN; DATA = payload > 0; else ACK.
 */
export const PACKET_KINDS = ["SYN", "SYN-ACK", "ACK", "DATA", "FIN", "RST"] as const;

/** A packet kind as a capture classifies it. */
export type PacketKind = (typeof PACKET_KINDS)[number];

/**
 * Packets a rule matches, by TCP control flags: `syn` is SYN without ACK;
 * `syn-ack` SYN+ACK; `ack` a segment whose only control flag (of FIN, SYN,
 * RST, ACK) is ACK, PSH/URG/ECE/CWR allowed (the handshake's final ACK, pure
 * ACKs and data); `rst` any segment with RST; `fin` any with FIN; `all`
 * every TCP segment of the connection.
 */
export const RULE_PACKETS = ["syn", "syn-ack", "ack", "rst", "fin", "all"] as const;

/** A packet kind a rule matches. */
export type RulePacketKind = (typeof RULE_PACKETS)[number];

/**
 * Which variant of an experiment ran: `fast` shortens the timers it is not
 * about, or the length of its load (it has a faithful variant and
 * `--faithful` was not given), `faithful` runs the kernel's defaults and the
 * full-length load, `default` means the experiment has no faithful variant.
 */
export const RUN_MODES = ["fast", "faithful", "default"] as const;

/** A run mode. */
export type RunMode = (typeof RUN_MODES)[number];

/** A claim's verdict on the running kernel. */
export const VERDICTS = ["reproduced", "not reproduced", "partly", "historical"] as const;

/** A claim's verdict. */
export type Verdict = (typeof VERDICTS)[number];

/**
 * How an expectation is judged: `settled` holds and stays held for its
 * stable time once every client was launched; `always` holds in every sample
 * from then on; `peak` by the highest value seen.
 */
export const JUDGED_OVER = ["settled", "always", "peak"] as const;

/** How an expectation is judged. */
export type JudgedOver = (typeof JUDGED_OVER)[number];
