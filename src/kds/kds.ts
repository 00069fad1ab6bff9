import { toHex } from "../crypto/bytes";
import { pemBlocks } from "../crypto/pem";
import { VerificationError, type Product, type SignerKind, type Tcb } from "../tee/snp/types";

export const DEFAULT_KDS_URL = "https://kdsintf.amd.com";
/** AMD KDS throttles hard (one request per ~10 s per client has been reported); ask guests to wait a minute. */
const DEFAULT_RETRY_AFTER = 60;
const TIMEOUT_MS = 10_000;

/** The VCEK URL (AMD pub. 57230; docs/snp-verification.md §KDS): SPLs of REPORTED_TCB (not CURRENT_TCB, reference-kbs's bug). */
export function vcekUrl(base: string, product: Product, hwid: Uint8Array, tcb: Tcb): string {
  const params = new URLSearchParams();
  if (product === "Turin") params.set("fmcSPL", String(tcb.fmc ?? 0));
  params.set("blSPL", String(tcb.bootloader));
  params.set("teeSPL", String(tcb.tee));
  params.set("snpSPL", String(tcb.snp));
  params.set("ucodeSPL", String(tcb.microcode));
  return `${trimSlash(base)}/vcek/v1/${product}/${toHex(hwid)}?${params}`;
}

export function certChainUrl(base: string, product: Product, signer: SignerKind): string {
  return `${trimSlash(base)}/${signer === "VLEK" ? "vlek" : "vcek"}/v1/${product}/cert_chain`;
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

async function kdsGet(url: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch {
    throw new VerificationError("certs-unavailable", "AMD KDS is unreachable; retry later", { retryAfter: DEFAULT_RETRY_AFTER });
  }
  if (res.status === 429 || res.status >= 500) {
    await res.body?.cancel();
    const retryAfter = Number.parseInt(res.headers.get("retry-after") ?? "", 10);
    throw new VerificationError("certs-unavailable", `AMD KDS answered HTTP ${res.status}; retry later`, {
      retryAfter: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : DEFAULT_RETRY_AFTER,
    });
  }
  return res;
}

/** The DER VCEK, or undefined when KDS does not know this chip/TCB (HTTP 4xx). */
export async function fetchVcek(base: string, product: Product, hwid: Uint8Array, tcb: Tcb): Promise<Uint8Array | undefined> {
  const res = await kdsGet(vcekUrl(base, product, hwid, tcb));
  if (!res.ok) {
    await res.body?.cancel();
    return undefined;
  }
  return new Uint8Array(await res.arrayBuffer());
}

/** The intermediate (ASK or ASVK) and ARK as DER, from KDS's PEM cert_chain. */
export async function fetchCertChain(base: string, product: Product, signer: SignerKind): Promise<Uint8Array[]> {
  const res = await kdsGet(certChainUrl(base, product, signer));
  if (!res.ok) {
    await res.body?.cancel();
    return [];
  }
  return pemBlocks(await res.text());
}

export function crlUrl(base: string, product: Product, signer: SignerKind): string {
  return `${trimSlash(base)}/${signer === "VLEK" ? "vlek" : "vcek"}/v1/${product}/crl`;
}

/** AMD's DER CRL for a product's VCEK or VLEK side, or undefined when KDS has none (HTTP 4xx). */
export async function fetchCrl(base: string, product: Product, signer: SignerKind): Promise<Uint8Array | undefined> {
  const res = await kdsGet(crlUrl(base, product, signer));
  if (!res.ok) {
    await res.body?.cancel();
    return undefined;
  }
  return new Uint8Array(await res.arrayBuffer());
}
