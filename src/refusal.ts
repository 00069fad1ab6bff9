// Every error the KBS names, turned into what a client is told, in one place (the Worker's error handler
// and the session object both use it). An error not listed here is a bug: the caller answers a bare 500.

import { AdminAuthError } from "./auth/admin";
import { SealError } from "./crypto/seal";
import { ConfigError, Refused, TeeError, type Refusal } from "./errors";
import { VersionConflict } from "./store/secrets";
import { VerificationError } from "./tee/snp/types";

/** TEE codes that do not name a TEE on the wire. */
const UNPREFIXED: Record<string, string> = { "policy-invalid": "tee-config-invalid", "evidence-malformed": "evidence-malformed", "tee-pubkey-invalid": "tee-pubkey-invalid" };

/** Transient upstream problems: the challenge stays usable and the client may retry. */
const TRANSIENT = new Set(["certs-unavailable", "crl-unavailable"]);

/** D1 names a table it lacks only in its message. */
function missingTable(e: unknown): string | undefined {
  return /no such table: (\w+)/.exec(String((e as Error)?.message))?.[1];
}

export function refusalOf(e: unknown): Refusal | null {
  if (e instanceof Refused) return e.refusal;
  if (e instanceof TeeError) {
    if (TRANSIENT.has(e.code)) return { status: 503, code: e.code, detail: e.message, retryAfter: (e instanceof VerificationError && e.extra.retryAfter) || 60 };
    return { status: 400, code: UNPREFIXED[e.code] ?? `${e.tee}-${e.code}`, detail: e.message };
  }
  if (e instanceof ConfigError) return { status: 503, code: "kbs-misconfigured", detail: `${e.message}; tell the operator` };
  if (e instanceof SealError) return { status: 503, code: "secret-unavailable", detail: "the stored secret does not authenticate; tell the operator" };
  if (e instanceof AdminAuthError) return { status: 401, code: "admin-unauthorized", detail: `a valid admin token is required (${e.message})` };
  if (e instanceof VersionConflict) return { status: 409, code: "version-conflict", detail: "another admin changed this at the same time; retry" };
  const table = missingTable(e);
  if (table) return { status: 503, code: "kbs-misconfigured", detail: `D1 table ${table} is missing: apply the migrations; tell the operator` };
  return null;
}
