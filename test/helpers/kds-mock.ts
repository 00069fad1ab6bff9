// A fake AMD Key Distribution Service serving synthetic chips (docs/snp-verification.md §KDS).
// Strict where the real KDS is known to be strict (hwid and SPLs must name the certified chip/TCB),
// lenient where it is lenient (parameter order, zero-padded decimals, missing SPLs mean 0).

import { toHex } from "../../src/crypto/bytes";
import { PRODUCTS, type Product } from "../../src/tee/snp/types";
import { certChainPem, hwidOf, type SyntheticChip } from "../../lab/synthetic-amd";

export type KdsFailure = "outage" | "429" | "none";

export interface KdsOptions {
  /** Default "https://kdsintf.amd.com". */
  base?: string;
  /** Initial failure mode; change it later through `mock.fail`. */
  fail?: KdsFailure;
  /** Adds `Retry-After: <seconds>` to 429 answers (whether the real KDS sends it is unknown). */
  retryAfter?: number;
}

export interface KdsMock {
  /** The answer for a KDS URL, or undefined for any other URL (so mocks can be chained). */
  respond: (request: Request) => Response | undefined;
  /** fetch-shaped wrapper around `respond`; non-KDS URLs get a 599 so a stray fetch fails loudly. */
  fetch: (input: Request | string | URL, init?: RequestInit) => Promise<Response>;
  /** Every KDS URL requested, in order (including failed ones). */
  calls: string[];
  /** Current failure mode: "outage" answers 503, "429" answers 429, "none" serves normally. */
  fail: KdsFailure;
  /** DER CRLs served at /{vcek|vlek}/v1/{product}/crl, keyed "Milan/VCEK"; anything else is a 404. */
  crls: Map<string, Uint8Array>;
}

const SPL_PARAMS = {
  blSPL: "bootloader",
  teeSPL: "tee",
  snpSPL: "snp",
  ucodeSPL: "microcode",
  fmcSPL: "fmc",
} as const;

const text = (status: number, body: string, headers: Record<string, string> = {}) =>
  new Response(body, { status, headers: { "content-type": "text/plain", ...headers } });

export function kdsResponder(chips: SyntheticChip[], opts: KdsOptions = {}): KdsMock {
  const base = (opts.base ?? "https://kdsintf.amd.com").replace(/\/+$/, "");

  const respond = (request: Request): Response | undefined => {
    if (!request.url.startsWith(`${base}/`)) return undefined;
    mock.calls.push(request.url);
    if (mock.fail === "outage") return text(503, "Service Unavailable");
    if (mock.fail === "429") {
      return text(429, "Too Many Requests", opts.retryAfter === undefined ? {} : { "retry-after": String(opts.retryAfter) });
    }
    if (request.method !== "GET") return text(405, "Method Not Allowed");

    const url = new URL(request.url);
    const m = /^\/(vcek|vlek)\/v1\/([^/]+)\/([^/]+)$/.exec(url.pathname.slice(new URL(`${base}/`).pathname.length - 1));
    if (!m || !(PRODUCTS as readonly string[]).includes(m[2]!)) return text(404, "Not Found");
    const signer = m[1] === "vcek" ? "VCEK" : "VLEK";
    const product = m[2] as Product;
    const ofKind = chips.filter((c) => c.product === product && c.signer === signer);

    if (m[3] === "crl") {
      const crl = mock.crls.get(`${product}/${signer}`);
      return crl ? new Response(Uint8Array.from(crl), { headers: { "content-type": "application/pkix-crl" } }) : text(404, "Not Found");
    }
    if (m[3] === "cert_chain") {
      const chip = ofKind[0];
      return chip
        ? new Response(certChainPem(chip), {
            headers: { "content-type": "application/x-pem-file", "cache-control": "no-cache" },
          })
        : text(404, "Not Found");
    }
    // VLEKs are not public; only VCEKs are fetched by hwid.
    if (signer !== "VCEK") return text(404, "Not Found");

    const requested: Partial<Record<(typeof SPL_PARAMS)[keyof typeof SPL_PARAMS], number>> = {};
    for (const [key, value] of url.searchParams) {
      const name = SPL_PARAMS[key as keyof typeof SPL_PARAMS];
      if (!name || (name === "fmc" && product !== "Turin") || !/^\d{1,3}$/.test(value)) return text(400, "Bad Request");
      requested[name] = Number(value);
    }
    const chip = ofKind.find(
      (c) =>
        toHex(hwidOf(c)) === m[3] &&
        (Object.values(SPL_PARAMS) as (keyof typeof requested)[]).every(
          (name) => (requested[name] ?? 0) === (c.reportedTcb[name] ?? 0),
        ),
    );
    return chip
      ? new Response(new Uint8Array(chip.vekDer), {
          headers: { "content-type": "application/pkix-cert", "cache-control": "no-cache" },
        })
      : text(404, "Not Found");
  };

  const mock: KdsMock = {
    respond,
    fetch: async (input, init) => {
      const request = new Request(input, init);
      return respond(request) ?? text(599, `not a KDS URL: ${request.url}`);
    },
    calls: [],
    fail: opts.fail ?? "none",
    crls: new Map(),
  };
  return mock;
}
