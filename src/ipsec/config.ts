/**
 * Configuration of manually keyed ESP Security Associations (RFC 4301 §4.4.2, RFC 4877 §4
 * allows manual keying for home registrations): algorithm, SPI and keys as hex text.
 *
 * @module
 */

import { z } from "zod";

/**
 * ESP algorithms Kagemusha implements, all with WebCrypto:
 * - `aes-gcm-128`, `aes-gcm-256`: AES-GCM with a 16-octet ICV (RFC 4106); `key` is the AES key
 *   followed by the 4-octet salt (RFC 4106 §8.1), 20 or 36 octets;
 * - `aes-cbc-hmac-sha256`: AES-CBC (RFC 3602), `key` 16 or 32 octets, with
 *   HMAC-SHA-256-128 (RFC 4868), `authKey` 32 octets;
 * - `null-hmac-sha256`: NULL encryption (RFC 2410), `key` empty, with HMAC-SHA-256-128,
 *   `authKey` 32 octets — integrity only, readable in a capture (debugging).
 */
export const ESP_ALGORITHM_NAMES = [
  "aes-gcm-128",
  "aes-gcm-256",
  "aes-cbc-hmac-sha256",
  "null-hmac-sha256",
] as const;

/** One of {@linkcode ESP_ALGORITHM_NAMES}. */
export type EspAlgorithm = typeof ESP_ALGORITHM_NAMES[number];

/** Octet lengths of the keys each algorithm takes. */
export const ESP_KEY_LENGTHS: Record<EspAlgorithm, { key: readonly number[]; authKey: number }> = {
  "aes-gcm-128": { key: [20], authKey: 0 },
  "aes-gcm-256": { key: [36], authKey: 0 },
  "aes-cbc-hmac-sha256": { key: [16, 32], authKey: 32 },
  "null-hmac-sha256": { key: [0], authKey: 32 },
};

/** Bytes of hex text (whitespace and `:` separators allowed); null when not hex. */
export function hexKey(text: string): Uint8Array<ArrayBuffer> | null {
  const clean = text.replace(/[\s:]/g, "");
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) return null;
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const hexText = z.string().refine((s) => hexKey(s) !== null, {
  message: "must be hex text (pairs of 0-9a-f; spaces and ':' allowed)",
});

/**
 * One Security Association as configured: `{ spi, algorithm, key, authKey? }`. The SPI is
 * above 255 (1–255 are reserved by IANA, 0 is never sent: RFC 4303 §2.1) and fits 32 bits; key
 * lengths must match the algorithm ({@linkcode ESP_KEY_LENGTHS}). Unknown keys are refused.
 * Which direction and which home address/home agent the SA serves is decided by where the
 * configuration puts it (see `src/ipsec/mod.ts`).
 */
export const EspSaConfig = z.object({
  spi: z.number().int().min(256, "SPI 0-255 are reserved (RFC 4303 §2.1)").max(0xffffffff),
  algorithm: z.enum(ESP_ALGORITHM_NAMES),
  key: hexText,
  authKey: hexText.optional(),
}).strict().superRefine((c, ctx) => {
  const want = ESP_KEY_LENGTHS[c.algorithm];
  const key = hexKey(c.key);
  if (key !== null && !want.key.includes(key.length)) {
    const what = c.algorithm === "null-hmac-sha256"
      ? "must be empty: NULL encryption has no key (the HMAC key goes in authKey)"
      : c.algorithm.startsWith("aes-gcm")
      ? `must be ${want.key[0]} octets: the AES key then the 4-octet salt (RFC 4106 §8.1)`
      : `must be ${want.key.join(" or ")} octets`;
    ctx.addIssue({
      code: "custom",
      path: ["key"],
      message: `${c.algorithm}: key of ${key.length} octets ${what}`,
    });
  }
  if (want.authKey === 0) {
    if (c.authKey !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["authKey"],
        message: `${c.algorithm} is an AEAD (RFC 4106): no authKey`,
      });
    }
  } else if (c.authKey === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["authKey"],
      message:
        `${c.algorithm} needs authKey: ${want.authKey} octets of HMAC-SHA-256 key (RFC 4868)`,
    });
  } else {
    const auth = hexKey(c.authKey);
    if (auth !== null && auth.length !== want.authKey) {
      ctx.addIssue({
        code: "custom",
        path: ["authKey"],
        message: `authKey of ${auth.length} octets must be ${want.authKey} (RFC 4868 §2.1.1)`,
      });
    }
  }
});

/** A validated {@linkcode EspSaConfig}. */
export type EspSaConfig = z.infer<typeof EspSaConfig>;

/**
 * The pair of SAs protecting one home registration (RFC 4877 §4): `bu` protects the Binding
 * Updates (mobile node → home agent), `ba` the Binding Acknowledgements (home agent → mobile
 * node). Both ends configure the same pair; the SPIs must differ. A suggestion for the lead's
 * per-VM configuration; nothing here depends on its shape.
 */
export const EspPairConfig = z.object({ bu: EspSaConfig, ba: EspSaConfig }).strict().refine(
  (p) => p.bu.spi !== p.ba.spi,
  { message: "the BU and BA SAs need different SPIs", path: ["ba", "spi"] },
);

/** A validated {@linkcode EspPairConfig}. */
export type EspPairConfig = z.infer<typeof EspPairConfig>;
