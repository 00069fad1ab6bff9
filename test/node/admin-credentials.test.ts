// Admin credentials (src/auth/admin.ts): the static ADMIN_TOKEN, EdDSA / ES256 JWTs from a JWKS, the
// 30 s clock tolerance, the required iat and the longest accepted lifetime (ADMIN_JWT_MAX_TTL_SECONDS),
// algorithm and key confusion, issuer / audience, subjects ("token" vs "jwt:<iss>/<percent-escaped sub>", and
// "jwt-key:<thumbprint>" for Trustee kbs-client's sub-less tokens),
// scope entries (exact ids, and prefixes ending in a separator), JWKS loading, and refusals that never
// echo the presented credential.

import { createHash } from "node:crypto";
import fc from "fast-check";
import { CompactSign, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type JWTPayload } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { AdminAuthError, authenticateAdmin, canAccessWorkload, isUnrestricted, loadAdminAuth, scopeCovers, type AdminAuth, type AdminIdentity } from "../../src/auth/admin";
import { adminJwt, kbsClientToken, testJwtSigners, type JwtSigner } from "../helpers/admin-jwt";

const STATIC_TOKEN = "static-admin-token-5f2c9a1e7b3d";
/** A fixed instant, so expiry is checked through the `now` parameter rather than the wall clock. */
const T0 = 1_900_000_000;
const at = (seconds: number) => new Date(seconds * 1000);

let ed: JwtSigner;
let es: JwtSigner;
let jwksOnly: AdminAuth;

const b64u = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");

/** A JWT with exactly these claims and header fields, signed by the signer's private key. */
async function signedExactly(signer: JwtSigner, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  const key = await importJWK(signer.privateJwk, signer.alg);
  return new SignJWT(claims).setProtectedHeader({ alg: signer.alg, kid: signer.kid, ...header }).sign(key);
}

/**
 * Like signedExactly, but with the iat every admin JWT must carry: 60 s before a numeric exp (T0 when exp
 * is missing or not a number) unless the claims give their own.
 */
async function signed(signer: JwtSigner, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  const iat = typeof claims.exp === "number" ? claims.exp - 60 : T0;
  return signedExactly(signer, { iat, ...claims }, header);
}

/** Another key pair of the same algorithm, under the given kid: not in the JWKS. */
async function stranger(alg: "EdDSA" | "ES256", kid: string): Promise<JwtSigner> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === "EdDSA" && { crv: "Ed25519" }) });
  return { alg, kid, publicJwk: { ...(await exportJWK(publicKey)), kid, alg }, privateJwk: { ...(await exportJWK(privateKey)), kid, alg } };
}

const jwks = (...keys: JWK[]) => JSON.stringify({ keys });

/** The AdminAuthError an authentication is refused with; asserts the presented token is not echoed. */
async function refusal(auth: AdminAuth, header: string | undefined, now?: Date): Promise<string> {
  let caught: unknown;
  try {
    await authenticateAdmin(auth, header, now);
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${header?.slice(0, 40)} to be refused`).toBeInstanceOf(AdminAuthError);
  const message = (caught as Error).message;
  expect(message.length).toBeGreaterThan(0);
  const token = header?.replace(/^\S+\s+/, "") ?? "";
  if (token.length >= 8) expect(message).not.toContain(token);
  // Nor any recognisable part of a JWT (header, claims, signature).
  for (const part of token.split(".")) if (part.length >= 8) expect(message).not.toContain(part);
  if (message.includes(STATIC_TOKEN)) throw new Error("the static token was echoed");
  return message;
}

beforeAll(async () => {
  [ed, es] = (await testJwtSigners()) as [JwtSigner, JwtSigner];
  expect([ed.alg, es.alg]).toEqual(["EdDSA", "ES256"]);
  jwksOnly = await loadAdminAuth({ ADMIN_JWT_PUBLIC_KEYS: jwks(ed.publicJwk, es.publicJwk) });
});

describe("static ADMIN_TOKEN", () => {
  let auth: AdminAuth;
  beforeAll(async () => {
    auth = await loadAdminAuth({ ADMIN_TOKEN: STATIC_TOKEN });
  });

  it("the right token is the unrestricted identity with subject \"token\"", async () => {
    const who = await authenticateAdmin(auth, `Bearer ${STATIC_TOKEN}`);
    expect(who).toEqual({ kind: "token", subject: "token", scope: null });
    expect(isUnrestricted(who)).toBe(true);
    expect(canAccessWorkload(who, "anything")).toBe(true);
    // The scheme is case-insensitive (RFC 9110 §11.1).
    expect((await authenticateAdmin(auth, `bearer ${STATIC_TOKEN}`)).kind).toBe("token");
    expect((await authenticateAdmin(auth, `BEARER ${STATIC_TOKEN}`)).kind).toBe("token");
  });

  it.each([
    ["a wrong token", "Bearer not-the-admin-token"],
    ["a prefix of the token", `Bearer ${STATIC_TOKEN.slice(0, -1)}`],
    ["the token plus one character", `Bearer ${STATIC_TOKEN}x`],
    ["the token in another case", `Bearer ${STATIC_TOKEN.toUpperCase()}`],
    ["the token twice", `Bearer ${STATIC_TOKEN}${STATIC_TOKEN}`],
  ])("refuses %s", async (_name, header) => {
    expect(await refusal(auth, header)).toBe("the token is not valid");
  });

  it.each([
    ["no header", undefined],
    ["an empty header", ""],
    ["Basic credentials", `Basic ${Buffer.from(`admin:${STATIC_TOKEN}`).toString("base64")}`],
    ["another scheme with the right token", `Token ${STATIC_TOKEN}`],
    ["the bare token without a scheme", STATIC_TOKEN],
    ["Bearer with no token", "Bearer"],
    ["Bearer and a space", "Bearer "],
    ["two spaces after Bearer", `Bearer  ${STATIC_TOKEN}`],
    ["a leading space", ` Bearer ${STATIC_TOKEN}`],
    ["a trailing space", `Bearer ${STATIC_TOKEN} `],
    ["a trailing newline", `Bearer ${STATIC_TOKEN}\n`],
    ["a second token", `Bearer ${STATIC_TOKEN} ${STATIC_TOKEN}`],
    ["a non-ASCII character", `Bearer ${STATIC_TOKEN}é`],
  ])("refuses %s as a malformed header", async (_name, header) => {
    expect(await refusal(auth, header)).toBe("send Authorization: Bearer <token>");
  });

  it("a JWT is not accepted when only the static token is configured", async () => {
    expect(await refusal(auth, `Bearer ${await adminJwt(ed)}`)).toBe("the token is not valid");
  });
});

describe("no credential configured", () => {
  it("refuses everything, saying so", async () => {
    const none = await loadAdminAuth({});
    expect(none).toMatchObject({ tokenDigest: null, jwks: null });
    for (const token of [STATIC_TOKEN, await adminJwt(ed), "a.b.c", ""]) {
      expect(await refusal(none, `Bearer ${token}`)).toMatch(token ? /no admin credential is configured/ : /Bearer <token>/);
    }
    // Blank values count as not configured.
    const blank = await loadAdminAuth({ ADMIN_TOKEN: "", ADMIN_JWT_PUBLIC_KEYS: "   " });
    expect(await refusal(blank, `Bearer ${STATIC_TOKEN}`)).toMatch(/no admin credential is configured/);
  });
});

describe("JWTs", () => {
  it("both signers' tokens are accepted as kind jwt with subject jwt:<iss>/<escaped sub> (no iss: empty)", async () => {
    for (const signer of [ed, es]) {
      const who = await authenticateAdmin(jwksOnly, `Bearer ${await adminJwt(signer, { sub: `ops-${signer.alg}@example` })}`);
      // sub is percent-escaped (encodeURIComponent): "@" becomes "%40".
      expect(who).toEqual({ kind: "jwt", subject: `jwt:/ops-${signer.alg}%40example`, scope: null });
      expect(isUnrestricted(who)).toBe(true);
    }
  });

  it("work alongside the static token", async () => {
    const both = await loadAdminAuth({ ADMIN_TOKEN: STATIC_TOKEN, ADMIN_JWT_PUBLIC_KEYS: jwks(ed.publicJwk, es.publicJwk) });
    expect((await authenticateAdmin(both, `Bearer ${STATIC_TOKEN}`)).kind).toBe("token");
    expect((await authenticateAdmin(both, `Bearer ${await adminJwt(es, { sub: "x" })}`)).subject).toBe("jwt:/x");
    expect(await refusal(both, "Bearer wrong")).toBe("the token is not valid");
  });

  describe("expiry and the 30 s clock tolerance", () => {
    it.each([
      // Issued an hour before exp: within the default 7200 s limit, so only expiry decides.
      ["long before exp", -3600, true],
      ["1 s before exp", -1, true],
      ["at exp", 0, true],
      ["29 s after exp", 29, true],
      ["30 s after exp", 30, false],
      ["31 s after exp", 31, false],
      ["an hour after exp", 3600, false],
    ])("%s", async (_name, offset, ok) => {
      for (const signer of [ed, es]) {
        const token = await signed(signer, { sub: "ops", iat: T0 - 3600, exp: T0 });
        const now = at(T0 + offset);
        if (ok) expect((await authenticateAdmin(jwksOnly, `Bearer ${token}`, now)).subject).toBe("jwt:/ops");
        else expect(await refusal(jwksOnly, `Bearer ${token}`, now)).toBe("the token has expired");
      }
    });

    it("the wall clock is the default `now`", async () => {
      await expect(authenticateAdmin(jwksOnly, `Bearer ${await adminJwt(ed, { exp: -31 })}`)).rejects.toThrow("expired");
      expect((await authenticateAdmin(jwksOnly, `Bearer ${await adminJwt(ed, { exp: -5 })}`)).kind).toBe("jwt");
    });

    it("a token not yet valid (nbf beyond the tolerance) is refused", async () => {
      const token = await signed(ed, { sub: "ops", iat: T0, exp: T0 + 3600, nbf: T0 + 60 });
      expect(await refusal(jwksOnly, `Bearer ${token}`, at(T0))).toBe("claim nbf is invalid");
      expect((await authenticateAdmin(jwksOnly, `Bearer ${token}`, at(T0 + 31))).kind).toBe("jwt");
    });

    it("a non-numeric exp is refused", async () => {
      const token = await signed(ed, { sub: "ops", iat: T0, exp: `${T0 + 60}` as unknown as number });
      expect(await refusal(jwksOnly, `Bearer ${token}`, at(T0))).toMatch(/exp/);
    });
  });

  it("a token without exp is refused", async () => {
    for (const signer of [ed, es]) {
      expect(await refusal(jwksOnly, `Bearer ${await adminJwt(signer, { exp: null })}`)).toBe("claim exp is invalid");
    }
  });

  describe("without sub: Trustee's kbs-client shape, named by the verifying key", () => {
    /** RFC 7638 computed here with node:crypto, independently of jose: SHA-256 of the required members in order. */
    const thumbprint = (jwk: JWK) => {
      const required = jwk.kty === "OKP" ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
      return createHash("sha256").update(JSON.stringify(required)).digest("base64url");
    };

    it("a kbs-client token is accepted, unrestricted, as jwt-key:<thumbprint of the key that verified it>", async () => {
      const token = await kbsClientToken(ed, T0);
      const [header, claims] = token.split(".").slice(0, 2).map((p) => JSON.parse(Buffer.from(p, "base64url").toString()) as Record<string, unknown>);
      expect(header).toEqual({ alg: "EdDSA", typ: "JWT" });
      expect(claims).toEqual({ iat: T0, exp: T0 + 7200, nbf: T0 });
      for (const when of [T0, T0 + 3600, T0 + 7200]) {
        expect(await authenticateAdmin(jwksOnly, `Bearer ${token}`, at(when))).toEqual({ kind: "jwt", subject: `jwt-key:${thumbprint(ed.publicJwk)}`, scope: null });
      }
      // Signed just now, checked against the wall clock, as kbs-client's tokens are.
      expect((await authenticateAdmin(jwksOnly, `Bearer ${await kbsClientToken(ed, Math.floor(Date.now() / 1000))}`)).subject).toBe(`jwt-key:${thumbprint(ed.publicJwk)}`);
      // ES256 tokens of that shape too, named by the P-256 key.
      expect((await authenticateAdmin(jwksOnly, `Bearer ${await kbsClientToken(es, T0)}`, at(T0))).subject).toBe(`jwt-key:${thumbprint(es.publicJwk)}`);
    });

    it("with several keys of its algorithm and no kid, the key whose signature holds is the signer", async () => {
      const second = await stranger("EdDSA", "second-ed");
      const two = await loadAdminAuth({ ADMIN_JWT_PUBLIC_KEYS: jwks(ed.publicJwk, es.publicJwk, second.publicJwk) });
      expect((await authenticateAdmin(two, `Bearer ${await kbsClientToken(ed, T0)}`, at(T0))).subject).toBe(`jwt-key:${thumbprint(ed.publicJwk)}`);
      expect((await authenticateAdmin(two, `Bearer ${await kbsClientToken(second, T0)}`, at(T0))).subject).toBe(`jwt-key:${thumbprint(second.publicJwk)}`);
      expect(thumbprint(second.publicJwk)).not.toBe(thumbprint(ed.publicJwk));
      // Signed by neither: every candidate was tried and none verifies.
      expect(await refusal(two, `Bearer ${await kbsClientToken(await stranger("EdDSA", "x"), T0)}`, at(T0))).toBe("the token's signature does not verify");
      // Not by a key that is not configured either.
      expect(await refusal(jwksOnly, `Bearer ${await kbsClientToken(second, T0)}`, at(T0))).toBe("the token's signature does not verify");
    });

    it("keeps every other rule: nbf, exp, iat, the lifetime limit, the algorithms", async () => {
      const token = await kbsClientToken(ed, T0);
      expect(await refusal(jwksOnly, `Bearer ${token}`, at(T0 - 31))).toBe("claim nbf is invalid");
      expect(await refusal(jwksOnly, `Bearer ${token}`, at(T0 + 7200 + 30))).toBe("the token has expired");
      expect(await refusal(jwksOnly, `Bearer ${await kbsClientToken(ed, T0, 7201)}`, at(T0))).toBe("the token lives longer than 7200 s (exp - iat)");
      // An operator who lowers the limit below 2 h shuts kbs-client out, and is told why.
      const hour = await loadAdminAuth({ ADMIN_JWT_PUBLIC_KEYS: jwks(ed.publicJwk), ADMIN_JWT_MAX_TTL_SECONDS: "3600" });
      expect(await refusal(hour, `Bearer ${token}`, at(T0))).toBe("the token lives longer than 3600 s (exp - iat)");
      expect(await refusal(jwksOnly, `Bearer ${await signedExactly(ed, { iat: T0, nbf: T0 })}`, at(T0))).toBe("claim exp is invalid");
      expect(await refusal(jwksOnly, `Bearer ${await signedExactly(ed, { exp: T0 + 60, nbf: T0 })}`, at(T0))).toBe("claim iat is invalid");
      const hs = await new SignJWT({ iat: T0, exp: T0 + 60 }).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(new Uint8Array(32).fill(7));
      expect(await refusal(jwksOnly, `Bearer ${hs}`, at(T0))).toBe("the token's algorithm is not allowed (EdDSA, ES256)");
    });

    it("a scope claim still limits it", async () => {
      const who = await authenticateAdmin(jwksOnly, `Bearer ${await signedExactly(ed, { iat: T0, exp: T0 + 60, scope: "tenant-a." })}`, at(T0));
      expect(who).toEqual({ kind: "jwt", subject: `jwt-key:${thumbprint(ed.publicJwk)}`, scope: ["tenant-a."] });
      expect([canAccessWorkload(who, "tenant-a.web"), canAccessWorkload(who, "tenant-b.web")]).toEqual([true, false]);
    });

    it("a sub that is present must be valid: empty, blank, null or not a string is refused", async () => {
      for (const sub of ["", "   ", null, 42, ["ops"]]) {
        const token = await signedExactly(ed, { iat: T0, exp: T0 + 60, sub } as unknown as JWTPayload);
        expect(await refusal(jwksOnly, `Bearer ${token}`, at(T0))).toBe("claim sub is invalid");
      }
    });

    it("cannot pass for a token with a sub, nor one with a sub for it", async () => {
      const keyActor = (await authenticateAdmin(jwksOnly, `Bearer ${await kbsClientToken(ed, T0)}`, at(T0))).subject;
      const mimic = await authenticateAdmin(jwksOnly, `Bearer ${await signed(ed, { sub: keyActor, iss: "jwt-key", iat: T0, exp: T0 + 60 })}`, at(T0));
      expect(mimic.subject).toBe(`jwt:jwt-key/${encodeURIComponent(keyActor)}`);
      expect(mimic.subject).not.toBe(keyActor);
      // With the static token configured too, a sub-less JWT is still a JWT, never "token".
      const both = await loadAdminAuth({ ADMIN_TOKEN: STATIC_TOKEN, ADMIN_JWT_PUBLIC_KEYS: jwks(ed.publicJwk) });
      expect((await authenticateAdmin(both, `Bearer ${await kbsClientToken(ed, T0)}`, at(T0))).kind).toBe("jwt");
    });
  });

  describe("keys", () => {
    it("a token signed by another key under a configured kid is refused", async () => {
      for (const signer of [ed, es]) {
        const impostor = await stranger(signer.alg, signer.kid);
        expect(await refusal(jwksOnly, `Bearer ${await adminJwt(impostor)}`)).toBe("the token's signature does not verify");
      }
    });

    it("a token under an unknown kid is refused", async () => {
      for (const signer of [ed, es]) {
        const impostor = await stranger(signer.alg, `${signer.kid}-other`);
        expect(await refusal(jwksOnly, `Bearer ${await adminJwt(impostor)}`)).toBe("no configured key matches the token");
      }
    });

    it("a token whose header points at the other algorithm's kid is refused", async () => {
      const token = await signed(es, { sub: "ops", iat: T0, exp: T0 + 60 }, { kid: ed.kid });
      expect(await refusal(jwksOnly, `Bearer ${token}`, at(T0))).toBe("no configured key matches the token");
    });

    it("a token from a key that was removed from the JWKS is refused", async () => {
      const onlyEs = await loadAdminAuth({ ADMIN_JWT_PUBLIC_KEYS: jwks(es.publicJwk) });
      expect(await refusal(onlyEs, `Bearer ${await adminJwt(ed)}`)).toBe("no configured key matches the token");
      expect((await authenticateAdmin(onlyEs, `Bearer ${await adminJwt(es)}`)).kind).toBe("jwt");
    });

    it("a token with a changed claim or a changed signature is refused", async () => {
      for (const signer of [ed, es]) {
        const [h, p, s] = (await signed(signer, { sub: "ops", iat: T0, exp: T0 + 60 })).split(".") as [string, string, string];
        const forgedClaims = b64u({ sub: "root", iat: T0, exp: T0 + 60 });
        expect(await refusal(jwksOnly, `Bearer ${h}.${forgedClaims}.${s}`, at(T0))).toBe("the token's signature does not verify");
        const sig = Buffer.from(s, "base64url");
        sig[5]! ^= 1;
        expect(await refusal(jwksOnly, `Bearer ${h}.${p}.${sig.toString("base64url")}`, at(T0))).toBe("the token's signature does not verify");
      }
    });
  });

  describe("algorithms", () => {
    const claims = { sub: "ops", iat: T0, exp: T0 + 60 };

    it("an HS256 token is refused, including one keyed with the public key's bytes (key confusion)", async () => {
      const secrets = [new Uint8Array(32).fill(1), new TextEncoder().encode(JSON.stringify(ed.publicJwk)), Buffer.from(ed.publicJwk.x!, "base64url"), new TextEncoder().encode(es.publicJwk.x!)];
      for (const kid of [ed.kid, es.kid]) {
        for (const secret of secrets) {
          const token = await new SignJWT(claims).setProtectedHeader({ alg: "HS256", kid }).sign(secret);
          expect(await refusal(jwksOnly, `Bearer ${token}`, at(T0))).toBe("the token's algorithm is not allowed (EdDSA, ES256)");
        }
      }
    });

    it("RS256 and other ECDSA curves are refused", async () => {
      const rsa = await generateKeyPair("RS256");
      const rs = await new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: ed.kid }).sign(rsa.privateKey);
      expect(await refusal(jwksOnly, `Bearer ${rs}`, at(T0))).toBe("the token's algorithm is not allowed (EdDSA, ES256)");
      const p384 = await generateKeyPair("ES384");
      const es384 = await new SignJWT(claims).setProtectedHeader({ alg: "ES384", kid: es.kid }).sign(p384.privateKey);
      expect(await refusal(jwksOnly, `Bearer ${es384}`, at(T0))).toBe("the token's algorithm is not allowed (EdDSA, ES256)");
    });

    it("alg none is refused, with an empty or a made-up signature", async () => {
      for (const alg of ["none", "None", "NONE"]) {
        const unsigned = `${b64u({ alg, kid: ed.kid, typ: "JWT" })}.${b64u(claims)}`;
        for (const token of [`${unsigned}.`, `${unsigned}.AAAA`, unsigned]) {
          const message = await refusal(jwksOnly, `Bearer ${token}`, at(T0));
          expect(message).toMatch(/not valid|not allowed|malformed/);
        }
      }
      // Even when a static token is configured, an unsigned JWT is not mistaken for anything valid.
      const both = await loadAdminAuth({ ADMIN_TOKEN: STATIC_TOKEN, ADMIN_JWT_PUBLIC_KEYS: jwks(ed.publicJwk) });
      await refusal(both, `Bearer ${b64u({ alg: "none" })}.${b64u(claims)}.`, at(T0));
    });

    it("a token with a header that is not JSON, or claims that are not an object, is refused as malformed", async () => {
      const sig = (await signed(ed, claims)).split(".")[2]!;
      expect(await refusal(jwksOnly, `Bearer ${Buffer.from("not json").toString("base64url")}.${b64u(claims)}.${sig}`, at(T0))).toBe("the token is malformed");
      // Correctly signed, but the claims are a JSON array.
      const arrayClaims = await new CompactSign(new TextEncoder().encode(JSON.stringify([claims]))).setProtectedHeader({ alg: "EdDSA", kid: ed.kid }).sign(await importJWK(ed.privateJwk, "EdDSA"));
      expect(await refusal(jwksOnly, `Bearer ${arrayClaims}`, at(T0))).toBe("the token is malformed");
    });
  });

  describe("issuer and audience", () => {
    const base = { sub: "ops", iat: T0, exp: T0 + 60 };

    it("are not checked when not configured", async () => {
      for (const extra of [{}, { iss: "https://anyone.example" }, { aud: "whatever" }, { iss: "x", aud: ["a", "b"] }] as { iss?: string; aud?: string | string[] }[]) {
        expect((await authenticateAdmin(jwksOnly, `Bearer ${await signed(ed, { ...base, ...extra })}`, at(T0))).subject).toBe(`jwt:${extra.iss ?? ""}/ops`);
      }
    });

    it("the issuer is enforced when configured", async () => {
      const auth = await loadAdminAuth({ ADMIN_JWT_PUBLIC_KEYS: jwks(ed.publicJwk, es.publicJwk), ADMIN_JWT_ISSUER: "https://idp.example" });
      expect((await authenticateAdmin(auth, `Bearer ${await signed(es, { ...base, iss: "https://idp.example" })}`, at(T0))).kind).toBe("jwt");
      for (const iss of [undefined, "https://evil.example", "https://idp.example/", "HTTPS://IDP.EXAMPLE"]) {
        const token = await signed(es, { ...base, ...(iss !== undefined && { iss }) });
        expect(await refusal(auth, `Bearer ${token}`, at(T0))).toBe("claim iss is invalid");
      }
    });

    it("the audience is enforced when configured (a string, or an array containing it)", async () => {
      const auth = await loadAdminAuth({ ADMIN_JWT_PUBLIC_KEYS: jwks(ed.publicJwk), ADMIN_JWT_AUDIENCE: "edgekbs-admin" });
      for (const aud of ["edgekbs-admin", ["other", "edgekbs-admin"]]) {
        expect((await authenticateAdmin(auth, `Bearer ${await signed(ed, { ...base, aud })}`, at(T0))).kind).toBe("jwt");
      }
      for (const aud of [undefined, "edgekbs", "edgekbs-admin-2", ["other"], []]) {
        const token = await signed(ed, { ...base, ...(aud !== undefined && { aud }) });
        expect(await refusal(auth, `Bearer ${token}`, at(T0))).toBe("claim aud is invalid");
      }
    });

    it("both at once", async () => {
      const auth = await loadAdminAuth({ ADMIN_JWT_PUBLIC_KEYS: jwks(ed.publicJwk), ADMIN_JWT_ISSUER: "idp", ADMIN_JWT_AUDIENCE: "kbs" });
      expect((await authenticateAdmin(auth, `Bearer ${await signed(ed, { ...base, iss: "idp", aud: "kbs" })}`, at(T0))).kind).toBe("jwt");
      await refusal(auth, `Bearer ${await signed(ed, { ...base, iss: "idp" })}`, at(T0));
      await refusal(auth, `Bearer ${await signed(ed, { ...base, aud: "kbs" })}`, at(T0));
      await refusal(auth, `Bearer ${await signed(ed, { ...base, iss: "kbs", aud: "idp" })}`, at(T0));
    });
  });

  describe("scope", () => {
    async function identity(scope: unknown): Promise<AdminIdentity> {
      return authenticateAdmin(jwksOnly, `Bearer ${await signed(ed, { sub: "tenant-ops", iat: T0, exp: T0 + 60, scope })}`, at(T0));
    }

    it.each([
      ["a space-separated string", "tenant-a. shared-"],
      ["a string with extra spaces", "  tenant-a.   shared-  "],
      ["an array", ["tenant-a.", "shared-"]],
    ])("as %s: prefix semantics", async (_name, scope) => {
      const who = await identity(scope);
      expect(who.scope).toEqual(["tenant-a.", "shared-"]);
      expect(isUnrestricted(who)).toBe(false);
      const access = (id: string) => canAccessWorkload(who, id);
      expect(access("tenant-a.web")).toBe(true);
      expect(access("tenant-a.db.replica")).toBe(true);
      expect(access("tenant-a.")).toBe(true); // the exact id of a prefix
      expect(access("shared-cache")).toBe(true);
      expect(access("tenant-b.web")).toBe(false);
      expect(access("tenant-a")).toBe(false);
      expect(access("xtenant-a.web")).toBe(false);
      expect(access("TENANT-A.web")).toBe(false);
      expect(access("shared")).toBe(false);
      expect(access("")).toBe(false);
    });

    it("a scope naming one exact workload id", async () => {
      const who = await identity("wl-7");
      expect(who.scope).toEqual(["wl-7"]);
      expect(canAccessWorkload(who, "wl-7")).toBe(true);
      expect(canAccessWorkload(who, "wl-")).toBe(false);
      expect(canAccessWorkload(who, "wl-8")).toBe(false);
    });

    it("an entry not ending in a separator is one exact id: \"web\" covers \"web\" but not \"webhook-prod\"", async () => {
      const who = await identity("web");
      expect(who.scope).toEqual(["web"]);
      for (const id of ["webhook-prod", "webhook", "web-prod", "web.a", "web_", "we", "Web", ""]) expect(canAccessWorkload(who, id), id).toBe(false);
      expect(canAccessWorkload(who, "web")).toBe(true);
      expect([scopeCovers("web", "web"), scopeCovers("web", "webhook-prod"), scopeCovers("web", "web-prod")]).toEqual([true, false, false]);
    });

    it("an entry ending in a separator is a prefix: \"web-\" covers \"web-prod\", \"web.\" covers \"web.a\"", async () => {
      const dash = await identity("web-");
      expect(canAccessWorkload(dash, "web-prod")).toBe(true);
      expect(canAccessWorkload(dash, "web-")).toBe(true);
      for (const id of ["web", "webhook-prod", "web.prod", "xweb-prod"]) expect(canAccessWorkload(dash, id), id).toBe(false);
      const dot = await identity(["web."]);
      expect(canAccessWorkload(dot, "web.a")).toBe(true);
      expect(canAccessWorkload(dot, "web.a.b")).toBe(true);
      for (const id of ["web", "web-a", "weba", "webhook-prod"]) expect(canAccessWorkload(dot, id), id).toBe(false);
      expect([scopeCovers("web-", "web-prod"), scopeCovers("web.", "web.a"), scopeCovers("web.", "web")]).toEqual([true, true, false]);
    });

    it.each([..."._~:@+-"])("%s is a separator: an entry ending in it is a prefix", (sep) => {
      expect(scopeCovers(`t${sep}`, `t${sep}x`)).toBe(true);
      expect(scopeCovers(`t${sep}`, `t${sep}`)).toBe(true);
      expect(scopeCovers(`t${sep}`, "t")).toBe(false);
      expect(scopeCovers(`t${sep}`, "tx")).toBe(false);
      // Without the separator the entry is exact.
      expect(scopeCovers("t", `t${sep}x`)).toBe(false);
    });

    it.each(["/", "*", "0", "a", "=", "#"])("an entry ending in %s (not a separator) is exact, not a prefix or a wildcard", (end) => {
      expect(scopeCovers(`web${end}`, `web${end}`)).toBe(true);
      expect(scopeCovers(`web${end}`, `web${end}x`)).toBe(false);
      expect(scopeCovers(`web${end}`, `web${end}-prod`)).toBe(false);
    });

    it("several entries: any one of them grants access", async () => {
      const who = await identity("web tenant-a. db");
      expect(["web", "tenant-a.x", "db"].map((id) => canAccessWorkload(who, id))).toEqual([true, true, true]);
      expect(["webhook", "tenant-b.x", "db-1", "tenant-a"].map((id) => canAccessWorkload(who, id))).toEqual([false, false, false, false]);
    });

    it.each([
      ["an empty string", ""],
      ["only spaces", "   "],
      ["an empty array", []],
      ["an array with an empty prefix", ["tenant-a.", ""]],
      ["an array with a non-string", ["tenant-a.", 7]],
      ["a number", 42],
      ["null", null],
      ["an object", { prefix: "tenant-a." }],
      ["true", true],
    ])("%s is refused", async (_name, scope) => {
      const token = await signed(ed, { sub: "tenant-ops", iat: T0, exp: T0 + 60, scope });
      expect(await refusal(jwksOnly, `Bearer ${token}`, at(T0))).toBe("the scope claim must list workload ids or id prefixes");
    });

    it("the static token and unscoped JWTs are unrestricted", async () => {
      expect(isUnrestricted({ kind: "token", subject: "token", scope: null })).toBe(true);
      const who = await identity(undefined);
      expect(who.scope).toBeNull();
      expect(isUnrestricted(who)).toBe(true);
      expect(canAccessWorkload(who, "any-workload")).toBe(true);
    });
  });
});

describe("subjects", () => {
  it("the static token is \"token\", a JWT is \"jwt:<iss>/<sub>\"", async () => {
    const both = await loadAdminAuth({ ADMIN_TOKEN: STATIC_TOKEN, ADMIN_JWT_PUBLIC_KEYS: jwks(ed.publicJwk, es.publicJwk) });
    expect(await authenticateAdmin(both, `Bearer ${STATIC_TOKEN}`)).toEqual({ kind: "token", subject: "token", scope: null });
    expect((await authenticateAdmin(both, `Bearer ${await signed(ed, { sub: "ops@example", iat: T0, exp: T0 + 60 })}`, at(T0))).subject).toBe("jwt:/ops%40example");
    expect((await authenticateAdmin(both, `Bearer ${await signed(es, { sub: "ops@example", iss: "https://idp.example", iat: T0, exp: T0 + 60 })}`, at(T0))).subject).toBe("jwt:https://idp.example/ops%40example");
  });

  it("a JWT whose sub is \"token\" (or \"admin-token\") cannot pass for the static token", async () => {
    const both = await loadAdminAuth({ ADMIN_TOKEN: STATIC_TOKEN, ADMIN_JWT_PUBLIC_KEYS: jwks(ed.publicJwk, es.publicJwk) });
    for (const auth of [both, jwksOnly]) {
      for (const signer of [ed, es]) {
        const who = await authenticateAdmin(auth, `Bearer ${await signed(signer, { sub: "token", iat: T0, exp: T0 + 60 })}`, at(T0));
        expect(who).toEqual({ kind: "jwt", subject: "jwt:/token", scope: null });
        expect(who.subject).not.toBe("token");
        const legacy = await authenticateAdmin(auth, `Bearer ${await signed(signer, { sub: "admin-token", iat: T0, exp: T0 + 60 })}`, at(T0));
        expect(legacy.subject).toBe("jwt:/admin-token");
        // Nor with an issuer that tries to look like it.
        const withIss = await authenticateAdmin(auth, `Bearer ${await signed(signer, { sub: "token", iss: "token", iat: T0, exp: T0 + 60 })}`, at(T0));
        expect(withIss.subject).toBe("jwt:token/token");
      }
    }
  });

  it("the same sub from two issuers gives two subjects", async () => {
    const a = await authenticateAdmin(jwksOnly, `Bearer ${await signed(ed, { sub: "ops", iss: "https://a.example", iat: T0, exp: T0 + 60 })}`, at(T0));
    const b = await authenticateAdmin(jwksOnly, `Bearer ${await signed(ed, { sub: "ops", iss: "https://b.example", iat: T0, exp: T0 + 60 })}`, at(T0));
    expect(a.subject).toBe("jwt:https://a.example/ops");
    expect(b.subject).toBe("jwt:https://b.example/ops");
  });

  const subjectOf = async (claims: JWTPayload) => (await authenticateAdmin(jwksOnly, `Bearer ${await signed(ed, { iat: T0, exp: T0 + 60, ...claims })}`, at(T0))).subject;

  it("a sub holding \"/\" is escaped, so the last \"/\" always separates iss from sub", async () => {
    expect(await subjectOf({ sub: "t/x" })).toBe("jwt:/t%2Fx");
    expect(await subjectOf({ sub: "a/b/c", iss: "https://idp.example/tenant" })).toBe("jwt:https://idp.example/tenant/a%2Fb%2Fc");
    expect(await subjectOf({ sub: "/", iss: "i" })).toBe("jwt:i/%2F");
    // Other reserved characters and spaces are escaped too; unreserved ones are kept.
    expect(await subjectOf({ sub: "ops team%20?#&=" })).toBe("jwt:/ops%20team%2520%3F%23%26%3D");
    expect(await subjectOf({ sub: "ops-1_a.b~c" })).toBe("jwt:/ops-1_a.b~c");
  });

  it("a sub holding control or non-ASCII characters is escaped: the subject has none", async () => {
    expect(await subjectOf({ sub: "ops\nFORGED audit line" })).toBe("jwt:/ops%0AFORGED%20audit%20line");
    expect(await subjectOf({ sub: "a\u0000b\rc\td\u001be\u007f" })).toBe("jwt:/a%00b%0Dc%09d%1Be%7F");
    expect(await subjectOf({ sub: "zoë\u2028" })).toBe("jwt:/zo%C3%AB%E2%80%A8");
  });

  it("the ambiguous pair (iss \"https://idp.example/t\", sub \"x\") and (iss \"https://idp.example\", sub \"t/x\") gives two subjects", async () => {
    const a = await subjectOf({ iss: "https://idp.example/t", sub: "x" });
    const b = await subjectOf({ iss: "https://idp.example", sub: "t/x" });
    expect(a).toBe("jwt:https://idp.example/t/x");
    expect(b).toBe("jwt:https://idp.example/t%2Fx");
    expect(a).not.toBe(b);
    // Likewise without an iss: ("", "a/b") and ("a", "b") no longer both read "jwt:a/b".
    expect(await subjectOf({ sub: "a/b" })).not.toBe(await subjectOf({ iss: "a", sub: "b" }));
  });

  it("property: iss and sub can be read back from the subject, so no two (iss, sub) pairs share one", async () => {
    // Well-formed text (lone surrogates are refused); iss without control characters (refused too).
    const sub = fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }).filter((s) => s.trim() !== "");
    const iss = fc.option(fc.string({ unit: "grapheme", maxLength: 40 }).filter((s) => !/[\x00-\x1f\x7f]/.test(s)), { nil: undefined });
    await fc.assert(
      fc.asyncProperty(iss, sub, async (iss, sub) => {
        const subject = await subjectOf({ sub, ...(iss !== undefined && { iss }) });
        const split = subject.lastIndexOf("/");
        expect(subject.slice(0, split)).toBe(`jwt:${iss ?? ""}`);
        expect(decodeURIComponent(subject.slice(split + 1))).toBe(sub);
        expect(subject.slice(split + 1)).toMatch(/^[\w.!~*'()%-]+$/);
      }),
      { numRuns: 100 },
    );
  });

  it("an iss with control characters and a sub with a lone surrogate are refused (both become the audit actor)", async () => {
    for (const [claims, message] of [
      [{ sub: "ops", iss: "idp\n2024 fake" }, "claim iss is invalid"],
      [{ sub: "ops\ud800" }, "claim sub is invalid"],
    ] as const) {
      const token = await signed(ed, { ...claims, iat: T0, exp: T0 + 60 } as JWTPayload);
      expect(await refusal(jwksOnly, `Bearer ${token}`, at(T0))).toBe(message);
    }
  });

  it.each([
    ["a number", 42],
    ["an object", { url: "https://idp.example" }],
    ["an array", ["https://idp.example"]],
    ["null", null],
    ["true", true],
  ])("a non-string iss (%s) is refused", async (_name, iss) => {
    for (const signer of [ed, es]) {
      const token = await signed(signer, { sub: "ops", iat: T0, exp: T0 + 60, iss } as unknown as JWTPayload);
      expect(await refusal(jwksOnly, `Bearer ${token}`, at(T0))).toBe("claim iss is invalid");
    }
    // Also when an issuer is configured, and alongside the static token.
    const withIssuer = await loadAdminAuth({ ADMIN_TOKEN: STATIC_TOKEN, ADMIN_JWT_PUBLIC_KEYS: jwks(ed.publicJwk), ADMIN_JWT_ISSUER: "https://idp.example" });
    expect(await refusal(withIssuer, `Bearer ${await signed(ed, { sub: "ops", iat: T0, exp: T0 + 60, iss } as unknown as JWTPayload)}`, at(T0))).toBe("claim iss is invalid");
  });
});

describe("lifetime (ADMIN_JWT_MAX_TTL_SECONDS)", () => {
  const tooLong = (ttl: number) => `the token lives longer than ${ttl} s (exp - iat)`;

  it("defaults to 7200 s (kbs-client's fixed 2 h): exp - iat = 7200 is accepted, 7201 refused", async () => {
    expect(jwksOnly.maxTtlSeconds).toBe(7200);
    for (const signer of [ed, es]) {
      expect((await authenticateAdmin(jwksOnly, `Bearer ${await signed(signer, { sub: "ops", iat: T0, exp: T0 + 7200 })}`, at(T0))).kind).toBe("jwt");
      expect(await refusal(jwksOnly, `Bearer ${await signed(signer, { sub: "ops", iat: T0, exp: T0 + 7201 })}`, at(T0))).toBe(tooLong(7200));
      expect(await refusal(jwksOnly, `Bearer ${await signed(signer, { sub: "ops", iat: T0, exp: T0 + 86_400 * 365 })}`, at(T0))).toBe(tooLong(7200));
    }
  });

  it("counts from iat, not from now: a long-lived token is refused even near its end", async () => {
    const token = await signed(ed, { sub: "ops", iat: T0, exp: T0 + 7201 });
    // Only 1 s left, yet it was issued for 7201 s.
    expect(await refusal(jwksOnly, `Bearer ${token}`, at(T0 + 7200))).toBe(tooLong(7200));
  });

  it("a token without iat is refused, however short its life", async () => {
    for (const signer of [ed, es]) {
      for (const exp of [T0 + 1, T0 + 60, T0 + 7200, T0 + 7201]) {
        const token = await signedExactly(signer, { sub: "ops", exp });
        expect(await refusal(jwksOnly, `Bearer ${token}`, at(T0))).toBe("claim iat is invalid");
      }
      // Also with scope, issuer and audience all right, and with the static token configured too.
      const full = await loadAdminAuth({ ADMIN_TOKEN: STATIC_TOKEN, ADMIN_JWT_PUBLIC_KEYS: jwks(ed.publicJwk, es.publicJwk), ADMIN_JWT_ISSUER: "idp", ADMIN_JWT_AUDIENCE: "kbs" });
      const token = await signedExactly(signer, { sub: "ops", iss: "idp", aud: "kbs", exp: T0 + 60, scope: "web" });
      expect(await refusal(full, `Bearer ${token}`, at(T0))).toBe("claim iat is invalid");
      // The same token with an iat is accepted.
      expect((await authenticateAdmin(full, `Bearer ${await signedExactly(signer, { sub: "ops", iss: "idp", aud: "kbs", iat: T0, exp: T0 + 60, scope: "web" })}`, at(T0))).subject).toBe("jwt:idp/ops");
    }
  });

  it.each([
    ["a string", `${T0}`],
    ["null", null],
    ["an object", { t: T0 }],
    ["true", true],
  ])("a token whose iat is %s is refused", async (_name, iat) => {
    const token = await signedExactly(ed, { sub: "ops", exp: T0 + 60, iat } as unknown as JWTPayload);
    expect(await refusal(jwksOnly, `Bearer ${token}`, at(T0))).toBe("claim iat is invalid");
  });

  it("a future iat does not stretch the lifetime", async () => {
    // exp - iat is exactly 7200, but iat is 600 s ahead: counted from now the token lives 7800 s.
    const ahead = await signed(ed, { sub: "ops", iat: T0 + 600, exp: T0 + 7800 });
    expect(await refusal(jwksOnly, `Bearer ${ahead}`, at(T0))).toBe(tooLong(7200));
    expect(await refusal(jwksOnly, `Bearer ${await signed(ed, { sub: "ops", iat: T0 + 86_400, exp: T0 + 86_400 + 60 })}`, at(T0))).toBe(tooLong(7200));
    // Once iat is reached, it counts from iat again.
    expect((await authenticateAdmin(jwksOnly, `Bearer ${ahead}`, at(T0 + 600))).kind).toBe("jwt");
    // A future iat within the limit counted from now is fine.
    expect((await authenticateAdmin(jwksOnly, `Bearer ${await signed(ed, { sub: "ops", iat: T0 + 600, exp: T0 + 900 })}`, at(T0))).kind).toBe("jwt");
  });

  it("ADMIN_JWT_MAX_TTL_SECONDS=60 is respected", async () => {
    const short = await loadAdminAuth({ ADMIN_JWT_PUBLIC_KEYS: jwks(ed.publicJwk, es.publicJwk), ADMIN_JWT_MAX_TTL_SECONDS: "60" });
    expect(short.maxTtlSeconds).toBe(60);
    for (const signer of [ed, es]) {
      expect((await authenticateAdmin(short, `Bearer ${await signed(signer, { sub: "ops", iat: T0, exp: T0 + 60 })}`, at(T0))).kind).toBe("jwt");
      expect(await refusal(short, `Bearer ${await signed(signer, { sub: "ops", iat: T0, exp: T0 + 61 })}`, at(T0))).toBe(tooLong(60));
      expect(await refusal(short, `Bearer ${await signedExactly(signer, { sub: "ops", exp: T0 + 30 })}`, at(T0))).toBe("claim iat is invalid");
      expect(await refusal(short, `Bearer ${await signed(signer, { sub: "ops", iat: T0 + 30, exp: T0 + 90 })}`, at(T0))).toBe(tooLong(60));
      // The helper's 300 s tokens are too long here, and fine under the default.
      expect(await refusal(short, `Bearer ${await adminJwt(signer)}`)).toBe(tooLong(60));
      expect((await authenticateAdmin(jwksOnly, `Bearer ${await adminJwt(signer)}`)).kind).toBe("jwt");
    }
    // A longer limit admits what the default refuses.
    const long = await loadAdminAuth({ ADMIN_JWT_PUBLIC_KEYS: jwks(ed.publicJwk), ADMIN_JWT_MAX_TTL_SECONDS: "86400" });
    expect((await authenticateAdmin(long, `Bearer ${await signed(ed, { sub: "ops", iat: T0, exp: T0 + 86_400 })}`, at(T0))).kind).toBe("jwt");
    expect(await refusal(long, `Bearer ${await signed(ed, { sub: "ops", iat: T0, exp: T0 + 86_401 })}`, at(T0))).toBe(tooLong(86_400));
  });

  it("does not apply to the static token", async () => {
    const both = await loadAdminAuth({ ADMIN_TOKEN: STATIC_TOKEN, ADMIN_JWT_PUBLIC_KEYS: jwks(ed.publicJwk), ADMIN_JWT_MAX_TTL_SECONDS: "1" });
    expect((await authenticateAdmin(both, `Bearer ${STATIC_TOKEN}`)).subject).toBe("token");
  });
});

describe("loadAdminAuth", () => {
  it("ADMIN_JWT_MAX_TTL_SECONDS: unset or blank means 7200", async () => {
    for (const value of [undefined, "", "   "]) {
      expect((await loadAdminAuth({ ADMIN_JWT_PUBLIC_KEYS: jwks(ed.publicJwk), ...(value !== undefined && { ADMIN_JWT_MAX_TTL_SECONDS: value }) })).maxTtlSeconds).toBe(7200);
    }
    expect((await loadAdminAuth({ ADMIN_TOKEN: STATIC_TOKEN })).maxTtlSeconds).toBe(7200);
  });

  it.each(["0", "-60", "1.5", "sixty", "60s", "NaN", "Infinity", "1e400", "true"])("ADMIN_JWT_MAX_TTL_SECONDS=%s throws", async (value) => {
    await expect(loadAdminAuth({ ADMIN_JWT_PUBLIC_KEYS: jwks(ed.publicJwk), ADMIN_JWT_MAX_TTL_SECONDS: value })).rejects.toThrow("ADMIN_JWT_MAX_TTL_SECONDS: must be a positive whole number of seconds");
    await expect(loadAdminAuth({ ADMIN_TOKEN: STATIC_TOKEN, ADMIN_JWT_MAX_TTL_SECONDS: value })).rejects.toThrow(/ADMIN_JWT_MAX_TTL_SECONDS/);
  });

  it("records the issuer and audience only when set", async () => {
    const plain = await loadAdminAuth({ ADMIN_JWT_PUBLIC_KEYS: jwks(ed.publicJwk) });
    expect("issuer" in plain || "audience" in plain).toBe(false);
    const full = await loadAdminAuth({ ADMIN_JWT_PUBLIC_KEYS: jwks(ed.publicJwk), ADMIN_JWT_ISSUER: "i", ADMIN_JWT_AUDIENCE: "a" });
    expect(full).toMatchObject({ issuer: "i", audience: "a" });
    expect(full.tokenDigest).toBeNull();
  });

  it("keeps only a digest of the static token", async () => {
    const auth = await loadAdminAuth({ ADMIN_TOKEN: STATIC_TOKEN });
    expect(auth.tokenDigest).toBeInstanceOf(Uint8Array);
    expect(auth.tokenDigest!.length).toBe(32);
    expect(Buffer.from(auth.tokenDigest!).toString("latin1")).not.toContain(STATIC_TOKEN);
    expect(JSON.stringify(auth)).not.toContain(STATIC_TOKEN);
  });

  it.each([
    ["non-JSON", "not json", /not JSON/],
    ["a truncated JWKS", '{"keys":[', /not JSON/],
    ["JSON null", "null", /at least one key/],
    ["an array", "[]", /at least one key/],
    ["no keys member", "{}", /at least one key/],
    ["keys not an array", '{"keys":{}}', /at least one key/],
    ["an empty key list", '{"keys":[]}', /at least one key/],
  ])("throws for %s", async (_name, value, message) => {
    await expect(loadAdminAuth({ ADMIN_JWT_PUBLIC_KEYS: value })).rejects.toThrow(message);
  });

  it("throws for a JWKS holding a private key, without echoing it", async () => {
    for (const signer of [ed, es]) {
      const e = await loadAdminAuth({ ADMIN_JWT_PUBLIC_KEYS: jwks(es.publicJwk, signer.privateJwk) }).catch((x: unknown) => x as Error);
      expect(e).toBeInstanceOf(Error);
      expect((e as Error).message).toMatch(/key 2 contains a private key/);
      expect((e as Error).message).not.toContain(signer.privateJwk.d!);
    }
  });

  it("throws for RSA, symmetric and other-curve keys", async () => {
    const rsa = { ...(await exportJWK((await generateKeyPair("RS256", { extractable: true })).publicKey)), kid: "rsa" };
    const p384 = { ...(await exportJWK((await generateKeyPair("ES384", { extractable: true })).publicKey)), kid: "p384" };
    const x25519 = { ...(await exportJWK((await generateKeyPair("ECDH-ES", { crv: "X25519", extractable: true })).publicKey)), kid: "x25519" };
    const oct: JWK = { kty: "oct", k: Buffer.from("0123456789abcdef0123456789abcdef").toString("base64url"), kid: "hmac" };
    expect([rsa.kty, p384.crv, x25519.crv]).toEqual(["RSA", "P-384", "X25519"]);
    for (const bad of [rsa, p384, x25519, oct]) {
      await expect(loadAdminAuth({ ADMIN_JWT_PUBLIC_KEYS: jwks(ed.publicJwk, bad) })).rejects.toThrow(/key 2: only Ed25519 \(EdDSA\) and P-256 \(ES256\) keys are accepted/);
    }
  });
});
