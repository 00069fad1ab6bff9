import { VerificationError } from "../../src/tee/snp/types";

/** "verified", or "<code>: <message>" of the VerificationError the promise rejected with. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof VerificationError) return `${e.code}: ${e.message}`;
    throw e;
  }
  return "verified";
}
