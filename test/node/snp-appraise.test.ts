// The issue-2 appraisal rules: report_data, measurement, debug, vmpl.

import { describe, expect, it } from "vitest";
import { appraiseSnp, assertAppraised, parseSnpTeeConfig, type SnpPolicy } from "../../src/tee/snp/appraise";
import { decodeGuestPolicy } from "../../src/tee/snp/report";
import { VerificationError, type SnpReport, type VerifiedReport } from "../../src/tee/snp/types";

const fill = (n: number, b: number) => new Uint8Array(n).fill(b);

/** Only the fields the rules read; the rest of a VerifiedReport does not matter to them. */
function verified(fields: { reportData?: Uint8Array; measurement?: Uint8Array; vmpl?: number; policy?: bigint }): VerifiedReport {
  const policy = fields.policy ?? 0x30000n;
  const report = { reportData: fields.reportData ?? fill(64, 0xaa), measurement: fields.measurement ?? fill(48, 0xbb), vmpl: fields.vmpl ?? 0, policy } as SnpReport;
  return { report, guestPolicy: decodeGuestPolicy(policy) } as VerifiedReport;
}

const expectation = { reportData: fill(64, 0xaa), measurement: fill(48, 0xbb) };
const strict: SnpPolicy = { allowDebug: false, allowedVmpls: [0] };

function failing(v: VerifiedReport, policy = strict, expect_ = expectation) {
  return appraiseSnp(v, expect_, policy)
    .filter((r) => !r.ok)
    .map((r) => r.rule);
}

describe("parseSnpTeeConfig", () => {
  it.each([
    ["", false],
    ["not json", false],
    ["{}", false],
    ['{"allow_debug": false}', false],
    ['{"allow_debug": "true"}', false],
    ["[true]", false],
    ["null", false],
    ['{"allow_debug": true}', true],
    ['{"allow_debug": true, "other": 1}', true],
  ])("%j → allowDebug %s, VMPL 0 only", (config, allowDebug) => {
    expect(parseSnpTeeConfig(config)).toEqual({ allowDebug, allowedVmpls: [0] });
  });
});

describe("appraiseSnp", () => {
  it("passes a report that matches every expectation", () => {
    const results = appraiseSnp(verified({}), expectation, strict);
    expect(results.map((r) => r.rule)).toEqual(["report_data", "measurement", "debug", "vmpl"]);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(() => assertAppraised(results)).not.toThrow();
  });

  it("report_data and measurement must match byte for byte", () => {
    const rd = fill(64, 0xaa);
    rd[63] = 0;
    expect(failing(verified({ reportData: rd }))).toEqual(["report_data"]);
    const m = fill(48, 0xbb);
    m[0] = 0;
    expect(failing(verified({ measurement: m }))).toEqual(["measurement"]);
    // A shorter expectation is not a prefix match.
    expect(failing(verified({}), strict, { ...expectation, reportData: fill(32, 0xaa) })).toEqual(["report_data"]);
  });

  it("a debuggable guest fails unless the policy allows debug", () => {
    const debug = verified({ policy: 0xb0000n });
    expect(failing(debug)).toEqual(["debug"]);
    expect(failing(debug, { ...strict, allowDebug: true })).toEqual([]);
  });

  it("the VMPL must be one of the allowed ones", () => {
    expect(failing(verified({ vmpl: 1 }))).toEqual(["vmpl"]);
    expect(failing(verified({ vmpl: 1 }), { ...strict, allowedVmpls: [0, 1] })).toEqual([]);
  });

  it("records expected and actual values", () => {
    const [rd, , debug, vmpl] = appraiseSnp(verified({ vmpl: 2, policy: 0xb0000n }), expectation, strict);
    expect(rd).toEqual({ rule: "report_data", ok: true, expected: "aa".repeat(64), actual: "aa".repeat(64) });
    expect(debug).toEqual({ rule: "debug", ok: false, expected: "false", actual: "true" });
    expect(vmpl).toEqual({ rule: "vmpl", ok: false, expected: "0", actual: "2" });
  });
});

describe("assertAppraised", () => {
  it("throws a short policy error naming the first failing rule and carrying all failing rules", () => {
    const m = fill(48, 0xcc);
    const results = appraiseSnp(verified({ measurement: m, vmpl: 3 }), expectation, strict);
    let err: unknown;
    try {
      assertAppraised(results);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VerificationError);
    const v = err as VerificationError;
    expect(v.code).toBe("policy");
    expect(v.message).toBe(`measurement: expected ${"bb".repeat(8)}…, got ${"cc".repeat(8)}…`);
    expect(v.message.length).toBeLessThan(120);
    expect(v.extra.rules?.map((r) => r.rule)).toEqual(["measurement", "vmpl"]);
  });
});
