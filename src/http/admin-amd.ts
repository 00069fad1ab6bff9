// POST /kbs/v0/admin/amd/certificates: `kbs amd import`, for deployments that must not depend on AMD KDS. Loads AMD
// certificates and CRLs into the caches the verifier reads before KDS (src/session/cert-provider.ts, crl-source.ts).
// Admin credential (unscoped: the caches serve every workload); audited as "amd.import" with the cache keys written.
//
// Request, Content-Type: application/json (256 KiB in all); every field optional, at least one item in all:
//   {"certificates": ["<base64 DER>", …],  ARK, ASK, ASVK and VCEK certificates, any order; at most 100, each at most 8192 characters
//    "crls":         ["<base64 DER>", …],  AMD CRLs of the ASK side (KDS /vcek/v1/<product>/crl); at most 16, each at most 65536 characters
//    "vlek_crls":    ["<base64 DER>", …]}  AMD CRLs of the ASVK side (KDS /vlek/v1/<product>/crl); same bounds
// Base64 is standard and padded (RFC 4648 §4). A certificate is kept only when it chains to AMD's pinned ARK or one
// listed in EXTRA_TRUSTED_ARKS for its product (ARK → ASK/ASVK → VCEK), with its issuers in the same request or
// already cached; a CRL only when AMD's pinned ARK signed it and it is not stale. VLEKs are refused (a VLEK comes
// with its guest's evidence).
//
// Answer 200, also when items were refused (400 only when the body itself is malformed):
//   {"imported": <items cached>, "refused": [{"field": "certificates" | "crls" | "vlek_crls", "index": <i in that list>, "reason": "…"}]}

import { Hono } from "hono";
import * as z from "zod/mini";
import { commitAudited } from "../audit/admin-log";
import { config } from "../config";
import { fromBase64 } from "../crypto/bytes";
import { arkKey, cachedCertStatement, getCachedIssuers, intermediateKey, vcekKey, type CachedCert } from "../store/amd-certs";
import { cachedCrlStatement } from "../store/amd-crls";
import { checkImport, type Chained, type Refusal, type Upload } from "../tee/snp/import";
import { encodeTcb, tcbHex } from "../tee/snp/report";
import type { SignerKind } from "../tee/snp/types";
import { requireUnrestricted, type AdminEnv } from "./admin-auth";
import { jsonBody } from "./body";

export const amdAdmin = new Hono<AdminEnv>({ strict: false });

const MAX_CERTIFICATES = 100;
const MAX_CRLS = 16;
// AMD's certificates are under 2 KiB of DER, their CRLs a few KiB; the bounds leave room and stop nothing real.
const base64List = (items: number, chars: number) => z._default(z.array(z.string().check(z.maxLength(chars))).check(z.maxLength(items)), []);

export const AmdImportBody = z
  .strictObject({
    certificates: base64List(MAX_CERTIFICATES, 8192),
    crls: base64List(MAX_CRLS, 65_536),
    vlek_crls: base64List(MAX_CRLS, 65_536),
  })
  .check(z.refine((b) => b.certificates.length + b.crls.length + b.vlek_crls.length > 0, "give certificates, crls and/or vlek_crls"));

export const AmdImportAnswer = z.object({
  imported: z.number().check(z.int(), z.minimum(0)),
  refused: z.array(z.object({ field: z.string(), index: z.number().check(z.int(), z.minimum(0)), reason: z.string() })),
});

/** Where a verified certificate is cached: AMD's own chain in the product's slots, a listed root's under its fingerprint. */
function cacheRow({ cert, arkFp, pinned }: Chained): CachedCert {
  const listedArk = pinned ? undefined : arkFp;
  const key =
    cert.role === "ARK"
      ? arkKey(cert.product, listedArk)
      : cert.role === "VCEK"
        ? vcekKey(cert.product, cert.amd.hwid!, tcbHex(encodeTcb(cert.amd.spl, cert.product)))
        : intermediateKey(cert.product, cert.role === "ASVK" ? "VLEK" : "VCEK", listedArk);
  return { key, der: cert.der, notAfter: cert.notAfter };
}

amdAdmin.post("/certificates", async (c) => {
  const actor = requireUnrestricted(c).subject;
  const body = await jsonBody(c, AmdImportBody);
  const refused: Refusal[] = [];
  const decoded = (field: string, items: string[]): Upload[] =>
    items.flatMap((text, index) => {
      try {
        return [{ field, index, der: fromBase64(text) }];
      } catch {
        refused.push({ field, index, reason: "not standard padded base64" });
        return [];
      }
    });
  const crls = (field: "crls" | "vlek_crls", signer: SignerKind) => decoded(field, body[field]).map((u) => ({ ...u, signer }));
  const now = new Date();
  const { snp } = await config(c.env).trust();
  const check = await checkImport(decoded("certificates", body.certificates), [...crls("crls", "VCEK"), ...crls("vlek_crls", "VLEK")], await getCachedIssuers(c.env.DB, now), snp, now);
  refused.push(...check.refused);
  refused.sort((a, b) => (a.field === b.field ? a.index - b.index : a.field < b.field ? -1 : 1));
  const rows = check.certificates.map(cacheRow);
  await commitAudited(c.env, null, async () => ({
    statements: [...rows.map((r) => cachedCertStatement(c.env.DB, r, now)), ...check.crls.map((crl) => cachedCrlStatement(c.env.DB, crl.product, crl.signer, crl, now))],
    audit: { actor, event: "amd.import", details: { certificates: rows.map((r) => r.key), crls: check.crls.map((crl) => `${crl.product}/${crl.signer}`), refused: refused.length } },
    result: undefined,
  }));
  return c.json({ imported: rows.length + check.crls.length, refused } satisfies z.output<typeof AmdImportAnswer>);
});
