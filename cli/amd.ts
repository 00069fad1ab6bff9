// `kbs amd import`: AMD certificates and CRLs from files into the KBS's cache, for deployments that must not
// depend on AMD's KDS. The KBS keeps only what chains to a pinned or listed ARK; this side reads, sorts and sends.
import { readdirSync, statSync, type Dirent } from "node:fs";
import { join } from "node:path";
import type * as z from "zod/mini";
import { toBase64 } from "../src/crypto/bytes";
import type { AmdImportAnswer } from "../src/http/admin-amd";
import { PemError, pemBlocks } from "../src/crypto/pem";
import { parseCrl } from "../src/tee/snp/crl";
import { VerificationError } from "../src/tee/snp/types";
import { parseCertificate, type CertRole } from "../src/tee/snp/x509";
import { adminHelp, connect, CONNECTION_OPTIONS, JSON_OPTION } from "./client";
import { EXIT, fileError, parseCommand, printJson, printTable, readInput, UsageError, type Command, type Io } from "./command";

/**
 * The request fields of POST /kbs/v0/admin/amd/certificates (src/http/admin-amd.ts), with how many one request
 * carries: the KBS takes 100 certificates, but 25 (~200 ms of checks) keep the progress lines coming.
 */
const FIELDS = { certificates: 25, crls: 16, vlek_crls: 16 } as const;
type Field = keyof typeof FIELDS;

/** One certificate or CRL, where it came from, what it is and which field carries it. */
interface Item {
  source: string;
  field: Field;
  /** "Milan ASK", "Genoa VCEK", "CRL of ARK-Milan". */
  what: string;
  /** Its place in the upload: issuers before what they issue (ORDER). */
  rank: number;
  der: Uint8Array;
}

interface Outcome {
  source: string;
  what: string;
  /** null when imported. */
  refused: string | null;
}

/** Issuers before what they issue: a certificate's issuers must come in the same request or be cached already. */
const ORDER: Record<CertRole | "CRL", number> = { ARK: 0, ASK: 1, ASVK: 1, VCEK: 2, VLEK: 2, CRL: 3 };

/** Each request stays well under the KBS's 256 KiB body limit (a certificate is ~1.5 KB, ~2 KB in base64). */
const BATCH_BASE64_BYTES = 192 * 1024;

/** With this many files or more, progress goes to stderr every so many files read; and after each of several requests. */
const PROGRESS_FILES = 25;

/** The files named, directories walked (sorted, so the order is the same each run). */
function filesOf(paths: string[]): { path: string; named: boolean }[] {
  const out: { path: string; named: boolean }[] = [];
  const walk = (dir: string) => {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
    } catch (e) {
      throw new UsageError(`${dir}: ${fileError(e)}`);
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else out.push({ path, named: false });
    }
  };
  for (const path of paths) {
    let dir: boolean;
    try {
      dir = statSync(path).isDirectory();
    } catch (e) {
      throw new UsageError(`${path}: ${fileError(e)}`);
    }
    if (dir) walk(path);
    else out.push({ path, named: true });
  }
  return out;
}

/** The DER items of a file: PEM CERTIFICATE and X509 CRL blocks, or one DER certificate or CRL; null if neither. */
function dersOf(path: string, bytes: Uint8Array): { der: Uint8Array; source: string }[] | null {
  const text = new TextDecoder("latin1").decode(bytes);
  if (text.includes("-----BEGIN")) {
    let blocks: Uint8Array[];
    try {
      blocks = [...pemBlocks(text), ...pemBlocks(text, "X509 CRL")];
    } catch (e) {
      if (e instanceof PemError) throw new UsageError(`${path}: ${e.message}`);
      throw e;
    }
    if (blocks.length === 0) return null;
    return blocks.map((der, i) => ({ der, source: blocks.length > 1 ? `${path}#${i + 1}` : path }));
  }
  // Every certificate and CRL is a DER SEQUENCE.
  return bytes[0] === 0x30 ? [{ der: bytes, source: path }] : null;
}

/**
 * What a DER item is, by parsing it as the KBS will: an AMD certificate, else a CRL, else neither (the reason).
 * A CRL of the ASVK side is told apart only by where it came from: KDS serves it at /vlek/v1/<product>/crl.
 */
function classify(source: string, der: Uint8Array): Item | { source: string; refused: string } {
  let certError: string;
  try {
    const cert = parseCertificate(der);
    return { source, der, field: "certificates", what: `${cert.product} ${cert.role}`, rank: ORDER[cert.role] };
  } catch (e) {
    if (!(e instanceof VerificationError)) throw e;
    certError = e.message;
  }
  try {
    const crl = parseCrl(der);
    const vlek = /vlek/i.test(source);
    return { source, der, field: vlek ? "vlek_crls" : "crls", what: `${vlek ? "VLEK " : ""}CRL of ${crl.issuerCn ?? "an unnamed issuer"}`, rank: ORDER.CRL };
  } catch (e) {
    if (!(e instanceof VerificationError)) throw e;
    return { source, refused: `neither an AMD certificate (${certError}) nor a CRL (${e.message})` };
  }
}

/** The items, in order, cut into requests within the KBS's per-field counts and body size. */
function batches(items: Item[]): Item[][] {
  const out: Item[][] = [];
  let batch: Item[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = Math.ceil(item.der.length / 3) * 4;
    const full = bytes + size > BATCH_BASE64_BYTES || batch.filter((b) => b.field === item.field).length === FIELDS[item.field];
    if (full && batch.length > 0) {
      out.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(item);
    bytes += size;
  }
  if (batch.length > 0) out.push(batch);
  return out;
}

async function amdImport(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommand(args, { ...CONNECTION_OPTIONS, ...JSON_OPTION }, ["<file or directory>..."]);
  const files = filesOf(positionals);
  const outcomes: Outcome[] = [];
  const items: Item[] = [];
  for (const [i, { path, named }] of files.entries()) {
    if (files.length >= PROGRESS_FILES && i > 0 && i % PROGRESS_FILES === 0) io.stderr(`kbs: read ${i} of ${files.length} files\n`);
    const ders = dersOf(path, readInput("file", path));
    if (ders === null) {
      // Named, it is a mistake; met in a directory, it is another kind of file (a README, a manifest).
      if (named) throw new UsageError(`${path}: holds no PEM certificate or CRL, and is not DER`);
      io.stderr(`kbs: skipped ${path}: not a certificate or CRL\n`);
      continue;
    }
    for (const { der, source } of ders) {
      const item = classify(source, der);
      if ("refused" in item) outcomes.push({ source, what: "?", refused: item.refused });
      else items.push(item);
    }
  }
  items.sort((a, b) => a.rank - b.rank);
  if (items.length === 0 && outcomes.length === 0) throw new UsageError("no certificate or CRL in the files given");

  const parts = batches(items);
  // Nothing to send (every file refused here) needs no KBS.
  const kbs = parts.length > 0 ? connect(values, io) : undefined;
  let sent = 0;
  for (const batch of parts) {
    const fields = Object.fromEntries(Object.keys(FIELDS).map((f) => [f, batch.filter((b) => b.field === f)])) as Record<Field, Item[]>;
    const body = Object.fromEntries(Object.entries(fields).map(([f, list]) => [f, list.map((b) => toBase64(b.der))]));
    const answer = await kbs!.call<z.output<typeof AmdImportAnswer>>("POST", "/kbs/v0/admin/amd/certificates", body);
    const refused = new Map(answer.refused.map((r) => [fields[r.field as Field][r.index], r.reason]));
    for (const item of batch) outcomes.push({ source: item.source, what: item.what, refused: refused.get(item) ?? null });
    sent += batch.length;
    if (parts.length > 1) io.stderr(`kbs: sent ${sent} of ${items.length}\n`);
  }

  const refusedCount = outcomes.filter((o) => o.refused !== null).length;
  if (values.json) printJson(io, { imported: outcomes.length - refusedCount, refused: refusedCount, items: outcomes });
  else {
    printTable(io, ["FILE", "WHAT", "RESULT"], outcomes.map((o) => [o.source, o.what, o.refused === null ? "imported" : `refused: ${o.refused}`]));
    io.stdout(`${outcomes.length - refusedCount} imported, ${refusedCount} refused\n`);
  }
  return refusedCount > 0 ? EXIT.rejected : EXIT.ok;
}

export const amdCommands: Command[] = [
  {
    name: "amd import",
    synopsis: "<file or directory>... [--json]",
    summary: "load AMD ARK/ASK/ASVK/VCEK certificates and CRLs into the KBS's cache",
    help: adminHelp(
      [],
      `Reads every file named and every file under a directory named: PEM (CERTIFICATE and X509 CRL blocks) or DER
(one certificate or CRL, as KDS serves them). A CRL whose path says "vlek" (as KDS's /vlek/v1/<product>/crl)
is the ASVK side's. Sends them, issuers first, to POST /kbs/v0/admin/amd/certificates (unscoped credential),
which keeps ARK, ASK, ASVK and VCEK certificates that chain to AMD's pinned ARK or one in EXTRA_TRUSTED_ARKS,
and CRLs that AMD's own ARK signed; guests of chips whose certificates are cached then attest without KDS.
Prints one row per item; exit 1 if any was refused. Progress goes to stderr for many files.`,
    ),
    run: amdImport,
  },
];
