// Address management: subnet choice for new networks and address choice for endpoints.
// Parsing and validation go through ip-address; dotted quads on the hot path of `run` are converted by
// hand (see addrValue).
// the IPv4 class alone: the package index also loads its IPv6 half (three times the code) on every start
import { Address4 } from "ip-address/dist/ipv4.js";
import { UsageError } from "./errors.js";

export interface Cidr {
  /** canonical "a.b.c.d/len" with host bits clear */
  text: string;
  first: bigint;
  last: bigint;
  prefix: number;
}

export function parseAddress(text: string, what: string): Address4 {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(text) || !Address4.isValid(text)) {
    throw new UsageError(`invalid ${what} ${JSON.stringify(text)}: not an IPv4 address`);
  }
  return new Address4(text);
}

export function parseCidr(text: string, what = "subnet"): Cidr {
  if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(text) || !Address4.isValid(text)) {
    throw new UsageError(`invalid ${what} ${JSON.stringify(text)}: expected a CIDR like 10.10.0.0/24`);
  }
  const addr = new Address4(text);
  const start = addr.startAddress();
  if (start.correctForm() !== addr.correctForm()) {
    throw new UsageError(
      `invalid ${what} ${text}: host bits are set (did you mean ${start.correctForm()}${addr.subnet}?)`,
    );
  }
  return { text: `${start.correctForm()}${addr.subnet}`, first: start.bigInt(), last: addr.endAddress().bigInt(), prefix: addr.subnetMask };
}

/** The network an address with prefix belongs to ("10.1.2.3/8" -> 10.0.0.0/8). */
export function networkOf(text: string): Cidr {
  const addr = new Address4(text);
  return parseCidr(`${addr.startAddress().correctForm()}${addr.subnet}`);
}

export const overlaps = (a: Cidr, b: Cidr) => a.first <= b.last && b.first <= a.last;
/** bigint and number compare exactly, so an address may be either */
export const contains = (outer: Cidr, addr: bigint | number) => outer.first <= addr && addr <= outer.last;
export function addrText(value: bigint | number): string {
  const n = Number(value);
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}
/**
 * A dotted quad's value as a plain number (IPv4 fits), by hand: Address4 takes ~4 µs per address, a
 * BigInt is a heap object, and `run` reads every member's address.
 */
export function addrValue(text: string): number {
  const [a, b, c, d] = text.split(".").map(Number);
  return a * 2 ** 24 + b * 2 ** 16 + c * 2 ** 8 + d;
}

const RESERVED: Array<[string, string]> = [
  ["0.0.0.0/8", "the 'this network' range"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local"],
  ["224.0.0.0/4", "multicast"],
  ["240.0.0.0/4", "reserved (class E)"],
];

/** Refuses subnets a bridge network cannot use. */
export function checkUsableSubnet(subnet: Cidr): void {
  for (const [range, label] of RESERVED) {
    if (overlaps(subnet, parseCidr(range))) {
      throw new UsageError(`subnet ${subnet.text} overlaps ${range}, which is ${label}`);
    }
  }
  if (subnet.prefix > 30) {
    throw new UsageError(`subnet ${subnet.text} is too small: a network needs at least a /30 (gateway and one container)`);
  }
}

/** First and last addresses a container or gateway may take in this subnet. */
export function hostRange(subnet: Cidr): { low: bigint; high: bigint } {
  return { low: subnet.first + 1n, high: subnet.last - 1n };
}

export function checkHostAddress(subnet: Cidr, addr: bigint | number, what: string, text: string): void {
  const { low, high } = hostRange(subnet);
  if (addr < low || addr > high) {
    throw new UsageError(`${what} ${text} is not a usable host address of ${subnet.text}`);
  }
}

/** A network's own address plan. */
export interface Pool {
  subnet: Cidr;
  gateway: number;
  /** where dynamic addresses come from (defaults to the whole subnet) */
  range: Cidr;
  /** addresses never handed out besides the gateway: --aux-address, as the state writes them */
  reserved?: Iterable<string>;
}

/**
 * Lowest free address of the pool: released addresses are reused first, like Docker. `taken` holds
 * addresses as the state writes them, so `run` converts no member's address, only the candidates.
 */
export function allocateAddress(pool: Pool, taken: Set<string>): number | null {
  const { low, high } = hostRange(pool.subnet);
  const start = Number(pool.range.first > low ? pool.range.first : low);
  const end = Number(pool.range.last < high ? pool.range.last : high);
  const reserved = new Set(pool.reserved);
  for (let a = start; a <= end; a++) {
    if (a !== pool.gateway && !taken.has(addrText(a)) && !reserved.has(addrText(a))) return a;
  }
  return null;
}

/** A daemon.json default-address-pools entry: subnets of prefix length `size` cut from `base`. */
export interface AddressPool {
  base: Cidr;
  size: number;
}

/**
 * The subnets new networks take, in order: the given pools' (daemon.json default-address-pools), or
 * Docker's defaults, 172.17-31.0.0/16 then 192.168.0.0/16 cut into /20s (moby ipamutils).
 */
export function* defaultSubnetCandidates(pools?: AddressPool[]): Generator<Cidr> {
  if (!pools) {
    for (let second = 17; second <= 31; second++) yield parseCidr(`172.${second}.0.0/16`);
    for (let third = 0; third < 256; third += 16) yield parseCidr(`192.168.${third}.0/20`);
    return;
  }
  for (const { base, size } of pools) {
    const step = 2n ** BigInt(32 - size);
    for (let first = base.first; first <= base.last; first += step) yield { text: `${addrText(first)}/${size}`, first, last: first + step - 1n, prefix: size };
  }
}

/** The first pool subnet that overlaps nothing in use; the default bridge takes the first of all, so user networks skip it. */
export function chooseSubnet(inUse: Cidr[], skipFirst: boolean, pools?: AddressPool[]): Cidr {
  let first = true;
  for (const candidate of defaultSubnetCandidates(pools)) {
    if (skipFirst && first) {
      first = false;
      continue;
    }
    first = false;
    if (!inUse.some((used) => overlaps(used, candidate))) return candidate;
  }
  throw new UsageError("no free subnet left in the default pools: pass --subnet");
}

/** Docker derives container MACs from the address: 02:42 followed by the four octets. */
export function macFor(addr: number): string {
  const octets = [24, 16, 8, 0].map((shift) => ((addr >>> shift) & 255).toString(16).padStart(2, "0"));
  return ["02", "42", ...octets].join(":");
}
