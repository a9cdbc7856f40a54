/**
 * A packet's flow, as a 32-bit key: FNV-1a over the protocol, both
 * addresses and, for TCP, UDP, DCCP and SCTP, both ports (one TCP connection
 * in one direction is one flow). Read from the first bytes of an IPv4 or IPv6
 * packet, as NFQUEUE copies them. Two flows that hash alike are kept in one
 * order, which costs them nothing but independence.
 * @module
 */

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
/** Protocols whose first four transport bytes are the two ports. */
const PORTED = new Set([6, 17, 33, 132]);
/** The first bytes a flow key needs: an IPv4 header with options (60) plus the ports (4). */
export const FLOW_KEY_BYTES = 64;

/**
 * The flow key of the IP packet in `length` bytes of `view` at `offset`.
 *
 * @returns a 32-bit key; 0 when the bytes are not an IPv4 or IPv6 header.
 */
export function flowKey(view: DataView, offset: number, length: number): number {
  if (length < 1) return 0;
  const version = view.getUint8(offset) >> 4;
  let h = FNV_OFFSET;
  const mix = (from: number, to: number) => {
    for (let i = from; i < to; i++) h = Math.imul(h ^ view.getUint8(offset + i), FNV_PRIME);
  };
  let proto: number;
  let transport: number;
  if (version === 4) {
    if (length < 20) return 0;
    const ihl = (view.getUint8(offset) & 0x0f) * 4;
    proto = view.getUint8(offset + 9);
    mix(9, 10);
    mix(12, 20);
    // A fragment after the first has no ports.
    transport = (view.getUint16(offset + 6) & 0x1fff) === 0 ? ihl : -1;
  } else if (version === 6) {
    if (length < 40) return 0;
    proto = view.getUint8(offset + 6);
    mix(6, 7);
    mix(8, 40);
    transport = 40;
  } else {
    return 0;
  }
  if (transport >= 0 && PORTED.has(proto) && transport + 4 <= length) {
    mix(transport, transport + 4);
  }
  return (h >>> 0) || 1;
}
