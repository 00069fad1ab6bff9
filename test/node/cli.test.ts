// The offline CLI judges every real report in test/fixtures (same verifier code as the Worker), appraises with a
// policy (the default one unless told otherwise, as the KBS does), checks a CRL (on a synthetic chip, since no
// real AMD CRL is stored), and answers every malformed input with a verdict or a one-line error, never a crash.
// The tests call the CLI's main in-process (a tsx process per call cost ~1 s each); one smoke test runs the real
// executable.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import * as asn1js from "asn1js";
import { FIXTURES } from "../helpers/fixtures";
import { createCrl, createSyntheticChip, SERIALS, type SyntheticChip } from "../helpers/synthetic-amd";
import { buf, toHex } from "../../src/crypto/bytes";
import { toPem } from "../../src/crypto/pem";
import { sevArkPem } from "../../src/tee/trust";
import { main, type Io } from "../../cli/kbs";

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
  policy_decoded?: { debug: boolean };
}

interface Rule {
  rule: string;
  ok: boolean;
  expected: string;
  actual: string;
  checked?: false;
}

/** The CLI's main in-process, with `env` set in process.env for the call; its exit code and output. */
async function run(args: string[], env: Record<string, string> = {}, fetch?: Io["fetch"]): Promise<{ code: number; stdout: string; stderr: string }> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  let stdout = "";
  let stderr = "";
  try {
    const code = await main(args, { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s), fetch });
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

/** The rules a verified real report fails under the default policy: VMPL 0 only, no debug. */
const defaultPolicyFailures = (exp: Expected) => [...(exp.vmpl !== 0 ? ["vmpl"] : []), ...(exp.policy_decoded?.debug ? ["guest_policy.debug"] : [])];

/** The rules of a verdict that failed. */
const failedRules = (out: Record<string, unknown>) => (out.rules as Rule[]).filter((r) => !r.ok).map((r) => r.rule);

describe("kbs verify snp on the real reports", () => {
  const reports = (JSON.parse(readFileSync(resolve(DATA, "snp-reports-expected.json"), "utf8")) as { reports: Record<string, Expected> }).reports;
  for (const [file, exp] of Object.entries(reports)) {
    const valid = !!exp.chain_ok && (exp.verifying_vek ?? []).length > 0;
    const failing = defaultPolicyFailures(exp);
    const outcome = !valid ? "is rejected" : failing.length ? `verifies, and the default policy refuses ${failing.join(", ")} (as the KBS does)` : "verifies and passes the default policy";
    it(`${file}: ${outcome}`, async () => {
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
      expect(out).toMatchObject({ ok: failing.length === 0, version: exp.version, measurement: exp.measurement, chip_id: exp.chip_id, vmpl: exp.vmpl, signer: exp.signing_key });
      expect((out.product as string).toLowerCase()).toBe(line);
      expect(failedRules(out)).toEqual(failing);
      expect(code, JSON.stringify(out.errors)).toBe(failing.length ? 1 : 0);
      if (failing.length) expect(out.errors).toEqual([{ code: "policy", detail: expect.stringContaining(failing[0]!) }]);
      // --no-appraise judges the signature and the chain alone.
      const bare = await kbs([...args, "--no-appraise"]);
      expect([bare.code, bare.out.ok, bare.out.rules, bare.out.snp_policy]).toEqual([0, true, null, null]);
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
      // No flag at all means the default policy, exactly as an empty --policy.
      const bare = await kbs(base());
      expect((bare.out.rules as Rule[]).filter((r) => r.checked === false).map((r) => r.rule)).toEqual(["report_data", "measurement"]);
      expect(bare.out.snp_policy).toEqual((await kbs([...base(), "--policy", policyFile("")])).out.snp_policy);
      const refused = await kbs([...base(), "--policy", policyFile(""), "--measurement", exp().measurement]);
      expect(refused.code).toBe(1);
      expect(refused.out.ok).toBe(false);
      // The default policy's other always-evaluated rules (TCB and firmware sanity) pass and are left out here.
      expect(refused.out.rules).toEqual(
        expect.arrayContaining([
          { rule: "report_data", ok: true, checked: false, expected: "not checked", actual: expect.stringMatching(/^[0-9a-f]{128}$/) },
          { rule: "measurement", ok: true, expected: exp().measurement, actual: exp().measurement },
          { rule: "signer", ok: true, expected: "VCEK or VLEK", actual: "VCEK" },
          { rule: "vmpl", ok: true, expected: "0", actual: "0" },
          { rule: "guest_policy.debug", ok: false, expected: "clear", actual: "set" },
        ]),
      );
      expect(failedRules(refused.out)).toEqual(["guest_policy.debug"]);
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
    });

    it("an invalid policy document or expectation, or one given with --no-appraise, is a usage error", async () => {
      expect((await kbs([...base(), "--policy", policyFile('{"tcb": {"reported": {"snp": 300}}}')])).code).toBe(2);
      expect((await kbs([...base(), "--measurement", "abc"])).code).toBe(2);
      expect((await kbs([...base(), "--report-data", "00".repeat(65)])).code).toBe(2);
      for (const flag of [["--policy", policyFile("")], ["--measurement", exp().measurement], ["--report-data", "ff"]]) {
        const r = await run([...base(), "--no-appraise", ...flag]);
        expect([r.code, r.stdout, r.stderr.split("\n")[0]]).toEqual([2, "", "kbs: --no-appraise excludes --policy, --measurement and --report-data"]);
      }
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

  it("a debug or VMPL 4 report is refused without any flag, as the Worker refuses it", async () => {
    const judge = async (fields: Parameters<SyntheticChip["report"]>[0]) => {
      writeFileSync(join(dir, "guest.hex"), toHex(await chip.report(fields)));
      return kbs(["verify", "snp", "--report", join(dir, "guest.hex"), "--certs", join(dir, "certs.pem")], env);
    };
    const debug = await judge({ policy: 0x30000n | (1n << 19n) });
    expect([debug.code, debug.out.ok, failedRules(debug.out)]).toEqual([1, false, ["guest_policy.debug"]]);
    // Refused by the appraisal (rule vmpl) or already by the report parser: either way a verdict with a code.
    const vmpl4 = await judge({ vmpl: 4 });
    expect([vmpl4.code, vmpl4.out.ok]).toEqual([1, false]);
    expect(vmpl4.out.errors).toEqual([{ code: expect.any(String), detail: expect.stringContaining("4") }]);
  });
});

describe("kbs verify snp on malformed input", () => {
  const REPORT = resolve(DATA, "snp/milan-report-v2-gosevguest-attestation.bin");
  const VCEK = new Uint8Array(readFileSync(resolve(DATA, "snp/milan-vcek-gosevguest-for-attestation.der")));
  const VCEK_GUID = [0x8d, 0x75, 0xda, 0x63, 0x64, 0xe6, 0x64, 0x45, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd]; // 63da758d-e664-4564-…
  /** A GHCB certificate table of one VCEK entry pointing at (offset, length), with or without its terminator. */
  const table = (offset: number, length: number, terminated = true) => {
    const header = new Uint8Array(terminated ? 48 : 24);
    header.set(VCEK_GUID);
    new DataView(header.buffer).setUint32(16, offset, true);
    new DataView(header.buffer).setUint32(20, length, true);
    return Buffer.concat([header, VCEK]);
  };
  const pem = (body: string, label = "CERTIFICATE") => `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
  const file = (name: string, data: string | Uint8Array) => {
    const path = join(mkdtempSync(join(tmpdir(), "kbs-bad-")), name);
    writeFileSync(path, data);
    return path;
  };

  const certs: [string, string | Uint8Array][] = [
    ["a truncated DER certificate", VCEK.subarray(0, 700)],
    ["a DER certificate with trailing bytes", Buffer.concat([VCEK, Buffer.from([0, 0, 0])])],
    ["a DER header claiming 2^31 bytes", Buffer.from([0x30, 0x84, 0x80, 0, 0, 0, 2, 1, 0])],
    ["random bytes", Uint8Array.from({ length: 300 }, (_, i) => (i * 151 + 7) & 0xff)],
    ["binary junk in a PEM block", Buffer.concat([Buffer.from("-----BEGIN CERTIFICATE-----\n"), Buffer.from([0xde, 0xad, 0x00, 0xff]), Buffer.from("\n-----END CERTIFICATE-----\n")])],
    ["bad base64 in a PEM block", pem("MIIB!!not*base64")],
    ["a PEM block without its END line", toPem(VCEK).split("-----END")[0]!],
    ["PEM without any certificate", pem("AAAA", "PRIVATE KEY")],
    ["a certificate table entry pointing past the end", table(48, VCEK.length + 1)],
    ["a certificate table entry pointing into its header", table(8, 100)],
    ["a certificate table entry at offset 2^32 - 1", table(0xffffffff, 1)],
    ["a certificate table without its terminator", table(24, VCEK.length, false)],
    ["a certificate whose signature algorithm is PKCS#1", pkcs1Signed(VCEK)],
  ];
  for (const [what, bytes] of certs) {
    it(`--certs holding ${what} is a cert-malformed verdict, not a crash`, async () => {
      const r = await run(["verify", "snp", "--report", REPORT, "--product", "milan", "--certs", file("certs", bytes)]);
      expect([r.code, r.stderr]).toEqual([1, ""]);
      expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, version: 2, errors: [{ code: "cert-malformed", detail: expect.any(String) }] });
    });
  }

  it("a report of random bytes is report-malformed; a CRL with bad base64 is crl-invalid", async () => {
    const report = await run(["verify", "snp", "--report", file("report", Uint8Array.from({ length: 1000 }, (_, i) => (i * 31) & 0xff))]);
    expect([report.code, report.stderr]).toEqual([1, ""]);
    expect(JSON.parse(report.stdout)).toMatchObject({ ok: false, version: null, errors: [{ code: "report-malformed" }] });
    const crl = await run(["verify", "snp", "--report", REPORT, "--certs", file("vcek.der", VCEK), "--product", "milan", "--crl", file("crl.pem", pem("!!!!", "X509 CRL")), "--crl-mode", "best-effort"]);
    expect([crl.code, crl.stderr]).toEqual([1, ""]);
    expect(JSON.parse(crl.stdout).errors).toEqual([{ code: "crl-invalid", detail: expect.stringContaining("X509 CRL block has invalid base64") }]);
  });

  it("a file that cannot be read is a usage error naming it", async () => {
    const r = await run(["verify", "snp", "--report", REPORT, "--certs", "/nonexistent/vcek.der"]);
    expect([r.code, r.stdout, r.stderr.split("\n")[0]]).toEqual([2, "", "kbs: --certs /nonexistent/vcek.der: cannot be read (ENOENT)"]);
  });
});

/** `der` with both signature algorithms rewritten to sha256WithRSAEncryption (PKCS#1 v1.5), which AMD never uses. */
function pkcs1Signed(der: Uint8Array): Uint8Array {
  const cert = asn1js.fromBER(buf(der)).result as asn1js.Sequence;
  const pkcs1 = () => new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: "1.2.840.113549.1.1.11" }), new asn1js.Null()] });
  (cert.valueBlock.value[0] as asn1js.Sequence).valueBlock.value[2] = pkcs1();
  cert.valueBlock.value[1] = pkcs1();
  return new Uint8Array(cert.toBER());
}

describe("an unusable EXTRA_TRUSTED_ARKS", () => {
  const ark = (name: string) => readFileSync(resolve(DATA, name));
  const milanArk = ark("amd-roots/canonical/milan-ark.pem").toString();
  const cases: [string, string][] = [
    ["bad base64 in a CERTIFICATE block", "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"],
    ["bad base64 in an AMD SEV ARK block", "-----BEGIN AMD SEV ARK-----\n!!!!\n-----END AMD SEV ARK-----\n"],
    ["a root signed with PKCS#1 v1.5", toPem(pkcs1Signed(ark("amd-roots/canonical/milan-ark.der")))],
    ["an X.509 certificate in an AMD SEV ARK block", milanArk.replaceAll("CERTIFICATE", "AMD SEV ARK")],
    ["an ASK in an AMD SEV ARK block", sevArkPem(ark("sev-legacy/amd-ca-milan-ask.cert"))],
    ["an unterminated block", milanArk.slice(0, milanArk.indexOf("-----END"))],
    ["a block of another kind", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"],
  ];
  for (const [what, value] of cases) {
    it(`${what}: one line naming it, exit 2, for both verify commands`, async () => {
      for (const args of [["verify", "snp", "--report", resolve(DATA, "snp/milan-report-v2-gosevguest-attestation.bin")], ["verify", "sev-chain", "--chain", resolve(DATA, "sev-legacy/kbstypes-sev_request.json")]]) {
        const r = await run(args, { EXTRA_TRUSTED_ARKS: value });
        expect([r.code, r.stdout]).toEqual([2, ""]);
        expect(r.stderr).toMatch(/^kbs: EXTRA_TRUSTED_ARKS: [^\n]+\n$/);
      }
    });
  }
});

describe("kbs without a verdict", () => {
  // A DOMException carries a numeric `code`: main once called .startsWith on it and crashed with a stack trace.
  it("an untyped error (here a DOMException from fetch) is one line on stderr and exit 3", async () => {
    const fetch = async () => {
      throw new DOMException("connection refused\n  at the proxy", "NetworkError");
    };
    const r = await run(["audit", "verify", "--url", "https://kbs.example", "--token", "t"], {}, fetch);
    expect(r).toEqual({ code: 3, stdout: "", stderr: "kbs: no verdict: NetworkError: connection refused at the proxy\n" });
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
