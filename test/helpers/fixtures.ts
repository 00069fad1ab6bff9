// The public AMD data the tests and the bench read (certificates, real SNP reports, legacy SEV chains),
// copied into the repository: see test/fixtures/MANIFEST.md for each file's source. A missing file is a
// test failure, never a skip.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { fromHex } from "../../src/crypto/bytes";
import { decodeCaCertificate, decodeSevCertificate } from "../../src/tee/sev/certs";
import type { SevChain } from "../../src/tee/sev/types";
import { PRODUCTS, type Product } from "../../src/tee/snp/types";

/** Absolute path of test/fixtures. */
export const FIXTURES = fileURLToPath(new URL("../fixtures", import.meta.url));

/** The bytes of a fixture, by its path under test/fixtures. */
export const fixture = (path: string) => new Uint8Array(readFileSync(resolve(FIXTURES, path)));

/** An SNP report fixture: a .hex file holds it as hex text, any other file as its 1184 bytes. */
export function reportBytes(path: string): Uint8Array {
  return path.endsWith(".hex") ? fromHex(readFileSync(resolve(FIXTURES, path), "utf8").trim()) : fixture(path);
}

/** A product as the fixtures' names and snp-reports-expected.json spell its line: "milan" → "Milan". */
export const productOf = (line: string): Product => PRODUCTS.find((p) => p.toLowerCase() === line)!;

/** A real legacy SEV chain (test/fixtures/sev-legacy): AMD's CA pair of `gen` and the platform certs `<platform>-<role>-<source>.cert`. */
export function sevLegacyChain(gen: string, platform = gen, source = "virteesev"): SevChain {
  const sev = (role: string) => decodeSevCertificate(fixture(`sev-legacy/${platform}-${role}-${source}.cert`), role);
  const ca = (role: "ark" | "ask") => decodeCaCertificate(fixture(`sev-legacy/amd-ca-${gen}-${role}.cert`));
  return { ca: { ark: ca("ark"), ask: ca("ask") }, sev: { pdh: sev("pdh"), pek: sev("pek"), oca: sev("oca"), cek: sev("cek") } };
}
