#!/usr/bin/env node
// The `kbs` command line: offline verification with the very verifier code the Worker runs.
import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { fromHex, isHex, toHex } from "../src/crypto/bytes";
import { PemError, pemBlocks } from "../src/crypto/pem";
import { ConfigError, TeeError } from "../src/errors";
import { appraiseSnp, assertAppraised, type Appraisal } from "../src/tee/snp/appraise";
import { certificatesFrom } from "../src/tee/snp/certtable";
import { parseSnpPolicy, PolicyError, type SnpPolicy } from "../src/tee/snp/policy";
import { decodeGuestPolicy, decodeTcb, parseReport, productFromCpuid } from "../src/tee/snp/report";
import { verifySevChain } from "../src/tee/sev/chain";
import { parseSevRequest } from "../src/tee/sev/json";
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

/** Exit codes, the same for every command. */
const EXIT = {
  /** The evidence verifies (and passes the appraisal); the audit log is intact. */
  ok: 0,
  /** A verdict: the evidence (or the log) is refused, and the JSON on stdout says why. */
  rejected: 1,
  /** The command line or the environment (EXTRA_TRUSTED_ARKS) is unusable: one line on stderr. */
  usage: 2,
  /** No verdict could be reached (an unreachable KBS, a bug): one line on stderr, never a stack trace. */
  failed: 3,
} as const;

/** A bad command line, or a file it names that cannot be read. */
class UsageError extends Error {}

function print(io: Io, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

interface ErrorEntry {
  code: string;
  detail: string;
}

/** A refusal as a verdict's error entry. Only typed refusals are verdicts; anything else propagates to main. */
function errorOf(e: unknown): ErrorEntry {
  if (e instanceof TeeError) return { code: e.code, detail: e.message };
  throw e;
}

/** A file named by `flag`; one that cannot be read is a usage error naming it. */
function readInput(flag: string, path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new UsageError(`${flag} ${path}: cannot be read (${(e as { code?: unknown }).code ?? (e as Error).message})`);
  }
}

// ---------------------------------------------------------------------------------------------
// verify snp

const VERIFY_SNP_USAGE = `  kbs verify snp --report FILE [--certs FILE ...] [--product milan|genoa|turin] [--at ISO-DATE]
                 [--policy FILE] [--measurement HEX] [--report-data HEX] [--no-appraise]
                 [--crl FILE [--crl-mode strict|best-effort]]

  --report       the 1184-byte SNP report, binary or hex text
  --certs        VCEK/VLEK, ASK/ASVK and ARK certificates: PEM (one or more), DER, or a GHCB certificate table
  --product      the product of a version 2 report (v3+ reports name it in CPUID)
  --at           judge certificate validity and CRL freshness at this time instead of now (e.g. 2025-06-01)
  --policy       appraise with this SNP policy, a tee_config as the KBS stores it (JSON policy document;
                 any other text means the default policy)
  --measurement  the expected MEASUREMENT (96 hex), as a workload's launch_measurement
  --report-data  the expected REPORT_DATA (hex, up to 64 bytes; shorter values are zero-padded)
  --no-appraise  verify the signature and chain only; a debug guest or one at VMPL 1-3 then passes
  --crl          AMD's CRL for the report's product and signer (DER or PEM), e.g. from
                 https://kdsintf.amd.com/vcek/v1/Milan/crl; checked under the chain's ARK
  --crl-mode     strict (default): a CRL past its nextUpdate is a rejection; best-effort: only recorded

  The report is appraised as the KBS appraises it: under --policy, else under the default policy (what a
  workload registered with an empty tee_config gets: no debug, VMPL 0 only, …). The verdict lists every
  rule with ok, expected and actual. Without --measurement or --report-data those two rules say
  "checked": false, neither passed nor failed (the policy's own measurements list still applies).`;

function readReport(path: string): Uint8Array {
  const raw = readInput("--report", path);
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
    return parseSnpPolicy(path === undefined ? "" : new TextDecoder().decode(readInput("--policy", path)));
  } catch (e) {
    if (e instanceof PolicyError) throw new UsageError(`--policy ${path}: ${e.message}`);
    throw e;
  }
}

interface CrlFile {
  path: string;
  bytes: Uint8Array;
  mode: RevocationOptions["mode"];
}

function readCrl(path: string | undefined, mode: string | undefined): CrlFile | undefined {
  if (mode !== undefined && mode !== "strict" && mode !== "best-effort") throw new UsageError("--crl-mode must be strict or best-effort");
  if (path === undefined) {
    if (mode !== undefined) throw new UsageError("--crl-mode needs --crl");
    return undefined;
  }
  return { path, bytes: readInput("--crl", path), mode: mode ?? "strict" };
}

/**
 * The CRL file (DER or PEM) as the verifier's source. Decoded here, not in the source: the verifier takes a
 * failing source for a missing CRL, which best-effort mode accepts, so bad base64 would pass unnoticed.
 */
function revocationFrom({ path, bytes, mode }: CrlFile): RevocationOptions {
  let der: Uint8Array;
  try {
    der = pemBlocks(new TextDecoder().decode(bytes), "X509 CRL")[0] ?? bytes;
  } catch (e) {
    if (e instanceof PemError) throw new VerificationError("crl-invalid", `--crl ${path}: ${e.message}`);
    throw e;
  }
  // One file stands for whichever product and signer the report needs; the verifier checks it under the chain's ARK.
  return { source: { crl: async () => der }, mode };
}

/** The certificates in a --certs file; its path prefixes a refusal, since several files may be given. */
function certificatesIn(path: string, bytes: Uint8Array): Uint8Array[] {
  let certs: Uint8Array[];
  try {
    certs = certificatesFrom(bytes);
  } catch (e) {
    if (e instanceof VerificationError) throw new VerificationError(e.code, `--certs ${path}: ${e.message}`);
    throw e;
  }
  if (certs.length === 0) throw new VerificationError("cert-malformed", `--certs ${path}: no certificate in it`);
  return certs;
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

function verdict(v: VerifiedReport, appraisal: Appraisal | undefined, errors: ErrorEntry[]) {
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
      "no-appraise": { type: "boolean" },
      crl: { type: "string" },
      "crl-mode": { type: "string" },
    },
    strict: true,
  });
  if (!values.report) throw new UsageError("--report is required");
  const productHint = parseProduct(values.product);
  const now = parseAt(values.at);
  const expectations = { measurement: parseHex("--measurement", values.measurement, 48, true), reportData: parseHex("--report-data", values["report-data"], 64, false) };
  if (values["no-appraise"] && (values.policy !== undefined || values.measurement !== undefined || values["report-data"] !== undefined)) {
    throw new UsageError("--no-appraise excludes --policy, --measurement and --report-data");
  }
  const policy = values["no-appraise"] ? undefined : readPolicy(values.policy);
  const crl = readCrl(values.crl, values["crl-mode"]);
  const reportBytes = readReport(values.report);
  const certFiles = (values.certs ?? []).map((path) => ({ path, bytes: readInput("--certs", path) }));
  const trust = (await operatorTrust(process.env.EXTRA_TRUSTED_ARKS)).snp;

  let v: VerifiedReport;
  try {
    const certificates = certFiles.flatMap(({ path, bytes }) => certificatesIn(path, bytes));
    v = await verifySnpReport(reportBytes, { trust, productHint, certificates, now, revocation: crl && revocationFrom(crl) });
  } catch (e) {
    const error = errorOf(e);
    let parsed: SnpReport | undefined;
    try {
      parsed = parseReport(reportBytes);
    } catch {
      parsed = undefined;
    }
    const product = parsed?.cpuid ? productFromCpuid(parsed.cpuid.family, parsed.cpuid.model) : productHint;
    const tcb = parsed && product ? decodeTcb(parsed.reportedTcb, product) : undefined;
    print(io, { ok: false, ...claims(parsed, product, undefined, tcb), revocation: null, rules: null, snp_policy: null, errors: [error] });
    return EXIT.rejected;
  }
  const appraisal = policy && appraiseSnp(v, expectations, policy);
  const errors: ErrorEntry[] = [];
  try {
    if (appraisal) assertAppraised(appraisal);
  } catch (e) {
    errors.push(errorOf(e));
  }
  print(io, verdict(v, appraisal, errors));
  return errors.length ? EXIT.rejected : EXIT.ok;
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
  const text = new TextDecoder().decode(readInput("--chain", values.chain));
  let value: unknown;
  try {
    value = sevRequestOf(JSON.parse(text));
  } catch {
    throw new UsageError(`--chain ${values.chain} is not JSON`);
  }
  const trust = (await operatorTrust(process.env.EXTRA_TRUSTED_ARKS)).sev;
  try {
    const { generation, pdh } = await verifySevChain(parseSevRequest(value).chain, trust);
    print(io, { ok: true, generation: generation ?? "operator-listed ARK", pdh: { api: `${pdh.apiMajor}.${pdh.apiMinor}`, algo: pdh.algo }, errors: [] });
    return EXIT.ok;
  } catch (e) {
    print(io, { ok: false, generation: null, pdh: null, errors: [errorOf(e)] });
    return EXIT.rejected;
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
  return verdict.ok ? EXIT.ok : EXIT.rejected;
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

Prints a JSON verdict on stdout. Exit codes:
  ${EXIT.ok}  the evidence verifies and passes the appraisal (audit verify: the log is intact)
  ${EXIT.rejected}  it is refused; the verdict's errors name the code and the reason
  ${EXIT.usage}  a usage error, an unreadable file or an unusable EXTRA_TRUSTED_ARKS (one line on stderr)
  ${EXIT.failed}  no verdict could be reached: an unreachable KBS or an internal error (one line on stderr)
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
      return word1 === undefined ? EXIT.usage : EXIT.ok;
    }
    throw new UsageError(`unknown command: ${[word1, word2].filter(Boolean).join(" ")}`);
  } catch (e) {
    return failure(e, io);
  }
}

/** node:util parseArgs refuses an unknown or malformed option with a TypeError coded ERR_PARSE_ARGS_*. */
function isParseArgsError(e: unknown): e is TypeError {
  const code: unknown = (e as { code?: unknown } | null)?.code;
  return e instanceof TypeError && typeof code === "string" && code.startsWith("ERR_PARSE_ARGS");
}

/** What escaped a command (verdicts never do): its one line on stderr and its exit code. */
function failure(e: unknown, io: Io): number {
  if (e instanceof UsageError || isParseArgsError(e)) {
    io.stderr(`kbs: ${e.message}\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  if (e instanceof ConfigError) {
    io.stderr(`kbs: ${e.message}\n`);
    return EXIT.usage;
  }
  // Not a typed refusal: a DOMException from WebCrypto, a network error, a bug. Name and message only.
  const { name, message } = e instanceof Error || e instanceof DOMException ? e : { name: "thrown", message: String(e) };
  io.stderr(`kbs: no verdict: ${name}: ${message.replace(/\s+/g, " ")}\n`);
  return EXIT.failed;
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
