import { strictEqual as equal } from "node:assert/strict";
import { buildSegment, setSequence } from "../../../tools/shaping/segment_pacer.ts";

Deno.test("setSequence() writes a checksum that verifies over the IPv4 pseudo-header", () => {
  const src = new Uint8Array([10, 213, 250, 1]);
  const dst = new Uint8Array([10, 213, 251, 2]);
  for (const payload of [0, 1, 1000]) {
    const seg = buildSegment({ sport: 20000, dport: 9, payload });
    setSequence(seg, 0xfffffffe, src, dst);
    equal(new DataView(seg.buffer).getUint32(4), 0xfffffffe);
    // Summing everything, the checksum included, gives 0xffff.
    let sum = 6 + seg.length;
    for (let i = 0; i < 4; i += 2) {
      sum += ((src[i]! << 8) | src[i + 1]!) + ((dst[i]! << 8) | dst[i + 1]!);
    }
    for (let i = 0; i + 1 < seg.length; i += 2) sum += (seg[i]! << 8) | seg[i + 1]!;
    if (seg.length % 2) sum += seg[seg.length - 1]! << 8;
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    equal(sum, 0xffff, `payload ${payload}`);
  }
});
