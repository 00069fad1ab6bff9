// The offline CLI judges every shared real report (same verifier code as the Worker).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";

const DATA = resolve(__dirname, "../../../shared/research/data");
const ROOT = resolve(__dirname, "../..");
const present = existsSync(DATA);
if (!present) console.warn(`skipping CLI real-data tests: ${DATA} is absent`);

interface Expected {
  version: number;
  signing_key: string;
  verifying_vek?: string[];
  vek_product_line?: string;
  chain_ok?: boolean;
  measurement: string;
  chip_id: string;
  vmpl: number;
}

function kbs(args: string[]): { code: number; out: Record<string, unknown> } {
  try {
    const stdout = execFileSync(process.execPath, [resolve(ROOT, "node_modules/tsx/dist/cli.mjs"), resolve(ROOT, "cli/kbs.ts"), ...args], { encoding: "utf8" });
    return { code: 0, out: JSON.parse(stdout) };
  } catch (e) {
    const err = e as { status: number; stdout: string };
    return { code: err.status, out: err.stdout ? JSON.parse(err.stdout) : {} };
  }
}

describe.skipIf(!present)("kbs verify snp on the shared real reports", () => {
  const reports = present ? (JSON.parse(readFileSync(resolve(DATA, "snp-reports-expected.json"), "utf8")) as { reports: Record<string, Expected> }).reports : {};
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
});
