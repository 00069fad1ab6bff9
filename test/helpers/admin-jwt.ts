// Admin JWT signers for the tests: key pairs made in Node (vitest.config) and handed to workerd as JWKs.
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from "jose";

export interface JwtSigner {
  alg: "EdDSA" | "ES256";
  kid: string;
  publicJwk: JWK;
  privateJwk: JWK;
}

export async function testJwtSigners(): Promise<JwtSigner[]> {
  return Promise.all(
    (["EdDSA", "ES256"] as const).map(async (alg) => {
      const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === "EdDSA" && { crv: "Ed25519" }) });
      const kid = `test-${alg.toLowerCase()}`;
      return { alg, kid, publicJwk: { ...(await exportJWK(publicKey)), kid, alg }, privateJwk: { ...(await exportJWK(privateKey)), kid, alg } };
    }),
  );
}

/** A signed admin JWT; `exp` in seconds from now (negative for an expired one), omitted when null. */
export async function adminJwt(signer: JwtSigner, claims: { sub?: string; scope?: string | string[]; exp?: number | null } = {}): Promise<string> {
  const key = await importJWK(signer.privateJwk, signer.alg);
  const { sub = "ops@example", exp = 300, scope } = claims;
  let jwt = new SignJWT({ ...(scope !== undefined && { scope }) }).setProtectedHeader({ alg: signer.alg, kid: signer.kid }).setIssuedAt();
  if (sub) jwt = jwt.setSubject(sub);
  if (exp !== null) jwt = jwt.setExpirationTime(Math.floor(Date.now() / 1000) + exp);
  return jwt.sign(key);
}

/**
 * Exactly what Trustee's kbs-client sends (tools/kbs-client/src/lib.rs): jwt_simple's Ed25519KeyPair::sign(
 * Claims::create(Duration::from_hours(2))), a key loaded from PEM (no kid): header {alg, typ}, claims iat,
 * exp = iat + 7200 and nbf = iat, nothing else. `lifetime` other than 7200 only to test the limit.
 */
export async function kbsClientToken(signer: JwtSigner, iat: number, lifetime = 7200): Promise<string> {
  const key = await importJWK(signer.privateJwk, signer.alg);
  return new SignJWT({ iat, exp: iat + lifetime, nbf: iat }).setProtectedHeader({ alg: signer.alg, typ: "JWT" }).sign(key);
}
