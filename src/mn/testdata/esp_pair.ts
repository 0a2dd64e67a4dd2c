/** Test fixtures: one VM's pair of ESP SAs (RFC 4877 §4). */
import type { EspPairConfig } from "../../ipsec/config.ts";

/** The BU SA in AES-GCM (the nonce-reuse case), the BA SA with NULL + HMAC. */
export const PAIR: EspPairConfig = {
  bu: {
    spi: 0x1001,
    algorithm: "aes-gcm-128",
    key: "00112233445566778899aabbccddeeff" + "01020304",
  },
  ba: {
    spi: 0x1002,
    algorithm: "null-hmac-sha256",
    key: "",
    authKey: "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f",
  },
};
