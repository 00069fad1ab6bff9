// A strict DER reader for AMD's certificates and CRLs, and the helpers the certificate and CRL readers share.
// Hand-written rather than asn1js: decoding a VCEK with asn1js cost more than the ECDSA verify it guards
// (BENCHMARKS.md), and a DER-only reader refuses what a BER parser lets through (indefinite or padded
// lengths, constructed strings, non-minimal INTEGERs, BOOLEANs other than 00/FF). The helpers throw
// DerError naming what was wrong; each reader turns it into its own VerificationError code and prefix.

import { equalBytes } from "../../crypto/bytes";
import { VerificationError, type VerificationErrorCode } from "./types";

const OID = {
  rsassaPss: "1.2.840.113549.1.1.10",
  mgf1: "1.2.840.113549.1.1.8",
  sha384: "2.16.840.1.101.3.4.2.2",
} as const;

/** The attribute types of AMD's names (X.520). */
export const ATTRIBUTE = { C: "2.5.4.6", L: "2.5.4.7", ST: "2.5.4.8", O: "2.5.4.10", OU: "2.5.4.11", CN: "2.5.4.3" } as const;

/** Identifier octets of the types these readers meet (X.690 §8; single-octet tags only). */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8String: 0x0c,
  PrintableString: 0x13,
  IA5String: 0x16,
  UTCTime: 0x17,
  GeneralizedTime: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** The universal tag numbers of TAG. */
const KNOWN = new Set<number>(Object.values(TAG).map((t) => t & 0x1f));
const CONSTRUCTED = 0x20;
const CONTEXT = 0x80;

class DerError extends Error {}

export function fail(what: string): never {
  throw new DerError(what);
}

/** One DER element: its identifier octet, its whole encoding and, when constructed, its elements. */
export class Node {
  constructor(
    readonly tag: number,
    private readonly input: Uint8Array,
    private readonly start: number,
    private readonly contentStart: number,
    /** Where the element ends in the input. */
    readonly end: number,
    readonly children: readonly Node[],
  ) {}

  /** The element as encoded, header included (a view into the input; made on demand, as views are not free). */
  get der(): Uint8Array {
    return this.input.subarray(this.start, this.end);
  }

  /** The contents octets (a view). */
  get content(): Uint8Array {
    return this.input.subarray(this.contentStart, this.end);
  }
}

/** Runs a reader, turning whatever malformed input makes it throw into VerificationError(code, "<what>: <reason>"). */
export function readAs<T>(code: VerificationErrorCode, what: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof DerError) throw new VerificationError(code, `${what}: ${e.message}`);
    if (e instanceof VerificationError) throw e;
    // Anything else thrown while reading hostile bytes is still hostile bytes: a refusal, never a 500.
    throw new VerificationError(code, `${what}: malformed DER`);
  }
}

const NO_CHILDREN: readonly Node[] = [];

/** Reads the element of `input` at `at` whole (constructed contents recursively, up to `limit`). */
function element(input: Uint8Array, at: number, limit: number, what: string, depth: number): Node {
  if (depth > 16) fail(`${what} nests too deeply`);
  if (at + 2 > limit) fail(`${what} is not valid DER (truncated header)`);
  const tag = input[at]!;
  if ((tag & 0x1f) === 0x1f) fail(`${what} is not valid DER (multi-octet tag)`);
  const universal = (tag & 0xc0) === 0;
  // AMD's certificates use no other universal type; the rest (end-of-contents, REAL, reserved numbers…) are refused.
  if (universal && !KNOWN.has(tag & 0x1f)) fail(`${what} is not valid DER (universal tag ${tag & 0x1f} unexpected)`);
  const constructed = (tag & CONSTRUCTED) !== 0;
  // X.690 §10.2: DER encodes strings primitive; SEQUENCE and SET are always constructed.
  if (universal && constructed !== ((tag | CONSTRUCTED) === TAG.SEQUENCE || (tag | CONSTRUCTED) === TAG.SET)) fail(`${what} is not valid DER (tag 0x${tag.toString(16)} in the wrong form)`);
  let length = input[at + 1]!;
  let start = at + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    // §10.1: definite lengths in the fewest octets (no indefinite 0x80, no leading zero, long form only from 128).
    if (n === 0 || n > 3 || start + n > limit) fail(`${what} is not valid DER (length form)`);
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + input[start + i]!;
    if (input[start] === 0 || length < 0x80) fail(`${what} is not valid DER (non-minimal length)`);
    start += n;
  }
  const end = start + length;
  if (end > limit) fail(`${what} is not valid DER (length beyond the input)`);
  let children = NO_CHILDREN;
  if (constructed) {
    const list: Node[] = [];
    for (let i = start; i < end; i = list[list.length - 1]!.end) list.push(element(input, i, end, what, depth + 1));
    children = list;
  }
  const node = new Node(tag, input, at, start, end, children);
  if (universal && !constructed) checkPrimitive(input, tag, start, end, what);
  return node;
}

function notDer(what: string, why: string): never {
  fail(`${what} is not valid DER (${why})`);
}

/** X.690 §11's rules for the primitive types whose DER form is canonical, checked wherever they occur. */
function checkPrimitive(input: Uint8Array, tag: number, start: number, end: number, what: string): void {
  const n = end - start;
  const first = input[start]!;
  const second = input[start + 1]!;
  switch (tag) {
    case TAG.BOOLEAN:
      if (n !== 1 || (first !== 0 && first !== 0xff)) notDer(what, "BOOLEAN other than 00 or FF");
      break;
    case TAG.INTEGER:
      if (n === 0 || (n > 1 && ((first === 0 && second < 0x80) || (first === 0xff && second >= 0x80)))) notDer(what, "INTEGER not in its fewest octets");
      break;
    case TAG.NULL:
      if (n !== 0) notDer(what, "NULL with contents");
      break;
    case TAG.OID:
      // Each arc in base 128, most significant group first, without a leading 0x80; the last octet ends one.
      if (n === 0 || input[end - 1]! & 0x80) notDer(what, "OBJECT IDENTIFIER");
      for (let i = start; i < end; i++) if (input[i] === 0x80 && (i === start || !(input[i - 1]! & 0x80))) notDer(what, "OBJECT IDENTIFIER");
      break;
    case TAG.BIT_STRING:
      // Unused bits 0–7 and, as DER requires, zero; none at all in an empty string.
      if (n === 0 || first > 7 || (n === 1 && first !== 0) || (n > 1 && input[end - 1]! & ((1 << first) - 1))) notDer(what, "BIT STRING padding");
      break;
  }
}

/** Decodes one complete DER element; trailing bytes or decode errors are malformed input. */
export function decode(bytes: Uint8Array, what: string): Node {
  if (bytes.length === 0) fail(`${what} is not valid DER (empty)`);
  const node = element(bytes, 0, bytes.length, what, 0);
  if (node.end !== bytes.length) fail(`${what} is not a single DER element`);
  return node;
}

export function is(n: Node | undefined, tag: number): n is Node {
  return n?.tag === tag;
}

/** The elements of a SEQUENCE of min..max elements. */
export function seq(n: Node | undefined, what: string, min = 0, max = Infinity): readonly Node[] {
  const count = is(n, TAG.SEQUENCE) ? n.children.length : -1;
  if (count < min || count > max) fail(`${what} is not a SEQUENCE of ${min === max ? min : `${min}+`} elements`);
  return n!.children;
}

/** Encoded bytes of an element, header included, as they appear in the input (a copy). */
export function raw(n: Node): Uint8Array {
  return n.der.slice();
}

export function oid(n: Node | undefined, what: string): string {
  if (!is(n, TAG.OID)) fail(`${what} is not an OID`);
  const arcs: number[] = [];
  let arc = 0;
  for (const b of n.content) {
    if (arc > 2 ** 45) fail(`${what} has an arc too large`);
    arc = arc * 128 + (b & 0x7f);
    if (b & 0x80) continue;
    // The first subidentifier packs two arcs (X.690 §8.19.4).
    if (arcs.length === 0) arcs.push(Math.min(2, Math.floor(arc / 40)), arc - 40 * Math.min(2, Math.floor(arc / 40)));
    else arcs.push(arc);
    arc = 0;
  }
  return arcs.join(".");
}

export function isOid(n: Node | undefined, value: string): boolean {
  return is(n, TAG.OID) && oid(n, "OID") === value;
}

export function integer(n: Node | undefined, what: string): bigint {
  if (!is(n, TAG.INTEGER)) fail(`${what} is not an INTEGER`);
  let v = 0n;
  for (const b of n.content) v = (v << 8n) | BigInt(b);
  // Two's complement: a set top bit makes it negative.
  return n.content[0]! & 0x80 ? v - (1n << BigInt(8 * n.content.length)) : v;
}

export function isInteger(n: Node | undefined, value: bigint): boolean {
  return is(n, TAG.INTEGER) && integer(n, "INTEGER") === value;
}

// Reusable: a decode without { stream } starts afresh, also after an error.
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const ASCII = /^[\x00-\x7f]*$/;
// PrintableString's alphabet (X.680 §41.4).
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** The text of a UTF8String, PrintableString or IA5String: the string types X.509 names and AMD's extensions use. */
export function text(n: Node | undefined, what: string, only?: number): string {
  const tag = n?.tag;
  if (!n || (only !== undefined && tag !== only) || (tag !== TAG.UTF8String && tag !== TAG.PrintableString && tag !== TAG.IA5String)) {
    fail(`${what} is not ${only === TAG.IA5String ? "an IA5String" : "a string"}`);
  }
  let value: string;
  try {
    value = UTF8.decode(n.content);
  } catch {
    fail(`${what} is not valid UTF-8`);
  }
  if ((tag === TAG.IA5String && !ASCII.test(value)) || (tag === TAG.PrintableString && !PRINTABLE.test(value))) fail(`${what} has characters its string type does not allow`);
  return value;
}

export function boolean(n: Node | undefined, what: string): boolean {
  if (!is(n, TAG.BOOLEAN)) fail(`${what} is not a BOOLEAN`);
  return n.content[0] === 0xff;
}

export function isTime(n: Node | undefined): n is Node {
  return is(n, TAG.UTCTime) || is(n, TAG.GeneralizedTime);
}

const TIME_FORMS = {
  UTCTime: { pattern: /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/, form: "YYMMDDHHMMSSZ" },
  GeneralizedTime: { pattern: /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/, form: "YYYYMMDDHHMMSSZ" },
};

/**
 * RFC 5280 §4.1.2.5 (and §5.1.2.4 for CRLs): UTCTime exactly YYMMDDHHMMSSZ for 1950–2049, GeneralizedTime
 * exactly YYYYMMDDHHMMSSZ from 2050 on; no fractions, no offsets.
 */
export function time(n: Node | undefined, what: string, { split2050 = true } = {}): Date {
  if (!isTime(n)) fail(`${what} is not a UTCTime or GeneralizedTime`);
  const type = n.tag === TAG.GeneralizedTime ? "GeneralizedTime" : "UTCTime";
  // At most 32 characters: a longer text cannot match either form anyway.
  const text = String.fromCharCode(...n.content.subarray(0, 32));
  const { pattern, form } = TIME_FORMS[type];
  const fields = pattern.exec(text)?.slice(1).map(Number);
  if (!fields) fail(`${what} ${type} "${text.replace(/[^\x20-\x7e]/g, "?")}" is not ${form}`);
  const [yy, month, day, hour, minute, second] = fields as [number, number, number, number, number, number];
  const year = type === "GeneralizedTime" ? yy : yy < 50 ? 2000 + yy : 1900 + yy;
  if (split2050 && type === "GeneralizedTime" && year < 2050) fail(`${what} is a GeneralizedTime before 2050, where RFC 5280 requires UTCTime`);
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Date.UTC carries 31 April into May and hour 24 into the next day: only a valid date reads back unchanged.
  const back = [date.getUTCMonth() + 1, date.getUTCDate(), date.getUTCHours(), date.getUTCMinutes(), date.getUTCSeconds()];
  if (back.join() !== [month, day, hour, minute, second].join()) fail(`${what} ${text} is not a valid date and time`);
  return date;
}

/** A context-specific tag [n]: its class, number and form. */
export function contextTag(n: Node): { number: number; constructed: boolean } | undefined {
  return (n.tag & 0xc0) === CONTEXT ? { number: n.tag & 0x1f, constructed: (n.tag & CONSTRUCTED) !== 0 } : undefined;
}

/** A constructed [tag], as EXPLICIT tagging encodes it. */
export function isContext(n: Node | undefined, tag: number): n is Node {
  return n?.tag === (CONTEXT | CONSTRUCTED | tag);
}

export function explicit(n: Node, what: string): Node {
  if (n.children.length !== 1) fail(`${what} must hold one element`);
  return n.children[0]!;
}

export function bitString(n: Node | undefined, what: string): Uint8Array {
  if (!is(n, TAG.BIT_STRING) || n.content[0] !== 0) fail(`${what} is not a whole-byte BIT STRING`);
  return n.content.slice(1);
}

/** A BIT STRING of named bits (keyUsage): whether bit `bit` (0 = the first, most significant) is set. */
export function namedBits(n: Node | undefined, what: string): (bit: number) => boolean {
  if (!is(n, TAG.BIT_STRING)) fail(`${what} is not a BIT STRING`);
  const bytes = n.content.subarray(1);
  return (bit) => (((bytes[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1) === 1;
}

/** AlgorithmIdentifier { algorithm, parameters ABSENT or NULL } naming SHA-384. */
function isSha384(n: Node | undefined): boolean {
  if (!is(n, TAG.SEQUENCE)) return false;
  const [alg, params, ...rest] = n.children;
  return rest.length === 0 && isOid(alg, OID.sha384) && (params === undefined || is(params, TAG.NULL));
}

/**
 * AMD signs every certificate and CRL with RSASSA-PSS SHA-384 / MGF1-SHA-384 / salt 48; ARK and ASK
 * spell out trailerField 1, some VCEKs omit it (DEFAULT 1). Other parameters would make WebCrypto
 * answer a quiet "false" (or, absent, mean SHA-1/salt 20), so they are rejected up front with a clear reason.
 */
function checkPssAlgorithm(n: Node): void {
  const [alg, params] = seq(n, "signatureAlgorithm", 1);
  const id = oid(alg, "signature algorithm");
  if (id !== OID.rsassaPss) fail(`signature algorithm ${id} is not RSASSA-PSS`);
  const fields: (Node | undefined)[] = [];
  for (const f of seq(params, "RSASSA-PSS parameters")) {
    const tag = f.tag & 0x1f;
    if (!isContext(f, tag) || tag > 3 || fields[tag]) fail("RSASSA-PSS parameters are not distinct [0]..[3] fields");
    fields[tag] = explicit(f, "RSASSA-PSS parameter");
  }
  const [hash, mgf, salt, trailer] = fields;
  const [mgfOid, mgfHash] = is(mgf, TAG.SEQUENCE) ? mgf.children : [];
  const ok = isSha384(hash) && isOid(mgfOid, OID.mgf1) && isSha384(mgfHash) && isInteger(salt, 48n) && (trailer === undefined || isInteger(trailer, 1n));
  if (!ok) fail("RSASSA-PSS parameters are not SHA-384 / MGF1-SHA-384 / salt 48");
}

/** The outer signatureAlgorithm, checked, and equal byte for byte to the one inside the signed part. */
export function checkSignatureAlgorithms(inner: Node, outer: Node): void {
  checkPssAlgorithm(outer);
  if (!equalBytes(inner.der, outer.der)) fail("signed and outer signature algorithms differ");
}

/** A Name's attributes as (type OID, text) in order; every RDN must hold exactly one, as in AMD's names. */
export function nameAttributes(name: Node, what: string): [type: string, value: string][] {
  return seq(name, what).map((rdn) => {
    if (!is(rdn, TAG.SET) || rdn.children.length !== 1) fail(`${what} has an RDN that is not a SET of one attribute`);
    const [type, value] = seq(rdn.children[0], `${what} attribute`, 2, 2);
    return [oid(type, `${what} attribute type`), text(value, `${what} attribute value`)];
  });
}

export function commonName(name: Node, what: string): string | undefined {
  return nameAttributes(name, what).find(([type]) => type === ATTRIBUTE.CN)?.[1];
}
