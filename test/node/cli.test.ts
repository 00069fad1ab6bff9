// The offline CLI judges every real report in test/fixtures (same verifier code as the Worker), appraises with a
// policy, and checks a CRL (on a synthetic chip, since no real AMD CRL is stored). The tests call the CLI's main
// in-process (a tsx process per call cost ~1 s each); one smoke test runs the real executable.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { FIXTURES } from "../helpers/fixtures";
import { createCrl, createSyntheticChip, SERIALS, type SyntheticChip } from "../helpers/synthetic-amd";
import { toHex } from "../../src/crypto/bytes";
import { toPem } from "../../src/crypto/pem";
import { main } from "../../cli/kbs";

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

/** The CLI's main in-process, with `env` set in process.env for the call; its exit code, output and JSON verdict. */
async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  let stdout = "";
  let stderr = "";
  try {
    const code = await main(args, { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s) });
    return { code, stdout, stderr };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

async function kbs(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: Record<string, unknown> }> {
  const { code, stdout } = await run(args, env);
  return { code, out: stdout ? JSON.parse(stdout) : {} };
}

describe("kbs verify snp on the real reports", () => {
  const reports = (JSON.parse(readFileSync(resolve(DATA, "snp-reports-expected.json"), "utf8")) as { reports: Record<string, Expected> }).reports;
  for (const [file, exp] of Object.entries(reports)) {
    const valid = !!exp.chain_ok && (exp.verifying_vek ?? []).length > 0;
    it(`${file}: ${valid ? "verifies" : "is rejected"}`, async () => {
      const args = ["verify", "snp", "--report", resolve(DATA, file)];
      for (const vek of exp.verifying_vek ?? []) args.push("--certs", resolve(DATA, vek.split("#")[0]!));
      const line = exp.vek_product_line;
      if (line) {
        const intermediate = exp.signing_key === "VLEK" ? "asvk" : "ask";
        args.push("--certs", resolve(DATA, `amd-roots/canonical/${line}-${intermediate}.pem`), "--certs", resolve(DATA, `amd-roots/canonical/${line}-ark.pem`));
        if (exp.version === 2) args.push("--product", line);
      }
      if (exp.signing_key === "VLEK") args.push("--at", "2025-06-01");
      const { code, out } = await kbs(args);
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

  it("rejects the VLEK sample at today's date (the VLEK expired) and exits 2 on usage errors", async () => {
    const r = await kbs(["verify", "snp", "--report", resolve(DATA, "aws/milan-report-v3-vmpl1-aws-vlek-trustee-test-vlek-report.bin"), "--certs", resolve(DATA, "aws/milan-vlek-aws-us-east-2-trustee-test-vlek.der"), "--certs", resolve(DATA, "amd-roots/canonical/milan-asvk.pem"), "--certs", resolve(DATA, "amd-roots/canonical/milan-ark.pem")]);
    expect(r.code).toBe(1);
    expect((r.out.errors as { code: string }[])[0]!.code).toBe("cert-expired");
    expect((await kbs(["verify", "snp"])).code).toBe(2);
    expect((await kbs(["verify", "snp", "--report", "x", "--product", "rome"])).code).toBe(2);
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

    it("the DEBUG report fails the default policy with the rule table and passes with debug allowed", async () => {
      const refused = await kbs([...base(), "--policy", policyFile(""), "--measurement", exp().measurement]);
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
      const allowed = await kbs([...base(), "--policy", policyFile('{"allow_debug": true}')]);
      expect(allowed.code).toBe(0);
      expect((allowed.out.rules as Rule[]).filter((r) => r.checked === false).map((r) => r.rule)).toEqual(["report_data", "measurement"]);
      expect(allowed.out.snp_policy).toMatchObject({ guest_policy: { debug: "any" } });
    });

    it("--measurement and --report-data alone appraise under the default policy", async () => {
      // This report's REPORT_DATA is 01 02 03 04 05 then zeros: a short --report-data is zero-padded to match.
      const padded = await kbs([...base(), "--measurement", "00".repeat(48), "--report-data", exp().report_data.slice(0, 10)]);
      expect(padded.code).toBe(1);
      expect((padded.out.rules as Rule[]).filter((r) => !r.ok).map((r) => r.rule)).toEqual(["measurement", "guest_policy.debug"]);
      expect((padded.out.errors as { detail: string }[])[0]!.detail).toBe(`measurement: expected ${"0".repeat(16)}…, got ${exp().measurement.slice(0, 16)}…`);
      const wrong = await kbs([...base(), "--report-data", "ff"]);
      expect((wrong.out.errors as { detail: string }[])[0]!.detail).toBe(`report_data: expected ff${"0".repeat(14)}…, got ${exp().report_data.slice(0, 16)}…`);
      // Without any of the three flags there is no appraisal at all.
      expect((await kbs(base())).out.rules).toBeNull();
    });

    it("an invalid policy document or expectation is a usage error", async () => {
      expect((await kbs([...base(), "--policy", policyFile('{"tcb": {"reported": {"snp": 300}}}')])).code).toBe(2);
      expect((await kbs([...base(), "--measurement", "abc"])).code).toBe(2);
      expect((await kbs([...base(), "--report-data", "00".repeat(65)])).code).toBe(2);
    });

    it("a CRL that AMD's ARK did not sign is crl-invalid", async () => {
      const impostor = await createSyntheticChip({ product: "Milan" });
      const crl = join(mkdtempSync(join(tmpdir(), "kbs-crl-")), "milan.crl");
      writeFileSync(crl, await createCrl(impostor));
      const r = await kbs([...base(), "--crl", crl]);
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
      const ok = await kbs([...args, "--crl", await crlFile(`ok-${pem}.crl`, {}, pem)], env);
      expect(ok.code, JSON.stringify(ok.out.errors)).toBe(0);
      expect((ok.out.revocation as { status: string }).status).toBe("checked");
    }
    const revoked = await kbs([...args, "--crl", await crlFile("revoked.crl", { revokedSerials: [SERIALS.Genoa.ask] })], env);
    expect(revoked.code).toBe(1);
    expect((revoked.out.errors as { code: string }[])[0]!.code).toBe("cert-revoked");
  });

  it("a stale CRL is a rejection in strict mode and recorded in best-effort mode", async () => {
    const stale = await crlFile("stale.crl", { thisUpdate: new Date(Date.now() - 3_600_000), nextUpdate: new Date(Date.now() - 60_000) });
    const strict = await kbs([...args, "--crl", stale], env);
    expect(strict.code).toBe(1);
    expect((strict.out.errors as { code: string }[])[0]!.code).toBe("crl-unavailable");
    const lenient = await kbs([...args, "--crl", stale, "--crl-mode", "best-effort"], env);
    expect(lenient.code).toBe(0);
    expect((lenient.out.revocation as { status: string }).status).toBe("stale");
    expect((await kbs([...args, "--crl-mode", "best-effort"], env)).code).toBe(2);
  });
});

describe("kbs verify sev-chain", () => {
  const request = () => JSON.parse(readFileSync(resolve(DATA, "sev-legacy/kbstypes-sev_request.json"), "utf8")) as { "extra-params": { chain: { sev: { pdh: number[] } } } };

  it("accepts the real kbs-types Milan request, the SevRequest inside it and the bare chain", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kbs-sev-"));
    const whole = request();
    const forms = { request: whole, sevRequest: whole["extra-params"], chain: whole["extra-params"].chain };
    for (const [name, value] of Object.entries(forms)) {
      const file = join(dir, `${name}.json`);
      writeFileSync(file, JSON.stringify(value));
      const { code, out } = await kbs(["verify", "sev-chain", "--chain", file]);
      expect([name, code, out.ok, out.generation]).toEqual([name, 0, true, "Milan"]);
    }
  });

  it("rejects a chain whose PDH signature was altered, naming the link", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kbs-sev-"));
    const whole = request();
    whole["extra-params"].chain.sev.pdh[0x41c + 3] ^= 0xff;
    const file = join(dir, "tampered.json");
    writeFileSync(file, JSON.stringify(whole));
    const { code, out } = await kbs(["verify", "sev-chain", "--chain", file]);
    expect(code).toBe(1);
    expect(out.errors).toEqual([{ code: "cert-chain-invalid", detail: expect.stringContaining("PDH") }]);
  });
});

describe("the kbs executable", () => {
  it("runs as a script with main's output and exit code (a verdict on stdout, a usage error on stderr)", async () => {
    const exec = async (args: string[]) => {
      try {
        const { stdout, stderr } = await promisify(execFile)(process.execPath, [resolve(ROOT, "node_modules/tsx/dist/cli.mjs"), resolve(ROOT, "cli/kbs.ts"), ...args], { encoding: "utf8" });
        return { code: 0, stdout, stderr };
      } catch (e) {
        const err = e as { code: number; stdout: string; stderr: string };
        return { code: err.code, stdout: err.stdout, stderr: err.stderr };
      }
    };
    const rejected = ["verify", "snp", "--report", resolve(DATA, "snp/genoa-report-v2-yaxi-routex-noVCEK.bin")];
    const usage = ["verify", "snp", "--report", "x", "--product", "rome"];
    const [verdict, usageError] = await Promise.all([exec(rejected), exec(usage)]);
    expect(verdict).toEqual(await run(rejected));
    expect(verdict.code).toBe(1);
    expect(JSON.parse(verdict.stdout)).toMatchObject({ ok: false });
    expect(usageError).toEqual(await run(usage));
    expect(usageError.code).toBe(2);
    expect(usageError.stderr).toMatch(/^kbs: --product must be one of milan, genoa, turin\n\nusage:\n/);
  });
});
