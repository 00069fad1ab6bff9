// What an admin may load into the AMD certificate and CRL caches (`kbs amd import`, src/http/admin-amd.ts), for
// deployments that must not depend on KDS: certificates whose chain verifies to a pinned or operator-listed ARK
// of their product (ARK → ASK/ASVK → VCEK, with the verifier's strict parser and RSA-PSS checks), and CRLs that
// such an ARK signed. Issuers may come with the upload or from the cache; cached ones are checked again here.

import { equalBytes } from "../../crypto/bytes";
import { parseCrl, verifyCrl, type Crl } from "./crl";
import { VerificationError, type Product, type SignerKind, type TrustAnchors } from "./types";
import { selfSigned, trusted } from "./verify";
import { fingerprint, parseCertificate, verifyRsaPss, type Certificate } from "./x509";

/** One uploaded item, named by where it was in the request. */
export interface Upload {
  field: string;
  index: number;
  der: Uint8Array;
}

export interface Refusal {
  field: string;
  index: number;
  reason: string;
}

/** A certificate that chains to a trusted ARK: `arkFp` names that ARK, `pinned` whether it is AMD's own. */
export interface Chained {
  cert: Certificate;
  arkFp: string;
  pinned: boolean;
}

export interface VerifiedCrlUpload {
  product: Product;
  signer: SignerKind;
  der: Uint8Array;
  nextUpdate?: Date;
}

export interface ImportCheck {
  certificates: Chained[];
  crls: VerifiedCrlUpload[];
  refused: Refusal[];
}

/** A VerificationError's message is the refusal's reason; anything else is a bug. */
function reasonOf(e: unknown): string {
  if (e instanceof VerificationError) return e.message;
  throw e;
}

/** A trusted, validly self-signed ARK, or why not. */
async function anchor(ark: Certificate, trust: TrustAnchors): Promise<Chained | string> {
  const arkFp = await fingerprint(ark.der);
  if (!trusted(trust, arkFp, ark.product)) return `ARK ${arkFp.slice(0, 16)}… is neither AMD's pinned ${ark.product} root nor listed in EXTRA_TRUSTED_ARKS`;
  if (!(await selfSigned(ark))) return "the ARK is not validly self-signed";
  return { cert: ark, arkFp, pinned: trust.pinned.get(arkFp) === ark.product };
}

/** The first of `issuers` named as the certificate's issuer whose signature on it holds. */
async function signer(cert: Certificate, issuers: Chained[]): Promise<Chained | undefined> {
  for (const issuer of issuers) {
    if (equalBytes(issuer.cert.subject, cert.issuer) && (await verifyRsaPss(issuer.cert.spki, cert.tbs, cert.signature))) return issuer;
  }
  return undefined;
}

/**
 * Sorts an upload into what may be cached and what is refused (each with its reason). VLEKs are refused: KDS keys
 * VCEKs per chip, a VLEK comes with its guest's evidence. CRLs are kept only from AMD's pinned ARKs: the CRL cache
 * holds one list per product and signer kind, and a lab root's list must not displace AMD's.
 */
export async function checkImport(certificates: Upload[], crls: (Upload & { signer: SignerKind })[], cachedIssuers: Uint8Array[], trust: TrustAnchors, now: Date): Promise<ImportCheck> {
  const refused: Refusal[] = [];
  const refuse = (u: Upload, reason: string) => refused.push({ field: u.field, index: u.index, reason });
  const uploaded: (Upload & { cert: Certificate })[] = [];
  for (const u of certificates) {
    try {
      const cert = parseCertificate(u.der);
      if (now > cert.notAfter) refuse(u, `the ${cert.role} expired at ${cert.notAfter.toISOString()}`);
      else uploaded.push({ ...u, cert });
    } catch (e) {
      refuse(u, reasonOf(e));
    }
  }
  // Cached rows verified when they were stored; trust may have changed since, so they are checked like the rest.
  const cached = cachedIssuers.flatMap((der) => {
    try {
      return [parseCertificate(der)];
    } catch {
      return [];
    }
  });
  const accepted: Chained[] = [];
  const ofRole = <T extends { role: string }>(list: T[], ...roles: string[]) => list.filter((c) => roles.includes(c.role));
  const uploadedOf = (...roles: string[]) => uploaded.filter((u) => roles.includes(u.cert.role));

  const arks: Chained[] = [];
  for (const ark of ofRole(cached, "ARK")) {
    const a = await anchor(ark, trust);
    if (typeof a !== "string") arks.push(a);
  }
  for (const u of uploadedOf("ARK")) {
    const a = await anchor(u.cert, trust);
    if (typeof a === "string") refuse(u, a);
    else {
      accepted.push(a);
      arks.push(a);
    }
  }

  const intermediates: Chained[] = [];
  for (const inter of ofRole(cached, "ASK", "ASVK")) {
    const by = await signer(inter, arks);
    if (by) intermediates.push({ ...by, cert: inter });
  }
  for (const u of uploadedOf("ASK", "ASVK")) {
    const by = await signer(u.cert, arks);
    if (!by) refuse(u, `no trusted ARK-${u.cert.product} (in this import or cached) signed this ${u.cert.role}`);
    else {
      const chained = { ...by, cert: u.cert };
      accepted.push(chained);
      intermediates.push(chained);
    }
  }

  for (const u of uploadedOf("VCEK")) {
    const by = await signer(u.cert, intermediates);
    if (!by) refuse(u, `no verified ${u.cert.issuerCn} (in this import or cached) signed this VCEK`);
    else accepted.push({ ...by, cert: u.cert });
  }
  for (const u of uploadedOf("VLEK")) refuse(u, "VLEKs are not cached: a VLEK-signed report carries its VLEK");

  const verifiedCrls: VerifiedCrlUpload[] = [];
  for (const u of crls) {
    let crl: Crl;
    try {
      crl = parseCrl(u.der);
    } catch (e) {
      refuse(u, reasonOf(e));
      continue;
    }
    let issuer: Chained | undefined;
    for (const ark of arks.filter((a) => equalBytes(a.cert.subject, crl.issuer))) {
      try {
        await verifyCrl(crl, ark.cert);
        issuer = ark;
        break;
      } catch (e) {
        // Another ARK of the same name may still have signed it.
        if (!(e instanceof VerificationError)) throw e;
      }
    }
    if (!issuer) refuse(u, `no trusted ARK (in this import or cached) signed this CRL of CN=${crl.issuerCn ?? "?"}`);
    else if (!issuer.pinned) refuse(u, "the CRL is an operator-listed root's: only AMD's own CRLs are cached");
    else if (crl.nextUpdate && now > crl.nextUpdate) refuse(u, `the CRL is stale: its next update was due ${crl.nextUpdate.toISOString()}`);
    else verifiedCrls.push({ product: issuer.cert.product, signer: u.signer, der: crl.der, ...(crl.nextUpdate && { nextUpdate: crl.nextUpdate }) });
  }
  return { certificates: accepted, crls: verifiedCrls, refused };
}
