// AMD CRLs and revocation in the verifier, and the VLEK rules (never fetched, chained through the
// ASVK). CRLs come from the synthetic helper, which builds them with asn1js independently of crl.ts.

import { beforeAll, describe, expect, it } from "vitest";
import { parseCrl, verifyCrl } from "../../src/tee/snp/crl";
import { trustAnchors } from "../../src/tee/snp/trust";
import type { CrlSource, Product, RevocationOptions, SignerKind, VerifiedCrl, VerifyOptions } from "../../src/tee/snp/types";
import { clearVerifierCaches, verifySnpReport } from "../../src/tee/snp/verify";
import { parseCertificate } from "../../src/tee/snp/x509";
import { codeOf } from "../helpers/verdict";
import { certificatesOf, createCrl, createSyntheticChip, createVekFor, SERIALS, type SyntheticChip } from "../../lab/synthetic-amd";

const DAY = 86_400_000;
let chip: SyntheticChip;
let opts: VerifyOptions;

beforeAll(async () => {
  chip = await createSyntheticChip({ product: "Milan" });
  opts = { trust: await trustAnchors(chip.arkPem), certificates: certificatesOf(chip) };
});

/** A source serving one CRL (or none), recording what was asked and what verified. */
function sourceOf(crl: Uint8Array | undefined | (() => never)) {
  const asked: string[] = [];
  const verified: VerifiedCrl[] = [];
  const source: CrlSource = {
    crl: async (product: Product, signer: SignerKind) => {
      asked.push(`${product} ${signer}`);
      return typeof crl === "function" ? crl() : crl;
    },
    verified: (c) => void verified.push(c),
  };
  return { source, asked, verified };
}

const withCrl = (crl: Uint8Array | undefined | (() => never), mode: RevocationOptions["mode"] = "strict", base = opts) => {
  const s = sourceOf(crl);
  return { ...s, opts: { ...base, revocation: { source: s.source, mode } } };
};

describe("parseCrl and verifyCrl", () => {
  it("reads thisUpdate, nextUpdate and the revoked serials", async () => {
    const thisUpdate = new Date("2026-11-01T00:00:00Z");
    const crl = parseCrl(await createCrl(chip, { thisUpdate, nextUpdate: new Date("2026-12-01T00:00:00Z"), revokedSerials: [SERIALS.Milan.ask, 2n ** 70n] }));
    expect(crl.thisUpdate.toISOString()).toBe(thisUpdate.toISOString());
    expect(crl.nextUpdate?.toISOString()).toBe("2026-12-01T00:00:00.000Z");
    expect([...crl.revoked]).toEqual([BigInt(SERIALS.Milan.ask), 2n ** 70n]);
    expect(crl.issuerCn).toBe("ARK-Milan");
    await expect(verifyCrl(crl, parseCertificate(chip.arkDer))).resolves.toBeUndefined();
    const bare = parseCrl(await createCrl(chip, { nextUpdate: null }));
    expect(bare.nextUpdate).toBeUndefined();
    expect(bare.revoked.size).toBe(0);
  });

  it("refuses what is not an AMD-style CRL as crl-invalid", async () => {
    const der = await createCrl(chip);
    expect(() => parseCrl(der.subarray(0, der.length - 1))).toThrow(/^CRL: CRL is not valid DER \(length beyond the input\)$/);
    expect(() => parseCrl(chip.arkDer)).toThrow(/^CRL: /);
    expect(await codeOf((async () => parseCrl(chip.vekDer))())).toMatch(/^crl-invalid: CRL: /);
  });

  it("refuses a CRL not signed by the ARK, or not issued under its name", async () => {
    const ark = parseCertificate(chip.arkDer);
    const bySigner = parseCrl(await createCrl(chip, { signWith: chip.askPrivateKey }));
    expect(await codeOf(verifyCrl(bySigner, ark))).toBe("crl-invalid: the CRL signature by CN=ARK-Milan does not verify");
    const byName = parseCrl(await createCrl(chip, { issuerCn: "SEV-Milan" }));
    expect(await codeOf(verifyCrl(byName, ark))).toBe("crl-invalid: the CRL issuer CN=SEV-Milan is not the chain's ARK CN=ARK-Milan");
  });
});

describe("revocation in verifySnpReport", () => {
  it("without a source the report verifies with revocation not-checked", async () => {
    expect((await verifySnpReport(await chip.report(), opts)).revocation).toEqual({ status: "not-checked", detail: "no revocation source configured" });
  });

  it("a current CRL that lists neither certificate: checked; verified once, then served from the isolate cache", async () => {
    clearVerifierCaches();
    const thisUpdate = new Date(Date.now() - DAY);
    const nextUpdate = new Date(Date.now() + 6 * DAY);
    const der = await createCrl(chip, { thisUpdate, nextUpdate, revokedSerials: [0x999] });
    const { opts: o, asked, verified } = withCrl(der);
    const v = await verifySnpReport(await chip.report(), o);
    expect(v.revocation).toEqual({ status: "checked", detail: `Milan VCEK CRL of ${new Date(Math.floor(thisUpdate.getTime() / 1000) * 1000).toISOString()}, next update ${new Date(Math.floor(nextUpdate.getTime() / 1000) * 1000).toISOString()}` });
    await verifySnpReport(await chip.report(), o);
    expect(asked).toEqual(["Milan VCEK", "Milan VCEK"]);
    expect(verified).toHaveLength(1);
    expect(verified[0]).toMatchObject({ product: "Milan", signer: "VCEK", der });
  });

  it("a CRL listing the VCEK's serial refuses that VCEK only (cert-revoked)", async () => {
    const revokedVek = await createVekFor(chip, { vekSerial: 0x1234 });
    const { opts: o } = withCrl(await createCrl(chip, { revokedSerials: [0x1234] }));
    const certificates = [revokedVek.vekDer, chip.askDer, chip.arkDer];
    const code = await codeOf(verifySnpReport(await revokedVek.report(), { ...o, certificates }));
    expect(code).toMatch(/^cert-revoked: the VCEK \(serial 0x1234\) is revoked by the Milan VCEK CRL of /);
    // Its sibling (serial 0) under the same ASK is fine.
    expect((await verifySnpReport(await chip.report(), o)).revocation.status).toBe("checked");
  });

  it("a CRL listing the ASK refuses every VCEK under it, in either mode and even when stale", async () => {
    const stale = await createCrl(chip, { revokedSerials: [SERIALS.Milan.ask], thisUpdate: new Date(Date.now() - 30 * DAY), nextUpdate: new Date(Date.now() - 20 * DAY) });
    for (const mode of ["strict", "best-effort"] as const) {
      const code = await codeOf(verifySnpReport(await chip.report(), withCrl(stale, mode).opts));
      expect(code).toMatch(/^cert-revoked: the ASK \(serial 0x10001\) is revoked/);
    }
  });

  it("a CRL whose signature or issuer is wrong is crl-invalid in either mode, also after a genuine one verified", async () => {
    const forged = await createCrl(chip, { signWith: chip.askPrivateKey });
    // Another lab chip's ARK has the same name (ARK-Milan) but another key.
    const other = await createSyntheticChip({ product: "Milan" });
    const foreign = await createCrl(other);
    await verifySnpReport(await other.report(), withCrl(foreign, "strict", { trust: await trustAnchors(other.arkPem), certificates: certificatesOf(other) }).opts);
    for (const mode of ["strict", "best-effort"] as const) {
      for (const crl of [forged, foreign]) {
        expect(await codeOf(verifySnpReport(await chip.report(), withCrl(crl, mode).opts))).toBe("crl-invalid: the CRL signature by CN=ARK-Milan does not verify");
      }
      expect(await codeOf(verifySnpReport(await chip.report(), withCrl(chip.arkDer, mode).opts))).toMatch(/^crl-invalid: CRL: /);
    }
  });

  it("no CRL (or a failing source): strict refuses with crl-unavailable, best-effort records the gap", async () => {
    const failing = () => {
      throw new TypeError("fetch failed");
    };
    for (const crl of [undefined, failing]) {
      expect(await codeOf(verifySnpReport(await chip.report(), withCrl(crl, "strict").opts))).toBe("crl-unavailable: no Milan VCEK CRL available; retry later");
      const v = await verifySnpReport(await chip.report(), withCrl(crl, "best-effort").opts);
      expect(v.revocation).toEqual({ status: "unavailable", detail: "no Milan VCEK CRL available" });
    }
  });

  it("a stale CRL (nextUpdate passed, or none): strict refuses, best-effort records it", async () => {
    // Within the synthetic chain's validity, which starts a day ago.
    const nextUpdate = new Date(Math.floor((Date.now() - 3_600_000) / 1000) * 1000);
    const stale = await createCrl(chip, { thisUpdate: new Date(Date.now() - 8 * DAY), nextUpdate });
    const reason = `the Milan VCEK CRL is stale: its next update was due ${nextUpdate.toISOString()}`;
    expect(await codeOf(verifySnpReport(await chip.report(), withCrl(stale, "strict").opts))).toBe(`crl-unavailable: ${reason}; retry later`);
    expect((await verifySnpReport(await chip.report(), withCrl(stale, "best-effort").opts)).revocation).toEqual({ status: "stale", detail: reason });
    // Judged at a time before its nextUpdate, the same CRL is current.
    const then = { ...withCrl(stale, "strict").opts, now: new Date(nextUpdate.getTime() - 60_000) };
    expect((await verifySnpReport(await chip.report(), then)).revocation.status).toBe("checked");
    const open = await createCrl(chip, { nextUpdate: null });
    expect((await verifySnpReport(await chip.report(), withCrl(open, "best-effort").opts)).revocation).toEqual({
      status: "stale",
      detail: "the Milan VCEK CRL names no next update",
    });
  });
});

describe("VLEK", () => {
  let vlek: SyntheticChip;
  let trust: VerifyOptions["trust"];
  beforeAll(async () => {
    vlek = await createSyntheticChip({ product: "Genoa", vekKind: "VLEK" });
    trust = await trustAnchors(vlek.arkPem);
  });

  /** A provider that would hand out anything, recording each call. */
  const recorder = () => {
    const calls: string[] = [];
    const provider = {
      vcek: async () => (calls.push("vcek"), vlek.vekDer),
      chain: async (product: Product, signer: SignerKind) => (calls.push(`chain ${product} ${signer}`), [vlek.askDer, vlek.arkDer]),
    };
    return { calls, provider };
  };

  it("verifies only with the VLEK the guest supplied, chained through the ASVK; the provider is never asked for a VEK", async () => {
    clearVerifierCaches();
    const { calls, provider } = recorder();
    const v = await verifySnpReport(await vlek.report(), { trust, provider, certificates: [vlek.vekDer] });
    expect(v.signer).toBe("VLEK");
    expect(calls).toEqual(["chain Genoa VLEK"]);
    const missing = recorder();
    expect(await codeOf(verifySnpReport(await vlek.report(), { trust, provider: missing.provider }))).toBe(
      "cert-missing: VLEK-signed report: the VLEK must be supplied with the evidence",
    );
    expect(missing.calls).toEqual([]);
  });

  it("a supplied VCEK does not stand in for the VLEK", async () => {
    const vcekChip = await createSyntheticChip({ product: "Genoa" });
    const { calls, provider } = recorder();
    const code = await codeOf(verifySnpReport(await vlek.report(), { trust, provider, certificates: [vcekChip.vekDer] }));
    expect(code).toMatch(/^cert-missing: VLEK-signed report/);
    expect(calls).toEqual([]);
  });

  it("revocation uses the VLEK-side CRL and names the ASVK", async () => {
    const certs = { trust, certificates: certificatesOf(vlek) };
    const { opts: ok, asked } = withCrl(await createCrl(vlek), "strict", certs);
    expect((await verifySnpReport(await vlek.report(), ok)).revocation.status).toBe("checked");
    expect(asked).toEqual(["Genoa VLEK"]);
    const revoked = withCrl(await createCrl(vlek, { revokedSerials: [SERIALS.Genoa.asvk] }), "best-effort", certs).opts;
    expect(await codeOf(verifySnpReport(await vlek.report(), revoked))).toMatch(/^cert-revoked: the ASVK \(serial 0x20101\) is revoked by the Genoa VLEK CRL/);
  });
});
