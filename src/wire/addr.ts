/**
 * IPv6 and MAC address text <-> bytes, and the address arithmetic Neighbor Discovery needs.
 *
 * Text forms: IPv6 in RFC 5952 canonical form, MACs as lowercase colon-separated hex.
 *
 * @module
 */

/** IP protocol numbers (IANA "Assigned Internet Protocol Numbers"; RFC 8200 §4, RFC 6275 §6.1). */
export const IPPROTO = {
  HOPOPTS: 0,
  TCP: 6,
  UDP: 17,
  IPV6: 41,
  ROUTING: 43,
  FRAGMENT: 44,
  ESP: 50,
  ICMPV6: 58,
  NONE: 59,
  DSTOPTS: 60,
  MH: 135,
} as const;

/** EtherType of IPv6 (RFC 2464 §3). */
export const ETHERTYPE_IPV6 = 0x86dd;

const HEX = /^[0-9a-fA-F]{1,4}$/;
const DEC = /^(0|[1-9][0-9]{0,2})$/;

function parseIPv4Tail(text: string, out: Uint8Array, at: number): boolean {
  const parts = text.split(".");
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    if (!DEC.test(parts[i])) return false;
    const n = Number(parts[i]);
    if (n > 255) return false;
    out[at + i] = n;
  }
  return true;
}

function parseGroups(text: string, out: Uint8Array, at: number, allowV4: boolean): number {
  // Returns the number of bytes written, or -1.
  if (text === "") return 0;
  const groups = text.split(":");
  let n = 0;
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i];
    if (allowV4 && i === groups.length - 1 && g.includes(".")) {
      if (at + n + 4 > 16 || !parseIPv4Tail(g, out, at + n)) return -1;
      n += 4;
    } else {
      if (!HEX.test(g) || at + n + 2 > 16) return -1;
      const v = parseInt(g, 16);
      out[at + n] = v >> 8;
      out[at + n + 1] = v & 0xff;
      n += 2;
    }
  }
  return n;
}

/**
 * Parses IPv6 address text (RFC 4291 §2.2, including `::` and an embedded dotted IPv4 tail)
 * into 16 bytes, or returns null. Zone identifiers are not accepted.
 */
export function tryParseIPv6(text: string): Uint8Array | null {
  if (typeof text !== "string" || text.length < 2 || text.length > 45) return null;
  const out = new Uint8Array(16);
  const dbl = text.indexOf("::");
  if (dbl === -1) {
    return parseGroups(text, out, 0, true) === 16 ? out : null;
  }
  if (text.indexOf("::", dbl + 1) !== -1) return null;
  const head = text.slice(0, dbl);
  const tail = text.slice(dbl + 2);
  const tmp = new Uint8Array(16);
  const h = parseGroups(head, out, 0, false);
  if (h < 0) return null;
  const t = parseGroups(tail, tmp, 0, true);
  if (t < 0) return null;
  // "::" stands for at least one group of zeros.
  if (h + t > 14) return null;
  out.set(tmp.subarray(0, t), 16 - t);
  return out;
}

/**
 * Parses IPv6 address text into 16 bytes (RFC 4291 §2.2).
 * @throws {TypeError} naming the text when it is not an IPv6 address.
 */
export function parseIPv6(text: string): Uint8Array {
  const b = tryParseIPv6(text);
  if (b === null) throw new TypeError(`not an IPv6 address: ${JSON.stringify(text)}`);
  return b;
}

/**
 * Formats the 16 bytes at `offset` as RFC 5952 canonical text: lowercase, no leading zeros,
 * the longest (first on a tie) run of two or more zero groups as `::`, and IPv4-mapped
 * addresses as `::ffff:a.b.c.d` (RFC 5952 §5).
 */
export function formatIPv6(bytes: Uint8Array, offset = 0): string {
  if (offset < 0 || offset + 16 > bytes.length) {
    throw new RangeError(`formatIPv6: need 16 bytes at offset ${offset}, have ${bytes.length}`);
  }
  const g = new Array<number>(8);
  for (let i = 0; i < 8; i++) g[i] = (bytes[offset + 2 * i] << 8) | bytes[offset + 2 * i + 1];
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    const b = offset + 12;
    return `::ffff:${bytes[b]}.${bytes[b + 1]}.${bytes[b + 2]}.${bytes[b + 3]}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number, b: number) => g.slice(a, b).map((x) => x.toString(16)).join(":");
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
}

/** Returns the RFC 5952 canonical form of IPv6 address text. @throws {TypeError} on bad text. */
export function canonicalIPv6(text: string): string {
  return formatIPv6(parseIPv6(text));
}

/** Accepts text or 16 bytes; returns 16 bytes (the same array when given bytes). */
export function ipv6Bytes(addr: string | Uint8Array): Uint8Array {
  if (typeof addr === "string") return parseIPv6(addr);
  if (addr.length !== 16) throw new TypeError(`IPv6 address must be 16 bytes, got ${addr.length}`);
  return addr;
}

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** Parses a colon-separated MAC (`52:54:00:00:00:10`). @throws {TypeError} naming the text. */
export function parseMac(text: string): Uint8Array {
  if (typeof text !== "string" || !MAC.test(text)) {
    throw new TypeError(`not a MAC address: ${JSON.stringify(text)}`);
  }
  const out = new Uint8Array(6);
  for (let i = 0; i < 6; i++) out[i] = parseInt(text.slice(3 * i, 3 * i + 2), 16);
  return out;
}

/** Formats the 6 bytes at `offset` as a lowercase colon-separated MAC. */
export function formatMac(bytes: Uint8Array, offset = 0): string {
  if (offset < 0 || offset + 6 > bytes.length) {
    throw new RangeError(`formatMac: need 6 bytes at offset ${offset}, have ${bytes.length}`);
  }
  let s = "";
  for (let i = 0; i < 6; i++) {
    if (i) s += ":";
    s += bytes[offset + i].toString(16).padStart(2, "0");
  }
  return s;
}

/** Solicited-node multicast address of `addr`: ff02::1:ffXX:XXXX (RFC 4291 §2.7.1). */
export function solicitedNodeMulticast(addr: string | Uint8Array): string {
  const a = ipv6Bytes(addr);
  const out = new Uint8Array(16);
  out[0] = 0xff;
  out[1] = 0x02;
  out[11] = 0x01;
  out[12] = 0xff;
  out[13] = a[13];
  out[14] = a[14];
  out[15] = a[15];
  return formatIPv6(out);
}

/** Ethernet MAC of an IPv6 multicast address: 33:33 + its last 32 bits (RFC 2464 §7). */
export function multicastMac(addr: string | Uint8Array): string {
  const a = ipv6Bytes(addr);
  const out = new Uint8Array([0x33, 0x33, a[12], a[13], a[14], a[15]]);
  return formatMac(out);
}

/** True when the first `length` bits of `addr` equal those of `prefix` (RFC 4291 §2.3). */
export function inPrefix(
  addr: string | Uint8Array,
  prefix: string | Uint8Array,
  length: number,
): boolean {
  if (!Number.isInteger(length) || length < 0 || length > 128) {
    throw new RangeError(`prefix length must be 0..128, got ${length}`);
  }
  const a = ipv6Bytes(addr);
  const p = ipv6Bytes(prefix);
  const full = length >> 3;
  for (let i = 0; i < full; i++) if (a[i] !== p[i]) return false;
  const rest = length & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (a[full] & mask) === (p[full] & mask);
}

/** True for multicast addresses (ff00::/8, RFC 4291 §2.7). */
export function isMulticast(addr: string | Uint8Array): boolean {
  return ipv6Bytes(addr)[0] === 0xff;
}

/**
 * Link-local address fe80::/64 with the modified EUI-64 interface identifier of `mac`
 * (RFC 4291 appendix A, RFC 2464 §4–5).
 */
export function linkLocalFromMac(mac: string): string {
  const m = parseMac(mac);
  const out = new Uint8Array(16);
  out[0] = 0xfe;
  out[1] = 0x80;
  out[8] = m[0] ^ 0x02;
  out[9] = m[1];
  out[10] = m[2];
  out[11] = 0xff;
  out[12] = 0xfe;
  out[13] = m[3];
  out[14] = m[4];
  out[15] = m[5];
  return formatIPv6(out);
}
