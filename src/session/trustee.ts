// The SEV-SNP step of a Trustee KBS 0.4.0 session: verify the guest's serde evidence at /attest, check what
// it binds (runtime data into REPORT_DATA, init-data into HOST_DATA), find the one registered workload whose
// policy accepts it, and describe the result for the attestation token. Refusals are thrown: TeeErrors
// (VerificationError, PolicyError, evidence-malformed) and Refused for the workload match.

import { equalBytes, fromHex, toHex } from "../crypto/bytes";
import { checkTeeJwk, type TeeJwk } from "../crypto/jwe";
import type { Config } from "../config";
import { Refused } from "../errors";
import type { LiveWorkload } from "../store/workloads";
import { appraiseSnp, assertAppraised } from "../tee/snp/appraise";
import { parseSnpPolicy } from "../tee/snp/policy";
import { certificatesFromSerde, reportFromSerde } from "../tee/snp/serde";
import { VerificationError, type VerifiedReport } from "../tee/snp/types";
import { readInitData, trusteeReportData } from "../trustee/runtime-data";
import type { CacheDb } from "./cache-db";
import { verifySnpEvidence } from "./snp";

/** The /attest body, validated by the router; the evidence itself is parsed here, in the session. */
export interface TrusteeAttestation {
  initData: { format: string; body: string } | null;
  runtimeData: { nonce: string; "tee-pubkey": TeeJwk };
  primaryEvidence: { attestation_report: unknown; cert_chain?: unknown };
  additionalEvidence: string;
}

export interface TrusteeVerified {
  verified: VerifiedReport;
  /** The REPORT_DATA the runtime data binds (and the report carries). */
  reportData: Uint8Array;
  /** The init-data's `data` table, bound by HOST_DATA; null without init-data. */
  initDataClaims: Record<string, string> | null;
}

/** A binding the report must carry, as a failed appraisal rule names it. */
function bound(rule: string, expected: Uint8Array, actual: Uint8Array): void {
  if (equalBytes(expected, actual)) return;
  const [want, got] = [toHex(expected), toHex(actual)];
  throw new VerificationError("policy", `${rule}: expected ${want}, got ${got}`, { rules: [{ rule, ok: false, expected: want, actual: got }] });
}

/**
 * Verifies the report to AMD (as the legacy path does), then what it binds: REPORT_DATA must be the runtime
 * data's digest; HOST_DATA the init-data's digest when the guest sent init-data (without it, HOST_DATA is
 * only what the workload's policy says about host_data).
 */
export async function verifyTrusteeEvidence(settings: Config, caches: CacheDb, a: TrusteeAttestation, now: Date): Promise<TrusteeVerified> {
  await checkTeeJwk(a.runtimeData["tee-pubkey"]);
  const report = reportFromSerde(a.primaryEvidence.attestation_report);
  const certificates = certificatesFromSerde(a.primaryEvidence.cert_chain);
  const verified = await verifySnpEvidence(settings, caches, report, certificates, now);
  const reportData = await trusteeReportData(a.runtimeData, a.additionalEvidence);
  bound("report_data", reportData, verified.report.reportData);
  const initData = a.initData && (await readInitData(a.initData));
  if (initData) bound("init_data", initData.digest, verified.report.hostData);
  return { verified, reportData, initDataClaims: initData ? initData.data : null };
}

/** The candidates' policies' extra measurements (for snpWorkloadsForMeasurement). */
export const policyMeasurements = (teeConfig: string): readonly string[] => parseSnpPolicy(teeConfig).measurements;

/**
 * The workload this evidence belongs to: the one candidate (registered with its measurement, or listing it
 * in its policy) whose policy accepts it. None registered, several accepting, or none accepting (the first
 * candidate's failing rule) is a refusal: a guest is never given a workload by guesswork.
 */
export function chooseWorkload(candidates: LiveWorkload[], { verified, reportData }: TrusteeVerified, limit: number): LiveWorkload {
  const measurement = toHex(verified.report.measurement);
  if (candidates.length === 0) throw new Refused({ status: 400, code: "workload-unknown", detail: `no SNP workload is registered for measurement ${measurement}` });
  if (candidates.length > limit) {
    throw new Refused({ status: 400, code: "workload-ambiguous", detail: `more than ${limit} workloads are registered for measurement ${measurement}; tell the operator` });
  }
  const appraisals = candidates.map((w) => appraiseSnp(verified, { measurement: fromHex(w.launchMeasurement), reportData }, parseSnpPolicy(w.teeConfig)));
  const accepting = candidates.filter((_, i) => appraisals[i]!.ok);
  if (accepting.length > 1) {
    const ids = accepting.map((w) => JSON.stringify(w.workloadId)).join(", ");
    throw new Refused({ status: 400, code: "workload-ambiguous", detail: `the policies of workloads ${ids} all accept this evidence: tell them apart (e.g. by host_data); tell the operator` });
  }
  if (accepting.length === 0) assertAppraised(appraisals[0]!);
  return accepting[0]!;
}

/** `ear.veraison.annotated-evidence` in the shape of Trustee's SNP verifier (hex strings and numbers). */
export function annotatedEvidence({ verified, initDataClaims }: TrusteeVerified, a: TrusteeAttestation): Record<string, unknown> {
  const { report: r, reportedTcb, guestPolicy: g, platformInfo: p } = verified;
  return {
    snp: {
      measurement: toHex(r.measurement),
      report_data: toHex(r.reportData),
      init_data: toHex(r.hostData),
      chip_id: toHex(r.chipId),
      reported_tcb_bootloader: reportedTcb.bootloader,
      reported_tcb_tee: reportedTcb.tee,
      reported_tcb_snp: reportedTcb.snp,
      reported_tcb_microcode: reportedTcb.microcode,
      ...(reportedTcb.fmc !== undefined && { reported_tcb_fmc: reportedTcb.fmc }),
      policy_abi_major: g.abiMajor,
      policy_abi_minor: g.abiMinor,
      policy_debug_allowed: g.debug,
      policy_migrate_ma: g.migrateMa,
      policy_single_socket: g.singleSocket,
      policy_smt_allowed: g.smt,
      platform_smt_enabled: p.smtEnabled,
      platform_tsme_enabled: p.tsmeEnabled,
    },
    runtime_data_claims: { nonce: a.runtimeData.nonce, "tee-pubkey": a.runtimeData["tee-pubkey"] },
    // Trustee's claims of an init-data are its `data` table (verified against HOST_DATA above).
    init_data_claims: initDataClaims,
  };
}
