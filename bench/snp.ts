// Benchmark (Node): warm SNP verification vs one raw ECDSA P-384 verify, and the cold path, in one run.
// Ratios, not absolute times, are the point: the design target is warm ≤ 1.2 × one ECDSA verify.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { buf } from "../src/crypto/bytes";
import { certificatesFrom } from "../src/tee/snp/certtable";
import { parseReport, SIGNED_SIZE } from "../src/tee/snp/report";
import { trustAnchors } from "../src/tee/snp/trust";
import { clearVerifierCaches, verifySnpReport } from "../src/tee/snp/verify";
import { importVekKey, parseCertificate } from "../src/tee/snp/x509";
import { FIXTURES } from "../test/helpers/fixtures";
import { certificatesOf, createCrl, createSyntheticChip } from "../lab/synthetic-amd";

// Real reports and AMD certificates: the public data in test/fixtures (see test/fixtures/MANIFEST.md).
const DATA = FIXTURES;
const N = 300;

async function median(f: () => Promise<unknown>, n = N): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await f();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[Math.floor(n / 2)]!;
}

const cases = [
  { name: "Milan v2", report: "snp/milan-report-v2-virteesev.hex", vek: "snp/milan-vcek-virteesev-for-report.der", line: "milan" },
  { name: "Genoa v5", report: "oak/genoa-report-v5-oak-genoa_oc.bin", vek: "oak/genoa-vcek-oak-genoa_oc.der", line: "genoa" },
  { name: "Turin v5", report: "oak/turin-report-v5-oak-turin_oc.bin", vek: "oak/turin-vcek-oak-turin_oc.der", line: "turin" },
] as const;

const trust = await trustAnchors();
for (const c of cases) {
  const raw = readFileSync(resolve(DATA, c.report));
  const report = raw.length === 1184 ? new Uint8Array(raw) : Uint8Array.from(Buffer.from(raw.toString("utf8").trim(), "hex"));
  const certificates = [c.vek, `amd-roots/canonical/${c.line}-ask.pem`, `amd-roots/canonical/${c.line}-ark.pem`].flatMap((f) => certificatesFrom(new Uint8Array(readFileSync(resolve(DATA, f)))));
  const product = (c.line[0]!.toUpperCase() + c.line.slice(1)) as "Milan" | "Genoa" | "Turin";
  const opts = { trust, certificates, productHint: product };
  const key = await importVekKey(parseCertificate(certificates[0]!).spki);
  const { signature, bytes } = parseReport(report);
  const ecdsa = () => crypto.subtle.verify({ name: "ECDSA", hash: "SHA-384" }, key, buf(signature), buf(bytes.subarray(0, SIGNED_SIZE)));
  await median(ecdsa, 50);
  const cold = await median(async () => {
    clearVerifierCaches();
    await verifySnpReport(report, opts);
  }, 50);
  await verifySnpReport(report, opts);
  const oneEcdsa = await median(ecdsa);
  const warm = await median(() => verifySnpReport(report, opts));
  // The Worker's usual case: libkrun sends cert_chain "[]" and the VCEK comes from the verified cache.
  const warmCached = await median(() => verifySnpReport(report, { trust, productHint: product }));
  const x = (t: number) => `${t.toFixed(3)} ms (${(t / oneEcdsa).toFixed(2)}×)`;
  console.log(`${c.name}: one ECDSA P-384 verify ${oneEcdsa.toFixed(3)} ms | warm, VCEK cached ${x(warmCached)} | warm, certs supplied ${x(warm)} | cold ${cold.toFixed(2)} ms`);
}

// Revocation on the warm path: no real AMD CRL is stored, so a lab chip with its own ARK-signed CRL,
// handed over by a source as the Worker's D1 cache would (verified once, then a cache lookup).
{
  const chip = await createSyntheticChip({ product: "Milan" });
  const report = await chip.report();
  const crl = await createCrl(chip);
  const opts = { trust: await trustAnchors(chip.arkPem), certificates: certificatesOf(chip) };
  const withCrl = { ...opts, revocation: { source: { crl: async () => crl }, mode: "strict" as const } };
  const key = await importVekKey(parseCertificate(chip.vekDer).spki);
  const { signature, bytes } = parseReport(report);
  const ecdsa = () => crypto.subtle.verify({ name: "ECDSA", hash: "SHA-384" }, key, buf(signature), buf(bytes.subarray(0, SIGNED_SIZE)));
  await median(ecdsa, 50);
  await verifySnpReport(report, withCrl);
  const oneEcdsa = await median(ecdsa);
  const warm = await median(() => verifySnpReport(report, opts));
  const warmCrl = await median(() => verifySnpReport(report, withCrl));
  const x = (t: number) => `${t.toFixed(3)} ms (${(t / oneEcdsa).toFixed(2)}×)`;
  console.log(`Milan lab chip: one ECDSA P-384 verify ${oneEcdsa.toFixed(3)} ms | warm, certs supplied ${x(warm)} | warm + cached CRL ${x(warmCrl)}`);
}
