/**
 * Shared pieces of the ESP oracle tests: one SA configuration per algorithm, the BU/BA they
 * carry, the scapy side (scapy_esp.py) and tshark's SA table for the same keys.
 *
 * @module
 */

import type { EspAlgorithm, EspSaConfig } from "../../src/ipsec/config.ts";
import { SecurityAssociation } from "../../src/ipsec/sa.ts";
import type { BaRepr, BuRepr } from "../../src/wire/mobility.ts";
import { homeBu } from "../../src/wire/test_util.ts";
import { runPythonJson } from "../helpers/python.ts";
import { tsharkEspSaArgs } from "../helpers/tshark.ts";

/** Addresses of the reference topology (DESIGN.md). */
export const ADDR = {
  homeAddress: "2001:db8:2000::10",
  homeAgent: "2001:db8:2000::1",
  careOf: "2001:db8:3000::3",
} as const;

/** One SA configuration per algorithm; SPIs differ so one capture can hold them all. */
export const SA_CONFIGS: Record<EspAlgorithm, EspSaConfig> = {
  "aes-gcm-128": {
    spi: 0x4b4d1001,
    algorithm: "aes-gcm-128",
    key: "0f1e2d3c4b5a69788796a5b4c3d2e1f0" + "5a17c0de",
  },
  "aes-gcm-256": {
    spi: 0x4b4d1002,
    algorithm: "aes-gcm-256",
    key: "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4" + "c0ffee11",
  },
  "aes-cbc-hmac-sha256": {
    spi: 0x4b4d1003,
    algorithm: "aes-cbc-hmac-sha256",
    key: "2b7e151628aed2a6abf7158809cf4f3c",
    authKey: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
  },
  "null-hmac-sha256": {
    spi: 0x4b4d1004,
    algorithm: "null-hmac-sha256",
    key: "",
    authKey: "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f",
  },
};

/** Every algorithm, in a fixed order. */
export const ALGORITHMS = Object.keys(SA_CONFIGS) as EspAlgorithm[];

/** An SA of `alg` for the reference registration. */
export function saFor(alg: EspAlgorithm, direction: "inbound" | "outbound"): SecurityAssociation {
  return new SecurityAssociation(SA_CONFIGS[alg], {
    direction,
    homeAddress: ADDR.homeAddress,
    homeAgent: ADDR.homeAgent,
  });
}

/** A home-registration BU (A, H, Alternate Care-of Address: RFC 6275 §11.7.1). */
export function bu(sequence: number): Omit<BuRepr, "type"> {
  return homeBu(sequence, 150, ADDR.careOf);
}

/** A BA for `sequence` with `status`. */
export function ba(sequence: number, status = 0): Omit<BaRepr, "type"> {
  return {
    status,
    flags: { key: false, mobileRouter: false, proxy: false },
    sequence,
    lifetime: 150,
    options: [],
  };
}

/** Path of the python side. */
export const SCAPY_ESP = new URL("./scapy_esp.py", import.meta.url).pathname;

/** Runs `scapy_esp.py <mode>` with `input` as JSON on stdin; returns its JSON output. */
export function runScapyEsp<T>(mode: "decrypt" | "encrypt", input: unknown): Promise<T> {
  return runPythonJson<T>([SCAPY_ESP, mode], input, `scapy_esp.py ${mode}`);
}

/**
 * tshark options that decrypt and authenticate every SA of {@linkcode SA_CONFIGS} (see
 * {@linkcode tsharkEspSaArgs}).
 */
export function tsharkEspArgs(): string[] {
  return tsharkEspSaArgs(ALGORITHMS.map((alg) => SA_CONFIGS[alg]));
}
