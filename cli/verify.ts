// `kbs verify snp` and `kbs verify sev-chain`: offline verification with the very verifier code the Worker runs.
import { fromHex, isHex, toHex } from "../src/crypto/bytes";
import { PemError, pemBlocks } from "../src/crypto/pem";
import { TeeError } from "../src/errors";
import { appraiseSnp, assertAppraised, type Appraisal } from "../src/tee/snp/appraise";
import { certificatesFrom } from "../src/tee/snp/certtable";
import { parseSnpPolicy, PolicyError, type SnpPolicy } from "../src/tee/snp/policy";
import { decodeGuestPolicy, decodeTcb, parseReport, productFromCpuid } from "../src/tee/snp/report";
import { verifySevChain } from "../src/tee/sev/chain";
import { parseSevRequest } from "../src/tee/sev/json";
import { operatorTrust } from "../src/tee/trust";
import { PRODUCTS, VerificationError, type Product, type RevocationOptions, type SnpReport, type Tcb, type VerifiedReport } from "../src/tee/snp/types";
import { verifySnpReport } from "../src/tee/snp/verify";
import { envOf, EXIT, parseCommand, printJson, readInput, UsageError, type Command, type Io } from "./command";

interface ErrorEntry {
  code: string;
  detail: string;
}

/** A refusal as a verdict's error entry. Only typed refusals are verdicts; anything else propagates to main. */
function errorOf(e: unknown): ErrorEntry {
  if (e instanceof TeeError) return { code: e.code, detail: e.message };
  throw e;
}

// ---------------------------------------------------------------------------------------------
// verify snp

const VERIFY_SNP_HELP = `  --report       the 1184-byte SNP report, binary or hex text
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

Prints a JSON verdict. The report is appraised as the KBS appraises it: under --policy, else under the default
policy (what a workload registered with an empty tee_config gets: no debug, VMPL 0 only, …). The verdict lists
every rule with ok, expected and actual. Without --measurement or --report-data those two rules say
"checked": false, neither passed nor failed (the policy's own measurements list still applies).
AMD's ARKs are pinned (Milan, Genoa, Turin); EXTRA_TRUSTED_ARKS adds lab roots (PEM CERTIFICATE blocks).
Exit 0 verified and appraised, 1 refused (errors[0].code says why), 2 usage.`;

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
  const { values } = parseCommand(args, {
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
  const trust = (await operatorTrust(envOf(io).EXTRA_TRUSTED_ARKS)).snp;

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
    printJson(io, { ok: false, ...claims(parsed, product, undefined, tcb), revocation: null, rules: null, snp_policy: null, errors: [error] });
    return EXIT.rejected;
  }
  const appraisal = policy && appraiseSnp(v, expectations, policy);
  const errors: ErrorEntry[] = [];
  try {
    if (appraisal) assertAppraised(appraisal);
  } catch (e) {
    errors.push(errorOf(e));
  }
  printJson(io, verdict(v, appraisal, errors));
  return errors.length ? EXIT.rejected : EXIT.ok;
}

// ---------------------------------------------------------------------------------------------
// verify sev-chain

const VERIFY_SEV_CHAIN_HELP = `  --chain    a legacy SEV platform chain in the clients' JSON: the chain {"ca":{…},"sev":{…}}, a
             kbs-types SevRequest, or a whole /auth Request (extra-params as a string or object)

Prints a JSON verdict. Verifies ARK → ASK → CEK → PEK ← OCA, PEK → PDH; the ARK must be AMD's (pinned,
Naples to Turin) or listed in EXTRA_TRUSTED_ARKS ("AMD SEV ARK" PEM blocks).
Exit 0 verified, 1 refused, 2 usage.`;

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
  const { values } = parseCommand(args, { chain: { type: "string" } });
  if (!values.chain) throw new UsageError("--chain is required");
  const text = new TextDecoder().decode(readInput("--chain", values.chain));
  let value: unknown;
  try {
    value = sevRequestOf(JSON.parse(text));
  } catch {
    throw new UsageError(`--chain ${values.chain} is not JSON`);
  }
  const trust = (await operatorTrust(envOf(io).EXTRA_TRUSTED_ARKS)).sev;
  try {
    const { generation, pdh } = await verifySevChain(parseSevRequest(value).chain, trust);
    printJson(io, { ok: true, generation: generation ?? "operator-listed ARK", pdh: { api: `${pdh.apiMajor}.${pdh.apiMinor}`, algo: pdh.algo }, errors: [] });
    return EXIT.ok;
  } catch (e) {
    printJson(io, { ok: false, generation: null, pdh: null, errors: [errorOf(e)] });
    return EXIT.rejected;
  }
}

export const verifyCommands: Command[] = [
  {
    name: "verify snp",
    synopsis: `--report FILE [--certs FILE ...] [--product milan|genoa|turin] [--at ISO-DATE]
                 [--policy FILE] [--measurement HEX] [--report-data HEX] [--no-appraise]
                 [--crl FILE [--crl-mode strict|best-effort]]`,
    summary: "judge an SNP attestation report offline, as the KBS would",
    help: VERIFY_SNP_HELP,
    run: verifySnp,
  },
  { name: "verify sev-chain", synopsis: "--chain FILE.json", summary: "verify a legacy SEV platform certificate chain offline", help: VERIFY_SEV_CHAIN_HELP, run: verifySevChainCommand },
];
