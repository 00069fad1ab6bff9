#!/usr/bin/env node
// The `kbs` command line: offline verification with the very verifier code the Worker runs.
import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { fromHex, isHex, toHex } from "../src/crypto/bytes";
import { pemBlocks } from "../src/crypto/pem";
import { appraiseSnp, assertAppraised, type Appraisal } from "../src/tee/snp/appraise";
import { certificatesFrom } from "../src/tee/snp/certtable";
import { parseSnpPolicy, PolicyError, type SnpPolicy } from "../src/tee/snp/policy";
import { decodeGuestPolicy, decodeTcb, parseReport, productFromCpuid } from "../src/tee/snp/report";
import { verifySevChain } from "../src/tee/sev/chain";
import { parseSevRequest } from "../src/tee/sev/json";
import { SevError } from "../src/tee/sev/types";
import { operatorTrust } from "../src/tee/trust";
import { verifyAuditLog } from "../src/audit/client";
import { PRODUCTS, VerificationError, type Product, type RevocationOptions, type SnpReport, type Tcb, type VerifiedReport } from "../src/tee/snp/types";
import { verifySnpReport } from "../src/tee/snp/verify";

/** Where the command line writes, and the fetch `audit verify` uses (default: the global fetch). */
export interface Io {
  stdout(s: string): void;
  stderr(s: string): void;
  fetch?: typeof fetch;
}

interface Command {
  usage: string;
  run(args: string[], io: Io): Promise<number>;
}

class UsageError extends Error {}

function print(io: Io, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

// ---------------------------------------------------------------------------------------------
// verify snp

const VERIFY_SNP_USAGE = `  kbs verify snp --report FILE [--certs FILE ...] [--product milan|genoa|turin] [--at ISO-DATE]
                 [--policy FILE] [--measurement HEX] [--report-data HEX]
                 [--crl FILE [--crl-mode strict|best-effort]]

  --report       the 1184-byte SNP report, binary or hex text
  --certs        VCEK/VLEK, ASK/ASVK and ARK certificates: PEM (one or more), DER, or a GHCB certificate table
  --product      the product of a version 2 report (v3+ reports name it in CPUID)
  --at           judge certificate validity and CRL freshness at this time instead of now (e.g. 2025-06-01)
  --policy       appraise with this SNP policy, a tee_config as the KBS stores it (JSON policy document;
                 any other text means the default policy)
  --measurement  the expected MEASUREMENT (96 hex), as a workload's launch_measurement
  --report-data  the expected REPORT_DATA (hex, up to 64 bytes; shorter values are zero-padded)
  --crl          AMD's CRL for the report's product and signer (DER or PEM), e.g. from
                 https://kdsintf.amd.com/vcek/v1/Milan/crl; checked under the chain's ARK
  --crl-mode     strict (default): a CRL past its nextUpdate is a rejection; best-effort: only recorded

  With --policy, --measurement or --report-data the verdict carries the appraisal: every rule with
  ok, expected and actual (the default policy when --policy is absent). Without --measurement or
  --report-data those two rules say "checked": false, neither passed nor failed (the policy's own
  measurements list still applies).`;

function readReport(path: string): Uint8Array {
  const raw = new Uint8Array(readFileSync(path));
  if (raw.length === 1184) return raw;
  const text = new TextDecoder().decode(raw).replace(/\s+/g, "");
  try {
    return fromHex(text);
  } catch {
    return raw; // not hex: let the parser reject the size with its own message
  }
}

function parseProduct(value: string | undefined): Product | undefined {
  if (value === undefined) return undefined;
  const product = PRODUCTS.find((p) => p.toLowerCase() === value.toLowerCase());
  if (!product) throw new UsageError(`--product must be one of ${PRODUCTS.map((p) => p.toLowerCase()).join(", ")}`);
  return product;
}

function parseAt(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const at = new Date(value);
  if (Number.isNaN(at.getTime())) throw new UsageError(`--at is not a date: ${value}`);
  return at;
}

function parseHex(name: string, value: string | undefined, maxBytes: number, exact: boolean): Uint8Array | null {
  if (value === undefined) return null;
  const bytes = isHex(value) ? fromHex(value) : undefined;
  if (!bytes || bytes.length > maxBytes || (exact && bytes.length !== maxBytes)) {
    throw new UsageError(`${name} must be ${exact ? "" : "at most "}${maxBytes * 2} hex characters`);
  }
  const out = new Uint8Array(maxBytes);
  out.set(bytes);
  return out;
}

function readPolicy(path: string | undefined): SnpPolicy {
  try {
    return parseSnpPolicy(path === undefined ? "" : readFileSync(path, "utf8"));
  } catch (e) {
    if (e instanceof PolicyError) throw new UsageError(`--policy ${path}: ${e.message}`);
    throw e;
  }
}

function readCrl(path: string | undefined, mode: string | undefined): RevocationOptions | undefined {
  if (mode !== undefined && mode !== "strict" && mode !== "best-effort") throw new UsageError("--crl-mode must be strict or best-effort");
  if (path === undefined) {
    if (mode !== undefined) throw new UsageError("--crl-mode needs --crl");
    return undefined;
  }
  const raw = new Uint8Array(readFileSync(path));
  const der = pemBlocks(new TextDecoder().decode(raw), "X509 CRL")[0] ?? raw;
  // One file stands for whichever product and signer the report needs; the verifier checks it under the chain's ARK.
  return { source: { crl: async () => der }, mode: mode ?? "strict" };
}

function tcbJson(tcb: Tcb) {
  return { raw: tcb.raw, ...(tcb.fmc !== undefined ? { fmc: tcb.fmc } : {}), bootloader: tcb.bootloader, tee: tcb.tee, snp: tcb.snp, microcode: tcb.microcode };
}

/** The verdict's claims, from whatever could be read: a verified report, else the bare parse. */
function claims(report: SnpReport | undefined, product: Product | undefined, signer: string | undefined, reportedTcb: Tcb | undefined) {
  return {
    product: product ?? null,
    version: report?.version ?? null,
    measurement: report ? toHex(report.measurement) : null,
    reported_tcb: reportedTcb ? tcbJson(reportedTcb) : null,
    chip_id: report ? toHex(report.chipId) : null,
    vmpl: report?.vmpl ?? null,
    policy: report ? decodeGuestPolicy(report.policy) : null,
    signer: signer ?? (report ? ({ 0: "VCEK", 1: "VLEK" } as Record<number, string>)[report.signingKey] ?? null : null),
  };
}

function verdict(v: VerifiedReport, appraisal: Appraisal | undefined, errors: { code: string; detail: string }[]) {
  return {
    ok: errors.length === 0,
    ...claims(v.report, v.product, v.signer, v.reportedTcb),
    revocation: v.revocation,
    rules: appraisal?.rules ?? null,
    snp_policy: appraisal?.policy ?? null,
    errors,
  };
}

async function verifySnp(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      report: { type: "string" },
      certs: { type: "string", multiple: true },
      product: { type: "string" },
      at: { type: "string" },
      policy: { type: "string" },
      measurement: { type: "string" },
      "report-data": { type: "string" },
      crl: { type: "string" },
      "crl-mode": { type: "string" },
    },
    strict: true,
  });
  if (!values.report) throw new UsageError("--report is required");
  const productHint = parseProduct(values.product);
  const now = parseAt(values.at);
  const expectations = { measurement: parseHex("--measurement", values.measurement, 48, true), reportData: parseHex("--report-data", values["report-data"], 64, false) };
  const appraise = values.policy !== undefined || values.measurement !== undefined || values["report-data"] !== undefined;
  const policy = appraise ? readPolicy(values.policy) : undefined;
  const revocation = readCrl(values.crl, values["crl-mode"]);
  const reportBytes = readReport(values.report);
  const certificates = (values.certs ?? []).flatMap((path) => certificatesFrom(new Uint8Array(readFileSync(path))));

  let v: VerifiedReport;
  try {
    v = await verifySnpReport(reportBytes, { trust: (await operatorTrust(process.env.EXTRA_TRUSTED_ARKS)).snp, productHint, certificates, now, revocation });
  } catch (e) {
    if (!(e instanceof VerificationError)) throw e;
    let parsed: SnpReport | undefined;
    try {
      parsed = parseReport(reportBytes);
    } catch {
      parsed = undefined;
    }
    const product = parsed?.cpuid ? productFromCpuid(parsed.cpuid.family, parsed.cpuid.model) : productHint;
    const tcb = parsed && product ? decodeTcb(parsed.reportedTcb, product) : undefined;
    print(io, { ok: false, ...claims(parsed, product, undefined, tcb), revocation: null, rules: null, snp_policy: null, errors: [{ code: e.code, detail: e.message }] });
    return 1;
  }
  const appraisal = policy && appraiseSnp(v, expectations, policy);
  try {
    if (appraisal) assertAppraised(appraisal);
  } catch (e) {
    if (!(e instanceof VerificationError)) throw e;
    print(io, verdict(v, appraisal, [{ code: e.code, detail: e.message }]));
    return 1;
  }
  print(io, verdict(v, appraisal, []));
  return 0;
}

// ---------------------------------------------------------------------------------------------
// verify sev-chain

const VERIFY_SEV_CHAIN_USAGE = `  kbs verify sev-chain --chain FILE.json

  --chain    a legacy SEV platform chain in the clients' JSON: the chain {"ca":{…},"sev":{…}}, a
             kbs-types SevRequest, or a whole /auth Request (extra-params as a string or object)

  Verifies ARK → ASK → CEK → PEK ← OCA, PEK → PDH; the ARK must be AMD's (pinned) or listed.`;

/** The SevRequest inside whatever form the file holds; a bare chain gets a placeholder workload and build. */
function sevRequestOf(value: unknown): unknown {
  const v = value as Record<string, unknown> | null;
  if (v && typeof v === "object" && "extra-params" in v) {
    const extra = v["extra-params"];
    return typeof extra === "string" ? JSON.parse(extra) : extra;
  }
  if (v && typeof v === "object" && "ca" in v && "sev" in v) return { workload_id: "", build: { version: { major: 0, minor: 0 }, build: 0 }, chain: v };
  return value;
}

async function verifySevChainCommand(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args, options: { chain: { type: "string" } }, strict: true });
  if (!values.chain) throw new UsageError("--chain is required");
  let value: unknown;
  try {
    value = sevRequestOf(JSON.parse(readFileSync(values.chain, "utf8")));
  } catch {
    throw new UsageError(`${values.chain} is not JSON`);
  }
  try {
    const request = parseSevRequest(value);
    const { generation, pdh } = await verifySevChain(request.chain, (await operatorTrust(process.env.EXTRA_TRUSTED_ARKS)).sev);
    print(io, { ok: true, generation: generation ?? "operator-listed ARK", pdh: { api: `${pdh.apiMajor}.${pdh.apiMinor}`, algo: pdh.algo }, errors: [] });
    return 0;
  } catch (e) {
    if (!(e instanceof SevError)) throw e;
    print(io, { ok: false, generation: null, pdh: null, errors: [{ code: e.code, detail: e.message }] });
    return 1;
  }
}

// ---------------------------------------------------------------------------------------------
// audit verify

const AUDIT_VERIFY_USAGE = `  kbs audit verify --url https://kbs.example [--token TOKEN]

  --url      the KBS base URL
  --token    an unscoped admin token or JWT (default: $KBS_ADMIN_TOKEN)

  Pages GET /kbs/v0/admin/audit and checks the hash chain and the writer's head: exit 0 when intact,
  1 naming the first altered, missing or reordered row (or a truncated tail).`;

async function auditVerify(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args, options: { url: { type: "string" }, token: { type: "string" } }, strict: true });
  const token = values.token ?? process.env.KBS_ADMIN_TOKEN;
  if (!values.url) throw new UsageError("--url is required");
  if (!token) throw new UsageError("--token or KBS_ADMIN_TOKEN is required");
  const verdict = await verifyAuditLog(io.fetch ?? fetch, values.url, token);
  print(io, verdict);
  return verdict.ok ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------

/** Subcommands by their first two words; each brings its usage text. */
const COMMANDS: Record<string, Command> = {
  "verify snp": { usage: VERIFY_SNP_USAGE, run: verifySnp },
  "verify sev-chain": { usage: VERIFY_SEV_CHAIN_USAGE, run: verifySevChainCommand },
  "audit verify": { usage: AUDIT_VERIFY_USAGE, run: auditVerify },
};

const USAGE = `usage:
${Object.values(COMMANDS)
  .map((c) => c.usage)
  .join("\n\n")}

Prints a JSON verdict; exit 0 when the evidence verifies (and passes the appraisal), 1 when it is
rejected, 2 on usage errors.
Roots: AMD's ARKs are pinned (SNP: Milan, Genoa, Turin; SEV: Naples to Turin); EXTRA_TRUSTED_ARKS adds
lab roots (PEM CERTIFICATE blocks for SNP, "AMD SEV ARK" blocks for SEV).`;

/** Runs the command line on `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: string[], io: Io): Promise<number> {
  const [word1, word2, ...rest] = argv;
  try {
    const command = COMMANDS[`${word1} ${word2}`];
    if (command) return await command.run(rest, io);
    if (word1 === "help" || word1 === "--help" || word1 === undefined) {
      io.stdout(`${USAGE}\n`);
      return word1 === undefined ? 2 : 0;
    }
    throw new UsageError(`unknown command: ${[word1, word2].filter(Boolean).join(" ")}`);
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") || (e as { code?: string }).code === "ENOENT") {
      io.stderr(`kbs: ${(e as Error).message}\n\n${USAGE}\n`);
      return 2;
    }
    throw e;
  }
}

/** True when this file is the program (tsx cli/kbs.ts, npm run kbs), false when imported (the tests call main). */
function isScript(): boolean {
  try {
    return realpathSync(process.argv[1]!) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isScript()) {
  process.exitCode = await main(process.argv.slice(2), { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) });
}
