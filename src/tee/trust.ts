// The operator's extra roots (EXTRA_TRUSTED_ARKS): one PEM-armoured list for both protocols, so a lab
// platform is trusted the same way whichever way its guests attest. X.509 ARKs (`CERTIFICATE`) serve
// SNP; AMD's binary SEV ARKs travel base64-encoded as `AMD SEV ARK` blocks.

import { pemBlocks, toPem } from "../crypto/pem";
import { ConfigError } from "../errors";
import { sevTrustAnchors } from "./sev/trust";
import type { SevTrustAnchors } from "./sev/types";
import { trustAnchors } from "./snp/trust";
import type { TrustAnchors } from "./snp/types";

export const SEV_ARK_PEM_LABEL = "AMD SEV ARK";
const LABELS = ["CERTIFICATE", SEV_ARK_PEM_LABEL];

export interface OperatorTrust {
  snp: TrustAnchors;
  sev: SevTrustAnchors;
}

/** Pinned AMD roots plus the operator's list; text with any other kind of block is a configuration error. */
export async function operatorTrust(extraArks = ""): Promise<OperatorTrust> {
  for (const [, label] of extraArks.matchAll(/-----BEGIN ([^-]*)-----/g)) {
    if (!LABELS.includes(label!)) throw new ConfigError("EXTRA_TRUSTED_ARKS", `unsupported block "${label}"; use ${LABELS.join(" or ")}`);
  }
  let sevArks: Uint8Array[];
  try {
    sevArks = pemBlocks(extraArks, SEV_ARK_PEM_LABEL);
  } catch {
    throw new ConfigError("EXTRA_TRUSTED_ARKS", `an ${SEV_ARK_PEM_LABEL} block has invalid base64`);
  }
  const x509 = extraArks.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  const blocks = extraArks.match(/-----BEGIN /g)?.length ?? 0;
  if (blocks !== x509.length + sevArks.length) throw new ConfigError("EXTRA_TRUSTED_ARKS", "a PEM block is not terminated by its END line");
  const [snp, sev] = await Promise.all([trustAnchors(x509.join("\n")), sevTrustAnchors(sevArks)]);
  return { snp, sev };
}

/** A binary SEV ARK as the operator lists it. */
export function sevArkPem(ark: Uint8Array): string {
  return toPem(ark, SEV_ARK_PEM_LABEL);
}
