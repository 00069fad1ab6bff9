import { fromBase64Loose, fromHex, isHex } from "../crypto/bytes";
import { TeeError } from "../errors";
import { pemBlocks } from "../crypto/pem";
import { certificatesFrom } from "../tee/snp/certtable";

const MAX_CERTS = 8;

/**
 * Certificates a guest put in the legacy evidence's `cert_chain` string. reference-kbs ignores the field
 * (libkrun sends "[]"); we accept what real SNP tooling produces: PEM text, base64 or hex of DER or of a
 * GHCB certificate table, or a JSON list of PEM/base64 strings, byte arrays or {cert_type, data} entries
 * (virtee/sev's serde form). Throws a TeeError when the field is present but unusable: evidence-malformed
 * with a reason, or the certificate decoder's own cert-malformed; never whatever else a decoder threw.
 */
export function certificatesFromChainField(field: string): Uint8Array[] {
  try {
    return certificatesOf(field);
  } catch (e) {
    if (e instanceof TeeError) throw e;
    throw malformed("cert_chain could not be parsed");
  }
}

const malformed = (reason: string) => new TeeError("snp", "evidence-malformed", reason);

function certificatesOf(field: string): Uint8Array[] {
  const text = field.trim();
  if (text === "" || text === "[]") return [];
  let certs: Uint8Array[];
  if (text.startsWith("[")) certs = fromJsonList(text);
  else if (text.includes("-----BEGIN")) certs = pemBlocks(text);
  else if (isHex(text)) certs = certificatesFrom(fromHex(text));
  else certs = certificatesFrom(fromBase64Strict(text));
  if (certs.length === 0) throw malformed("cert_chain holds no certificate");
  if (certs.length > MAX_CERTS) throw malformed(`cert_chain holds more than ${MAX_CERTS} certificates`);
  return certs;
}

function fromBase64Strict(text: string): Uint8Array {
  try {
    return fromBase64Loose(text);
  } catch {
    throw malformed("cert_chain is not PEM, hex, base64 or a JSON list of certificates");
  }
}

function fromJsonList(text: string): Uint8Array[] {
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch {
    throw malformed("cert_chain starts with '[' but is not valid JSON");
  }
  if (!Array.isArray(list)) throw malformed("cert_chain JSON must be a list");
  return list.flatMap((item: unknown): Uint8Array[] => {
    const data = typeof item === "object" && item !== null && !Array.isArray(item) ? (item as { data?: unknown }).data : item;
    if (typeof data === "string") return data.includes("-----BEGIN") ? pemBlocks(data) : certificatesFrom(fromBase64Strict(data));
    if (Array.isArray(data) && data.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) return certificatesFrom(Uint8Array.from(data as number[]));
    throw malformed("cert_chain list entries must be PEM/base64 strings, byte arrays or {cert_type, data}");
  });
}
