// A minimal reader for AMD's X.509 certificates (ARK, ASK/ASVK, VCEK/VLEK) on top of der.ts, plus
// the two WebCrypto operations the chain needs. Not a general X.509 library: it accepts exactly the
// shapes AMD issues (AMD pub. 57230; docs/snp-verification.md §VCEK and VLEK to §ARK, ASK and ASVK) and
// says precisely what else it saw.

import { buf, sha256, toHex } from "../../crypto/bytes";
import { BoundedMap } from "./cache";
import {
  ATTRIBUTE,
  bitString,
  boolean,
  checkSignatureAlgorithms,
  contextTag,
  decode,
  explicit,
  fail,
  integer,
  is,
  isContext,
  isInteger,
  isOid,
  nameAttributes,
  namedBits,
  oid,
  raw,
  readAs,
  seq,
  TAG,
  text,
  time,
  type Node,
} from "./der";
import type { SplName, SplValues } from "./report";
import { PRODUCTS, VerificationError, type Product } from "./types";

const OID = {
  rsaEncryption: "1.2.840.113549.1.1.1",
  ecPublicKey: "1.2.840.10045.2.1",
  secp384r1: "1.3.132.0.34",
  keyUsage: "2.5.29.15",
  basicConstraints: "2.5.29.19",
  amd: "1.3.6.1.4.1.3704.1.",
} as const;

/** keyUsage bits (RFC 5280 §4.2.1.3). */
const KEY_CERT_SIGN = 5;
const CRL_SIGN = 6;

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

/** Names of AMD's other VEK extensions 1.3.6.1.4.1.3704.1.N, for messages. */
const AMD_EXTENSIONS: Record<string, string> = { "1": "structVersion", "2": "productName", "4": "hwID", "5": "csp_id" };

/**
 * The SPL extensions a VEK of each TCB layout carries, no more and no fewer (every real KDS VEK in
 * test/fixtures; go-sev-guest kds.CertificateExtensions): structVersion 0 has spl_4 and no fmcSPL, Turin's 1 the reverse.
 */
const VEK_SPLS: Record<"v0" | "turin", readonly SplName[]> = {
  v0: ["blSPL", "teeSPL", "spl_4", "spl_5", "spl_6", "spl_7", "snpSPL", "ucodeSPL"],
  turin: ["fmcSPL", "blSPL", "teeSPL", "snpSPL", "spl_5", "spl_6", "spl_7", "ucodeSPL"],
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

/** The five kinds of certificate AMD issues for SNP. */
export type CertRole = "ARK" | "ASK" | "ASVK" | "VCEK" | "VLEK";

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
  issuerCn: string;
  subjectCn: string;
  /** What the certificate is, and for which product, from its subject and issuer CNs. */
  role: CertRole;
  product: Product;
  notBefore: Date;
  notAfter: Date;
  /** SubjectPublicKeyInfo DER. */
  spki: Uint8Array;
  keyType: KeyType;
  amd: AmdExtensions;
}

/** Every ARK, ASK, ASVK, VCEK and VLEK name: these fixed attributes once each, plus the CN (go-sev-guest validateAmdLocation). */
const AMD_LOCATION: [label: keyof typeof ATTRIBUTE, value: string][] = [
  ["C", "US"],
  ["L", "Santa Clara"],
  ["ST", "CA"],
  ["O", "Advanced Micro Devices"],
  ["OU", "Engineering"],
];

/** The CN of a name that is otherwise exactly AMD's. */
function amdCommonName(name: Node, what: string): string {
  const attributes = nameAttributes(name, what);
  const values = (label: keyof typeof ATTRIBUTE) => attributes.filter(([type]) => type === ATTRIBUTE[label]).map(([, v]) => v);
  for (const [label, expected] of AMD_LOCATION) {
    const found = values(label);
    if (found.length !== 1 || found[0] !== expected) fail(`${what} ${label} is ${found.map((v) => `"${v}"`).join(", ") || "absent"}, expected "${expected}"`);
  }
  const cns = values("CN");
  if (cns.length !== 1) fail(`${what} has ${cns.length} CNs, expected 1`);
  if (attributes.length !== AMD_LOCATION.length + 1) fail(`${what} has attributes other than AMD's C, L, ST, O, OU and CN`);
  return cns[0]!;
}

/** Subject and issuer CN of each role (AMD pub. 57230; docs/snp-verification.md §VCEK and VLEK, §ARK, ASK and ASVK). */
const ROLES: { role: CertRole; subject: (p: Product) => string; issuer: (p: Product) => string }[] = [
  { role: "ARK", subject: (p) => `ARK-${p}`, issuer: (p) => `ARK-${p}` },
  { role: "ASK", subject: (p) => `SEV-${p}`, issuer: (p) => `ARK-${p}` },
  { role: "ASVK", subject: (p) => `SEV-VLEK-${p}`, issuer: (p) => `ARK-${p}` },
  { role: "VCEK", subject: () => "SEV-VCEK", issuer: (p) => `SEV-${p}` },
  { role: "VLEK", subject: () => "SEV-VLEK", issuer: (p) => `SEV-VLEK-${p}` },
];

function roleOf(subjectCn: string, issuerCn: string): { role: CertRole; product: Product } {
  for (const { role, subject, issuer } of ROLES) {
    const product = PRODUCTS.find((p) => subject(p) === subjectCn && issuer(p) === issuerCn);
    if (product) return { role, product };
  }
  fail(`CN=${subjectCn} issued by CN=${issuerCn} is not an AMD ARK, ASK, ASVK, VCEK or VLEK of ${PRODUCTS.join(", ")}`);
}

function publicKeyType(spki: Node): KeyType {
  const [alg, key] = seq(spki, "SubjectPublicKeyInfo", 2, 2);
  bitString(key, "subjectPublicKey");
  const [algOid, params] = seq(alg, "public key algorithm", 1, 2);
  const id = oid(algOid, "public key algorithm");
  if (id === OID.rsaEncryption) return "rsa";
  if (id === OID.ecPublicKey && isOid(params, OID.secp384r1)) return "ec-p384";
  fail(`public key algorithm ${id} is neither rsaEncryption nor EC P-384`);
}

/**
 * The extensions that may be critical: those the reader acts on and AMD marks critical. RFC 5280 §4.2 says
 * to refuse a critical extension one does not process; Go's x509 (go-sev-guest) refuses a critical AMD one too.
 */
const CRITICAL_OK = new Set<string>([OID.keyUsage, OID.basicConstraints]);

/**
 * What follows subjectPublicKeyInfo: issuerUniqueID [1], subjectUniqueID [2] (ignored; AMD uses neither) and
 * extensions [3], each optional, in that order. Returns each extension's extnValue by OID.
 */
function readExtensions(tail: readonly Node[]): Map<string, Uint8Array> {
  let lastTag = 0;
  let list: readonly Node[] = [];
  for (const n of tail) {
    const { number: tagNumber, constructed } = contextTag(n) ?? { number: -1, constructed: false };
    if (tagNumber <= lastTag || tagNumber > 3 || constructed !== (tagNumber === 3)) {
      fail("TBSCertificate has fields other than issuerUniqueID, subjectUniqueID and extensions, in order, after subjectPublicKeyInfo");
    }
    lastTag = tagNumber;
    if (isContext(n, 3)) list = seq(explicit(n, "extensions"), "Extensions", 1);
  }
  const extensions = new Map<string, Uint8Array>();
  for (const ext of list) {
    const parts = seq(ext, "Extension", 2, 3);
    const id = oid(parts[0], "extension id");
    const critical = parts.length === 3 && boolean(parts[1], `extension ${id} critical flag`);
    const value = parts[parts.length - 1];
    if (!is(value, TAG.OCTET_STRING)) fail(`extension ${id} has no OCTET STRING value`);
    // RFC 5280 §4.2: at most one instance of an extension; otherwise a second blSPL, say, could pass for the first.
    if (extensions.has(id)) fail(`extension ${id} appears more than once`);
    if (critical && !CRITICAL_OK.has(id)) fail(`extension ${id} is critical but not understood`);
    extensions.set(id, value.content);
  }
  return extensions;
}

/** basicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL } → cA. */
function isCa(value: Uint8Array | undefined): boolean {
  if (!value) return false;
  const fields = seq(decode(value, "basicConstraints"), "basicConstraints", 0, 2);
  const hasCa = is(fields[0], TAG.BOOLEAN);
  const pathLen = fields.slice(hasCa ? 1 : 0);
  if (pathLen.length > 1 || pathLen.some((n) => !is(n, TAG.INTEGER))) fail("basicConstraints is not { cA, pathLenConstraint }");
  return hasCa && boolean(fields[0], "basicConstraints cA");
}

/**
 * What each role must be (go-sev-guest gets these from Go's x509 path validation; RFC 5280 §4.2.1.3, §4.2.1.9):
 * AMD's ARK, ASK and ASVK are RSA CAs with keyCertSign (the ARK also cRLSign: it signs the CRL, and Go
 * refuses a CRL from a key without it); VEKs are EC P-384 keys that are no CA.
 */
function checkRole(role: CertRole, keyType: KeyType, extensions: Map<string, Uint8Array>): void {
  const ca = isCa(extensions.get(OID.basicConstraints));
  if (role === "VCEK" || role === "VLEK") {
    if (keyType !== "ec-p384") fail(`the ${role} key is not EC P-384`);
    if (ca) fail(`the ${role} claims to be a CA (basicConstraints cA TRUE); AMD's VEKs are not`);
    return;
  }
  if (keyType !== "rsa") fail(`the ${role} key is not RSA`);
  if (!ca) fail(`the ${role} is not a CA: it needs basicConstraints with cA TRUE`);
  const keyUsage = extensions.get(OID.keyUsage);
  const has = keyUsage ? namedBits(decode(keyUsage, "keyUsage"), "keyUsage") : () => false;
  if (!has(KEY_CERT_SIGN)) fail(`the ${role} keyUsage lacks keyCertSign`);
  if (role === "ARK" && !has(CRL_SIGN)) fail("the ARK keyUsage lacks cRLSign");
}

function innerInteger(value: Uint8Array, what: string): number {
  const n = integer(decode(value, what), what);
  if (n < 0n || n > 255n) fail(`${what} ${n} is out of range`);
  return Number(n);
}

function innerIa5(value: Uint8Array, what: string): string {
  return text(decode(value, what), what, TAG.IA5String);
}

/**
 * KDS encodes hwID as the bare chip id (64 bytes, or 8 on Turin) inside extnValue; trustee and snpguest
 * also expect a DER OCTET STRING around it. The two forms differ in length, so no guessing is needed.
 */
function hwidValue(value: Uint8Array, product: Product): Uint8Array {
  const size = product === "Turin" ? 8 : 64;
  const wrapped = value.length === size + 2 && value[0] === 0x04 && value[1] === size;
  const id = wrapped ? value.slice(2) : value.slice();
  if (id.length !== size) fail(`hwID is ${id.length} bytes, expected ${size} for ${product}`);
  return id;
}

/**
 * A VEK's AMD extensions (AMD pub. 57230), complete and consistent with its product (go-sev-guest
 * kds.CertificateExtensions and kds.ParseProductName): structVersion and productName, exactly the SPLs
 * of the product's TCB layout, and hwID on a VCEK or csp_id on a VLEK, never both.
 */
function vekExtensions(extensions: Map<string, Uint8Array>, role: "VCEK" | "VLEK", product: Product): AmdExtensions {
  const value = (sub: string) => extensions.get(OID.amd + sub);
  const required = (sub: string) => value(sub) ?? fail(`the ${role} has no ${AMD_EXTENSIONS[sub]} extension`);
  const structVersion = innerInteger(required("1"), "structVersion");
  const layout = product === "Turin" ? 1 : 0;
  if (structVersion !== layout) fail(`the ${role} structVersion is ${structVersion}, expected ${layout} for ${product}`);
  // VCEKs may add the stepping ("Milan-B0"); 2025 Genoa and Turin VCEKs and all VLEKs name only the product.
  const productName = innerIa5(required("2"), "productName");
  if (!new RegExp(`^${product}${role === "VCEK" ? "(-[A-Z][0-9])?" : ""}$`).test(productName)) {
    fail(`the ${role} productName "${productName}" is not ${product}${role === "VCEK" ? ` or ${product}-<stepping>` : ""}`);
  }
  const spl: SplValues = {};
  const expected = VEK_SPLS[product === "Turin" ? "turin" : "v0"];
  for (const [sub, name] of Object.entries(SPL_EXTENSIONS)) {
    const v = value(sub);
    if (expected.includes(name) !== (v !== undefined)) fail(`the ${role} ${v ? "has" : "lacks"} the ${name} extension, which ${product} VEKs ${v ? "do not" : "carry"}`);
    if (v) spl[name] = innerInteger(v, name);
  }
  const amd: AmdExtensions = { structVersion, productName, spl };
  if (role === "VCEK") {
    if (value("5")) fail("the VCEK has a csp_id extension");
    amd.hwid = hwidValue(required("4"), product);
  } else {
    if (value("4")) fail("the VLEK has a hwID extension");
    amd.cspId = innerIa5(required("5"), "csp_id");
  }
  return amd;
}

/** Parses an AMD certificate; throws VerificationError("cert-malformed") on anything unexpected. */
export function parseCertificate(der: Uint8Array): Certificate {
  return readAs("cert-malformed", "certificate", () => readCertificate(der));
}

function readCertificate(der: Uint8Array): Certificate {
  const [tbsNode, sigAlg, sigValue] = seq(decode(der, "certificate"), "Certificate", 3, 3);
  const [version, serial, innerAlg, issuer, validity, subject, spki, ...tail] = seq(tbsNode, "TBSCertificate", 7) as [Node, Node, Node, Node, Node, Node, Node, ...Node[]];
  if (!isContext(version, 0) || !isInteger(explicit(version, "version"), 2n)) fail("not an X.509 v3 certificate");
  checkSignatureAlgorithms(innerAlg, sigAlg!);
  const [notBefore, notAfter] = seq(validity, "Validity", 2, 2);
  const subjectCn = amdCommonName(subject, "subject");
  const issuerCn = amdCommonName(issuer, "issuer");
  const { role, product } = roleOf(subjectCn, issuerCn);
  const keyType = publicKeyType(spki);
  const extensions = readExtensions(tail);
  checkRole(role, keyType, extensions);
  return {
    der: Uint8Array.from(der),
    tbs: raw(tbsNode!),
    signature: bitString(sigValue, "signatureValue"),
    serial: integer(serial, "serialNumber"),
    issuer: raw(issuer),
    subject: raw(subject),
    issuerCn,
    subjectCn,
    role,
    product,
    notBefore: time(notBefore, "notBefore"),
    notAfter: time(notAfter, "notAfter"),
    spki: raw(spki),
    keyType,
    amd: role === "VCEK" || role === "VLEK" ? vekExtensions(extensions, role, product) : { spl: {} },
  };
}

/** Lowercase hex SHA-256, the fingerprint used for pinning and cache keys. */
export async function fingerprint(der: Uint8Array): Promise<string> {
  return toHex(await sha256(der));
}

// Imported keys per (algorithm, SPKI): importing an RSA-4096 key is not free, and the same few ARK/ASK keys
// and VEK keys recur on every request an isolate serves. The import itself is cached, so that checks running
// together under one new key (an ARK's self-signature and its intermediate's) import it once.
const keys = new BoundedMap<string, Promise<CryptoKey>>(1000);

/** Forgets the imported keys, or only those of one algorithm (for measuring the cold path). */
export function clearKeyCache(algorithm?: string): void {
  if (algorithm === undefined) keys.clear();
  else keys.deleteWhere((id) => id.startsWith(`${algorithm}:`));
}

type ImportAlgorithm = Parameters<typeof crypto.subtle.importKey>[2] & { name: string };

function importCached(spki: Uint8Array, alg: ImportAlgorithm): Promise<CryptoKey> {
  // Keyed by the SPKI bytes themselves (hex): exact, and no digest (a thread-pool round trip in Node) per use.
  const id = `${alg.name}:${toHex(spki)}`;
  let key = keys.get(id);
  if (!key) {
    key = (async () => {
      try {
        return await crypto.subtle.importKey("spki", buf(spki), alg, false, ["verify"]);
      } catch {
        keys.delete(id);
        throw new VerificationError("cert-malformed", `certificate: public key cannot be imported as ${alg.name}`);
      }
    })();
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
