/**
 * Userland IPsec ESP (RFC 4303, transport mode) for the home-registration signaling of
 * RFC 6275 §5.1 / RFC 4877: Binding Updates from the mobile node (here: the host, for the VM's
 * home address) to the home agent, and Binding Acknowledgements back. The kernels here have no
 * ESP/XFRM, so the daemons protect and unprotect the Mobility Header themselves and send the
 * result through raw sockets.
 *
 * ## Packet layouts
 *
 * Binding Update, mobile node away from home (RFC 6275 §11.7.1, RFC 4877 §4.1; ESP after the
 * Destination Options header, which is processed at the destination before ESP, RFC 8200 §4.1,
 * RFC 4303 §3.1.1):
 *
 * ```text
 * +-------------------------+ IPv6: src = care-of address, dst = home agent,
 * | IPv6 header (40)        |       next header 60
 * +-------------------------+
 * | Destination Options     | next header 50; Home Address option (0xC9) = HoA, at 8n+6
 * | (24: PadN(4) + HAO(18)) |   (RFC 6275 §6.3). Not covered by the ICV.
 * +-------------------------+
 * | ESP header (8)          | SPI of the BU SA, Sequence Number
 * | IV (8 GCM/16 CBC/0 NULL)|
 * | ......................  | -- encrypted: ------------------------------------------
 * | Mobility Header: BU     | payload proto 59, MH type 5, A|H, sequence, lifetime,
 * |   (+ Alt-CoA option)    |   Alternate Care-of Address = CoA (RFC 6275 §11.7.1)
 * | padding 1,2,3… (0-255)  | to the cipher's alignment (RFC 4303 §2.4)
 * | pad length | nh = 135   |
 * | ......................  | ---------------------------------------------------------
 * | ICV (16)                | HMAC-SHA-256-128 over SPI…Next Header, or the GCM tag
 * +-------------------------+
 * ```
 *
 * Binding Acknowledgement to a mobile node away from home (RFC 6275 §10.3.1, RFC 4877 §4.1;
 * ESP after the routing header, RFC 4303 §3.1.1):
 *
 * ```text
 * +-------------------------+ IPv6: src = home agent, dst = care-of address,
 * | IPv6 header (40)        |       next header 43
 * +-------------------------+
 * | Type 2 Routing Header   | next header 50; segments left 1; address = HoA
 * | (24)                    |   (RFC 6275 §6.4). Not covered by the ICV.
 * +-------------------------+
 * | ESP header | IV         | SPI of the BA SA, Sequence Number
 * | Mobility Header: BA     | (encrypted) status, K, sequence, lifetime
 * | padding | pad len | 135 |
 * | ICV (16)                |
 * +-------------------------+
 * ```
 *
 * At home (deregistration, RFC 6275 §11.5.4), the BU goes from the HoA without HAO and the BA
 * back to the HoA without RH2: `IPv6 | ESP | MH`, same SAs (RFC 4877 §4.1 protects every BU/BA
 * of a home registration).
 *
 * ## Which SA, which addresses (RFC 4877 §4, RFC 3776 §4.4)
 *
 * Security Policy entries are by home address, not care-of address, so a pair of SAs serves a
 * VM wherever it is:
 *
 * - mobile node: outbound "src HoA, dst HA, proto MH (BU)" → BU SA; inbound "src HA, dst HoA,
 *   proto MH (BA)" → BA SA. The HAO carries the HoA; the IPv6 source is the CoA.
 * - home agent: inbound BU SA, outbound BA SA, the same SPIs and keys (one shared configuration
 *   per VM, {@linkcode EspPairConfig}).
 *
 * The outer header, the HAO and the RH2 are outside the ICV, so the receiver must check that
 * the SA it found by SPI is the one of the HoA the packet names: the home agent compares the
 * HAO's HoA (the source when at home) and the destination (its own address) with the SA
 * (`unprotect(sad, esp, { homeAddress, homeAgent })`), the mobile node the RH2's HoA (the
 * destination when at home) and the source (the HA). A mismatch is `policy` and counted.
 *
 * ## The Mobility Header checksum
 *
 * The MH inside ESP is an ordinary upper-layer message: its checksum is computed before
 * protection and verified after unprotection, over the same pseudo-header as without ESP
 * (RFC 6275 §6.1.1, RFC 8200 §8.1): source = the HoA when a HAO is present (BU), destination =
 * the HoA when a type 2 routing header is present (BA). So `emitMobility(bu, buf, { src: hoa,
 * dst: ha })` then `protect(sa, 135, mh)`; on receipt `unprotect(...)` then
 * `parseMobility(payload, { src: hoa, dst: ha })`. ESP's ICV already guards the bytes; the
 * checksum still catches a sender bug and is what tshark and scapy expect. Raw sockets of
 * protocol 50 do no checksumming, so nothing needs turning off.
 *
 * @module
 */

export * from "./config.ts";
export * from "./sa.ts";
export * from "./esp.ts";
export * from "./packets.ts";
