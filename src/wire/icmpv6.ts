/**
 * ICMPv6 (RFC 4443) and Neighbor Discovery (RFC 4861) messages.
 *
 * @module
 */

/** An ND option (RFC 4861 §4.6). */
export type NdOption =
  | { type: "sourceLinkLayer"; mac: string }
  | { type: "targetLinkLayer"; mac: string }
  | {
    type: "prefixInfo";
    prefix: string;
    prefixLength: number;
    onLink: boolean;
    autonomous: boolean;
    validLifetime: number;
    preferredLifetime: number;
  }
  | { type: "mtu"; mtu: number }
  | { type: "unknown"; code: number; data: Uint8Array };

/** An ICMPv6 message (RFC 4443 §3–4, RFC 4861 §4). */
export type Icmpv6Repr =
  | { type: "echoRequest" | "echoReply"; identifier: number; sequence: number; data: Uint8Array }
  | { type: "packetTooBig"; mtu: number; invoking: Uint8Array }
  | { type: "paramProblem"; code: number; pointer: number; invoking: Uint8Array }
  | { type: "destUnreachable"; code: number; invoking: Uint8Array }
  | { type: "timeExceeded"; code: number; invoking: Uint8Array }
  | { type: "routerSolicitation"; options: NdOption[] }
  | {
    type: "routerAdvertisement";
    curHopLimit: number;
    managed: boolean;
    other: boolean;
    routerLifetime: number;
    reachableTime: number;
    retransTimer: number;
    options: NdOption[];
  }
  | { type: "neighborSolicitation"; target: string; options: NdOption[] }
  | {
    type: "neighborAdvertisement";
    router: boolean;
    solicited: boolean;
    override: boolean;
    target: string;
    options: NdOption[];
  }
  | { type: "unknown"; icmpType: number; code: number; body: Uint8Array };
