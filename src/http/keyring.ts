import { SealConfigError, type MasterKeyring } from "../crypto/seal";
import type { Env } from "../env";
import { masterKeys } from "../store/keyring";
import { fail } from "./problem";

/** The master keyring, or a 503 telling the operator what is missing (never echoing key material). */
export async function keyring(env: Env): Promise<MasterKeyring> {
  try {
    return await masterKeys(env.KBS_MASTER_KEY);
  } catch (e) {
    if (e instanceof SealConfigError) fail(503, "kbs-misconfigured", `KBS_MASTER_KEY: ${e.message}`);
    throw e;
  }
}
