// AMD's certificate revocation lists (docs/snp-verification.md §CRL): X.509 v2 CRLs that a product's ARK
// issues for the certificates under it, served by KDS at /vcek/v1/{product}/crl (ASK side) and
// /vlek/v1/{product}/crl (ASVK side). Same RSASSA-PSS parameters as the certificates.

import { equalBytes } from "../../crypto/bytes";
import { BoundedMap, derKey } from "./cache";
import { bitString, checkSignatureAlgorithms, commonName, decode, fail, integer, is, isContext, isInteger, isTime, raw, readAs, seq, TAG, time } from "./der";
import { VerificationError } from "./types";
import { verifyRsaPss, type Certificate } from "./x509";

export interface Crl {
  der: Uint8Array;
  /** The TBSCertList exactly as encoded (what the signature covers). */
  tbs: Uint8Array;
  signature: Uint8Array;
  /** Name DER bytes, compared with the ARK's subject byte for byte. */
  issuer: Uint8Array;
  issuerCn?: string;
  thisUpdate: Date;
  nextUpdate?: Date;
  /** Serial numbers of the revoked certificates. */
  revoked: ReadonlySet<bigint>;
}

/** Parses a DER CRL; throws VerificationError("crl-invalid") on anything unexpected. */
export function parseCrl(der: Uint8Array): Crl {
  return readAs("crl-invalid", "CRL", () => readCrl(der));
}

// No real AMD CRL has been inspected: a GeneralizedTime before 2050 there (an RFC 5280 slip, not a
// forgery; the CRL is signed) must not turn every revocation check into a refusal.
const CRL_TIMES = { split2050: false };

function readCrl(der: Uint8Array): Crl {
  const [tbsNode, sigAlg, sigValue] = seq(decode(der, "CRL"), "CertificateList", 3, 3);
  const fields = seq(tbsNode, "TBSCertList", 4);
  // version is OPTIONAL: absent means v1 (no extensions); present it must say v2 (INTEGER 1).
  const hasVersion = is(fields[0], TAG.INTEGER);
  if (hasVersion && !isInteger(fields[0], 1n)) fail("version is not v2");
  const [innerAlg, issuer, thisUpdate, ...rest] = fields.slice(hasVersion ? 1 : 0);
  if (!innerAlg || !issuer) fail("TBSCertList is incomplete");
  checkSignatureAlgorithms(innerAlg, sigAlg!);
  let i = 0;
  const nextUpdate = isTime(rest[i]) ? time(rest[i++], "nextUpdate", CRL_TIMES) : undefined;
  const revoked = new Set<bigint>();
  if (is(rest[i], TAG.SEQUENCE)) {
    for (const entry of seq(rest[i++], "revokedCertificates")) revoked.add(integer(seq(entry, "revoked entry", 2)[0], "revoked serial"));
  }
  // crlExtensions (authority key id, CRL number) are not interpreted: AMD's CRL is a complete, direct
  // CRL of the ARK, and refusing it over an extension would only ever mean checking no CRL at all.
  if (isContext(rest[i], 0)) i++;
  if (i !== rest.length) fail("TBSCertList has unexpected fields after thisUpdate");
  const crl: Crl = {
    der: Uint8Array.from(der),
    tbs: raw(tbsNode!),
    signature: bitString(sigValue, "signatureValue"),
    issuer: raw(issuer),
    issuerCn: commonName(issuer, "issuer"),
    thisUpdate: time(thisUpdate, "thisUpdate", CRL_TIMES),
    revoked,
  };
  if (nextUpdate) crl.nextUpdate = nextUpdate;
  return crl;
}

/** Throws VerificationError("crl-invalid") unless `ark` issued and signed the CRL. */
export async function verifyCrl(crl: Crl, ark: Certificate): Promise<void> {
  if (!equalBytes(crl.issuer, ark.subject)) {
    throw new VerificationError("crl-invalid", `the CRL issuer CN=${crl.issuerCn ?? "?"} is not the chain's ARK CN=${ark.subjectCn}`);
  }
  if (!(await verifyRsaPss(ark.spki, crl.tbs, crl.signature))) {
    throw new VerificationError("crl-invalid", `the CRL signature by CN=${ark.subjectCn} does not verify`);
  }
}

// CRLs that verified, per isolate, by ARK fingerprint and derKey (confirmed byte for byte), so a warm
// verification runs no RSA operation and parses nothing.
const crls = new BoundedMap<string, Crl>(100);

/** Forgets the verified CRLs (with the verifier's other caches). */
export function clearCrlCache(): void {
  crls.clear();
}

/** The CRL parsed and verified under the ARK, from the cache when these bytes verified before; `fresh` when not. */
export async function verifiedCrl(der: Uint8Array, ark: Certificate, arkFp: string): Promise<{ crl: Crl; fresh: boolean } | null> {
  const key = `${arkFp}|${derKey(der)}`;
  const hit = crls.get(key);
  if (hit && equalBytes(hit.der, der)) return { crl: hit, fresh: false };
  const crl = parseCrl(der);
  // Another root's list (AMD's, for a chain under an operator-listed lab ARK) says nothing about this chain.
  if (!equalBytes(crl.issuer, ark.subject)) return null;
  await verifyCrl(crl, ark);
  crls.set(key, crl);
  return { crl, fresh: true };
}
