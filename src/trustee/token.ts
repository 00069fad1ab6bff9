// The Trustee protocol's attestation token: an EAR (EAT Attestation Result, draft-fv-rats-ear) JWT in the
// shape Trustee's attestation service issues, so resource policies written for Trustee read the same claims.
// Signed ES256 with TOKEN_SIGNING_KEY; its public half is served as JWKS at /kbs/v0/.well-known/jwks.json.
//
// Beyond EAR, the claim "edgekbs" names what edgekbs itself needs to authorise a resource request that comes
// with the token alone (Authorization: Bearer): the workload and generation it attested as, and the session
// object that issued it. The token routes the request to that object, which re-checks that it is still alive,
// attested and at that generation, and that it issued this very token.

import { importJWK, jwtVerify, SignJWT, type JWK } from "jose";
import * as z from "zod/mini";
import { ConfigError, Refused } from "../errors";

const EAR_PROFILE = "tag:github.com,2023:veraison/ear";
const TOKEN_ISSUER = "edgekbs";

export interface TokenKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  /** What the JWKS lists. */
  publicJwk: JWK;
}

const b64url = z.string().check(z.regex(/^[A-Za-z0-9_-]+$/));
const PrivateJwk = z.object({ kty: z.literal("EC"), crv: z.literal("P-256"), x: b64url, y: b64url, d: b64url, kid: z.string().check(z.minLength(1), z.maxLength(128)) });

/** TOKEN_SIGNING_KEY: a private EC P-256 JWK (JSON) with a `kid`. Checked by signing once, so a pair that does not match is caught here. */
export async function loadTokenKey(text: string | undefined): Promise<TokenKey> {
  const problem = (what: string) => new ConfigError("TOKEN_SIGNING_KEY", what);
  if (!text?.trim()) throw problem("not set: expected a private EC P-256 JWK with a kid (npm start generates one)");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw problem("not JSON: expected a private EC P-256 JWK with a kid");
  }
  const parsed = PrivateJwk.safeParse(json);
  if (!parsed.success) throw problem("expected a private EC P-256 JWK with kty, crv, x, y, d and kid");
  const { kid, crv, x, y, d } = parsed.data;
  const publicJwk: JWK = { kty: "EC", crv, x, y, kid, alg: "ES256", use: "sig" };
  try {
    const key: TokenKey = {
      kid,
      privateKey: (await importJWK({ kty: "EC", crv, x, y, d }, "ES256")) as CryptoKey,
      publicKey: (await importJWK({ kty: "EC", crv, x, y }, "ES256")) as CryptoKey,
      publicJwk,
    };
    await jwtVerify(await new SignJWT({}).setProtectedHeader({ alg: "ES256" }).sign(key.privateKey), key.publicKey);
    return key;
  } catch {
    throw problem("not a usable P-256 key pair (d must belong to x, y)");
  }
}

/** What the session decided; the token states it in EAR's terms. */
export interface AttestationResult {
  issuedAt: Date;
  /** The session's deadline: the token is worth no more than the session behind it. */
  expiresAt: number;
  workloadId: string;
  generation: number;
  /** The session object's id (hex), for routing a Bearer request back to it. */
  session: string;
  /** `ear.veraison.annotated-evidence`: the TEE's claims, runtime_data_claims, init_data_claims. */
  annotatedEvidence: Record<string, unknown>;
}

/**
 * AR4SI trustworthiness claims an affirming SNP appraisal supports: genuine AMD hardware with an accepted
 * TCB (hardware 2), the registered launch measurement (executables 2), the workload's policy (configuration
 * 2), a chip-signed report bound to this session (instance-identity 2), encrypted guest memory
 * (runtime-opaque 2). File system, storage and sourced data are not assessed and are left out (no claim).
 */
const AFFIRMING_VECTOR = { "instance-identity": 2, configuration: 2, executables: 2, hardware: 2, "runtime-opaque": 2 };

export function signAttestationToken(key: TokenKey, r: AttestationResult): Promise<string> {
  return new SignJWT({
    eat_profile: EAR_PROFILE,
    "ear.verifier-id": { developer: "https://github.com/edgekbs", build: "edgekbs" },
    submods: {
      cpu0: {
        "ear.status": "affirming",
        "ear.trustworthiness-vector": AFFIRMING_VECTOR,
        "ear.appraisal-policy-id": `edgekbs:workload/${r.workloadId}#${r.generation}`,
        "ear.veraison.annotated-evidence": r.annotatedEvidence,
      },
    },
    edgekbs: { workload_id: r.workloadId, generation: r.generation, session: r.session },
  })
    .setProtectedHeader({ alg: "ES256", typ: "JWT", kid: key.kid })
    .setIssuer(TOKEN_ISSUER)
    .setIssuedAt(r.issuedAt)
    .setExpirationTime(Math.floor(r.expiresAt / 1000))
    .sign(key.privateKey);
}

const EdgekbsClaims = z.object({ edgekbs: z.object({ session: z.string().check(z.regex(/^[0-9a-f]{64}$/)) }) });

/** A Bearer token we issued and that has not expired: the session object that issued it. */
export async function tokenSession(key: TokenKey, token: string): Promise<string> {
  const invalid = (why: string) => new Refused({ status: 401, code: "token-invalid", detail: `the attestation token ${why}; attest again` });
  let payload: unknown;
  try {
    ({ payload } = await jwtVerify(token, key.publicKey, { algorithms: ["ES256"], issuer: TOKEN_ISSUER, requiredClaims: ["exp"] }));
  } catch (e) {
    throw invalid((e as { code?: string }).code === "ERR_JWT_EXPIRED" ? "has expired" : "does not verify against this KBS's key");
  }
  const claims = EdgekbsClaims.safeParse(payload);
  if (!claims.success) throw invalid("names no edgekbs session");
  return claims.data.edgekbs.session;
}
