// AMD's SEV-format ARKs, pinned by the SHA-256 of the AMD CA files (ask_ark_<gen>.cert), so a client
// can no longer bring its own root as reference-kbs allowed. The source carries hashes, not certificates.

import { ConfigError } from "../../errors";
import { sha256, toHex } from "../../crypto/bytes";
import { caCanonicalBytes, decodeCaCertificate } from "./certs";
import { SevError, Usage, type AmdCaCertificate, type Generation, type SevTrustAnchors } from "./types";

/** The Naples ARK exactly as AMD publishes it: 576 bytes, without its signature (AMDESE/AMDSEV#17). */
export const NAPLES_ARK_AS_PUBLISHED = "8efddcaaf84990cf6354d93637be270220cf15797332b3d918c3b8cc77349f31";

export const PINNED_SEV_ARKS: ReadonlyMap<string, Generation> = new Map<string, Generation>([
  ["dedabca561e1dece8cc00b7bda864cf5f20b95017864408cfe18eaee0dce24b9", "Naples"],
  [NAPLES_ARK_AS_PUBLISHED, "Naples"],
  ["865977b268c16d5b27772b00aaefb4e737ba9499e818ed8e9f65b0cecefbc529", "Rome"],
  ["1246469862b78a7a8625579b0378d1f8e975eb8b82a1623b579d7968a5969888", "Milan"],
  ["8f4e3fd36589c23f1fe0c8338465bac7e2e066d97fc92f228bbee4fd356fb674", "Genoa"],
  ["f6405e5096a6eee1eb7d5df75c49f9b9f7c8357a31c7fff150149d68588a7bf7", "Turin"],
]);

/** SHA-256 (lowercase hex) of the ARK's meaningful bytes: the AMD file, without sev's 1600-byte padding. */
export async function arkFingerprint(ark: AmdCaCertificate): Promise<string> {
  return toHex(await sha256(caCanonicalBytes(ark)));
}

/** The pinned ARKs plus operator-listed ones (binary SEV ARKs, e.g. of a lab platform). */
export async function sevTrustAnchors(extraArks: Uint8Array[]): Promise<SevTrustAnchors> {
  const extra = new Set<string>();
  for (const [i, bytes] of extraArks.entries()) {
    const what = `extra SEV ARK ${i + 1}`;
    let ark: AmdCaCertificate;
    try {
      ark = decodeCaCertificate(bytes, what);
    } catch (e) {
      throw new ConfigError("EXTRA_TRUSTED_ARKS", (e as SevError).message);
    }
    if (ark.usage !== Usage.ARK) throw new ConfigError("EXTRA_TRUSTED_ARKS", `${what} has usage 0x${ark.usage.toString(16)}, not ARK (0x0)`);
    // Told now rather than by every /auth under it: the chain verifier trusts no other unsigned ARK.
    if (!ark.signature) throw new ConfigError("EXTRA_TRUSTED_ARKS", `${what} has no self-signature; only AMD's published Naples ARK (pinned) may lack it`);
    extra.add(await arkFingerprint(ark));
  }
  return { pinned: PINNED_SEV_ARKS, extra };
}
