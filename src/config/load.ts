/**
 * Builds a validated configuration from a JSON file and command-line flags
 * (flags override the file). Errors name the field, as the flag an operator
 * would type (`--home-agent`) and, for file-only keys, the JSON path.
 *
 * @module
 */
import { z } from "zod";
import {
  defaultRouterMac,
  type HaConfig,
  HaConfigInput,
  type MnConfig,
  MnConfigInput,
  type VmConfig,
} from "./schema.ts";

/** A configuration error; the CLI prints `message` and exits with status 2. */
export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
  }
}

/** `homeAgent` → `--home-agent`; nested paths become `vms[0].tap`. */
export function fieldName(path: readonly PropertyKey[]): string {
  if (path.length === 1 && typeof path[0] === "string") {
    return "--" + path[0].replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
  }
  return path.map((p, i) => typeof p === "number" ? `[${p}]` : (i ? "." : "") + String(p)).join(
    "",
  );
}

function problems(error: z.ZodError): string[] {
  return error.issues.map((i) => {
    const where = i.path.length ? fieldName(i.path) : "config";
    if (i.code === "unrecognized_keys") {
      return `${where}: unknown key(s) ${i.keys.map((k) => JSON.stringify(k)).join(", ")}`;
    }
    return `${where}: ${i.message}`;
  });
}

/** Reads a JSON config file; a missing or malformed file is a ConfigError naming it. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new ConfigError([`--config: cannot read ${path}: ${(e as Error).message}`]);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ConfigError([`--config: ${path} is not valid JSON: ${(e as Error).message}`]);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError([`--config: ${path} must hold a JSON object`]);
  }
  return value as Record<string, unknown>;
}

function merge(
  flags: Record<string, unknown>,
  file?: string,
): Record<string, unknown> {
  const base = file ? readConfigFile(file) : {};
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(flags)) {
    if (v !== undefined && k !== "config") out[k] = v;
  }
  return out;
}

/** Validated home-agent configuration from flags (camelCase keys) and an optional file. */
export function loadHaConfig(flags: Record<string, unknown>): HaConfig {
  const r = HaConfigInput.safeParse(merge(flags, flags.config as string | undefined));
  if (!r.success) throw new ConfigError(problems(r.error));
  return r.data;
}

/** Validated mobile-node configuration from flags (camelCase keys) and an optional file. */
export function loadMnConfig(flags: Record<string, unknown>): MnConfig {
  const r = MnConfigInput.safeParse(merge(flags, flags.config as string | undefined));
  if (!r.success) throw new ConfigError(problems(r.error));
  const c = r.data;
  const errs: string[] = [];
  const vms: VmConfig[] = [];
  const single = [c.homeAddress, c.vmMac, c.tap];
  if (single.some((v) => v !== undefined)) {
    const missing = (["homeAddress", "vmMac", "tap"] as const).filter((k) => c[k] === undefined);
    if (missing.length) {
      errs.push(...missing.map((k) => `${fieldName([k])}: required when serving a VM from flags`));
    } else {
      vms.push({
        name: c.tap!,
        homeAddress: c.homeAddress!.address,
        prefixLength: c.homeAddress!.length,
        vmMac: c.vmMac!,
        tap: c.tap!,
        bridge: c.bridge,
        routerLl: c.routerLl ?? "fe80::1",
        routerMac: c.routerMac ?? defaultRouterMac(c.vmMac!),
        ra: c.ra,
        esp: c.esp,
      });
    }
  }
  for (const v of c.vms) {
    vms.push({
      name: v.name ?? v.tap,
      homeAddress: v.homeAddress.address,
      prefixLength: v.homeAddress.length,
      vmMac: v.vmMac,
      tap: v.tap,
      bridge: v.bridge,
      routerLl: v.routerLl,
      routerMac: v.routerMac ?? defaultRouterMac(v.vmMac),
      ra: v.ra ?? c.ra,
      esp: v.esp,
    });
  }
  if (vms.length === 0 && errs.length === 0) {
    errs.push('--home-address, --vm-mac, --tap: required (or a "vms" list in --config)');
  }
  const seen = { tap: new Set<string>(), homeAddress: new Set<string>(), vmMac: new Set<string>() };
  const baSpis = new Map<number, number>();
  vms.forEach((v, i) => {
    if (v.esp) {
      const j = baSpis.get(v.esp.ba.spi);
      if (j !== undefined) {
        errs.push(`vms[${i}].esp.ba.spi: ${v.esp.ba.spi} is also the BA SPI of vms[${j}]`);
      }
      baSpis.set(v.esp.ba.spi, i);
    }
  });
  vms.forEach((v, i) => {
    const where = vms.length > 1 ? `vms[${i}].` : "--";
    for (const k of ["tap", "homeAddress", "vmMac"] as const) {
      if (seen[k].has(v[k])) errs.push(`${where}${k}: ${v[k]} is used by two VMs`);
      seen[k].add(v[k]);
    }
    if (v.routerMac === v.vmMac) errs.push(`${where}routerMac: must differ from the VM's MAC`);
    if (vms.some((o) => o.vmMac === v.routerMac)) {
      errs.push(`${where}routerMac: ${v.routerMac} is another VM's MAC`);
    }
    // Two taps on one bridge sending from the same router MAC make the bridge's
    // learning flip between them and misdeliver the guests' frames.
    const twin = vms.findIndex((o, j) =>
      j < i && o.routerMac === v.routerMac && (o.bridge ?? "") === (v.bridge ?? "")
    );
    if (twin >= 0) {
      errs.push(
        `${where}routerMac: ${v.routerMac} is also used by vms[${twin}] on the same bridge; ` +
          "each VM on a bridge needs its own router MAC",
      );
    }
    if (v.prefixLength < 8 || v.prefixLength > 127) {
      errs.push(`${where}homeAddress: home prefix length ${v.prefixLength} is not usable`);
    }
  });
  if (errs.length) throw new ConfigError(errs);
  return {
    interface: c.interface,
    careOf: c.careOf,
    homeAgent: c.homeAgent,
    lifetime: c.lifetime,
    control: c.control,
    stateDir: c.stateDir,
    logLevel: c.logLevel,
    deregisterOnExit: c.deregisterOnExit,
    standby: c.standby,
    datapathWorkers: c.datapathWorkers,
    vms,
  };
}
