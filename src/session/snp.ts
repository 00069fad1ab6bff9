// The SEV-SNP step of a session: verify and appraise the guest's report at /attest, and seal the secret to
// its attested RSA key at /key. Refusals are thrown as TeeErrors (VerificationError, PolicyError).

import { concat, fromHex, isHex, sha256, sha512, toHex, utf8 } from "../crypto/bytes";
import { maxPkcs1Plaintext, parseRsaPublicKey, rsaPkcs1Encrypt } from "../crypto/rsa";
import type { Config } from "../config";
import { TeeError } from "../errors";
import type { LiveWorkload } from "../store/workloads";
import { appraiseSnp, assertAppraised } from "../tee/snp/appraise";
import { parseSnpPolicy } from "../tee/snp/policy";
import { VerificationError, type Product, type VerifiedReport } from "../tee/snp/types";
import { verifySnpReport } from "../tee/snp/verify";
import type { CacheDb } from "./cache-db";
import { workerCertificateProvider } from "./cert-provider";
import { workerCrlSource } from "./crl-source";
import { certificatesFromChainField } from "./evidence";
import { refuse, type Outcome } from "./outcome";

/** The legacy (kbs-types 0.2) tee-pubkey: base64 text exactly as the guest sent it. */
export interface TeePubKey {
  alg: string;
  kMod: string;
  kExp: string;
}

/** The legacy SNP evidence, already JSON-decoded from the `tee-evidence` string by the router. */
export interface SnpEvidence {
  report: string;
  certChain: string;
  gen: Product;
}

/** What an accepted report tells the session and its audit row. */
export interface SnpAttested {
  measurement: string;
  reportedTcb: string;
  chipHash: string;
  revocation: string;
}

const SNP_REPORT_BYTES = 1184;

/** Verifies the report to AMD and appraises it against the workload's policy, bound to this session and key. */
export async function judgeSnpEvidence(
  settings: Config,
  caches: CacheDb,
  sessionId: string,
  workload: LiveWorkload,
  pubkey: TeePubKey,
  evidence: SnpEvidence,
  now: Date,
): Promise<SnpAttested> {
  try {
    parseRsaPublicKey(pubkey.kMod, pubkey.kExp);
  } catch (e) {
    throw new TeeError("snp", "tee-pubkey-invalid", (e as Error).message);
  }
  if (evidence.report.length !== SNP_REPORT_BYTES * 2 || !isHex(evidence.report)) {
    throw new TeeError("snp", "evidence-malformed", `report must be ${SNP_REPORT_BYTES * 2} hex characters (${SNP_REPORT_BYTES} bytes)`);
  }
  const certificates = certificatesFromChainField(evidence.certChain);
  const policy = parseSnpPolicy(workload.teeConfig);
  const verified = await verifySnpEvidence(settings, caches, fromHex(evidence.report), certificates, now, evidence.gen);
  // reference-kbs binding: SHA-512 over the session id and the base64 texts exactly as sent.
  const reportData = await sha512(concat(utf8(sessionId), utf8(pubkey.kMod), utf8(pubkey.kExp)));
  assertAppraised(appraiseSnp(verified, { measurement: fromHex(workload.launchMeasurement), reportData }, policy));
  return snpAttested(verified);
}

/** Verifies a report to AMD (chain, signature, CRL) with the Worker's trust anchors, KDS and caches; both protocols use it. */
export async function verifySnpEvidence(settings: Config, caches: CacheDb, report: Uint8Array, certificates: Uint8Array[], now: Date, productHint?: Product): Promise<VerifiedReport> {
  return verifySnpReport(report, {
    trust: (await settings.trust()).snp,
    ...(productHint && { productHint }),
    certificates,
    provider: workerCertificateProvider(caches, settings.kdsUrl, now),
    revocation: { source: workerCrlSource(caches, settings.kdsUrl, now), mode: settings.crlMode },
    now,
  });
}

/** What the session keeps and audits of an accepted report. */
export async function snpAttested(verified: VerifiedReport): Promise<SnpAttested> {
  return {
    measurement: toHex(verified.report.measurement),
    reportedTcb: verified.reportedTcb.raw,
    chipHash: toHex(await sha256(verified.report.chipId)),
    revocation: verified.revocation.status,
  };
}

/**
 * A policy refusal comes after the signature verified; with report_data passing it was also made for this
 * session and key: fresh evidence from genuine hardware, not a replayed report. Only such refusals spend a
 * workload's failure budget, so nobody without genuine hardware can lock a workload out.
 */
export function isVerifiedRefusal(e: unknown): boolean {
  return e instanceof VerificationError && e.code === "policy" && !(e.extra.rules ?? []).some((r) => r.rule === "report_data");
}

/** /key: PKCS#1 v1.5 to the guest's attested RSA key, as the JSON string `"<hex>"`. */
export async function snpSecretBody(kMod: string, kExp: string, plaintext: Uint8Array): Promise<Outcome<{ body: string }>> {
  const key = parseRsaPublicKey(kMod, kExp);
  if (plaintext.length > maxPkcs1Plaintext(key)) {
    return refuse(400, "secret-too-long", `the secret does not fit RSA-${key.bits} PKCS#1 v1.5 (max ${maxPkcs1Plaintext(key)} bytes)`);
  }
  return { ok: true, body: `"${toHex(await rsaPkcs1Encrypt(key, plaintext))}"` };
}
