// Trust anchors: AMD's root keys are pinned by the SHA-256 of their X.509 DER (docs/snp-verification.md
// §Pinned roots), so the source carries no certificate bytes; the ARKs themselves arrive with the evidence
// or from KDS.

import { ConfigError } from "../../errors";
import { pemBlocks } from "../../crypto/pem";
import { fingerprint, parseCertificate, type Certificate } from "./x509";
import type { Product, TrustAnchors } from "./types";

export const PINNED_ARKS: ReadonlyMap<string, Product> = new Map<string, Product>([
  ["69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd", "Milan"],
  ["4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1", "Genoa"],
  ["1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a", "Turin"],
]);

/**
 * The pinned ARKs plus the ARKs listed as PEM in the operator's variable (lab/test roots), each trusted
 * only for the product its CN names (ARK-Milan: Milan), as a pinned ARK is. An empty or absent variable
 * adds nothing; text that is not a list of AMD-shaped ARKs is a configuration error.
 */
export async function trustAnchors(extraArksPem = ""): Promise<TrustAnchors> {
  const extra = new Map<string, Product>();
  if (extraArksPem.trim() !== "") {
    const begins = extraArksPem.match(/-----BEGIN /g)?.length ?? 0;
    let ders: Uint8Array[];
    try {
      ders = pemBlocks(extraArksPem);
    } catch {
      throw new ConfigError("EXTRA_TRUSTED_ARKS", "a PEM certificate has invalid base64");
    }
    if (ders.length === 0 || ders.length !== begins) {
      throw new ConfigError("EXTRA_TRUSTED_ARKS", "must be one or more complete PEM CERTIFICATE blocks");
    }
    for (const [i, der] of ders.entries()) {
      let cert: Certificate;
      try {
        cert = parseCertificate(der);
      } catch (e) {
        throw new ConfigError("EXTRA_TRUSTED_ARKS", `certificate ${i + 1} is not an AMD-style ARK (${(e as Error).message})`);
      }
      if (cert.role !== "ARK") throw new ConfigError("EXTRA_TRUSTED_ARKS", `certificate ${i + 1} is CN=${cert.subjectCn} (${cert.role}), not an ARK-<product> root`);
      extra.set(await fingerprint(der), cert.product);
    }
  }
  return { pinned: PINNED_ARKS, extra };
}
