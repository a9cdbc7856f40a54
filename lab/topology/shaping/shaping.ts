/**
 * Link shaping for lab experiments: per link and direction, a one-way delay
 * with jitter, random loss and a rate limit, with `sch_netem` where the
 * kernel has it and an NFQUEUE delayer program where it does not.
 *
 * @example Clients 25 ms away with 1 % loss
 * ```ts ignore
 * import { shapeLink } from "./shaping.ts";
 *
 * await using up = await shapeLink(
 *   { ns: clientNs, ifname: "veth0", direction: "egress" },
 *   { delayMs: 25, lossPercent: 1 },
 * );
 * console.log(up.mechanism, await up.stats());
 * ```
 * @module
 */
export {
  type LinkEndpoint,
  ShapedLink,
  shapeLink,
  type ShapeLinkOptions,
  type ShapeMechanism,
  type ShapeStats,
} from "./shape_link.ts";
export { type LinkShape, type NormalizedShape } from "./link_shape.ts";
export { type LatenessSummary } from "./delay_line.ts";
export { type DelayerStats } from "./delayer.ts";
export { netemAvailable } from "./netem_probe.ts";
