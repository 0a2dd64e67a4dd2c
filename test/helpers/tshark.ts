/**
 * tshark helpers shared by the oracle, ESP and namespace tests: flat field extraction from a
 * capture and the `uat:esp_sa` table that lets tshark decrypt ESP (RFC 4303) given the SAs.
 *
 * @module
 */

import type { EspSaConfig } from "../../src/ipsec/config.ts";
import { run } from "./netns.ts";

/**
 * `tshark -n -r pcap [extra] -Y filter -T fields -E separator=| -e …`: one object per packet
 * matching `filter`, each field's text ("" when absent).
 */
export async function tsharkFields(
  pcap: string,
  filter: string,
  fields: readonly string[],
  extra: readonly string[] = [],
): Promise<Array<Record<string, string>>> {
  const r = await run([
    "tshark",
    "-n",
    "-r",
    pcap,
    ...extra,
    "-Y",
    filter,
    "-T",
    "fields",
    "-E",
    "separator=|",
    ...fields.flatMap((f) => ["-e", f]),
  ]);
  return r.stdout.trim().split("\n").filter(Boolean).map((line) => {
    const v = line.split("|");
    return Object.fromEntries(fields.map((f, i) => [f, v[i] ?? ""]));
  });
}

const TSHARK_ENCRYPTION: Record<EspSaConfig["algorithm"], string> = {
  "aes-gcm-128": "AES-GCM with 16 octet ICV [RFC4106]",
  "aes-gcm-256": "AES-GCM with 16 octet ICV [RFC4106]",
  "aes-cbc-hmac-sha256": "AES-CBC [RFC3602]",
  "null-hmac-sha256": "NULL",
};

/**
 * tshark options that decrypt and authenticate every SA of `configs`: one `uat:esp_sa` entry
 * each (Wireshark 4.0 fields: protocol, source, destination, SPI, encryption, key,
 * authentication, authentication key; addresses wildcarded because tshark shows the HoA as a
 * HAO packet's source).
 */
export function tsharkEspSaArgs(configs: readonly EspSaConfig[]): string[] {
  const args = [
    "-o",
    "esp.enable_encryption_decode:TRUE",
    "-o",
    "esp.enable_authentication_check:TRUE",
  ];
  for (const c of configs) {
    const spi = `0x${c.spi.toString(16).padStart(8, "0")}`;
    const key = c.key === "" ? "" : `0x${c.key}`;
    const auth = c.authKey === undefined ? "NULL" : "HMAC-SHA-256-128 [RFC4868]";
    const authKey = c.authKey === undefined ? "" : `0x${c.authKey}`;
    const fields = ["IPv6", "*", "*", spi, TSHARK_ENCRYPTION[c.algorithm], key, auth, authKey];
    args.push("-o", `uat:esp_sa:${fields.map((f) => `"${f}"`).join(",")}`);
  }
  return args;
}
