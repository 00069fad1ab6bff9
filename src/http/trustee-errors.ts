// Refusals on the Trustee KBS protocol's surface, in Trustee's RFC 7807 shape (kbs-types ErrorInformation):
// {"type":"https://github.com/confidential-containers/kbs/errors/<Variant>","detail":"…"}.
//
// A request is on that surface once a handler or middleware marks it (trusteeSurface/markTrustee); from then
// on problemResponse (src/http/problem.ts), which app.onError, app.notFound and the body limit all use,
// renders every refusal in this shape. Refusals are still raised as edgekbs refusals (fail, Refused, TeeError
// via refusalOf): one mapping decides what happened, this file only decides how a Trustee client is told.
//
// Status: Trustee answers 404 for an unknown path and 401 for everything else, and its guest client reacts to
// 401 by redoing the handshake and to 404 by giving up. Kept as they are: 404 only for unknown paths (code
// "not-found"); statuses that a retrying client or an operator must see as such: 409 (a concurrent admin
// change; retry), 413 (the body limit), 429 (rate limits, with Retry-After), 503 (an upstream or configuration
// problem, with Retry-After when transient); the transport-level 405 and 415; and 500, which is a bug. Every
// other refusal (400, 401, 403, any other 404) becomes 401.

import type { Context, MiddlewareHandler } from "hono";
import type { Refusal } from "../errors";

/** Trustee's error variants (kbs/src/error.rs) that edgekbs answers with. */
export type TrusteeVariant =
  | "AdminAuthAccess"
  | "AttestationError"
  | "InvalidRequestPath"
  | "JweError"
  | "PluginInternalError"
  | "PolicyDeny"
  | "SerdeError"
  | "TokenNotFound"
  | "TokenVerifierError";

declare module "hono" {
  interface ContextVariableMap {
    /** Set on the Trustee surface: the variant a refusal gets unless its code names a more specific one. */
    trustee: TrusteeVariant;
  }
}

const TRUSTEE_ERROR_TYPE_PREFIX = "https://github.com/confidential-containers/kbs/errors";

/** Codes whose Trustee variant does not depend on the route. */
const VARIANT_OF_CODE: Record<string, TrusteeVariant> = {
  "not-found": "InvalidRequestPath",
  "admin-unauthorized": "AdminAuthAccess",
  "admin-forbidden": "AdminAuthAccess",
  "body-invalid": "SerdeError",
  "body-malformed": "SerdeError",
  "token-missing": "TokenNotFound",
  "token-invalid": "TokenVerifierError",
  "tee-pubkey-invalid": "JweError",
};

const KEPT_STATUSES = new Set<Refusal["status"]>([405, 409, 413, 415, 429, 500, 503]);

/** Marks the request as Trustee's: refusals from here on are rendered in its shape, `variant` by default. */
export function markTrustee(c: Context, variant: TrusteeVariant): void {
  c.set("trustee", variant);
}

/** Middleware for routes that only the Trustee protocol has. */
export function trusteeSurface(variant: TrusteeVariant): MiddlewareHandler {
  return async (c, next) => {
    markTrustee(c, variant);
    await next();
  };
}

export function isTrustee(c: Context): boolean {
  return c.get("trustee") !== undefined;
}

/** The status a Trustee client is told (see the header comment). */
function trusteeStatus(refusal: Pick<Refusal, "status" | "code">): Refusal["status"] {
  if (refusal.code === "not-found") return 404;
  return KEPT_STATUSES.has(refusal.status) ? refusal.status : 401;
}

/** The refusal as Trustee's ErrorInformation JSON. */
function trusteeProblemBody(refusal: Pick<Refusal, "code" | "detail">, defaultVariant: TrusteeVariant): string {
  const variant = VARIANT_OF_CODE[refusal.code] ?? defaultVariant;
  return JSON.stringify({ type: `${TRUSTEE_ERROR_TYPE_PREFIX}/${variant}`, detail: refusal.detail });
}

/** A refusal on a marked request, as Trustee's clients expect it: problemResponse renders it, so handlers just throw. */
export function trusteeProblem(c: Context, refusal: Refusal): { body: string; status: Refusal["status"] } {
  return { body: trusteeProblemBody(refusal, c.get("trustee") ?? "AttestationError"), status: trusteeStatus(refusal) };
}
