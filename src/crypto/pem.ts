import { fromBase64Loose, toBase64 } from "./bytes";

const PEM_RE = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** A PEM block whose body is not base64. Callers turn it into their own refusal (evidence, CRL, configuration). */
export class PemError extends Error {
  override readonly name = "PemError";
}

/** Every PEM block of the given label (default CERTIFICATE) as DER bytes; throws PemError on a body that is not base64. */
export function pemBlocks(text: string, label = "CERTIFICATE"): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const m of text.matchAll(PEM_RE)) {
    if (m[1] !== label) continue;
    try {
      out.push(fromBase64Loose(m[2]!));
    } catch {
      throw new PemError(`a ${label} block has invalid base64`);
    }
  }
  return out;
}

export function toPem(der: Uint8Array, label = "CERTIFICATE"): string {
  const b64 = toBase64(der).replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
