/**
 * Addresses of a run: the lab subnet (a private IPv4 /16 or a unique-local
 * IPv6 /48) split into one /24 (or /64) per link. The server's host is
 * linked to every other host; on link `k` (1, 2, …) the server end is `.1`,
 * the client host's end `.2`, and each client group of that host gets an
 * address of its own from `.10` on, so rules, metrics and packet checks can
 * tell the groups apart.
 * @module
 */
import type { RunPlan } from "../describe/run_plan.ts";

/** The default IPv4 lab subnet. */
export const DEFAULT_SUBNET4 = "10.213.0.0/16";
/** The default IPv6 lab prefix. */
export const DEFAULT_SUBNET6 = "fd00:213::/48";
/** Client groups' addresses on their link start at this host number (.10, .11, …). */
const GROUP_HOST_BASE = 10;

/** An address of the subnet with its prefix length, from a link number and a host number. */
export type AddressOf = (link: number, host: number) => string;

/**
 * Checks and parses a lab subnet.
 *
 * @throws {RangeError} for anything but a private IPv4 /16 or a unique-local IPv6 /48.
 */
export function parseSubnet(subnet: string, family: 4 | 6): AddressOf {
  if (family === 4) {
    const m = /^(\d+)\.(\d+)\.0\.0\/16$/.exec(subnet);
    const [a, b] = [Number(m?.[1]), Number(m?.[2])];
    const isPrivate = a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
    if (!m || b > 255 || !isPrivate) {
      throw new RangeError(
        `Cannot use lab subnet "${subnet}": give a private IPv4 /16 such as "${DEFAULT_SUBNET4}"`,
      );
    }
    return (link, host) => `${a}.${b}.${link}.${host}/24`;
  }
  const m = /^(f[cd][0-9a-f]{2}(?::[0-9a-f]{1,4}){0,2})::\/48$/i.exec(subnet);
  if (!m) {
    throw new RangeError(
      `Cannot use lab prefix "${subnet}": give a unique-local IPv6 /48 such as "${DEFAULT_SUBNET6}"`,
    );
  }
  const groups = m[1]!.split(":");
  while (groups.length < 3) groups.push("0");
  return (link, host) => `${groups.join(":")}:${link.toString(16)}::${host.toString(16)}/64`;
}

/** One veth link of a run: the server end and a client host's end. */
export interface LinkPlan {
  /** The client host (the server host is the other end). */
  host: string;
  /** The server end's interface name and address (with prefix length). */
  server: { ifname: string; cidr: string };
  /** The client host's end: its address and one more per client group of that host. */
  client: { ifname: string; cidr: string; groups: string[] };
}

/** The addresses of one run. */
export interface AddressPlan {
  /** One link per client host, in the plan's host order. */
  links: LinkPlan[];
  /**
   * Each host's address (the server's on its first link) and each client
   * group's own address under `clients.<group>`, without prefix length.
   */
  addresses: Record<string, string>;
}

const bare = (cidr: string) => cidr.split("/")[0]!;

/** The links and addresses of a run in `subnet` (parsed with {@linkcode parseSubnet}). */
export function planAddresses(plan: RunPlan, addressOf: AddressOf): AddressPlan {
  const addresses: Record<string, string> = {};
  const links = plan.hosts.slice(1).map((h, i): LinkPlan => {
    const link = i + 1;
    const groups = plan.groups.filter((g) => g.host === h.name).map((g, k) => {
      const cidr = addressOf(link, GROUP_HOST_BASE + k);
      addresses[`clients.${g.name}`] = bare(cidr);
      return cidr;
    });
    const server = { ifname: `veth${link}`, cidr: addressOf(link, 1) };
    const client = { ifname: "veth0", cidr: addressOf(link, 2), groups };
    addresses[h.name] = bare(client.cidr);
    if (link === 1) addresses[plan.server.host] = bare(server.cidr);
    return { host: h.name, server, client };
  });
  return { links, addresses };
}
