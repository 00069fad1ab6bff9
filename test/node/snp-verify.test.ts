// Verifier behaviour the real data cannot show: signer/MBZ/product rules, several candidate VEKs,
// operator-listed roots, dates, caches. Built on the synthetic chips of lab/synthetic-amd.ts,
// which were written independently of the verifier.

import { beforeAll, describe, expect, it } from "vitest";
import { codeOf } from "../helpers/verdict";
import { toHex } from "../../src/crypto/bytes";
import { parseReport } from "../../src/tee/snp/report";
import { trustAnchors } from "../../src/tee/snp/trust";
import type { TrustAnchors, VerifyOptions } from "../../src/tee/snp/types";
import { clearVerifierCaches, verifySnpReport } from "../../src/tee/snp/verify";
import { fingerprint } from "../../src/tee/snp/x509";
import { certificatesOf, createSyntheticChip, createVekFor, mutateReport, REPORT_OFFSETS, type SyntheticChip } from "../../lab/synthetic-amd";


/** Trust in exactly this chip's (lab) ARK, as EXTRA_TRUSTED_ARKS would give. */
async function labTrust(chip: SyntheticChip): Promise<TrustAnchors> {
  return trustAnchors(chip.arkPem);
}

let chip: SyntheticChip;
let opts: VerifyOptions;

beforeAll(async () => {
  chip = await createSyntheticChip({ product: "Milan" });
  opts = { trust: await labTrust(chip), certificates: certificatesOf(chip) };
});

describe("report structure", () => {
  it("verifies a well-formed synthetic report under an operator-listed ARK only", async () => {
    const report = await chip.report();
    expect((await verifySnpReport(report, opts)).product).toBe("Milan");
    expect(await codeOf(verifySnpReport(report, { ...opts, trust: await trustAnchors() }))).toMatch(/^cert-untrusted-root:/);
  });

  it("refuses reports of the wrong size", async () => {
    const report = await chip.report();
    for (const bad of [report.subarray(0, 1183), new Uint8Array([...report, 0])]) {
      expect(await codeOf(verifySnpReport(bad, opts))).toMatch(/^report-malformed: SNP report: expected 1184 bytes/);
    }
  });

  it.each([
    ["POLICY bit 17 clear", { policy: 0x10000n }, /POLICY bit 17 must be 1/],
    ["POLICY bit 26 set", { policy: 0x30000n | (1n << 26n) }, /POLICY bits 63:26 must be zero/],
    ["POLICY bit 63 set", { policy: 0x30000n | (1n << 63n) }, /POLICY bits 63:26 must be zero/],
  ])("%s is report-malformed", async (_name, fields, message) => {
    expect(await codeOf(verifySnpReport(await chip.report(fields), opts))).toMatch(message);
  });

  it("accepts every defined POLICY bit up to 25 and unknown PLATFORM_INFO bits", async () => {
    const report = await chip.report({ policy: 0x30000n | (0xffn << 18n), platformInfo: 0xffffffffffffffffn });
    const v = await verifySnpReport(report, opts);
    expect(v.guestPolicy).toMatchObject({ debug: true, pageSwapDisable: true, migrateMa: true });
    expect(v.platformInfo.tioEnabled).toBe(true);
  });

  it.each([
    ["signer info bit 5", REPORT_OFFSETS.signerInfo, 0x20],
    ["unused high byte of R", REPORT_OFFSETS.signatureR + 48, 1],
    ["unused high byte of S", REPORT_OFFSETS.signatureS + 71, 1],
    ["reserved signature area", 0x400, 1],
  ])("a non-zero %s is report-malformed", async (_name, offset, xor) => {
    // Re-signed where the byte is signed, so only the MBZ rule can object.
    const report = await mutateReport(await chip.report(), offset, xor, offset < 0x2a0 ? chip : undefined);
    expect(await codeOf(verifySnpReport(report, opts))).toMatch(/^report-malformed:/);
  });

  it("names the supported versions", async () => {
    expect(await codeOf(verifySnpReport(await chip.report({ version: 6 }), opts))).toBe(
      "report-version: SNP report version 6 is not supported (supported: 2, 3, 4, 5)",
    );
    expect((await verifySnpReport(await chip.report({ version: 4 }), opts)).report.cpuid).toBeDefined();
  });

  it.each([
    ["SIGNATURE_ALGO 2", { signatureAlgo: 2 }, /SIGNATURE_ALGO 2/],
    ["MASK_CHIP_KEY", { maskChipKey: true }, /MASK_CHIP_KEY/],
    ["SIGNING_KEY 7", { signingKey: 7 }, /SIGNING_KEY is 7 \(none\)/],
    ["SIGNING_KEY 3", { signingKey: 3 }, /SIGNING_KEY 3 is reserved/],
  ])("%s is unsupported-signer", async (_name, fields, message) => {
    const code = await codeOf(verifySnpReport(await chip.report(fields), opts));
    expect(code).toMatch(/^unsupported-signer:/);
    expect(code).toMatch(message);
  });

  it("an unknown CPUID is unsupported-product naming the supported ones", async () => {
    const report = await chip.report({ cpuid: { family: 0x1a, model: 0x50, stepping: 0 } });
    expect(await codeOf(verifySnpReport(report, opts))).toBe("unsupported-product: CPUID family 0x1a model 0x50 is not Milan, Genoa, Turin");
  });

  it("the report's own copy is independent of the caller's buffer", async () => {
    const bytes = await chip.report();
    const r = parseReport(bytes);
    bytes.fill(0);
    expect(r.version).toBe(3);
    expect(r.bytes[0]).toBe(3);
  });
});

describe("binding and candidates", () => {
  it("picks, among several supplied VEKs, the one issued for the report's chip and TCB", async () => {
    const sameChipOtherTcb = await createVekFor(chip, { reportedTcb: { bootloader: 9, tee: 0, snp: 9, microcode: 99 } });
    const otherChip = await createVekFor(chip);
    const report = await chip.report();
    const certificates = [sameChipOtherTcb.vekDer, otherChip.vekDer, chip.vekDer, chip.askDer, chip.arkDer];
    const v = await verifySnpReport(report, { ...opts, certificates });
    expect(v.vekFingerprint).toBe(await fingerprint(chip.vekDer));
  });

  it("reports the first candidate's problem when none fits", async () => {
    const otherTcb = await createVekFor(chip, { reportedTcb: { bootloader: 9, tee: 0, snp: 9, microcode: 99 } });
    const code = await codeOf(verifySnpReport(await chip.report(), { ...opts, certificates: [otherTcb.vekDer, chip.askDer, chip.arkDer] }));
    expect(code).toMatch(/^vek-mismatch: VCEK blSPL is 9 but REPORTED_TCB has \d+$/);
  });

  it("a VCEK does not vouch for a VLEK-signed report", async () => {
    const code = await codeOf(verifySnpReport(await chip.report({ signingKey: 1 }), opts));
    expect(code).toMatch(/^cert-missing: VLEK-signed report: the VLEK must be supplied/);
  });

  it("a VCEK from the provider that is really a VLEK is vek-mismatch", async () => {
    const vlekChip = await createSyntheticChip({ product: "Milan", vekKind: "VLEK" });
    const report = await vlekChip.report({ signingKey: 0, chipId: crypto.getRandomValues(new Uint8Array(64)) });
    const provider = { vcek: async () => vlekChip.vekDer, chain: async () => [vlekChip.askDer, vlekChip.arkDer] };
    const code = await codeOf(verifySnpReport(report, { trust: await labTrust(vlekChip), provider }));
    expect(code).toMatch(/^vek-mismatch: the report is signed by the VCEK but the certificate is not a SEV-VCEK/);
  });

  it("on Turin, hwID is 8 bytes and the rest of CHIP_ID must be zero", async () => {
    const turin = await createSyntheticChip({ product: "Turin" });
    const turinOpts = { trust: await labTrust(turin), certificates: certificatesOf(turin) };
    expect((await verifySnpReport(await turin.report(), turinOpts)).reportedTcb.fmc).toBeDefined();
    const padded = Uint8Array.from(turin.chipId);
    padded[40] = 1;
    expect(await codeOf(verifySnpReport(await turin.report({ chipId: padded }), turinOpts))).toMatch(/^vek-mismatch: Turin CHIP_ID must be zero after byte 8/);
    // A masked CHIP_ID leaves nothing to compare.
    expect((await verifySnpReport(await turin.report({ chipId: new Uint8Array(64) }), turinOpts)).product).toBe("Turin");
  });
});

describe("dates", () => {
  it("names the expired certificate and its notAfter", async () => {
    // Inside the synthetic ARK/ASK window, which starts a day ago.
    const notAfter = new Date(Date.now() - 60_000);
    const expired = await createVekFor(chip, { vekValidity: { notBefore: new Date(Date.now() - 12 * 3_600_000), notAfter } });
    const certificates = [expired.vekDer, chip.askDer, chip.arkDer];
    const code = await codeOf(verifySnpReport(await expired.report(), { ...opts, certificates }));
    expect(code).toBe(`cert-expired: VCEK certificate expired at ${new Date(Math.floor(notAfter.getTime() / 1000) * 1000).toISOString()}`);
    // Judged at a time inside its window it verifies; before it, it is not yet valid.
    expect((await verifySnpReport(await expired.report(), { ...opts, certificates, now: new Date(notAfter.getTime() - 3_600_000) })).signer).toBe("VCEK");
    expect(await codeOf(verifySnpReport(await expired.report(), { ...opts, certificates, now: new Date(Date.now() - 20 * 86_400_000) }))).toMatch(
      /^cert-expired: (ARK|ASK|VCEK) certificate is not valid before/,
    );
  });
});

describe("per-isolate caches", () => {
  it("a warm entry is still refused when the trust anchors no longer list its ARK", async () => {
    const report = await chip.report();
    await verifySnpReport(report, opts);
    expect(await codeOf(verifySnpReport(report, { ...opts, trust: await trustAnchors() }))).toMatch(/^cert-untrusted-root:/);
  });

  it("a warm entry still checks the report signature and binding", async () => {
    const report = await chip.report();
    await verifySnpReport(report, opts);
    expect(await codeOf(verifySnpReport(await mutateReport(report, REPORT_OFFSETS.measurement), opts))).toMatch(/^signature-invalid:/);
    const otherTcb = await chip.report({ reportedTcb: { bootloader: 1, tee: 2, snp: 3, microcode: 4 } });
    expect(await codeOf(verifySnpReport(otherTcb, opts))).toMatch(/^vek-mismatch:/);
  });

  it("nothing that failed is cached: a tampered VCEK fails again after the genuine one verified", async () => {
    const tampered = Uint8Array.from(chip.vekDer);
    tampered[tampered.length - 10]! ^= 1; // inside the signature
    const certificates = [tampered, chip.askDer, chip.arkDer];
    const report = await chip.report();
    expect(await codeOf(verifySnpReport(report, { ...opts, certificates }))).toMatch(/^cert-chain-invalid:/);
    await verifySnpReport(report, opts);
    expect(await codeOf(verifySnpReport(report, { ...opts, certificates }))).toMatch(/^cert-chain-invalid:/);
  });

  it("a provider-fetched VCEK is fetched once; the verified chain is reported once", async () => {
    clearVerifierCaches();
    const fresh = await createVekFor(chip);
    let fetches = 0;
    const verified: string[] = [];
    const provider = {
      vcek: async () => (fetches++, fresh.vekDer),
      chain: async () => [chip.askDer, chip.arkDer],
      verified: async (c: { vek: Uint8Array; hwid?: Uint8Array }) => void verified.push(`${toHex(c.hwid!)}`),
    };
    for (let i = 0; i < 3; i++) await verifySnpReport(await fresh.report(), { trust: opts.trust, provider });
    expect(fetches).toBe(1);
    expect(verified).toEqual([toHex(fresh.chipId)]);
  });
});
