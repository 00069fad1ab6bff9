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
