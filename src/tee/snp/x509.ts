// A minimal reader for AMD's X.509 certificates (ARK, ASK/ASVK, VCEK/VLEK) on top of asn1js, plus
// the two WebCrypto operations the chain needs. Not a general X.509 library: it accepts exactly the
// shapes AMD issues (amd-verification.md §4–§5) and says precisely what else it saw.

import * as asn1js from "asn1js";
import { buf, equalBytes, sha256, toHex } from "../../crypto/bytes";
import { BoundedMap } from "./cache";
import type { SplName, SplValues } from "./report";
import { VerificationError } from "./types";

const OID = {
  rsassaPss: "1.2.840.113549.1.1.10",
  mgf1: "1.2.840.113549.1.1.8",
  sha384: "2.16.840.1.101.3.4.2.2",
  rsaEncryption: "1.2.840.113549.1.1.1",
  ecPublicKey: "1.2.840.10045.2.1",
  secp384r1: "1.3.132.0.34",
  commonName: "2.5.4.3",
  amd: "1.3.6.1.4.1.3704.1.",
} as const;

/** AMD's SPL extensions 1.3.6.1.4.1.3704.1.3.N, by N. */
const SPL_EXTENSIONS: Record<string, SplName> = {
  "3.1": "blSPL",
  "3.2": "teeSPL",
  "3.3": "snpSPL",
  "3.4": "spl_4",
  "3.5": "spl_5",
  "3.6": "spl_6",
  "3.7": "spl_7",
  "3.8": "ucodeSPL",
  "3.9": "fmcSPL",
};

/** The AMD extensions of a VEK (absent on ARK/ASK/ASVK). */
export interface AmdExtensions {
  structVersion?: number;
  productName?: string;
  spl: SplValues;
  /** VCEK only: 64 bytes (Milan/Genoa) or 8 bytes (Turin). */
  hwid?: Uint8Array;
  /** VLEK only, e.g. "CN=cc-us-east-2.amazonaws.com". */
  cspId?: string;
}

export type KeyType = "rsa" | "ec-p384";

/** A parsed certificate. Its signature algorithm is always RSASSA-PSS SHA-384/MGF1-SHA-384/salt 48. */
export interface Certificate {
  der: Uint8Array;
  /** The TBSCertificate exactly as encoded (what the signature covers). */
  tbs: Uint8Array;
  signature: Uint8Array;
  serial: bigint;
  /** Name DER bytes, for exact issuer/subject matching. */
  issuer: Uint8Array;
  subject: Uint8Array;
  issuerCn?: string;
  subjectCn?: string;
  notBefore: Date;
  notAfter: Date;
  /** SubjectPublicKeyInfo DER. */
  spki: Uint8Array;
  keyType: KeyType;
  amd: AmdExtensions;
}

type Node = asn1js.BaseBlock;

function malformed(what: string): never {
  throw new VerificationError("cert-malformed", `certificate: ${what}`);
}

/** Decodes one complete DER element; trailing bytes or decode errors are malformed input. */
function decode(bytes: Uint8Array, what: string): Node {
  // parseEmbedded: false keeps asn1js from guessing at OCTET/BIT STRING contents (a random hwID can look like BER).
  const { offset, result } = asn1js.fromBER(buf(bytes), { parseEmbedded: false, copyInput: false });
  if (offset !== bytes.length || result.error) malformed(`${what} is not a single DER element`);
  return result;
}

function seq(n: Node | undefined, what: string, min = 0): Node[] {
  if (!(n instanceof asn1js.Sequence) || n.valueBlock.value.length < min) malformed(`${what} is not a SEQUENCE of ${min}+ elements`);
  return n.valueBlock.value;
}

/** Encoded bytes of an element, header included, as they appear in the input. */
function raw(n: Node): Uint8Array {
  return n.valueBeforeDecodeView.slice();
}

function oid(n: Node | undefined, what: string): string {
  if (!(n instanceof asn1js.ObjectIdentifier)) malformed(`${what} is not an OID`);
  return n.getValue();
}

function integer(n: Node | undefined, what: string): bigint {
  if (!(n instanceof asn1js.Integer)) malformed(`${what} is not an INTEGER`);
  return n.toBigInt();
}

function text(n: Node | undefined, what: string): string {
  // Every asn1js string type (UTF8String, PrintableString, IA5String, …) keeps its text in valueBlock.value.
  const value: unknown = (n?.valueBlock as { value?: unknown } | undefined)?.value;
  if (typeof value !== "string") malformed(`${what} is not a string`);
  return value;
}

function time(n: Node | undefined, what: string): Date {
  // GeneralizedTime extends UTCTime in asn1js; both are allowed by RFC 5280.
  if (!(n instanceof asn1js.UTCTime)) malformed(`${what} is not a UTCTime or GeneralizedTime`);
  return n.toDate();
}

function isContext(n: Node | undefined, tag: number): n is asn1js.Constructed {
  return n instanceof asn1js.Constructed && n.idBlock.tagClass === 3 && n.idBlock.tagNumber === tag;
}

function explicit(n: asn1js.Constructed, what: string): Node {
  const inner = n.valueBlock.value;
  if (inner.length !== 1) malformed(`${what} must hold one element`);
  return inner[0]!;
}

function bitString(n: Node | undefined, what: string): Uint8Array {
  if (!(n instanceof asn1js.BitString) || n.valueBlock.unusedBits !== 0) malformed(`${what} is not a whole-byte BIT STRING`);
  return n.valueBlock.valueHexView.slice();
}

/** AlgorithmIdentifier { algorithm, parameters ABSENT or NULL } naming SHA-384. */
function isSha384(n: Node | undefined): boolean {
  if (!(n instanceof asn1js.Sequence)) return false;
  const [alg, params, ...rest] = n.valueBlock.value;
  return rest.length === 0 && alg instanceof asn1js.ObjectIdentifier && alg.getValue() === OID.sha384 && (params === undefined || params instanceof asn1js.Null);
}

function isInteger(n: Node | undefined, value: bigint): boolean {
  return n instanceof asn1js.Integer && n.toBigInt() === value;
}

/**
 * AMD signs every certificate with RSASSA-PSS SHA-384 / MGF1-SHA-384 / salt 48; ARK and ASK spell out
 * trailerField 1, some VCEKs omit it (DEFAULT 1). Other parameters would make WebCrypto answer a quiet
 * "false" (or, absent, mean SHA-1/salt 20), so they are rejected up front with a clear reason.
 */
function checkPssAlgorithm(n: Node): void {
  const [alg, params] = seq(n, "signatureAlgorithm", 1);
  const id = oid(alg, "signature algorithm");
  if (id !== OID.rsassaPss) malformed(`signature algorithm ${id} is not RSASSA-PSS`);
  const fields: (Node | undefined)[] = [];
  for (const f of seq(params, "RSASSA-PSS parameters")) {
    const tag = f.idBlock.tagNumber;
    if (!isContext(f, tag) || tag > 3 || fields[tag]) malformed("RSASSA-PSS parameters are not distinct [0]..[3] fields");
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
  if (!ok) malformed("RSASSA-PSS parameters are not SHA-384 / MGF1-SHA-384 / salt 48");
}

function commonName(name: Node, what: string): string | undefined {
  let cn: string | undefined;
  for (const rdn of seq(name, what)) {
    if (!(rdn instanceof asn1js.Set)) malformed(`${what} has a non-SET RDN`);
    for (const atv of rdn.valueBlock.value) {
      const [type, value] = seq(atv, `${what} attribute`, 2);
      if (oid(type, `${what} attribute type`) === OID.commonName) cn = text(value, `${what} CN`);
    }
  }
  return cn;
}

function publicKeyType(spki: Node): KeyType {
  const [alg, key] = seq(spki, "SubjectPublicKeyInfo", 2);
  bitString(key, "subjectPublicKey");
  const [algOid, params] = seq(alg, "public key algorithm", 1);
  const id = oid(algOid, "public key algorithm");
  if (id === OID.rsaEncryption) return "rsa";
  if (id === OID.ecPublicKey && params instanceof asn1js.ObjectIdentifier && params.getValue() === OID.secp384r1) return "ec-p384";
  malformed(`public key algorithm ${id} is neither rsaEncryption nor EC P-384`);
}

function innerInteger(value: Uint8Array, what: string): number {
  const n = integer(decode(value, what), what);
  if (n < 0n || n > 255n) malformed(`${what} ${n} is out of range`);
  return Number(n);
}

function innerIa5(value: Uint8Array, what: string): string {
  const n = decode(value, what);
  if (!(n instanceof asn1js.IA5String)) malformed(`${what} is not an IA5String`);
  return n.valueBlock.value;
}

/**
 * KDS encodes hwID as the bare chip id (64 bytes, or 8 on Turin) inside extnValue; trustee and snpguest
 * also expect a DER OCTET STRING around it. The two forms differ in length, so no guessing is needed.
 */
function hwidValue(value: Uint8Array): Uint8Array {
  const wrapped = value.length >= 2 && value[0] === 0x04 && value[1] === value.length - 2 && (value.length === 66 || value.length === 10);
  const id = wrapped ? value.slice(2) : value.slice();
  if (id.length !== 64 && id.length !== 8) malformed(`hwID is ${id.length} bytes, expected 64 or 8`);
  return id;
}

function amdExtensions(extensions: Node[]): AmdExtensions {
  const amd: AmdExtensions = { spl: {} };
  for (const ext of extensions) {
    const parts = seq(ext, "Extension", 2);
    const id = oid(parts[0], "extension id");
    const valueNode = parts[parts.length - 1];
    if (!(valueNode instanceof asn1js.OctetString)) malformed(`extension ${id} has no OCTET STRING value`);
    if (!id.startsWith(OID.amd)) continue;
    const sub = id.slice(OID.amd.length);
    const value = valueNode.valueBlock.valueHexView;
    const spl = SPL_EXTENSIONS[sub];
    if (spl) amd.spl[spl] = innerInteger(value, spl);
    else if (sub === "1") amd.structVersion = innerInteger(value, "structVersion");
    else if (sub === "2") amd.productName = innerIa5(value, "productName");
    else if (sub === "4") amd.hwid = hwidValue(value);
    else if (sub === "5") amd.cspId = innerIa5(value, "csp_id");
  }
  return amd;
}

/** Parses an AMD certificate; throws VerificationError("cert-malformed") on anything unexpected. */
export function parseCertificate(der: Uint8Array): Certificate {
  const [tbsNode, sigAlg, sigValue] = seq(decode(der, "certificate"), "Certificate", 3);
  const [version, serial, innerAlg, issuer, validity, subject, spki, ...rest] = seq(tbsNode, "TBSCertificate", 7) as [Node, Node, Node, Node, Node, Node, Node, ...Node[]];
  if (!isContext(version, 0) || !isInteger(explicit(version, "version"), 2n)) malformed("not an X.509 v3 certificate");
  checkPssAlgorithm(sigAlg!);
  if (!equalBytes(raw(innerAlg), raw(sigAlg!))) malformed("TBS and outer signature algorithms differ");
  const [notBefore, notAfter] = seq(validity, "Validity", 2);
  const extensions = rest.find((n) => isContext(n, 3)) as asn1js.Constructed | undefined;
  return {
    der: Uint8Array.from(der),
    tbs: raw(tbsNode!),
    signature: bitString(sigValue, "signatureValue"),
    serial: integer(serial, "serialNumber"),
    issuer: raw(issuer),
    subject: raw(subject),
    issuerCn: commonName(issuer, "issuer"),
    subjectCn: commonName(subject, "subject"),
    notBefore: time(notBefore, "notBefore"),
    notAfter: time(notAfter, "notAfter"),
    spki: raw(spki),
    keyType: publicKeyType(spki),
    amd: extensions ? amdExtensions(seq(explicit(extensions, "extensions"), "Extensions")) : { spl: {} },
  };
}

/** Lowercase hex SHA-256, the fingerprint used for pinning and cache keys. */
export async function fingerprint(der: Uint8Array): Promise<string> {
  return toHex(await sha256(der));
}

// Imported keys per (algorithm, SPKI fingerprint): importing an RSA-4096 key is not free, and the
// same few ARK/ASK keys and VEK keys recur on every request an isolate serves.
const keys = new BoundedMap<string, CryptoKey>(1000);

/** Forgets the imported keys (for measuring the cold path). */
export function clearKeyCache(): void {
  keys.clear();
}

type ImportAlgorithm = Parameters<typeof crypto.subtle.importKey>[2] & { name: string };

async function importCached(spki: Uint8Array, alg: ImportAlgorithm): Promise<CryptoKey> {
  const id = `${alg.name}:${await fingerprint(spki)}`;
  let key = keys.get(id);
  if (!key) {
    try {
      key = await crypto.subtle.importKey("spki", buf(spki), alg, false, ["verify"]);
    } catch {
      malformed(`public key cannot be imported as ${alg.name}`);
    }
    keys.set(id, key);
  }
  return key;
}

/** RSASSA-PSS SHA-384 / salt 48 verification of `tbs` under the issuer's SubjectPublicKeyInfo. */
export async function verifyRsaPss(issuerSpki: Uint8Array, tbs: Uint8Array, signature: Uint8Array): Promise<boolean> {
  const key = await importCached(issuerSpki, { name: "RSA-PSS", hash: "SHA-384" });
  return crypto.subtle.verify({ name: "RSA-PSS", saltLength: 48 }, key, buf(signature), buf(tbs));
}

/** The VCEK/VLEK public key (ECDSA P-384) for report signatures. */
export function importVekKey(spki: Uint8Array): Promise<CryptoKey> {
  return importCached(spki, { name: "ECDSA", namedCurve: "P-384" });
}
