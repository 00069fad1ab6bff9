// The kbs CLI. Offline, it judges every real report in test/fixtures (same verifier code as the Worker), appraises
// with a policy (the default one unless told otherwise, as the KBS does), checks a CRL (on a synthetic chip, since
// no real AMD CRL is stored), and answers every malformed input with a verdict or a one-line error, never a crash.
// Its admin commands run against the real Worker (workerd through Miniflare, over HTTP), which costs ~2 s to start.
// Every command's --help, usage errors and exit codes are checked. The tests call the CLI's main in-process (a tsx
// process per call cost ~1 s each); one smoke test runs the real executable.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as asn1js from "asn1js";
import { FIXTURES } from "../helpers/fixtures";
import { startMiniflareKbs, type MiniflareKbs } from "../helpers/miniflare-kbs";
import { freePort } from "../../lab/local-kbs";
import { createCrl, createSyntheticChip, SERIALS, type SyntheticChip } from "../../lab/synthetic-amd";
import { buf, toHex } from "../../src/crypto/bytes";
import { toPem } from "../../src/crypto/pem";
import { sevArkPem } from "../../src/tee/trust";
import { generateMasterKey, parseMasterKeys } from "../../src/crypto/seal";
import { loadTokenKey } from "../../src/trustee/token";
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

/**
 * The CLI's main in-process with `env` as its whole environment (the shell's KBS_URL or KBS_ADMIN_TOKEN never
 * leak in), and no vars file unless `env` names one (not the checkout's .dev.vars); its exit code and output.
 */
async function run(args: string[], env: Record<string, string> = {}, io: Partial<Io> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s), env: { KBS_VARS_FILE: "/nonexistent/.dev.vars", ...env }, ...io });
  return { code, stdout, stderr };
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
        expect([r.code, r.stdout, r.stderr]).toEqual([2, "", "kbs: --no-appraise excludes --policy, --measurement and --report-data (see 'kbs verify snp --help')\n"]);
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

  it("a file that cannot be read is a usage error naming it, in words", async () => {
    const r = await run(["verify", "snp", "--report", REPORT, "--certs", "/nonexistent/vcek.der"]);
    expect([r.code, r.stdout, r.stderr]).toEqual([2, "", "kbs: --certs /nonexistent/vcek.der: no such file (see 'kbs verify snp --help')\n"]);
    const dir = await run(["verify", "snp", "--report", FIXTURES]);
    expect([dir.code, dir.stderr]).toEqual([2, `kbs: --report ${FIXTURES}: is a directory (see 'kbs verify snp --help')\n`]);
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
  it("cli/bin.mjs (npm run kbs, the package bin) runs main with its output and exit code", async () => {
    const exec = async (args: string[]) => {
      try {
        const { stdout, stderr } = await promisify(execFile)(process.execPath, [resolve(ROOT, "cli/bin.mjs"), ...args], { encoding: "utf8", env: { PATH: process.env.PATH } });
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
    expect(usageError.stderr).toBe("kbs: --product must be one of milan, genoa, turin (see 'kbs verify snp --help')\n");
  });
});

/** The command names `kbs --help` lists: the words after "kbs" before the first argument or option. */
function commandsIn(overview: string): string[] {
  return overview
    .split("\n")
    .filter((l) => l.startsWith("  kbs "))
    .map((l) => {
      const words = l.trim().split(" ").slice(1);
      return words.slice(0, words.findIndex((w) => /^[<[-]/.test(w)) >>> 0).join(" ");
    });
}

describe("kbs --help and usage errors", () => {
  it("kbs --help lists every command and the exit codes, on stdout, exit 0", async () => {
    const r = await run(["--help"]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(commandsIn(r.stdout)).toEqual([
      "workload register",
      "workload list",
      "workload show",
      "workload delete",
      "secret put",
      "secret list",
      "secret delete",
      "rewrap",
      "audit verify",
      "amd import",
      "master-key new",
      "admin-token new",
      "token-key new",
      "verify snp",
      "verify sev-chain",
    ]);
    expect(r.stdout).toMatch(/^ {2}0 {2}success.*\n {2}1 {2}a negative answer.*\n(.*\n)* {2}2 {2}usage.*\n {2}3 {2}no answer: the KBS is unreachable, refused the admin token/m);
    for (const alias of [["help"], ["-h"]]) expect(await run(alias)).toEqual(r);
  });

  it("--help works on every command and group, wherever it stands before --, and exits 0", async () => {
    const names = commandsIn((await run(["--help"])).stdout);
    for (const name of names) {
      const words = name.split(" ");
      for (const args of [[...words, "--help"], ["help", ...words], [...words, "--json", "-h", "extra"]]) {
        const r = await run(args);
        expect([args, r.code, r.stderr, r.stdout.split("\n")[0]!.startsWith(`usage: kbs ${name}`)]).toEqual([args, 0, "", true]);
      }
    }
    for (const group of ["workload", "secret", "audit", "amd", "master-key", "verify"]) {
      const r = await run([group, "--help"]);
      expect([r.code, r.stderr]).toEqual([0, ""]);
      expect(commandsIn(r.stdout)).toEqual(names.filter((n) => n.startsWith(`${group} `)));
    }
    // Even a command line that is otherwise wrong: the help is what was asked for.
    expect((await run(["verify", "snp", "--product", "rome", "--bogus", "--help"])).code).toBe(0);
    // After "--" it is an argument (here a workload id), not a request for help.
    expect((await run(["workload", "show", "--", "--help"])).stderr).toBe("kbs: no admin token: give --token or set KBS_ADMIN_TOKEN (see 'kbs workload show --help')\n");
  });

  const M = "ab".repeat(48);
  const usageErrors: [args: string[], line: string][] = [
    [[], "a command is needed (see 'kbs --help')"],
    [["frobnicate"], "unknown command frobnicate (see 'kbs --help')"],
    [["workload"], "workload needs a subcommand: register, list, show, delete (see 'kbs workload --help')"],
    [["secret", "rename"], "unknown command secret rename (secret has: put, list, delete) (see 'kbs secret --help')"],
    [["workload", "show"], "missing <id> (see 'kbs workload show --help')"],
    [["workload", "show", "a", "b"], "unexpected argument b (see 'kbs workload show --help')"],
    [["workload", "list", "--bogus"], "Unknown option '--bogus' (see 'kbs workload list --help')"],
    [["verify", "snp", "--report"], "Option '--report <value>' argument missing (see 'kbs verify snp --help')"],
    [["workload", "register", "w"], "--measurement is required (see 'kbs workload register --help')"],
    [["workload", "register", "w", "--measurement", "abc"], "--measurement must be 96 hex characters (SNP MEASUREMENT) or 64 (SEV launch digest) (see 'kbs workload register --help')"],
    [["workload", "register", "w", "--measurement", M, "--tee", "sev"], "--tee sev: the measurement is 48 bytes, an SNP MEASUREMENT (see 'kbs workload register --help')"],
    [["workload", "register", "w", "--measurement", M, "--tee", "tdx"], "--tee must be snp or sev (see 'kbs workload register --help')"],
    [["secret", "put", "w", "a/b/c/d", "--file", "x"], `key id "a/b/c/d": 1-3 segments joined by /, each of A-Z a-z 0-9 . _ ~ : @ + - and not . or .. (see 'kbs secret put --help')`],
    [["secret", "put", "w", "k"], "--file is required (see 'kbs secret put --help')"],
    [["secret", "delete", "w", "k", "--version", "0"], "--version must be a version number (1, 2, …) (see 'kbs secret delete --help')"],
    [["workload", "list", "--url", "localhost:8787"], "--url is not an http(s) URL: localhost:8787 (see 'kbs workload list --help')"],
    [["workload", "list", "--url", "https://kbs.example"], "no admin token: give --token or set KBS_ADMIN_TOKEN (see 'kbs workload list --help')"],
    [["amd", "import"], "missing <file or directory> (see 'kbs amd import --help')"],
    [["master-key", "new", "--kid", "a b"], "--kid a b: expected kid:base64 with a kid of 1-32 characters A-Z a-z 0-9 . _ - (see 'kbs master-key new --help')"],
    [["admin-token", "new", "now"], "unexpected argument now (see 'kbs admin-token new --help')"],
  ];
  it("a usage error is one line naming the problem and where help is, exit 2, nothing on stdout", async () => {
    for (const [args, line] of usageErrors) expect([args, await run(args)]).toEqual([args, { code: 2, stdout: "", stderr: `kbs: ${line}\n` }]);
  });

  it("a file that cannot be read is one line naming it, exit 2, before any request", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kbs-files-"));
    const cases: [string[], string][] = [
      [["secret", "put", "w", "k", "--file", "/nonexistent/s"], "--file /nonexistent/s: no such file (see 'kbs secret put --help')"],
      [["secret", "put", "w", "k", "--file", dir], `--file ${dir}: is a directory (see 'kbs secret put --help')`],
      [["workload", "register", "w", "--measurement", M, "--policy", "/nonexistent/p.json"], "--policy /nonexistent/p.json: no such file (see 'kbs workload register --help')"],
      [["workload", "register", "w", "--measurement", M, "--passphrase-file", "/nonexistent/p"], "--passphrase-file /nonexistent/p: no such file (see 'kbs workload register --help')"],
      [["amd", "import", "/nonexistent/certs"], "/nonexistent/certs: no such file (see 'kbs amd import --help')"],
    ];
    const fetch = () => Promise.reject(new Error("no request may be sent"));
    for (const [args, line] of cases) expect([args, await run(args, { KBS_ADMIN_TOKEN: "t" }, { fetch })]).toEqual([args, { code: 2, stdout: "", stderr: `kbs: ${line}\n` }]);
  });
});

describe("kbs key generators", () => {
  it("master-key new prints a KBS_MASTER_KEY entry the Worker accepts, dated or with --kid", async () => {
    const dated = await run(["master-key", "new"]);
    expect(dated.stdout).toMatch(/^k\d{8}:[A-Za-z0-9+/]{43}=\n$/);
    const named = await run(["master-key", "new", "--kid", "rot-2"]);
    expect(named.stdout).toMatch(/^rot-2:/);
    const ring = await parseMasterKeys(`${named.stdout.trim()},${dated.stdout.trim()}`);
    expect([ring.active, ring.keys.size]).toEqual(["rot-2", 2]);
  });

  it("admin-token new prints 32 random bytes in hex", async () => {
    const [a, b] = [await run(["admin-token", "new"]), await run(["admin-token", "new"])];
    expect(a.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    expect(a.stdout).not.toBe(b.stdout);
  });

  it("token-key new prints the private P-256 JWK with a kid that npm start writes, and the Worker loads it", async () => {
    const { code, stdout } = await run(["token-key", "new"]);
    expect(code).toBe(0);
    const jwk = JSON.parse(stdout) as Record<string, string>;
    expect(Object.keys(jwk)).toEqual(["kty", "crv", "x", "y", "d", "kid"]);
    expect([jwk.kty, jwk.crv, jwk.kid]).toEqual(["EC", "P-256", expect.stringMatching(/^[0-9a-f]{16}$/)]);
    expect((await loadTokenKey(stdout)).kid).toBe(jwk.kid);
  });
});

describe("kbs against a running KBS (the Worker in workerd, over HTTP)", () => {
  const TOKEN = "cli-test-admin-token-0123456789abcdef";
  let kbs: MiniflareKbs;
  /** Signs a CRL that no trusted ARK signed (made while the Worker starts: RSA key generation takes a while). */
  let labArkKey: CryptoKey;
  let dir: string;
  beforeAll(async () => {
    const rsa = { name: "RSA-PSS", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-384" };
    [kbs, labArkKey] = await Promise.all([
      startMiniflareKbs({ ADMIN_TOKEN: TOKEN, KBS_MASTER_KEY: generateMasterKey("cli1"), LOG_LEVEL: "error" }),
      crypto.subtle.generateKey(rsa, false, ["sign"]).then((pair) => (pair as CryptoKeyPair).privateKey),
    ]);
    dir = mkdtempSync(join(tmpdir(), "kbs-admin-"));
  }, 30_000);
  afterAll(() => kbs?.dispose());

  /** The CLI with the KBS and token from the environment, as an operator exports them. */
  const admin = (args: string[], env: Record<string, string> = {}, io: Partial<Io> = {}) => run(args, { KBS_URL: kbs.url, KBS_ADMIN_TOKEN: TOKEN, ...env }, io);
  const file = (name: string, data: string | Uint8Array) => {
    writeFileSync(join(dir, name), data);
    return join(dir, name);
  };
  const measurement = (bytes: number) => toHex(crypto.getRandomValues(new Uint8Array(bytes)));

  it("registers, lists, shows, rotates and deletes secrets and workloads; no output ever holds a secret value", async () => {
    const m = measurement(48);
    const passphrase = "correct horse battery staple";
    const register = await admin(["workload", "register", "web-1", "--measurement", m.toUpperCase(), "--tee", "snp", "--passphrase-file", file("pass", passphrase)]);
    expect(register).toEqual({ code: 0, stdout: "registered snp workload web-1\n", stderr: "" });
    const sev = await admin(["workload", "register", "sev-1", "--measurement", measurement(32), "--policy", file("sev.json", '{"flags":{"bits":4},"minfw":{"major":0,"minor":0}}'), "--json"]);
    expect([sev.code, JSON.parse(sev.stdout)]).toEqual([0, { workload_id: "sev-1", tee: "sev", launch_measurement: expect.stringMatching(/^[0-9a-f]{64}$/), action: "registered" }]);

    // Text through the admin API; bytes (here not UTF-8) as a Trustee resource of the SNP workload.
    expect(await admin(["secret", "put", "web-1", "tls", "--file", file("tls", "second secret")])).toEqual({ code: 0, stdout: "stored web-1 tls version 1\n", stderr: "" });
    expect((await admin(["secret", "put", "web-1", "tls", "--file", file("tls2", "third secret")])).stdout).toBe("stored web-1 tls version 2\n");
    const key = Uint8Array.from({ length: 600 }, (_, i) => (i * 7 + 0x80) & 0xff);
    const resource = await admin(["secret", "put", "web-1", "default/luks/root", "--file", file("root.key", key), "--json"]);
    expect([resource.code, JSON.parse(resource.stdout)]).toEqual([0, { workload_id: "web-1", key_id: "default/luks/root", version: 1 }]);
    const sevBinary = await admin(["secret", "put", "sev-1", "default/luks/root", "--file", join(dir, "root.key")]);
    expect([sevBinary.code, sevBinary.stderr]).toEqual([1, `kbs: workload "sev-1" is sev: a value that is not text of at most 512 bytes needs an SNP workload\n`]);
    expect((await admin(["secret", "put", "web-1", "tls", "--file", join(dir, "root.key")])).stderr).toBe(
      `kbs: --file ${join(dir, "root.key")}: is not UTF-8 text; such a value can only be a resource: a key id repository/type/tag of an SNP workload (see 'kbs secret put --help')\n`,
    );

    const list = await admin(["workload", "list"]);
    expect(list.stdout.split("\n")[0]).toMatch(/^WORKLOAD +TEE +MEASUREMENT +GENERATION +UPDATED +DELETED$/);
    expect(list.stdout).toMatch(new RegExp(`^web-1 +snp +${m.slice(0, 16)}… +1 +\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ +-$`, "m"));
    const listed = JSON.parse((await admin(["workload", "list", "--json"])).stdout) as { workload_id: string; launch_measurement: string }[];
    expect(listed.map((w) => [w.workload_id, w.launch_measurement])).toEqual([["sev-1", expect.any(String)], ["web-1", m]]);

    const show = await admin(["workload", "show", "web-1"]);
    expect(show.stdout).toContain(`measurement ${m}\n`);
    expect(show.stdout).toContain("tee_config  (empty: the default policy)\n");
    expect(show.stdout).toMatch(/^KEY ID +VERSION +MASTER KEY +CREATED +CREATED BY +DELETED\n/m);
    expect(show.stdout).toMatch(/^default\/luks\/root +1 +cli1 +\S+ +token +-$/m);
    const secrets = JSON.parse((await admin(["secret", "list", "web-1", "--json"])).stdout) as { key_id: string; version: number; deleted_at: number | null }[];
    expect(secrets.map((s) => `${s.key_id}@${s.version}`).sort()).toEqual(["default/luks/root@1", "tls@1", "tls@2", "web-1@1"]);
    const outputs = [show.stdout, (await admin(["workload", "show", "web-1", "--json"])).stdout, (await admin(["secret", "list", "web-1"])).stdout, list.stdout];
    for (const out of outputs) for (const secret of [passphrase, "second secret", "third secret", toHex(key)]) expect(out).not.toContain(secret);

    // Re-registering without a passphrase changes the measurement and keeps the secrets; a new workload gets a random one.
    const m2 = measurement(48);
    expect(await admin(["workload", "register", "web-1", "--measurement", m2])).toEqual({ code: 0, stdout: "updated snp workload web-1 (its secrets are unchanged)\n", stderr: "" });
    const after = JSON.parse((await admin(["workload", "show", "web-1", "--json"])).stdout) as { launch_measurement: string; generation: number; secrets: unknown[] };
    expect([after.launch_measurement, after.generation, after.secrets.length]).toEqual([m2, 2, 4]);
    const bare = await admin(["workload", "register", "trustee-1", "--measurement", measurement(48)]);
    expect(bare).toEqual({ code: 0, stdout: "registered snp workload trustee-1\n", stderr: "kbs: no --passphrase-file: trustee-1's passphrase (key id trustee-1) is random and shown nowhere; `kbs secret put trustee-1 trustee-1 --file FILE` sets one\n" });

    // Versions: delete one, then the rest and destroy; a second delete of the same version is a refusal (exit 1).
    expect((await admin(["secret", "delete", "web-1", "tls", "--version", "1"])).stdout).toBe("deleted web-1 tls version 1\n");
    expect(await admin(["secret", "delete", "web-1", "tls", "--version", "1"])).toEqual({ code: 1, stdout: "", stderr: `kbs: 404 secret-unknown: no live version of secret "tls" of workload "web-1" (DELETE /kbs/v0/admin/workloads/web-1/secrets/tls)\n` });
    expect((await admin(["secret", "delete", "web-1", "tls", "--destroy"])).stdout).toBe("destroyed web-1 tls (every deleted version)\n");
    const resourceDelete = await admin(["secret", "delete", "web-1", "default/luks/root", "--json"]);
    expect(JSON.parse(resourceDelete.stdout)).toEqual({ workload_id: "web-1", key_id: "default/luks/root", version: null, deleted: true, destroyed: false });
    const left = JSON.parse((await admin(["secret", "list", "web-1", "--json"])).stdout) as { key_id: string; deleted_at: number | null }[];
    expect(left.map((s) => [s.key_id, s.deleted_at === null])).toEqual([["default/luks/root", false], ["web-1", true]]);

    expect(await admin(["rewrap"])).toEqual({ code: 0, stdout: expect.stringMatching(/^re-wrapped 0 of \d+ data keys under the active master key\n$/), stderr: "" });
    expect(await admin(["workload", "delete", "sev-1"])).toEqual({ code: 0, stdout: "deleted workload sev-1\n", stderr: "" });
    // Already deleted: --destroy still erases it.
    expect(JSON.parse((await admin(["workload", "delete", "sev-1", "--destroy", "--json"])).stdout)).toEqual({ workload_id: "sev-1", deleted: true, destroyed: true });
    expect((await admin(["workload", "show", "sev-1"])).stderr).toBe(`kbs: 404 workload-unknown: no workload "sev-1" (GET /kbs/v0/admin/workloads/sev-1)\n`);

    // Every one of those actions is in the audit log, and it verifies.
    const audit = await admin(["audit", "verify"]);
    expect(audit).toEqual({ code: 0, stdout: expect.stringMatching(/^the audit log is intact: \d+ rows in \d+ shards\n$/), stderr: "" });
    // Shards: admin, and one per workload.
    expect(JSON.parse((await admin(["audit", "verify", "--json"])).stdout)).toMatchObject({ ok: true, shards: 4 });
  });

  // AMD's real Milan chain (pinned ARK) and VCEKs from test/fixtures, as KDS serves them.
  const chainPem = () => readFileSync(resolve(DATA, "amd-roots/canonical/milan-ask.pem"), "utf8") + readFileSync(resolve(DATA, "amd-roots/canonical/milan-ark.pem"), "utf8");
  const milanVcek = () => readFileSync(resolve(DATA, "snp/milan-vcek-gosevguest-for-attestation.der"));

  it("amd import loads AMD's chain and a VCEK, refuses per item what no trusted ARK vouches for (exit 1), skips other files", async () => {
    const certs = join(dir, "certs");
    mkdirSync(join(certs, "vcek"), { recursive: true });
    writeFileSync(join(certs, "cert_chain.pem"), chainPem()); // /vcek/v1/Milan/cert_chain: ASK, then ARK
    writeFileSync(join(certs, "vcek", "milan.der"), milanVcek());
    writeFileSync(join(certs, "vcek", "genoa.der"), readFileSync(resolve(DATA, "snp/genoa-vcek-trustee-e2e.der"))); // its ASK is not given
    writeFileSync(join(certs, "milan.crl"), await createCrl({ product: "Milan", arkPrivateKey: labArkKey }));
    writeFileSync(join(certs, "README.md"), "# certificates\n");

    const r = await admin(["amd", "import", certs]);
    expect([r.code, r.stderr]).toEqual([1, `kbs: skipped ${join(certs, "README.md")}: not a certificate or CRL\n`]);
    expect(r.stdout.trim().split("\n").map((l) => l.split(/ {2,}/))).toEqual([
      ["FILE", "WHAT", "RESULT"],
      [`${join(certs, "cert_chain.pem")}#2`, "Milan ARK", "imported"],
      [`${join(certs, "cert_chain.pem")}#1`, "Milan ASK", "imported"],
      [join(certs, "vcek", "genoa.der"), "Genoa VCEK", "refused: no verified SEV-Genoa (in this import or cached) signed this VCEK"],
      [join(certs, "vcek", "milan.der"), "Milan VCEK", "imported"],
      [join(certs, "milan.crl"), "CRL of ARK-Milan", "refused: no trusted ARK (in this import or cached) signed this CRL of CN=ARK-Milan"],
      ["3 imported, 2 refused"],
    ]);
    // The issuers are cached now: a VCEK alone is accepted.
    const again = await admin(["amd", "import", join(certs, "vcek", "milan.der"), "--json"]);
    expect([again.code, JSON.parse(again.stdout)]).toEqual([0, { imported: 1, refused: 0, items: [{ source: join(certs, "vcek", "milan.der"), what: "Milan VCEK", refused: null }] }]);
  });

  it("amd import of many files shows its progress on stderr and sends them in several requests", async () => {
    const many = join(dir, "many");
    mkdirSync(many);
    writeFileSync(join(many, "cert_chain.pem"), chainPem());
    for (let i = 0; i < 30; i++) writeFileSync(join(many, `vcek-${String(i).padStart(2, "0")}.der`), milanVcek());
    const r = await admin(["amd", "import", many]);
    expect([r.code, r.stderr]).toEqual([0, "kbs: read 25 of 31 files\nkbs: sent 25 of 32\nkbs: sent 32 of 32\n"]);
    expect(r.stdout.split("\n").at(-2)).toBe("32 imported, 0 refused");
  });

  it("the token comes from --token, else $KBS_ADMIN_TOKEN, else for a local KBS npm start's vars file, which it says", async () => {
    const devVars = file("dev.vars", `KBS_MASTER_KEY="dev1:x"\nADMIN_TOKEN="${TOKEN}"\n`);
    const local = await run(["workload", "list", "--json"], { KBS_URL: kbs.url, KBS_VARS_FILE: devVars });
    expect([local.code, local.stderr]).toEqual([0, `kbs: no --token or KBS_ADMIN_TOKEN; using the ADMIN_TOKEN of ${devVars}\n`]);
    // --token wins over the environment; the local token never goes to another host.
    expect((await admin(["workload", "list", "--token", "wrong"])).code).toBe(3);
    const remote = await run(["workload", "list", "--url", "https://kbs.example"], { KBS_VARS_FILE: devVars }, { fetch: () => Promise.reject(new Error("no request may be sent")) });
    expect([remote.code, remote.stderr]).toEqual([2, "kbs: no admin token: give --token or set KBS_ADMIN_TOKEN (see 'kbs workload list --help')\n"]);
  });

  it("exit 3 with one line when the KBS is unreachable or refuses the token (audit verify included)", async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    for (const args of [["workload", "list"], ["audit", "verify"]]) {
      expect(await run([...args, "--url", closed, "--token", TOKEN])).toEqual({ code: 3, stdout: "", stderr: `kbs: cannot reach ${closed}: ECONNREFUSED\n` });
      const wrong = await admin(args, { KBS_ADMIN_TOKEN: "not-the-token" });
      expect([wrong.code, wrong.stdout]).toEqual([3, ""]);
      expect(wrong.stderr).toMatch(new RegExp(`^kbs: ${kbs.url} refused the admin token from KBS_ADMIN_TOKEN: 401 admin-unauthorized: [^\\n]+ \\(GET /kbs/v0/admin/[a-z/]+\\)\\n$`));
    }
    // Whatever a fetch throws (here a DOMException, whose `code` is a number) is one line too.
    const fetch = () => Promise.reject(new DOMException("connection refused\n  at the proxy", "NetworkError"));
    expect(await admin(["audit", "verify"], {}, { fetch })).toEqual({ code: 3, stdout: "", stderr: `kbs: cannot reach ${kbs.url}: connection refused at the proxy\n` });
  });
});
