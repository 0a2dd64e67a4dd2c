/**
 * Parse results: bad packets are values, not exceptions.
 *
 * Every parser in `src/wire` returns a {@linkcode Parsed} value. On failure it names what went
 * wrong (`kind`), where (`offset`, counted from the first byte handed to that parser) and which
 * field (`field`), and carries the protocol's own answer in `reply` when the RFC defines one
 * (ICMPv6 Parameter Problem, Binding Error).
 *
 * @module
 */

import type { Icmpv6Repr } from "./icmpv6.ts";
import type { MobilityRepr } from "./mobility.ts";

/** Why a parse failed. `checksum` is only reported when the caller asked for verification. */
export type ParseErrorKind = "truncated" | "malformed" | "unsupported" | "checksum";

/** A failed parse: a value, never thrown. */
export interface ParseError {
  ok: false;
  /** What went wrong. */
  kind: ParseErrorKind;
  /** Byte offset of the offending field, from the start of the bytes given to the parser. */
  offset: number;
  /** Name of the offending field (e.g. `"headerLen"`, `"option"`). */
  field: string;
  /**
   * The protocol's answer, when it has one: an ICMPv6 Parameter Problem (RFC 4443 §3.4,
   * RFC 8200 §4) whose `pointer` equals `offset` and whose `invoking` is the bytes given to the
   * parser (whole-packet parsers rebase both), or a Binding Error (RFC 6275 §6.1.9).
   */
  reply?: Icmpv6Repr | MobilityRepr;
}

/** Result of every parser in `src/wire`. */
export type Parsed<T> = { ok: true; value: T } | ParseError;

/** Builds a successful {@linkcode Parsed}. */
export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

/** Builds a {@linkcode ParseError}. */
export function fail(
  kind: ParseErrorKind,
  offset: number,
  field: string,
  reply?: Icmpv6Repr | MobilityRepr,
): ParseError {
  return reply === undefined ? { ok: false, kind, offset, field } : {
    ok: false,
    kind,
    offset,
    field,
    reply,
  };
}

/**
 * Rebases a failure from an inner parser onto the enclosing bytes: `offset` grows by `delta`,
 * and a Parameter Problem reply gets its pointer rebased the same way and, when given,
 * `invoking` replaced by the enclosing packet.
 */
export function rebase(err: ParseError, delta: number, invoking?: Uint8Array): ParseError {
  let reply = err.reply;
  if (reply !== undefined && reply.type === "paramProblem") {
    reply = {
      ...reply,
      pointer: reply.pointer + delta,
      invoking: invoking ?? reply.invoking,
    };
  }
  return fail(err.kind, err.offset + delta, err.field, reply);
}
