// What a Trustee KBS 0.4.0 attestation binds into the SNP report: the runtime data (nonce, tee-pubkey,
// additional evidence) into REPORT_DATA and the init-data TOML into HOST_DATA (anchors §2.3, §2.7).

import { parse as parseToml } from "smol-toml";
import * as z from "zod/mini";
import { concat, sha256, sha384, sha512, utf8 } from "../crypto/bytes";
import { canonicalJson } from "../crypto/jcs";
import { TeeError } from "../errors";

/** Unpadded base64url of at most `max` characters (the exact byte lengths are checked by src/crypto/jwe.ts). */
const base64Url = (max: number) => z.string().check(z.regex(/^[A-Za-z0-9_-]+$/, "expected base64url without padding"), z.maxLength(max));

/**
 * A `tee-pubkey` we can encrypt to: RSA (n up to 8192 bits) with RSA-OAEP-256 or RSA1_5, or EC P-256/P-384/
 * P-521 with ECDH-ES+A256KW. Strict: a member beyond these is refused. The JWK enters the REPORT_DATA hash
 * exactly as the guest sent it, and Trustee's guest client sends exactly these members; refusing the rest
 * keeps "what was hashed" and "what we encrypt to" the same object.
 */
export const TeePubKeyJwk = z.discriminatedUnion("kty", [
  z.strictObject({ kty: z.literal("RSA"), alg: z.enum(["RSA-OAEP-256", "RSA1_5"]), n: base64Url(1366), e: base64Url(8) }),
  z.strictObject({ kty: z.literal("EC"), alg: z.literal("ECDH-ES+A256KW"), crv: z.enum(["P-256", "P-384", "P-521"]), x: base64Url(88), y: base64Url(88) }),
]);

/**
 * REPORT_DATA a Trustee guest puts in its SNP report: SHA-384 of the JCS form of
 * {"additional-evidence", "nonce", "tee-pubkey"} (the nonce as the challenge's base64 text, the key as
 * received, additional evidence the string from tee-evidence), zero-padded to 64 bytes.
 */
export async function trusteeReportData(runtime: { nonce: string; "tee-pubkey": unknown }, additionalEvidence: string): Promise<Uint8Array> {
  const canonical = canonicalJson({ "additional-evidence": additionalEvidence, nonce: runtime.nonce, "tee-pubkey": runtime["tee-pubkey"] });
  return concat(await sha384(utf8(canonical)), new Uint8Array(16));
}

export const MAX_INIT_DATA_BYTES = 64 * 1024;

const DIGESTS: Record<string, (data: Uint8Array) => Promise<Uint8Array>> = { sha256, sha384, sha512 };

const initDataInvalid = (message: string) => new TeeError("snp", "init-data-invalid", message);

/**
 * An init-data's HOST_DATA digest and its `data` table (Trustee's init-data claims). The digest is what a host
 * sets for it: the TOML's own `algorithm` (sha256, sha384 or sha512; there
 * is no default, as in Trustee, whose Initdata also requires `version` and a `data` table of strings) hashes
 * the whole body as sent (UTF-8), and the digest is cut to HOST_DATA's 32 bytes. Throws TeeError
 * init-data-invalid for another format, a body over 64 KiB, bad TOML, a missing or unknown algorithm
 * (sm3, which Trustee also knows, has no WebCrypto digest), or no version or data table.
 */
export async function readInitData(initData: { format: string; body: string }): Promise<{ digest: Uint8Array; data: Record<string, string> }> {
  if (initData.format !== "toml") throw initDataInvalid(`init-data format must be "toml", got ${JSON.stringify(initData.format).slice(0, 40)}`);
  const body = utf8(initData.body);
  if (body.length > MAX_INIT_DATA_BYTES) throw initDataInvalid(`init-data body is over ${MAX_INIT_DATA_BYTES} bytes`);
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(initData.body);
  } catch (e) {
    throw initDataInvalid(`init-data body is not TOML: ${String((e as Error).message).split("\n")[0]}`);
  }
  const { algorithm, version, data } = doc;
  if (typeof algorithm !== "string" || !Object.hasOwn(DIGESTS, algorithm)) {
    throw initDataInvalid(`init-data algorithm must be sha256, sha384 or sha512, got ${algorithm === undefined ? "none" : JSON.stringify(algorithm).slice(0, 40)}`);
  }
  if (typeof version !== "string") throw initDataInvalid("init-data version must be a string");
  // Arrays and TOML dates are objects too; only a table has the plain tag.
  const isTable = Object.prototype.toString.call(data) === "[object Object]";
  if (!isTable || !Object.values(data as object).every((v) => typeof v === "string")) throw initDataInvalid("init-data data must be a table of strings");
  // HOST_DATA holds 32 bytes: SHA-384 and SHA-512 digests are cut (none is shorter, so none is padded).
  return { digest: (await DIGESTS[algorithm]!(body)).slice(0, 32), data: data as Record<string, string> };
}
