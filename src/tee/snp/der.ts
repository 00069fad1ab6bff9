// DER reading helpers shared by the certificate and CRL readers, on top of asn1js. They throw DerError
// naming what was wrong; each reader turns it into its own VerificationError code and prefix.

import * as asn1js from "asn1js";
import { buf, equalBytes } from "../../crypto/bytes";
import { VerificationError, type VerificationErrorCode } from "./types";

const OID = {
  rsassaPss: "1.2.840.113549.1.1.10",
  mgf1: "1.2.840.113549.1.1.8",
  sha384: "2.16.840.1.101.3.4.2.2",
} as const;

/** The attribute types of AMD's names (X.520). */
export const ATTRIBUTE = { C: "2.5.4.6", L: "2.5.4.7", ST: "2.5.4.8", O: "2.5.4.10", OU: "2.5.4.11", CN: "2.5.4.3" } as const;

export type Node = asn1js.BaseBlock;

class DerError extends Error {}

export function fail(what: string): never {
  throw new DerError(what);
}

/** Runs a reader, turning whatever malformed input makes it throw into VerificationError(code, "<what>: <reason>"). */
export function readAs<T>(code: VerificationErrorCode, what: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof DerError) throw new VerificationError(code, `${what}: ${e.message}`);
    if (e instanceof VerificationError) throw e;
    // asn1js throws plain Errors for some malformed input (a bad GeneralizedTime, say): equally malformed.
    throw new VerificationError(code, `${what}: malformed DER`);
  }
}

/** Decodes one complete DER element; trailing bytes or decode errors are malformed input. */
export function decode(bytes: Uint8Array, what: string): Node {
  let decoded: ReturnType<typeof asn1js.fromBER>;
  try {
    // parseEmbedded: false keeps asn1js from guessing at OCTET/BIT STRING contents (a random hwID can look like BER).
    decoded = asn1js.fromBER(buf(bytes), { parseEmbedded: false, copyInput: false });
  } catch (e) {
    // asn1js throws (rather than flagging) on a GeneralizedTime it cannot read.
    fail(`${what} is not valid DER (${(e as Error).message})`);
  }
  const { offset, result } = decoded;
  if (offset !== bytes.length || result.error) fail(`${what} is not a single DER element`);
  return result;
}

/** The elements of a SEQUENCE of min..max elements. */
export function seq(n: Node | undefined, what: string, min = 0, max = Infinity): Node[] {
  const count = n instanceof asn1js.Sequence ? n.valueBlock.value.length : -1;
  if (count < min || count > max) fail(`${what} is not a SEQUENCE of ${min === max ? min : `${min}+`} elements`);
  return (n as asn1js.Sequence).valueBlock.value;
}

/** Encoded bytes of an element, header included, as they appear in the input. */
export function raw(n: Node): Uint8Array {
  return n.valueBeforeDecodeView.slice();
}

export function oid(n: Node | undefined, what: string): string {
  if (!(n instanceof asn1js.ObjectIdentifier)) fail(`${what} is not an OID`);
  return n.getValue();
}

export function integer(n: Node | undefined, what: string): bigint {
  if (!(n instanceof asn1js.Integer)) fail(`${what} is not an INTEGER`);
  return n.toBigInt();
}

export function isInteger(n: Node | undefined, value: bigint): boolean {
  return n instanceof asn1js.Integer && n.toBigInt() === value;
}

function text(n: Node | undefined, what: string): string {
  // Every asn1js string type (UTF8String, PrintableString, IA5String, …) keeps its text in valueBlock.value.
  const value: unknown = (n?.valueBlock as { value?: unknown } | undefined)?.value;
  if (typeof value !== "string") fail(`${what} is not a string`);
  return value;
}

export function boolean(n: Node | undefined, what: string): boolean {
  if (!(n instanceof asn1js.Boolean)) fail(`${what} is not a BOOLEAN`);
  return n.valueBlock.value;
}

export function isTime(n: Node | undefined): n is asn1js.UTCTime {
  // GeneralizedTime extends UTCTime in asn1js.
  return n instanceof asn1js.UTCTime;
}

const TIME_FORMS = {
  UTCTime: { pattern: /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/, form: "YYMMDDHHMMSSZ" },
  GeneralizedTime: { pattern: /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/, form: "YYYYMMDDHHMMSSZ" },
};

/**
 * RFC 5280 §4.1.2.5 (and §5.1.2.4 for CRLs): UTCTime exactly YYMMDDHHMMSSZ for 1950–2049, GeneralizedTime
 * exactly YYYYMMDDHHMMSSZ from 2050 on; no fractions, no offsets. Read from the raw text, because asn1js
 * turns an unreadable UTCTime into a date in 1899 and accepts fractions and offsets.
 */
export function time(n: Node | undefined, what: string, { split2050 = true } = {}): Date {
  if (!isTime(n)) fail(`${what} is not a UTCTime or GeneralizedTime`);
  const type = n instanceof asn1js.GeneralizedTime ? "GeneralizedTime" : "UTCTime";
  // At most 32 characters: a longer text cannot match either form anyway.
  const text = String.fromCharCode(...n.valueBlock.valueHexView.subarray(0, 32));
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

export function isContext(n: Node | undefined, tag: number): n is asn1js.Constructed {
  return n instanceof asn1js.Constructed && n.idBlock.tagClass === 3 && n.idBlock.tagNumber === tag;
}

export function explicit(n: asn1js.Constructed, what: string): Node {
  const inner = n.valueBlock.value;
  if (inner.length !== 1) fail(`${what} must hold one element`);
  return inner[0]!;
}

export function bitString(n: Node | undefined, what: string): Uint8Array {
  if (!(n instanceof asn1js.BitString) || n.valueBlock.unusedBits !== 0) fail(`${what} is not a whole-byte BIT STRING`);
  return n.valueBlock.valueHexView.slice();
}

/** A BIT STRING of named bits (keyUsage): whether bit `bit` (0 = the first, most significant) is set. */
export function namedBits(n: Node | undefined, what: string): (bit: number) => boolean {
  if (!(n instanceof asn1js.BitString)) fail(`${what} is not a BIT STRING`);
  const bytes = n.valueBlock.valueHexView;
  return (bit) => (((bytes[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1) === 1;
}

/** AlgorithmIdentifier { algorithm, parameters ABSENT or NULL } naming SHA-384. */
function isSha384(n: Node | undefined): boolean {
  if (!(n instanceof asn1js.Sequence)) return false;
  const [alg, params, ...rest] = n.valueBlock.value;
  return rest.length === 0 && alg instanceof asn1js.ObjectIdentifier && alg.getValue() === OID.sha384 && (params === undefined || params instanceof asn1js.Null);
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
    const tag = f.idBlock.tagNumber;
    if (!isContext(f, tag) || tag > 3 || fields[tag]) fail("RSASSA-PSS parameters are not distinct [0]..[3] fields");
    fields[tag] = explicit(f, "RSASSA-PSS parameter");
  }
  const [hash, mgf, salt, trailer] = fields;
  const [mgfOid, mgfHash] = mgf instanceof asn1js.Sequence ? mgf.valueBlock.value : [];
  const ok =
    isSha384(hash) &&
    mgfOid instanceof asn1js.ObjectIdentifier &&
    mgfOid.getValue() === OID.mgf1 &&
    isSha384(mgfHash) &&
    isInteger(salt, 48n) &&
    (trailer === undefined || isInteger(trailer, 1n));
  if (!ok) fail("RSASSA-PSS parameters are not SHA-384 / MGF1-SHA-384 / salt 48");
}

/** The outer signatureAlgorithm, checked, and equal byte for byte to the one inside the signed part. */
export function checkSignatureAlgorithms(inner: Node, outer: Node): void {
  checkPssAlgorithm(outer);
  if (!equalBytes(raw(inner), raw(outer))) fail("signed and outer signature algorithms differ");
}

/** A Name's attributes as (type OID, text) in order; every RDN must hold exactly one, as in AMD's names. */
export function nameAttributes(name: Node, what: string): [type: string, value: string][] {
  return seq(name, what).map((rdn) => {
    if (!(rdn instanceof asn1js.Set) || rdn.valueBlock.value.length !== 1) fail(`${what} has an RDN that is not a SET of one attribute`);
    const [type, value] = seq(rdn.valueBlock.value[0], `${what} attribute`, 2, 2);
    return [oid(type, `${what} attribute type`), text(value, `${what} attribute value`)];
  });
}

export function commonName(name: Node, what: string): string | undefined {
  return nameAttributes(name, what).find(([type]) => type === ATTRIBUTE.CN)?.[1];
}
