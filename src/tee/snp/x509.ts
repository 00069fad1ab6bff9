// A minimal reader for AMD's X.509 certificates (ARK, ASK/ASVK, VCEK/VLEK) on top of asn1js, plus
// the two WebCrypto operations the chain needs. Not a general X.509 library: it accepts exactly the
// shapes AMD issues (AMD pub. 57230; docs/snp-verification.md §VCEK and VLEK to §ARK, ASK and ASVK) and
// says precisely what else it saw.

import * as asn1js from "asn1js";
import { buf, sha256, toHex } from "../../crypto/bytes";
import { BoundedMap } from "./cache";
import { bitString, checkSignatureAlgorithms, commonName, decode, explicit, fail, integer, isContext, isInteger, oid, raw, readAs, seq, time, type Node } from "./der";
import type { SplName, SplValues } from "./report";
import { VerificationError } from "./types";

const OID = {
  rsaEncryption: "1.2.840.113549.1.1.1",
  ecPublicKey: "1.2.840.10045.2.1",
  secp384r1: "1.3.132.0.34",
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

function publicKeyType(spki: Node): KeyType {
  const [alg, key] = seq(spki, "SubjectPublicKeyInfo", 2);
  bitString(key, "subjectPublicKey");
  const [algOid, params] = seq(alg, "public key algorithm", 1);
  const id = oid(algOid, "public key algorithm");
  if (id === OID.rsaEncryption) return "rsa";
  if (id === OID.ecPublicKey && params instanceof asn1js.ObjectIdentifier && params.getValue() === OID.secp384r1) return "ec-p384";
  fail(`public key algorithm ${id} is neither rsaEncryption nor EC P-384`);
}

function innerInteger(value: Uint8Array, what: string): number {
  const n = integer(decode(value, what), what);
  if (n < 0n || n > 255n) fail(`${what} ${n} is out of range`);
  return Number(n);
}

function innerIa5(value: Uint8Array, what: string): string {
  const n = decode(value, what);
  if (!(n instanceof asn1js.IA5String)) fail(`${what} is not an IA5String`);
  return n.valueBlock.value;
}

/**
 * KDS encodes hwID as the bare chip id (64 bytes, or 8 on Turin) inside extnValue; trustee and snpguest
 * also expect a DER OCTET STRING around it. The two forms differ in length, so no guessing is needed.
 */
function hwidValue(value: Uint8Array): Uint8Array {
  const wrapped = value.length >= 2 && value[0] === 0x04 && value[1] === value.length - 2 && (value.length === 66 || value.length === 10);
  const id = wrapped ? value.slice(2) : value.slice();
  if (id.length !== 64 && id.length !== 8) fail(`hwID is ${id.length} bytes, expected 64 or 8`);
  return id;
}

function amdExtensions(extensions: Node[]): AmdExtensions {
  const amd: AmdExtensions = { spl: {} };
  for (const ext of extensions) {
    const parts = seq(ext, "Extension", 2);
    const id = oid(parts[0], "extension id");
    const valueNode = parts[parts.length - 1];
    if (!(valueNode instanceof asn1js.OctetString)) fail(`extension ${id} has no OCTET STRING value`);
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
  return readAs("cert-malformed", "certificate", () => readCertificate(der));
}

function readCertificate(der: Uint8Array): Certificate {
  const [tbsNode, sigAlg, sigValue] = seq(decode(der, "certificate"), "Certificate", 3);
  const [version, serial, innerAlg, issuer, validity, subject, spki, ...rest] = seq(tbsNode, "TBSCertificate", 7) as [Node, Node, Node, Node, Node, Node, Node, ...Node[]];
  if (!isContext(version, 0) || !isInteger(explicit(version, "version"), 2n)) fail("not an X.509 v3 certificate");
  checkSignatureAlgorithms(innerAlg, sigAlg!);
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
      throw new VerificationError("cert-malformed", `certificate: public key cannot be imported as ${alg.name}`);
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
