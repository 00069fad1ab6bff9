import { fromBase64Loose, toBase64 } from "./bytes";

const PEM_RE = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** Every PEM block of the given label (default CERTIFICATE) as DER bytes. */
export function pemBlocks(text: string, label = "CERTIFICATE"): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const m of text.matchAll(PEM_RE)) {
    if (m[1] === label) out.push(fromBase64Loose(m[2]!));
  }
  return out;
}

export function toPem(der: Uint8Array, label = "CERTIFICATE"): string {
  const b64 = toBase64(der).replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
