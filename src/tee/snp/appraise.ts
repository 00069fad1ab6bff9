// Appraisal of a verified SNP report against what the workload's owner expects. A list of named rules
// so that a fuller policy language can add rules without changing the shape of the verdict.

import { equalBytes, toHex } from "../../crypto/bytes";
import { VerificationError, type RuleResult, type VerifiedReport } from "./types";

export interface SnpPolicy {
  allowDebug: boolean;
  allowedVmpls: number[];
}

/**
 * The SNP policy from a workload's tee_config. Anything that is not a JSON object (reference-kbs
 * stores free text there) gives the strict default; only `"allow_debug": true` relaxes it.
 */
export function parseSnpTeeConfig(teeConfig: string): SnpPolicy {
  let allowDebug = false;
  try {
    const config: unknown = JSON.parse(teeConfig);
    allowDebug = typeof config === "object" && config !== null && (config as { allow_debug?: unknown }).allow_debug === true;
  } catch {
    // Not JSON: the strict default.
  }
  return { allowDebug, allowedVmpls: [0] };
}

function bytesRule(rule: string, expected: Uint8Array, actual: Uint8Array): RuleResult {
  // equalBytes runs in constant time for equal lengths, so the comparison does not leak the expected value.
  return { rule, ok: equalBytes(expected, actual), expected: toHex(expected), actual: toHex(actual) };
}

export function appraiseSnp(v: VerifiedReport, expect: { measurement: Uint8Array; reportData: Uint8Array }, policy: SnpPolicy): RuleResult[] {
  const debug = v.guestPolicy.debug;
  return [
    bytesRule("report_data", expect.reportData, v.report.reportData),
    bytesRule("measurement", expect.measurement, v.report.measurement),
    { rule: "debug", ok: policy.allowDebug || !debug, expected: policy.allowDebug ? "allowed" : "false", actual: String(debug) },
    { rule: "vmpl", ok: policy.allowedVmpls.includes(v.report.vmpl), expected: policy.allowedVmpls.join(","), actual: String(v.report.vmpl) },
  ];
}

/** Long hex would overflow small client error buffers (a C client keeps 200 bytes): keep a recognisable prefix. */
function short(value: string): string {
  return value.length > 24 ? `${value.slice(0, 16)}…` : value;
}

/** Throws VerificationError("policy") naming the first failing rule; all failing rules travel in `extra.rules`. */
export function assertAppraised(results: RuleResult[]): void {
  const failing = results.filter((r) => !r.ok);
  const first = failing[0];
  if (first) {
    throw new VerificationError("policy", `${first.rule}: expected ${short(first.expected)}, got ${short(first.actual)}`, { rules: failing });
  }
}
