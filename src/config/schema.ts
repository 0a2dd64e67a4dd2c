/**
 * Configuration of both daemons, validated with zod. The same keys come from
 * a JSON file (`--config`) and from command-line flags (flags win). Every
 * error names the field that is wrong.
 *
 * @module
 */
import { z } from "zod";
import { formatIPv6, formatMac, inPrefix, parseMac, tryParseIPv6 } from "../wire/addr.ts";
import { LOG_LEVELS } from "../log.ts";
import { EspPairConfig } from "../ipsec/config.ts";

/** IPv6 address text, normalised to RFC 5952 form. */
export const ipv6 = z.string().transform((s, ctx) => {
  const b = tryParseIPv6(s.trim());
  if (!b) {
    ctx.addIssue({ code: "custom", message: `not an IPv6 address: ${JSON.stringify(s)}` });
    return z.NEVER;
  }
  return formatIPv6(b);
});

/** A global unicast IPv6 address (not ::, not multicast, not link-local, not loopback). */
export const globalIpv6 = ipv6.refine(
  (a) => a !== "::" && a !== "::1" && !inPrefix(a, "ff00::", 8) && !inPrefix(a, "fe80::", 10),
  { message: "must be a global unicast IPv6 address" },
);

/** A link-local address (fe80::/10). */
export const linkLocalIpv6 = ipv6.refine((a) => inPrefix(a, "fe80::", 10), {
  message: "must be a link-local address (fe80::/10)",
});

function splitPrefix(s: string, ctx: z.RefinementCtx): { address: string; length: number } {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s.trim());
  const b = m ? tryParseIPv6(m[1]) : null;
  const length = m ? Number(m[2]) : NaN;
  if (!m || !b || length > 128) {
    ctx.addIssue({ code: "custom", message: `expected ADDRESS/LENGTH, got ${JSON.stringify(s)}` });
    return z.NEVER;
  }
  return { address: formatIPv6(b), length };
}

/** `PREFIX/LEN` with the host bits cleared, e.g. `2001:db8:2000::/64`. */
export const prefix = z.string().transform((s, ctx) => {
  const p = splitPrefix(s, ctx);
  if (p === z.NEVER) return z.NEVER;
  const b = tryParseIPv6(p.address)!;
  for (let bit = p.length; bit < 128; bit++) b[bit >> 3] &= ~(0x80 >> (bit & 7));
  return { prefix: formatIPv6(b), length: p.length };
});

/** `ADDRESS/LEN`, e.g. a home address with its home prefix length. */
export const addressWithLength = z.string().transform(splitPrefix);

/** A unicast Ethernet MAC, normalised to lowercase. */
export const mac = z.string().transform((s, ctx) => {
  let b: Uint8Array;
  try {
    b = parseMac(s.trim());
  } catch {
    ctx.addIssue({ code: "custom", message: `not a MAC address: ${JSON.stringify(s)}` });
    return z.NEVER;
  }
  if (b[0] & 1) {
    ctx.addIssue({ code: "custom", message: `must be a unicast MAC: ${s}` });
    return z.NEVER;
  }
  return formatMac(b);
});

/** A Linux interface name (IFNAMSIZ 16 incl. NUL, no '/', no whitespace). */
export const ifname = z.string().regex(/^[^\s/:]{1,15}$/, {
  message: "must be an interface name of 1-15 characters without '/', ':' or spaces",
});

const logLevel = z.enum(LOG_LEVELS);
const seconds = (min: number, max: number) =>
  z.coerce.number().int().min(min, { message: `must be at least ${min} s` }).max(max, {
    message: `must be at most ${max} s (RFC 6275 lifetime is 16 bits of 4 s units)`,
  });
/** Largest lifetime a BU/BA can carry: 65535 units of 4 s. */
export const MAX_LIFETIME_S = 65535 * 4;

/**
 * Data-path Workers: 1 moves both directions in one thread (lower latency, one V8 isolate
 * less); 2 gives each direction a thread of its own (both can use a core at once).
 */
const DATAPATH_WORKERS_MESSAGE =
  "must be 1 (both directions in one thread) or 2 (a thread per direction)";
const datapathWorkers = z.union([z.literal(1), z.literal(2), z.literal("1"), z.literal("2")], {
  error: DATAPATH_WORKERS_MESSAGE,
}).transform((n) => Number(n) as 1 | 2);

/** File/flag shape of the home agent's configuration. */
export const HaConfigInput = z.strictObject({
  interface: ifname,
  address: globalIpv6,
  homePrefix: prefix,
  allow: z.array(globalIpv6).default([]),
  maxLifetime: seconds(4, MAX_LIFETIME_S).default(3600),
  dad: z.enum(["strict", "optimistic"]).default("strict"),
  control: z.string().min(1).default("/run/kagemusha/ha.sock"),
  stateDir: z.string().min(1).default("/var/lib/kagemusha/ha"),
  logLevel: logLevel.default("info"),
  tunnelDevice: ifname.default("kgm-ha0"),
  datapathWorkers: datapathWorkers.default(1),
  /**
   * Manually keyed ESP per home address (RFC 4877 §4): BUs for a listed HoA are accepted
   * only ESP-protected with its `bu` SA; BAs to it are protected with its `ba` SA.
   * Config file only (keys never on the command line).
   */
  esp: z.array(
    z.strictObject({
      homeAddress: globalIpv6,
      bu: EspPairConfig.shape.bu,
      ba: EspPairConfig.shape.ba,
    }),
  )
    .default([]),
  /** Refuse (drop and count) BUs for home addresses that have no ESP SA configured. */
  requireEsp: z.boolean().default(false),
}).superRefine((c, ctx) => {
  if (!inPrefix(c.address, c.homePrefix.prefix, c.homePrefix.length)) {
    ctx.addIssue({
      code: "custom",
      path: ["address"],
      message: `home agent address ${c.address} is not inside home prefix ` +
        `${c.homePrefix.prefix}/${c.homePrefix.length}`,
    });
  }
  const spis = new Map<number, string>();
  c.esp.forEach((e, i) => {
    if (!inPrefix(e.homeAddress, c.homePrefix.prefix, c.homePrefix.length)) {
      ctx.addIssue({
        code: "custom",
        path: ["esp", i, "homeAddress"],
        message:
          `${e.homeAddress} is not inside home prefix ${c.homePrefix.prefix}/${c.homePrefix.length}`,
      });
    }
    if (c.esp.findIndex((o) => o.homeAddress === e.homeAddress) !== i) {
      ctx.addIssue({
        code: "custom",
        path: ["esp", i, "homeAddress"],
        message: `${e.homeAddress} has two ESP entries`,
      });
    }
    if (e.bu.spi === e.ba.spi) {
      ctx.addIssue({
        code: "custom",
        path: ["esp", i, "ba", "spi"],
        message: "the BU and BA SAs need different SPIs",
      });
    }
    // inbound SPIs identify the SA on receipt: they must be unique
    const prev = spis.get(e.bu.spi);
    if (prev !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["esp", i, "bu", "spi"],
        message: `SPI ${e.bu.spi} is also the BU SPI of ${prev}`,
      });
    }
    spis.set(e.bu.spi, e.homeAddress);
  });
  if (c.requireEsp && c.esp.length === 0) {
    ctx.addIssue({
      code: "custom",
      path: ["requireEsp"],
      message: "requireEsp needs at least one entry in esp",
    });
  }
  c.allow.forEach((a, i) => {
    if (!inPrefix(a, c.homePrefix.prefix, c.homePrefix.length)) {
      ctx.addIssue({
        code: "custom",
        path: ["allow", i],
        message: `${a} is not inside home prefix ${c.homePrefix.prefix}/${c.homePrefix.length}`,
      });
    }
  });
});

/** Validated home agent configuration. */
export type HaConfig = z.output<typeof HaConfigInput>;

/**
 * The router MAC a VM sees on its pseudo home network when none is given:
 * the VM's MAC with the locally-administered bit set and the second octet
 * inverted, so it never equals the VM's MAC nor (being fixed per VM) changes
 * across hosts.
 */
export function defaultRouterMac(vmMac: string): string {
  const b = parseMac(vmMac);
  b[0] = (b[0] | 0x02) & 0xfe;
  b[1] ^= 0xff;
  return formatMac(b);
}

/**
 * What the pseudo home network's Router Advertisements say (RFC 4861 §4.2,
 * RFC 8106 RDNSS). Defaults keep the guest on its configured home address:
 * the home prefix is on-link but not for autoconfiguration.
 */
export const RaConfigInput = z.strictObject({
  managed: z.boolean().optional(),
  other: z.boolean().optional(),
  autonomous: z.boolean().optional(),
  routerLifetime: z.number().int().min(0).max(9000).optional(),
  rdnss: z.array(globalIpv6).max(8).optional(),
  mtu: z.number().int().min(1280).max(65535).optional(),
});

/** Router Advertisement contents of one VM's pseudo home network. */
export type RaConfig = z.output<typeof RaConfigInput>;

/** One VM served by a mobile-node daemon. */
export const VmConfigInput = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).optional(),
  homeAddress: addressWithLength,
  vmMac: mac,
  tap: ifname,
  bridge: ifname.optional(),
  routerLl: linkLocalIpv6.default("fe80::1"),
  routerMac: mac.optional(),
  ra: RaConfigInput.optional(),
  /** Manually keyed ESP for this VM's home registration (config file only). */
  esp: EspPairConfig.optional(),
});

/** File/flag shape of the mobile node's configuration (flags describe one VM). */
export const MnConfigInput = z.strictObject({
  interface: ifname,
  careOf: globalIpv6.optional(),
  homeAgent: globalIpv6,
  lifetime: seconds(4, MAX_LIFETIME_S).default(600),
  control: z.string().min(1).default("/run/kagemusha/mn.sock"),
  stateDir: z.string().min(1).default("/var/lib/kagemusha/mn"),
  logLevel: logLevel.default("info"),
  deregisterOnExit: z.boolean().default(false),
  standby: z.boolean().default(false),
  datapathWorkers: datapathWorkers.default(1),
  // one VM given at top level (the flags' shape) …
  homeAddress: addressWithLength.optional(),
  vmMac: mac.optional(),
  tap: ifname.optional(),
  bridge: ifname.optional(),
  routerLl: linkLocalIpv6.optional(),
  routerMac: mac.optional(),
  ra: RaConfigInput.optional(),
  esp: EspPairConfig.optional(),
  // … and/or a list (config file)
  vms: z.array(VmConfigInput).default([]),
});

/** A validated VM entry. */
export interface VmConfig {
  name: string;
  homeAddress: string;
  prefixLength: number;
  vmMac: string;
  tap: string;
  bridge?: string;
  routerLl: string;
  routerMac: string;
  /** Router Advertisement contents (defaults in src/mn/pseudo_home.ts). */
  ra?: RaConfig;
  /** ESP SAs protecting this VM's BUs (`bu`, outbound) and BAs (`ba`, inbound). */
  esp?: EspPairConfig;
}

/** Validated mobile-node configuration. */
export interface MnConfig {
  interface: string;
  careOf?: string;
  homeAgent: string;
  lifetime: number;
  control: string;
  stateDir: string;
  logLevel: typeof LOG_LEVELS[number];
  deregisterOnExit: boolean;
  /** Start without registering; wait for the `handover` control command. */
  standby: boolean;
  /** Data-path Workers: 1 (both directions in one) or 2 (one per direction). */
  datapathWorkers: 1 | 2;
  vms: VmConfig[];
}
