// Certificates that travel with SNP evidence: the GHCB extended-report certificate table (SNP_GET_EXT_REPORT,
// configfs-tsm auxblob), PEM text, or a single DER certificate (docs/snp-verification.md §Certificate table).

import { toHex } from "../../crypto/bytes";
import { PemError, pemBlocks } from "../../crypto/pem";
import { VerificationError } from "./types";

/** GUIDs of the table entries that hold certificates (RFC 4122 byte order = string order). */
export const CERT_TABLE_GUIDS = {
  ARK: "c0b406a4-a803-4952-9743-3fb6014cd0ae",
  ASK: "4ab7b379-bbac-4fe4-a02f-05aef327c782", // also used for the ASVK
  VCEK: "63da758d-e664-4564-adc5-f4b93be8accd",
  VLEK: "a8074bc2-a25a-483e-aae6-39c045a0b8a1",
} as const;

const CERT_GUIDS: ReadonlySet<string> = new Set(Object.values(CERT_TABLE_GUIDS));
const ENTRY_SIZE = 24;

export interface CertTableEntry {
  guid: string;
  /** The blob as stored: DER, or PEM text on some hosts. */
  data: Uint8Array;
}

function malformed(reason: string): never {
  throw new VerificationError("cert-malformed", `certificate table: ${reason}`);
}

function guidString(b: Uint8Array): string {
  const h = toHex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Entries `GUID | offset u32 LE | length u32 LE` up to an all-zero entry; offsets count from the table start. */
export function parseCertTable(bytes: Uint8Array): CertTableEntry[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headers: { guid: string; offset: number; length: number }[] = [];
  for (let at = 0; ; at += ENTRY_SIZE) {
    if (at + ENTRY_SIZE > bytes.length) malformed("no terminating all-zero entry");
    const guid = bytes.subarray(at, at + 16);
    const offset = dv.getUint32(at + 16, true);
    const length = dv.getUint32(at + 20, true);
    if (offset === 0 && length === 0 && guid.every((b) => b === 0)) break;
    headers.push({ guid: guidString(guid), offset, length });
  }
  const tableEnd = (headers.length + 1) * ENTRY_SIZE;
  return headers.map(({ guid, offset, length }) => {
    if (offset < tableEnd || offset + length > bytes.length) malformed(`entry ${guid} points outside the data`);
    return { guid, data: bytes.slice(offset, offset + length) };
  });
}

/** The bytes as PEM text (comment lines allowed, trailing NUL padding ignored), or undefined if they are binary. */
function pemText(bytes: Uint8Array): string | undefined {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  for (let i = 0; i < end; i++) {
    const b = bytes[i]!;
    if (b > 0x7e || (b < 0x20 && (b < 0x09 || b > 0x0d))) return undefined;
  }
  const text = new TextDecoder().decode(bytes.subarray(0, end));
  return text.includes("-----BEGIN") ? text : undefined;
}

/** Length of the definite-length DER SEQUENCE at the start of `b`, or undefined if it does not start with one. */
function derSequenceLength(b: Uint8Array): number | undefined {
  if (b.length < 2 || b[0] !== 0x30) return undefined;
  const first = b[1]!;
  if (first < 0x80) return 2 + first;
  const n = first & 0x7f;
  if (n === 0 || n > 4 || b.length < 2 + n) return undefined;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + b[2 + i]!;
  return 2 + n + len;
}

/** The CERTIFICATE blocks of PEM text (others are skipped); one without its END line is refused, not skipped. */
function pemCertificates(text: string): Uint8Array[] {
  let ders: Uint8Array[];
  try {
    ders = pemBlocks(text);
  } catch (e) {
    if (e instanceof PemError) throw new VerificationError("cert-malformed", `PEM: ${e.message}`);
    throw e;
  }
  if (ders.length !== text.split("-----BEGIN CERTIFICATE-----").length - 1) throw new VerificationError("cert-malformed", "PEM: a CERTIFICATE block has no END line");
  return ders;
}

/**
 * DER certificates from evidence bytes that are PEM text (one or more certificates), one DER
 * certificate, or a GHCB certificate table (entries other than ARK/ASK/VCEK/VLEK are skipped).
 */
export function certificatesFrom(bytes: Uint8Array): Uint8Array[] {
  if (bytes.length === 0) return [];
  const text = pemText(bytes);
  if (text !== undefined) return pemCertificates(text);
  const derLength = derSequenceLength(bytes);
  if (derLength === bytes.length) return [Uint8Array.from(bytes)];
  let entries: CertTableEntry[];
  try {
    entries = parseCertTable(bytes);
  } catch (e) {
    // A truncated certificate, or one with bytes after it, is no table either; saying only the latter would mislead.
    if (derLength === undefined || !(e instanceof VerificationError)) throw e;
    throw new VerificationError("cert-malformed", `DER certificate: its header says ${derLength} bytes, the input has ${bytes.length} (read as a ${e.message})`);
  }
  const out: Uint8Array[] = [];
  for (const { guid, data } of entries) {
    if (!CERT_GUIDS.has(guid)) continue;
    const blobText = pemText(data);
    if (blobText !== undefined) {
      out.push(...pemCertificates(blobText));
      continue;
    }
    // Hosts may pad blobs (e.g. to page size); the DER header says where the certificate ends.
    const len = derSequenceLength(data);
    if (len === undefined || len > data.length) malformed(`entry ${guid} is neither PEM nor DER`);
    out.push(data.slice(0, len));
  }
  return out;
}
