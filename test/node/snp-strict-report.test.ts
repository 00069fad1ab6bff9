// The report checks that make edgekbs as strict as go-sev-guest (issue 11): reserved bytes, the VMPL range,
// AUTHOR_KEY_EN, the TCB relations every report must keep, and the closed policy defaults. Offsets come from
// docs/snp-verification.md §Report layout and §Reserved and must-be-zero areas, not from the code.

import { beforeAll, describe, expect, it } from "vitest";
import { appraiseSnp, assertAppraised, type Appraisal } from "../../src/tee/snp/appraise";
import { parseSnpPolicy } from "../../src/tee/snp/policy";
import { trustAnchors } from "../../src/tee/snp/trust";
import type { RuleResult, VerifyOptions } from "../../src/tee/snp/types";
import { verifySnpReport } from "../../src/tee/snp/verify";
import { codeOf } from "../helpers/verdict";
import { certificatesOf, createSyntheticChip, createVekFor, mutateReport, type ReportFields, type SyntheticChip } from "../../lab/synthetic-amd";

let milan: SyntheticChip;
let turin: SyntheticChip;
const opts = new Map<SyntheticChip, VerifyOptions>();

beforeAll(async () => {
  [milan, turin] = await Promise.all([createSyntheticChip({ product: "Milan" }), createSyntheticChip({ product: "Turin" })]);
  for (const chip of [milan, turin]) opts.set(chip, { trust: await trustAnchors(chip.arkPem), certificates: certificatesOf(chip) });
});

const verify = (report: Uint8Array, chip = milan) => verifySnpReport(report, opts.get(chip)!);

/** A report of `chip` verified, then appraised under `policy` with no REPORT_DATA or MEASUREMENT expectation. */
async function appraise(fields: Partial<ReportFields>, policy: object = {}, chip = milan): Promise<Appraisal> {
  const v = await verify(await chip.report(fields), chip);
  return appraiseSnp(v, { measurement: null, reportData: null }, parseSnpPolicy(JSON.stringify(policy)));
}

const failing = (a: Appraisal) => a.rules.filter((r) => !r.ok);
const ruleOf = (a: Appraisal, name: string): RuleResult | undefined => a.rules.find((r) => r.rule === name);

describe("reserved bytes must be zero", () => {
  // [first, last] offset of each reserved range and the versions whose layout reserves it.
  const ranges: [number, number, number[]][] = [
    [0x04c, 0x04f, [2, 3, 4, 5]],
    [0x188, 0x19f, [2]],
    [0x18b, 0x19f, [3, 4, 5]],
    [0x1eb, 0x1eb, [2, 3, 4, 5]],
    [0x1ef, 0x1ef, [2, 3, 4, 5]],
    [0x1f8, 0x29f, [2, 3, 4]],
    [0x208, 0x29f, [5]],
  ];
  const cases = ranges.flatMap(([first, last, versions]) => versions.flatMap((version) => [first, last].map((offset) => [version, offset] as const)));

  it.each([2, 3, 4, 5])("a v%i report with every reserved byte zero verifies", async (version) => {
    expect((await verify(await milan.report({ version }))).report.version).toBe(version);
  });

  it.each(cases.map(([version, offset]) => [version, offset.toString(16), offset] as const))("v%i: byte 0x%s non-zero is report-malformed", async (version, hex, offset) => {
    // Re-signed, so only the reserved-byte rule can object.
    const report = await mutateReport(await milan.report({ version }), offset, 0x80, milan);
    expect(await codeOf(verify(report))).toBe(`report-malformed: SNP report: reserved byte 0x${hex} must be zero, is 0x80`);
  });

  it("the mitigation vectors are fields from v5 on and reserved before", async () => {
    const vectors = { launchMitVector: 0xffffffffffffffffn, currentMitVector: 1n };
    const v5 = await verify(await milan.report({ version: 5, ...vectors }));
    expect([v5.report.launchMitVector, v5.report.currentMitVector]).toEqual([vectors.launchMitVector, 1n]);
    expect(await codeOf(verify(await milan.report({ version: 4, ...vectors })))).toBe("report-malformed: SNP report: reserved byte 0x1f8 must be zero, is 0xff");
    expect(await codeOf(verify(await milan.report({ version: 4, currentMitVector: 1n })))).toBe("report-malformed: SNP report: reserved byte 0x200 must be zero, is 0x01");
  });

  it("CPUID bytes are fields from v3 on and reserved in v2", async () => {
    const cpuid = { family: 0x19, model: 0x01, stepping: 0x01 };
    expect((await verify(await milan.report({ version: 3, cpuid }))).report.cpuid).toEqual(cpuid);
    expect(await codeOf(verify(await milan.report({ version: 2, cpuid })))).toBe("report-malformed: SNP report: reserved byte 0x188 must be zero, is 0x19");
  });

  it.each([
    ["upper bytes of R", 0x2d0, 0x2e7],
    ["upper bytes of S", 0x318, 0x32f],
    ["rest of the signature field", 0x330, 0x49f],
  ])("unsigned: the %s (first and last) must be zero", async (_name, first, last) => {
    const report = await milan.report();
    for (const offset of [first, last]) {
      expect(await codeOf(verify(await mutateReport(report, offset, 1)))).toBe(`report-malformed: SNP report: reserved byte 0x${offset.toString(16)} must be zero, is 0x01`);
    }
  });
});

describe("VMPL", () => {
  it("3 is the highest a report may carry; above is report-malformed whatever the policy", async () => {
    const three = await appraise({ vmpl: 3 }, { vmpl: [3] });
    expect(three.ok).toBe(true);
    for (const vmpl of [4, 0xffffffff]) {
      expect(await codeOf(verify(await milan.report({ vmpl })))).toBe(`report-malformed: SNP report: VMPL ${vmpl} is outside 0-3`);
    }
  });
});

describe("AUTHOR_KEY_EN", () => {
  const digest = new Uint8Array(48).fill(0x56);
  const policy = { author_key_digests: ["56".repeat(48)] };

  it("a listed AUTHOR_KEY_DIGEST is trusted only with AUTHOR_KEY_EN set", async () => {
    expect(ruleOf(await appraise({ authorKeyEn: true, authorKeyDigest: digest }, policy), "author_key_digest")).toEqual({
      rule: "author_key_digest",
      ok: true,
      expected: `AUTHOR_KEY_EN set and digest ${"56".repeat(48)}`,
      actual: `AUTHOR_KEY_EN set, digest ${"56".repeat(48)}`,
    });
    const clear = await appraise({ authorKeyEn: false, authorKeyDigest: digest }, policy);
    expect(failing(clear)).toEqual([
      { rule: "author_key_digest", ok: false, expected: `AUTHOR_KEY_EN set and digest ${"56".repeat(48)}`, actual: `AUTHOR_KEY_EN clear, digest ${"56".repeat(48)}` },
    ]);
    expect(() => assertAppraised(clear)).toThrow(`author_key_digest: expected AUTHOR_KEY_EN set and digest ${"56".repeat(8)}…, got AUTHOR_KEY_EN clear, digest ${"56".repeat(8)}…`);
  });

  it("a digest with AUTHOR_KEY_EN clear is not malformed (as in go-sev-guest) and untrusted without a policy that lists it", async () => {
    const a = await appraise({ authorKeyEn: false, authorKeyDigest: digest });
    expect(a.ok).toBe(true);
    expect(ruleOf(a, "author_key_digest")).toBeUndefined();
  });
});

describe("tcb.reported_not_above_current: always evaluated, SPL by SPL in the product's layout", () => {
  const MILAN = { bootloader: 4, tee: 0, snp: 24, microcode: 219 }; // the synthetic Milan chip's REPORTED_TCB

  it("passes at CURRENT_TCB equal to or above REPORTED_TCB, under the default policy", async () => {
    for (const currentTcb of [MILAN, { ...MILAN, microcode: 220 }]) {
      const a = await appraise({ currentTcb });
      expect(a.ok).toBe(true);
      expect(ruleOf(a, "tcb.reported_not_above_current")?.expected).toMatch(/^<= [0-9a-f]{16} in every SPL$/);
    }
  });

  it.each([
    ["blSPL", { bootloader: 3 }, "blSPL 4 > 3"],
    ["snpSPL", { snp: 23 }, "snpSPL 24 > 23"],
    ["ucodeSPL", { microcode: 218 }, "ucodeSPL 219 > 218"],
  ])("Milan: CURRENT_TCB below in %s is refused", async (_name, lower, detail) => {
    const a = await appraise({ currentTcb: { ...MILAN, ...lower }, committedTcb: { ...MILAN, ...lower } });
    expect(failing(a)).toEqual([{ rule: "tcb.reported_not_above_current", ok: false, expected: expect.any(String), actual: `${milan.reportedTcb.raw}: ${detail}` }]);
    expect(() => assertAppraised(a)).toThrow(new RegExp(`^tcb\\.reported_not_above_current: expected <= [0-9a-f]{16} in every SPL, got ${milan.reportedTcb.raw}: ${detail}$`));
  });

  it("Turin: compares in the Turin layout, FMC included; a CURRENT_TCB larger as a number can still be below", async () => {
    const reported = { fmc: 2, bootloader: 1, tee: 1, snp: 4, microcode: 81 };
    const chip = await createVekFor(turin, { reportedTcb: reported });
    opts.set(chip, { ...opts.get(turin)!, certificates: certificatesOf(chip) });
    // fmc 1 (byte 0) below, microcode 82 (byte 7) above: a larger u64, lower FMC.
    const currentTcb = { ...reported, fmc: 1, microcode: 82 };
    const a = await appraise({ currentTcb, committedTcb: currentTcb }, {}, chip);
    expect(failing(a).map((r) => r.actual)).toEqual([`${chip.reportedTcb.raw}: fmcSPL 2 > 1`]);
    expect((await appraise({ currentTcb: { ...reported, fmc: 3 }, committedTcb: reported }, {}, chip)).ok).toBe(true);
  });
});

describe("firmware.provisional: always evaluated", () => {
  const MILAN = { bootloader: 4, tee: 0, snp: 24, microcode: 219 };
  const V = (major: number, minor: number, build: number) => ({ major, minor, build });

  it("by default provisional firmware passes: COMMITTED below CURRENT in TCB or version", async () => {
    const a = await appraise({ currentTcb: { ...MILAN, microcode: 220 }, currentVersion: V(1, 56, 0), committedVersion: V(1, 55, 40) });
    expect(ruleOf(a, "firmware.provisional")).toEqual({
      rule: "firmware.provisional",
      ok: true,
      expected: "committed <= current",
      actual: "current dc18000000000004 1.56.0, committed db18000000000004 1.55.40",
    });
  });

  it("COMMITTED above CURRENT is refused even where provisional firmware is allowed", async () => {
    const tcb = await appraise({ committedTcb: { ...MILAN, snp: 25 } });
    expect(failing(tcb)).toEqual([
      { rule: "firmware.provisional", ok: false, expected: "committed <= current", actual: "current db18000000000004 1.55.40, committed db19000000000004 1.55.40: snpSPL 25 > 24" },
    ]);
    const version = await appraise({ currentVersion: V(1, 55, 39) });
    expect(failing(version).map((r) => [r.rule, r.actual])).toEqual([["firmware.provisional", "current db18000000000004 1.55.39, committed db18000000000004 1.55.40"]]);
  });
});

describe("closed defaults", () => {
  it("MIGRATE_MA is forbidden unless the policy allows it", async () => {
    const ma = { policy: (1n << 17n) | (1n << 18n) };
    expect(failing(await appraise(ma))).toEqual([{ rule: "guest_policy.migrate_ma", ok: false, expected: "clear", actual: "set" }]);
    expect((await appraise(ma, { guest_policy: { migrate_ma: "any" } })).ok).toBe(true);
  });
});
