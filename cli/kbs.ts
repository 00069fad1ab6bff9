#!/usr/bin/env node
// The `kbs` command line: offline verification with the very verifier code the Worker runs.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { fromHex, toHex } from "../src/crypto/bytes";
import { certificatesFrom } from "../src/tee/snp/certtable";
import { decodeGuestPolicy, decodeTcb, parseReport, productFromCpuid } from "../src/tee/snp/report";
import { trustAnchors } from "../src/tee/snp/trust";
import { PRODUCTS, VerificationError, type Product, type SnpReport, type Tcb } from "../src/tee/snp/types";
import { verifySnpReport } from "../src/tee/snp/verify";

const USAGE = `usage:
  kbs verify snp --report FILE [--certs FILE ...] [--product milan|genoa|turin] [--at ISO-DATE]

  --report   the 1184-byte SNP report, binary or hex text
  --certs    VCEK/VLEK, ASK/ASVK and ARK certificates: PEM (one or more), DER, or a GHCB certificate table
  --product  the product of a version 2 report (v3+ reports name it in CPUID)
  --at       judge certificate validity at this time instead of now (e.g. 2025-06-01)

Prints a JSON verdict; exit 0 when the report verifies, 1 when it is rejected, 2 on usage errors.
Roots: AMD's Milan, Genoa and Turin ARKs are pinned; EXTRA_TRUSTED_ARKS (PEM) adds lab roots.`;

class UsageError extends Error {}

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

async function verifySnp(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      report: { type: "string" },
      certs: { type: "string", multiple: true },
      product: { type: "string" },
      at: { type: "string" },
    },
    strict: true,
  });
  if (!values.report) throw new UsageError("--report is required");
  const productHint = parseProduct(values.product);
  const now = parseAt(values.at);
  const reportBytes = readReport(values.report);
  const certificates = (values.certs ?? []).flatMap((path) => certificatesFrom(new Uint8Array(readFileSync(path))));

  let parsed: SnpReport | undefined;
  try {
    parsed = parseReport(reportBytes);
  } catch {
    parsed = undefined;
  }
  try {
    const v = await verifySnpReport(reportBytes, { trust: await trustAnchors(process.env.EXTRA_TRUSTED_ARKS), productHint, certificates, now });
    print({ ok: true, ...claims(v.report, v.product, v.signer, v.reportedTcb), errors: [] });
    return 0;
  } catch (e) {
    if (!(e instanceof VerificationError)) throw e;
    const product = parsed?.cpuid ? productFromCpuid(parsed.cpuid.family, parsed.cpuid.model) : productHint;
    const tcb = parsed && product ? decodeTcb(parsed.reportedTcb, product) : undefined;
    print({ ok: false, ...claims(parsed, product, undefined, tcb), errors: [{ code: e.code, detail: e.message }] });
    return 1;
  }
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

async function main(argv: string[]): Promise<number> {
  const [command, kind, ...rest] = argv;
  try {
    if (command === "verify" && kind === "snp") return await verifySnp(rest);
    if (command === "help" || command === "--help" || command === undefined) {
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    }
    throw new UsageError(`unknown command: ${[command, kind].filter(Boolean).join(" ")}`);
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") || (e as { code?: string }).code === "ENOENT") {
      console.error(`kbs: ${(e as Error).message}\n\n${USAGE}`);
      return 2;
    }
    throw e;
  }
}

process.exitCode = await main(process.argv.slice(2));
