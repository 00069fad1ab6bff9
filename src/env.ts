import type { AuditWitness } from "./audit/witness";
import type { LoginThrottle } from "./auth/throttle";
import type { AttestationSession } from "./session/session";

/** Every binding, secret and variable the Worker reads (wrangler.toml, `.dev.vars`, `wrangler secret put`). */
export interface Env {
  /** D1: workloads, measurements, TEE configs, secrets, the audit log and the AMD certificate cache (migrations/). */
  DB: D1Database;
  /** One Durable Object per attestation session; it also holds that session's audit shard. */
  SESSIONS: DurableObjectNamespace<AttestationSession>;
  /** Each audit shard's newest head, kept outside D1 (never on a guest's request path). */
  AUDIT_WITNESS: DurableObjectNamespace<AuditWitness>;
  /** Failed admin authentications per client address, checked before any credential. */
  LOGIN_THROTTLE: DurableObjectNamespace<LoginThrottle>;
  /** Workers Rate Limiting (wrangler.toml). */
  AUTH_PER_IP?: RateLimit;
  ATTEST_FAILURES_PER_WORKLOAD?: RateLimit;
  INVALID_SESSIONS_PER_IP?: RateLimit;
  /** Secret: static bearer token for the admin endpoints (compared as SHA-256, in constant time). */
  ADMIN_TOKEN?: string;
  /** JWKS JSON of the public keys (Ed25519 / EdDSA, P-256 / ES256) that sign admin JWTs. */
  ADMIN_JWT_PUBLIC_KEYS?: string;
  /** Required `iss` / `aud` of admin JWTs, when set. */
  ADMIN_JWT_ISSUER?: string;
  ADMIN_JWT_AUDIENCE?: string;
  /** Longest admin JWT lifetime accepted, `exp − iat` in seconds (default 7200, the lifetime Trustee's kbs-client signs). */
  ADMIN_JWT_MAX_TTL_SECONDS?: string;
  /** Secret: master keys that wrap the secrets' data keys, `kid:base64(32 bytes)`, comma-separated, active first. */
  KBS_MASTER_KEY?: string;
  /** Secret: a private EC P-256 JWK (JSON, with `kid`) that signs the Trustee protocol's attestation tokens (ES256). */
  TOKEN_SIGNING_KEY?: string;
  /** Base URL of AMD's Key Distribution Service (default https://kdsintf.amd.com). */
  KDS_URL?: string;
  /** Seconds a challenge may stay unanswered (default 300). */
  CHALLENGE_TTL_SECONDS?: string;
  /** Seconds an attested session may read secrets (default 10800, as reference-kbs). */
  SESSION_TTL_SECONDS?: string;
  /** What a missing or stale AMD CRL means: "best-effort" (default: accept, log the gap) or "strict" (503). */
  CRL_MODE?: string;
  /** PEM ARK certificates trusted in addition to AMD's pinned roots. Lab/test chips only: unsafe in production. */
  EXTRA_TRUSTED_ARKS?: string;
  /** Least level logged: "debug", "info" (default: one line per guest event), "warn" or "error". */
  LOG_LEVEL?: string;
}
