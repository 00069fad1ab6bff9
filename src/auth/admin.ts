// Admin credentials: the static ADMIN_TOKEN (compared as SHA-256 digests in constant time) and JWTs
// signed with EdDSA (Ed25519) or ES256 by keys in ADMIN_JWT_PUBLIC_KEYS (a JWKS). A JWT's optional
// `scope` claim limits it to workload ids under the given prefixes (multi-tenant operators).

import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTPayload } from "jose";
import { buf, utf8 } from "../crypto/bytes";

export interface AdminIdentity {
  kind: "token" | "jwt";
  /** "admin-token", or the JWT's `sub`: who did it, for the audit log. */
  subject: string;
  /** Workload-id prefixes the credential may touch; null means every workload. */
  scope: readonly string[] | null;
}

export interface AdminAuth {
  tokenDigest: Uint8Array | null;
  jwks: ReturnType<typeof createLocalJWKSet> | null;
  issuer?: string;
  audience?: string;
}

/** A credential was refused; the short reason never echoes the credential. */
export class AdminAuthError extends Error {
  override readonly name = "AdminAuthError";
}

const ALGORITHMS = ["EdDSA", "ES256"];
const CLOCK_TOLERANCE_SECONDS = 30;

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", buf(utf8(text))));
}

export async function loadAdminAuth(env: { ADMIN_TOKEN?: string; ADMIN_JWT_PUBLIC_KEYS?: string; ADMIN_JWT_ISSUER?: string; ADMIN_JWT_AUDIENCE?: string }): Promise<AdminAuth> {
  let jwks: AdminAuth["jwks"] = null;
  if (env.ADMIN_JWT_PUBLIC_KEYS?.trim()) {
    let set: JSONWebKeySet;
    try {
      set = JSON.parse(env.ADMIN_JWT_PUBLIC_KEYS) as JSONWebKeySet;
    } catch {
      throw new Error("ADMIN_JWT_PUBLIC_KEYS is not JSON (expected a JWKS {\"keys\":[…]})");
    }
    if (!Array.isArray(set?.keys) || set.keys.length === 0) throw new Error("ADMIN_JWT_PUBLIC_KEYS must be a JWKS with at least one key");
    for (const [i, k] of set.keys.entries()) {
      if ("d" in k) throw new Error(`ADMIN_JWT_PUBLIC_KEYS key ${i + 1} contains a private key`);
      if (!((k.kty === "OKP" && k.crv === "Ed25519") || (k.kty === "EC" && k.crv === "P-256"))) throw new Error(`ADMIN_JWT_PUBLIC_KEYS key ${i + 1}: only Ed25519 (EdDSA) and P-256 (ES256) keys are accepted`);
    }
    jwks = createLocalJWKSet(set);
  }
  return {
    tokenDigest: env.ADMIN_TOKEN ? await sha256(env.ADMIN_TOKEN) : null,
    jwks,
    ...(env.ADMIN_JWT_ISSUER && { issuer: env.ADMIN_JWT_ISSUER }),
    ...(env.ADMIN_JWT_AUDIENCE && { audience: env.ADMIN_JWT_AUDIENCE }),
  };
}

function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.min(a.length, b.length); i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function scopeOf(payload: JWTPayload): readonly string[] | null {
  const claim = payload.scope;
  if (claim === undefined) return null;
  const prefixes = typeof claim === "string" ? claim.split(" ").filter(Boolean) : Array.isArray(claim) && claim.every((p) => typeof p === "string") ? (claim as string[]) : null;
  if (!prefixes || prefixes.length === 0 || prefixes.some((p) => p === "")) throw new AdminAuthError("the scope claim must list workload-id prefixes");
  return prefixes;
}

function reason(e: unknown): string {
  if (e instanceof errors.JWTExpired) return "the token has expired";
  if (e instanceof errors.JWTClaimValidationFailed) return `claim ${e.claim} is invalid`;
  if (e instanceof errors.JWKSNoMatchingKey) return "no configured key matches the token";
  if (e instanceof errors.JOSEAlgNotAllowed) return "the token's algorithm is not allowed (EdDSA, ES256)";
  if (e instanceof errors.JWSSignatureVerificationFailed) return "the token's signature does not verify";
  return "the token is malformed";
}

const TOKEN_IDENTITY: AdminIdentity = { kind: "token", subject: "admin-token", scope: null };

async function matchesToken(auth: AdminAuth, presented: string): Promise<boolean> {
  return auth.tokenDigest !== null && constantTimeEqual(await sha256(presented), auth.tokenDigest);
}

/** The identity behind an `Authorization` header, or AdminAuthError. */
export async function authenticateAdmin(auth: AdminAuth, authorization: string | undefined, now = new Date()): Promise<AdminIdentity> {
  const presented = /^Bearer ([\x21-\x7e]+)$/i.exec(authorization ?? "")?.[1];
  if (!presented) throw new AdminAuthError("send Authorization: Bearer <token>");
  // Three dot-separated base64url parts: a JWT. Anything else can only be the static token.
  if (/^[\w-]+\.[\w-]+\.[\w-]+$/.test(presented) && auth.jwks) {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(presented, auth.jwks, {
        algorithms: ALGORITHMS,
        requiredClaims: ["exp", "sub"],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: now,
        ...(auth.issuer && { issuer: auth.issuer }),
        ...(auth.audience && { audience: auth.audience }),
      }));
    } catch (e) {
      // A static token may itself look like a JWT (three dotted parts); it still counts as the token.
      if (await matchesToken(auth, presented)) return TOKEN_IDENTITY;
      throw new AdminAuthError(reason(e));
    }
    // jose checks that sub is present, not what it is; it becomes the audit log's actor.
    if (typeof payload.sub !== "string" || payload.sub.trim() === "" || payload.sub.length > 256) throw new AdminAuthError("claim sub is invalid");
    return { kind: "jwt", subject: payload.sub, scope: scopeOf(payload) };
  }
  if (await matchesToken(auth, presented)) return TOKEN_IDENTITY;
  throw new AdminAuthError(auth.tokenDigest || auth.jwks ? "the token is not valid" : "no admin credential is configured");
}

export function canAccessWorkload(identity: AdminIdentity, workloadId: string): boolean {
  return identity.scope === null || identity.scope.some((p) => workloadId.startsWith(p));
}

export function isUnrestricted(identity: AdminIdentity): boolean {
  return identity.scope === null;
}
