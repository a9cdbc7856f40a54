/**
 * The nfnetlink_queue messages the delayer exchanges with the kernel, encoded
 * and decoded by hand (no libnetfilter_queue): binding a queue, its
 * parameters, verdicts, and the kernel's packet and error messages. Pure
 * functions over byte buffers, so they are tested without root.
 *
 * Layout (`include/uapi/linux/netfilter/nfnetlink_queue.h`): a `nlmsghdr`
 * (host byte order), a `nfgenmsg` (`res_id` = the queue number, big-endian),
 * then attributes whose headers are in host order and whose values are
 * big-endian.
 * @module
 */

/** `AF_NETLINK`. */
export const AF_NETLINK = 16;
/** `NETLINK_NETFILTER`, the protocol of nfnetlink sockets. */
export const NETLINK_NETFILTER = 12;

/** `sizeof(struct nlmsghdr)`. */
export const NLMSG_HDRLEN = 16;
const NFGENMSG_LEN = 4;
const NLA_HDRLEN = 4;
/** Attribute type bits (the rest are the nested and byte-order flags). */
const NLA_TYPE_MASK = 0x3fff;

const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;

const NFNL_SUBSYS_QUEUE = 3;
const NFQNL_MSG_PACKET = 0;
const NFQNL_MSG_VERDICT = 1;
const NFQNL_MSG_CONFIG = 2;
const NFQNL_MSG_VERDICT_BATCH = 3;

const NFQA_PACKET_HDR = 1;
const NFQA_VERDICT_HDR = 2;
const NFQA_TIMESTAMP = 4;
const NFQA_IFINDEX_INDEV = 5;
const NFQA_IFINDEX_OUTDEV = 6;
const NFQA_PAYLOAD = 10;
const NFQA_SKB_INFO = 14;

const NFQA_CFG_CMD = 1;
const NFQA_CFG_PARAMS = 2;
const NFQA_CFG_QUEUE_MAXLEN = 3;
const NFQA_CFG_MASK = 4;
const NFQA_CFG_FLAGS = 5;

const NFQNL_CFG_CMD_BIND = 1;
const NFQNL_CFG_CMD_UNBIND = 2;

/** `NFQNL_COPY_META`: only the metadata (the packet id among it), no payload. */
export const NFQNL_COPY_META = 1;
/** `NFQNL_COPY_PACKET`: the metadata and the packet's first `copy_range` bytes. */
export const NFQNL_COPY_PACKET = 2;

/** `NFQA_CFG_F_FAIL_OPEN`: when the queue or the socket is full, accept instead of drop. */
export const NFQA_CFG_F_FAIL_OPEN = 0x1;
/** `NFQA_CFG_F_GSO`: queue GSO packets whole instead of segmenting them first. */
export const NFQA_CFG_F_GSO = 0x4;
/** `NFQA_SKB_GSO` in `NFQA_SKB_INFO`: the packet is a GSO super-packet. */
export const NFQA_SKB_GSO = 0x2;

/** `NF_DROP`. */
export const NF_DROP = 0;
/** `NF_ACCEPT`. */
export const NF_ACCEPT = 1;

/** Host byte order: netlink and attribute headers use it. */
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function nfqType(msg: number): number {
  return (NFNL_SUBSYS_QUEUE << 8) | msg;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/**
 * Writes `nlmsghdr` (but its length) + `nfgenmsg` at `base` and returns the
 * offset after them.
 */
function writeHeader(
  view: DataView,
  base: number,
  h: { type: number; flags: number; seq: number; queue: number },
): number {
  view.setUint16(base + 4, h.type, LE);
  view.setUint16(base + 6, h.flags, LE);
  view.setUint32(base + 8, h.seq >>> 0, LE);
  view.setUint32(base + 12, 0, LE);
  view.setUint8(base + NLMSG_HDRLEN, 0); // AF_UNSPEC: the queue is not per family
  view.setUint8(base + NLMSG_HDRLEN + 1, 0); // NFNETLINK_V0
  view.setUint16(base + NLMSG_HDRLEN + 2, h.queue, false);
  return base + NLMSG_HDRLEN + NFGENMSG_LEN;
}

/** Writes an attribute header and returns the offset of its value. */
function writeAttr(view: DataView, at: number, type: number, valueLength: number): number {
  view.setUint16(at, NLA_HDRLEN + valueLength, LE);
  view.setUint16(at + 2, type, LE);
  return at + NLA_HDRLEN;
}

function checkQueue(queue: number, action: string): void {
  if (!Number.isInteger(queue) || queue < 0 || queue > 65535) {
    throw new RangeError(`${action}: queue number "${queue}" must be an integer from 0 to 65535`);
  }
}

function checkU32(value: number, what: string, action: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`${action}: ${what} "${value}" must be an integer from 0 to 4294967295`);
  }
}

/** What {@linkcode encodeParams} configures. */
export interface QueueParams {
  /** Packets the kernel holds for this queue before it drops (or fails open). */
  maxLen: number;
  /** `NFQA_CFG_F_*` bits to set (the mask is the same bits). */
  flags: number;
  /**
   * 0: copy-meta mode (no packet bytes). Otherwise copy-packet mode with the
   * packet's first `copyRange` bytes (from the network header), 1 to 65531.
   */
  copyRange: number;
}

/**
 * The request that binds queue `queue` to the sending socket
 * (`NFQNL_CFG_CMD_BIND`), with an ack requested. Kernels since 3.8 need no
 * per-family `PF_BIND` first.
 *
 * @param queue the queue number (0 to 65535).
 * @param seq the netlink sequence number the ack will carry.
 * @returns the whole message.
 * @throws {RangeError} for a queue number out of range.
 */
export function encodeBind(queue: number, seq: number): Uint8Array {
  return encodeCommand(queue, seq, NFQNL_CFG_CMD_BIND, "Cannot encode a queue bind");
}

/**
 * The request that unbinds queue `queue` (`NFQNL_CFG_CMD_UNBIND`), with an
 * ack requested. The kernel drops whatever the queue still holds.
 *
 * @param queue the queue number (0 to 65535).
 * @param seq the netlink sequence number the ack will carry.
 * @returns the whole message.
 * @throws {RangeError} for a queue number out of range.
 */
export function encodeUnbind(queue: number, seq: number): Uint8Array {
  return encodeCommand(queue, seq, NFQNL_CFG_CMD_UNBIND, "Cannot encode a queue unbind");
}

function encodeCommand(queue: number, seq: number, command: number, action: string): Uint8Array {
  checkQueue(queue, action);
  // struct nfqnl_msg_config_cmd { __u8 command; __u8 _pad; __be16 pf; }
  const len = NLMSG_HDRLEN + NFGENMSG_LEN + NLA_HDRLEN + 4;
  const bytes = new Uint8Array(len);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, len, LE);
  const at = writeHeader(view, 0, {
    type: nfqType(NFQNL_MSG_CONFIG),
    flags: NLM_F_REQUEST | NLM_F_ACK,
    seq,
    queue,
  });
  const v = writeAttr(view, at, NFQA_CFG_CMD, 4);
  view.setUint8(v, command);
  return bytes;
}

/**
 * The request that sets a bound queue's copy mode (metadata only, or the
 * first bytes of each packet), its length limit and its flags, with an ack
 * requested.
 *
 * @param queue the queue number (0 to 65535).
 * @param seq the netlink sequence number the ack will carry.
 * @param options the queue's maximum length, `NFQA_CFG_F_*` flags and copy range.
 * @returns the whole message.
 * @throws {RangeError} for a queue number, length or flags out of range.
 */
export function encodeParams(queue: number, seq: number, options: QueueParams): Uint8Array {
  const action = "Cannot encode queue parameters";
  checkQueue(queue, action);
  checkU32(options.maxLen, "queue length", action);
  checkU32(options.flags, "flags", action);
  if (!Number.isInteger(options.copyRange) || options.copyRange < 0 || options.copyRange > 65531) {
    throw new RangeError(`${action}: copy range "${options.copyRange}" must be from 0 to 65531`);
  }
  // struct nfqnl_msg_config_params { __be32 copy_range; __u8 copy_mode; } __packed (5 bytes)
  const attrs = align4(NLA_HDRLEN + 5) + (NLA_HDRLEN + 4) * 3;
  const len = NLMSG_HDRLEN + NFGENMSG_LEN + attrs;
  const bytes = new Uint8Array(len);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, len, LE);
  let at = writeHeader(view, 0, {
    type: nfqType(NFQNL_MSG_CONFIG),
    flags: NLM_F_REQUEST | NLM_F_ACK,
    seq,
    queue,
  });
  let v = writeAttr(view, at, NFQA_CFG_PARAMS, 5);
  view.setUint32(v, options.copyRange, false);
  view.setUint8(v + 4, options.copyRange === 0 ? NFQNL_COPY_META : NFQNL_COPY_PACKET);
  at += align4(NLA_HDRLEN + 5);
  v = writeAttr(view, at, NFQA_CFG_QUEUE_MAXLEN, 4);
  view.setUint32(v, options.maxLen, false);
  at += NLA_HDRLEN + 4;
  v = writeAttr(view, at, NFQA_CFG_MASK, 4);
  view.setUint32(v, options.flags, false);
  at += NLA_HDRLEN + 4;
  v = writeAttr(view, at, NFQA_CFG_FLAGS, 4);
  view.setUint32(v, options.flags, false);
  return bytes;
}

/** The length of a verdict message ({@linkcode writeVerdict}). */
export const VERDICT_LEN = NLMSG_HDRLEN + NFGENMSG_LEN + NLA_HDRLEN + 8;

/**
 * Writes a verdict into `view` at offset `verdict.at`, without an ack (the
 * kernel still answers an error). Several verdicts may follow each other in
 * one buffer and go in one `sendto()`. A batch verdict (`NFQNL_MSG_VERDICT_BATCH`) applies to
 * every queued packet whose id is at most `id`, in queue order; a single one
 * to packet `id` alone. Allocation-free, for the delayer's hot path.
 *
 * @param view with at least {@linkcode VERDICT_LEN} bytes from `verdict.at`.
 * @param verdict where, and what to write.
 * @returns the message length, {@linkcode VERDICT_LEN}.
 */
export function writeVerdict(
  view: DataView,
  verdict: { at: number; queue: number; id: number; seq: number; batch: boolean; accept: boolean },
): number {
  const base = verdict.at;
  view.setUint32(base, VERDICT_LEN, LE);
  const type = nfqType(verdict.batch ? NFQNL_MSG_VERDICT_BATCH : NFQNL_MSG_VERDICT);
  const at = writeHeader(view, base, {
    type,
    flags: NLM_F_REQUEST,
    seq: verdict.seq,
    queue: verdict.queue,
  });
  // struct nfqnl_msg_verdict_hdr { __be32 verdict; __be32 id; }
  const v = writeAttr(view, at, NFQA_VERDICT_HDR, 8);
  view.setUint32(v, verdict.accept ? NF_ACCEPT : NF_DROP, false);
  view.setUint32(v + 4, verdict.id >>> 0, false);
  return VERDICT_LEN;
}

/** One queued packet as the kernel announced it (copy-meta mode). */
export interface QueuedPacket {
  /** The queue it sits in. */
  queue: number;
  /** The kernel's packet id: increasing by one per packet in each queue. */
  id: number;
  /** The netfilter hook (4 = `NF_INET_POST_ROUTING`). */
  hook: number;
  /** The link-layer protocol, e.g. `0x0800` for IPv4. */
  hwProtocol: number;
  /** The output interface index, 0 when absent. */
  outIfindex: number;
  /** The input interface index, 0 when absent. */
  inIfindex: number;
  /** Whether the packet is a GSO super-packet (several segments on the wire). */
  gso: boolean;
  /** `NFQA_TIMESTAMP` in ms since the epoch, when the kernel sent one (input hooks only). */
  timestampMs: number | undefined;
  /** Where the copied packet bytes start in the view (copy-packet mode), -1 when none. */
  payloadOffset: number;
  /** How many packet bytes were copied. */
  payloadLength: number;
}

/** A netlink error or ack (`NLMSG_ERROR`). */
export interface NetlinkAck {
  /** The sequence number of the request it answers. */
  seq: number;
  /** 0 for an ack, otherwise the positive errno. */
  errno: number;
}

/** What {@linkcode decodeMessages} reports for each message it finds. */
export interface MessageSink {
  /** A queued packet; its fields are only valid during the call (the object is reused). */
  packet(packet: Readonly<QueuedPacket>): void;
  /** An ack or error. */
  ack(ack: NetlinkAck): void;
}

/** Reused for every packet {@linkcode decodeMessages} reports. */
const scratch: QueuedPacket = {
  queue: 0,
  id: 0,
  hook: 0,
  hwProtocol: 0,
  outIfindex: 0,
  inIfindex: 0,
  gso: false,
  timestampMs: undefined,
  payloadOffset: -1,
  payloadLength: 0,
};

/**
 * Walks the netlink messages in `length` bytes of `view` (one `recv()`),
 * reporting each queued packet and each ack or error; other messages
 * (`NLMSG_DONE`, other subsystems) are skipped.
 *
 * @param view the receive buffer.
 * @param length the bytes `recv()` returned.
 * @param sink called once per message, in order.
 * @returns the number of messages found.
 * @throws {RangeError} for a malformed message (a length that does not fit),
 *   or a packet message without its `NFQA_PACKET_HDR`, naming the offset.
 */
export function decodeMessages(view: DataView, length: number, sink: MessageSink): number {
  let count = 0;
  for (let off = 0; off + NLMSG_HDRLEN <= length;) {
    const mlen = view.getUint32(off, LE);
    if (mlen < NLMSG_HDRLEN || off + mlen > length) {
      throw new RangeError(
        `Cannot decode netlink message at offset ${off}: length "${mlen}" does not fit the ${length} bytes received`,
      );
    }
    const type = view.getUint16(off + 4, LE);
    count++;
    if (type === NLMSG_ERROR) {
      if (mlen < NLMSG_HDRLEN + 4 + NLMSG_HDRLEN) {
        throw new RangeError(`Cannot decode netlink error at offset ${off}: only ${mlen} bytes`);
      }
      const error = view.getInt32(off + NLMSG_HDRLEN, LE);
      // The error carries the request's header after the code; its seq is at +8.
      sink.ack({
        seq: view.getUint32(off + NLMSG_HDRLEN + 4 + 8, LE),
        errno: error === 0 ? 0 : -error,
      });
    } else if (type === nfqType(NFQNL_MSG_PACKET)) {
      decodePacket(view, off, mlen);
      sink.packet(scratch);
    } else if (type !== NLMSG_DONE) {
      count--;
    }
    off += align4(mlen);
  }
  return count;
}

function decodePacket(view: DataView, off: number, mlen: number): void {
  const p = scratch;
  p.queue = view.getUint16(off + NLMSG_HDRLEN + 2, false);
  p.id = -1;
  p.hook = 0;
  p.hwProtocol = 0;
  p.outIfindex = 0;
  p.inIfindex = 0;
  p.gso = false;
  p.timestampMs = undefined;
  p.payloadOffset = -1;
  p.payloadLength = 0;
  const end = off + mlen;
  for (let a = off + NLMSG_HDRLEN + NFGENMSG_LEN; a + NLA_HDRLEN <= end;) {
    const alen = view.getUint16(a, LE);
    if (alen < NLA_HDRLEN || a + alen > end) {
      throw new RangeError(
        `Cannot decode queued packet at offset ${off}: attribute length "${alen}" at ${a} does not fit`,
      );
    }
    const v = a + NLA_HDRLEN;
    switch (view.getUint16(a + 2, LE) & NLA_TYPE_MASK) {
      case NFQA_PACKET_HDR:
        // struct nfqnl_msg_packet_hdr { __be32 packet_id; __be16 hw_protocol; __u8 hook; }
        if (alen >= NLA_HDRLEN + 7) {
          p.id = view.getUint32(v, false);
          p.hwProtocol = view.getUint16(v + 4, false);
          p.hook = view.getUint8(v + 6);
        }
        break;
      case NFQA_IFINDEX_OUTDEV:
        if (alen >= NLA_HDRLEN + 4) p.outIfindex = view.getUint32(v, false);
        break;
      case NFQA_IFINDEX_INDEV:
        if (alen >= NLA_HDRLEN + 4) p.inIfindex = view.getUint32(v, false);
        break;
      case NFQA_SKB_INFO:
        if (alen >= NLA_HDRLEN + 4) p.gso = (view.getUint32(v, false) & NFQA_SKB_GSO) !== 0;
        break;
      case NFQA_PAYLOAD:
        p.payloadOffset = v;
        p.payloadLength = alen - NLA_HDRLEN;
        break;
      case NFQA_TIMESTAMP:
        // struct nfqnl_msg_packet_timestamp { __aligned_be64 sec; __aligned_be64 usec; }
        if (alen >= NLA_HDRLEN + 16) {
          p.timestampMs = Number(view.getBigUint64(v, false)) * 1000 +
            Number(view.getBigUint64(v + 8, false)) / 1000;
        }
        break;
    }
    a += align4(alen);
  }
  if (p.id < 0) {
    throw new RangeError(`Cannot decode queued packet at offset ${off}: no NFQA_PACKET_HDR`);
  }
}
