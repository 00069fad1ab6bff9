// The offline CLI judges every real report in test/fixtures (same verifier code as the Worker), appraises with a
// policy, and checks a CRL (on a synthetic chip, since no real AMD CRL is stored).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { FIXTURES } from "../helpers/fixtures";
import { createCrl, createSyntheticChip, SERIALS, type SyntheticChip } from "../helpers/synthetic-amd";
import { toHex } from "../../src/crypto/bytes";
import { toPem } from "../../src/crypto/pem";

const DATA = FIXTURES;
const ROOT = resolve(__dirname, "../..");

interface Expected {
  version: number;
  signing_key: string;
  verifying_vek?: string[];
  vek_product_line?: string;
  chain_ok?: boolean;
  measurement: string;
  report_data: string;
  chip_id: string;
  vmpl: number;
}

interface Rule {
  rule: string;
  ok: boolean;
  expected: string;
  actual: string;
  checked?: false;
}

function kbs(args: string[], env: Record<string, string> = {}): { code: number; out: Record<string, unknown> } {
  try {
    const stdout = execFileSync(process.execPath, [resolve(ROOT, "node_modules/tsx/dist/cli.mjs"), resolve(ROOT, "cli/kbs.ts"), ...args], {
      encoding: "utf8",
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return { code: 0, out: JSON.parse(stdout) };
  } catch (e) {
    const err = e as { status: number; stdout: string };
    return { code: err.status, out: err.stdout ? JSON.parse(err.stdout) : {} };
  }
}

describe("kbs verify snp on the real reports", () => {
  const reports = (JSON.parse(readFileSync(resolve(DATA, "snp-reports-expected.json"), "utf8")) as { reports: Record<string, Expected> }).reports;
  for (const [file, exp] of Object.entries(reports)) {
    const valid = !!exp.chain_ok && (exp.verifying_vek ?? []).length > 0;
    it(`${file}: ${valid ? "verifies" : "is rejected"}`, () => {
      const args = ["verify", "snp", "--report", resolve(DATA, file)];
      for (const vek of exp.verifying_vek ?? []) args.push("--certs", resolve(DATA, vek.split("#")[0]!));
      const line = exp.vek_product_line;
      if (line) {
        const intermediate = exp.signing_key === "VLEK" ? "asvk" : "ask";
        args.push("--certs", resolve(DATA, `amd-roots/canonical/${line}-${intermediate}.pem`), "--certs", resolve(DATA, `amd-roots/canonical/${line}-ark.pem`));
        if (exp.version === 2) args.push("--product", line);
      }
      if (exp.signing_key === "VLEK") args.push("--at", "2025-06-01");
      const { code, out } = kbs(args);
      if (!valid) {
        expect(code).toBe(1);
        expect(out.ok).toBe(false);
        expect((out.errors as unknown[]).length).toBeGreaterThan(0);
        return;
      }
      expect(code, JSON.stringify(out.errors)).toBe(0);
      expect(out).toMatchObject({ ok: true, version: exp.version, measurement: exp.measurement, chip_id: exp.chip_id, vmpl: exp.vmpl, signer: exp.signing_key });
      expect((out.product as string).toLowerCase()).toBe(line);
    });
  }

  it("rejects the VLEK sample at today's date (the VLEK expired) and exits 2 on usage errors", () => {
    const r = kbs(["verify", "snp", "--report", resolve(DATA, "aws/milan-report-v3-vmpl1-aws-vlek-trustee-test-vlek-report.bin"), "--certs", resolve(DATA, "aws/milan-vlek-aws-us-east-2-trustee-test-vlek.der"), "--certs", resolve(DATA, "amd-roots/canonical/milan-asvk.pem"), "--certs", resolve(DATA, "amd-roots/canonical/milan-ark.pem")]);
    expect(r.code).toBe(1);
    expect((r.out.errors as { code: string }[])[0]!.code).toBe("cert-expired");
    expect(kbs(["verify", "snp"]).code).toBe(2);
    expect(kbs(["verify", "snp", "--report", "x", "--product", "rome"]).code).toBe(2);
  });

  describe("appraisal with --policy, --measurement and --report-data", () => {
    const GOSEVGUEST = "snp/milan-report-v2-gosevguest-attestation.bin";
    const exp = () => reports[GOSEVGUEST]!;
    const base = () => [
      "verify", "snp", "--report", resolve(DATA, GOSEVGUEST),
      "--certs", resolve(DATA, "snp/milan-vcek-gosevguest-for-attestation.der"),
      "--certs", resolve(DATA, "amd-roots/canonical/milan-ask.pem"),
      "--certs", resolve(DATA, "amd-roots/canonical/milan-ark.pem"),
    ];
    const policyFile = (text: string) => {
      const path = join(mkdtempSync(join(tmpdir(), "kbs-policy-")), "policy.json");
      writeFileSync(path, text);
      return path;
    };

    it("the DEBUG report fails the default policy with the rule table and passes with debug allowed", () => {
      const refused = kbs([...base(), "--policy", policyFile(""), "--measurement", exp().measurement]);
      expect(refused.code).toBe(1);
      expect(refused.out.ok).toBe(false);
      expect(refused.out.rules).toEqual([
        { rule: "report_data", ok: true, checked: false, expected: "not checked", actual: expect.stringMatching(/^[0-9a-f]{128}$/) },
        { rule: "measurement", ok: true, expected: exp().measurement, actual: exp().measurement },
        { rule: "signer", ok: true, expected: "VCEK or VLEK", actual: "VCEK" },
        { rule: "vmpl", ok: true, expected: "0", actual: "0" },
        { rule: "guest_policy.debug", ok: false, expected: "clear", actual: "set" },
      ]);
      expect(refused.out.errors).toEqual([{ code: "policy", detail: "guest_policy.debug: expected clear, got set" }]);
      const allowed = kbs([...base(), "--policy", policyFile('{"allow_debug": true}')]);
      expect(allowed.code).toBe(0);
      expect((allowed.out.rules as Rule[]).filter((r) => r.checked === false).map((r) => r.rule)).toEqual(["report_data", "measurement"]);
      expect(allowed.out.snp_policy).toMatchObject({ guest_policy: { debug: "any" } });
    });

    it("--measurement and --report-data alone appraise under the default policy", () => {
      // This report's REPORT_DATA is 01 02 03 04 05 then zeros: a short --report-data is zero-padded to match.
      const padded = kbs([...base(), "--measurement", "00".repeat(48), "--report-data", exp().report_data.slice(0, 10)]);
      expect(padded.code).toBe(1);
      expect((padded.out.rules as Rule[]).filter((r) => !r.ok).map((r) => r.rule)).toEqual(["measurement", "guest_policy.debug"]);
      expect((padded.out.errors as { detail: string }[])[0]!.detail).toBe(`measurement: expected ${"0".repeat(16)}…, got ${exp().measurement.slice(0, 16)}…`);
      const wrong = kbs([...base(), "--report-data", "ff"]);
      expect((wrong.out.errors as { detail: string }[])[0]!.detail).toBe(`report_data: expected ff${"0".repeat(14)}…, got ${exp().report_data.slice(0, 16)}…`);
      // Without any of the three flags there is no appraisal at all.
      expect(kbs(base()).out.rules).toBeNull();
    });

    it("an invalid policy document or expectation is a usage error", () => {
      expect(kbs([...base(), "--policy", policyFile('{"tcb": {"reported": {"snp": 300}}}')]).code).toBe(2);
      expect(kbs([...base(), "--measurement", "abc"]).code).toBe(2);
      expect(kbs([...base(), "--report-data", "00".repeat(65)]).code).toBe(2);
    });

    it("a CRL that AMD's ARK did not sign is crl-invalid", async () => {
      const impostor = await createSyntheticChip({ product: "Milan" });
      const crl = join(mkdtempSync(join(tmpdir(), "kbs-crl-")), "milan.crl");
      writeFileSync(crl, await createCrl(impostor));
      const r = kbs([...base(), "--crl", crl]);
      expect(r.code).toBe(1);
      expect((r.out.errors as { code: string }[])[0]!.code).toBe("crl-invalid");
    });
  });
});

describe("kbs verify snp --crl on a lab chip", () => {
  let chip: SyntheticChip;
  let dir: string;
  let env: Record<string, string>;
  let args: string[];
  beforeAll(async () => {
    chip = await createSyntheticChip({ product: "Genoa" });
    dir = mkdtempSync(join(tmpdir(), "kbs-lab-"));
    writeFileSync(join(dir, "report.hex"), toHex(await chip.report()));
    writeFileSync(join(dir, "certs.pem"), toPem(chip.vekDer) + toPem(chip.askDer) + toPem(chip.arkDer));
    env = { EXTRA_TRUSTED_ARKS: chip.arkPem };
    args = ["verify", "snp", "--report", join(dir, "report.hex"), "--certs", join(dir, "certs.pem")];
  });
  const crlFile = async (name: string, opts: Parameters<typeof createCrl>[1], pem = false) => {
    const der = await createCrl(chip, opts);
    writeFileSync(join(dir, name), pem ? toPem(der, "X509 CRL") : der);
    return join(dir, name);
  };

  it("records a checked CRL (DER or PEM) and refuses a revoked ASK", async () => {
    for (const pem of [false, true]) {
      const ok = kbs([...args, "--crl", await crlFile(`ok-${pem}.crl`, {}, pem)], env);
      expect(ok.code, JSON.stringify(ok.out.errors)).toBe(0);
      expect((ok.out.revocation as { status: string }).status).toBe("checked");
    }
    const revoked = kbs([...args, "--crl", await crlFile("revoked.crl", { revokedSerials: [SERIALS.Genoa.ask] })], env);
    expect(revoked.code).toBe(1);
    expect((revoked.out.errors as { code: string }[])[0]!.code).toBe("cert-revoked");
  });

  it("a stale CRL is a rejection in strict mode and recorded in best-effort mode", async () => {
    const stale = await crlFile("stale.crl", { thisUpdate: new Date(Date.now() - 3_600_000), nextUpdate: new Date(Date.now() - 60_000) });
    const strict = kbs([...args, "--crl", stale], env);
    expect(strict.code).toBe(1);
    expect((strict.out.errors as { code: string }[])[0]!.code).toBe("crl-unavailable");
    const lenient = kbs([...args, "--crl", stale, "--crl-mode", "best-effort"], env);
    expect(lenient.code).toBe(0);
    expect((lenient.out.revocation as { status: string }).status).toBe("stale");
    expect(kbs([...args, "--crl-mode", "best-effort"], env).code).toBe(2);
  });
});

describe("kbs verify sev-chain", () => {
  const request = () => JSON.parse(readFileSync(resolve(DATA, "sev-legacy/kbstypes-sev_request.json"), "utf8")) as { "extra-params": { chain: { sev: { pdh: number[] } } } };

  it("accepts the real kbs-types Milan request, the SevRequest inside it and the bare chain", () => {
    const dir = mkdtempSync(join(tmpdir(), "kbs-sev-"));
    const whole = request();
    const forms = { request: whole, sevRequest: whole["extra-params"], chain: whole["extra-params"].chain };
    for (const [name, value] of Object.entries(forms)) {
      const file = join(dir, `${name}.json`);
      writeFileSync(file, JSON.stringify(value));
      const { code, out } = kbs(["verify", "sev-chain", "--chain", file]);
      expect([name, code, out.ok, out.generation]).toEqual([name, 0, true, "Milan"]);
    }
  });

  it("rejects a chain whose PDH signature was altered, naming the link", () => {
    const dir = mkdtempSync(join(tmpdir(), "kbs-sev-"));
    const whole = request();
    whole["extra-params"].chain.sev.pdh[0x41c + 3] ^= 0xff;
    const file = join(dir, "tampered.json");
    writeFileSync(file, JSON.stringify(whole));
    const { code, out } = kbs(["verify", "sev-chain", "--chain", file]);
    expect(code).toBe(1);
    expect(out.errors).toEqual([{ code: "cert-chain-invalid", detail: expect.stringContaining("PDH") }]);
  });
});
