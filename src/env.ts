import type { AuditLog } from "./audit/log";
import type { AttestationSession } from "./session/session";

/** Every binding, secret and variable the Worker reads (wrangler.toml, `.dev.vars`, `wrangler secret put`). */
export interface Env {
  /** D1: workloads, measurements, TEE configs, secrets and the AMD certificate cache (schema.sql). */
  DB: D1Database;
  /** One Durable Object per attestation session. */
  SESSIONS: DurableObjectNamespace<AttestationSession>;
  /** Workers Rate Limiting (wrangler.toml): /auth per client IP and per workload, admin auth failures per IP. */
  AUTH_PER_IP?: RateLimit;
  AUTH_PER_WORKLOAD?: RateLimit;
  ADMIN_FAILURES_PER_IP?: RateLimit;
  /** Secret: static bearer token for the admin endpoints (compared as SHA-256, in constant time). */
  ADMIN_TOKEN?: string;
  /** JWKS JSON of the public keys (Ed25519 / EdDSA, P-256 / ES256) that sign admin JWTs. */
  ADMIN_JWT_PUBLIC_KEYS?: string;
  /** Required `iss` / `aud` of admin JWTs, when set. */
  ADMIN_JWT_ISSUER?: string;
  ADMIN_JWT_AUDIENCE?: string;
  /** Secret: master keys that wrap the secrets' data keys, `kid:base64(32 bytes)`, comma-separated, active first. */
  KBS_MASTER_KEY?: string;
  /** The audit log writer: one Durable Object instance serialises every append. */
  AUDIT: DurableObjectNamespace<AuditLog>;
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
}
