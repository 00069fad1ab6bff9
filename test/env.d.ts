import type { D1Migration } from "cloudflare:test";
import type { Env as WorkerEnv } from "../src/env";
import type { ChipTransfer } from "../lab/synthetic-amd";
import type { SevPlatformTransfer } from "../lab/synthetic-sev";
import type { JwtSigner } from "./helpers/admin-jwt";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {
      TEST_MIGRATIONS: D1Migration[];
      /** Every file under test/fixtures: path relative to it ("/"-separated) → base64 content. */
      TEST_FIXTURES: Record<string, string>;
      /** Lab chips (Milan VCEK, Turin VCEK, Genoa VLEK) whose ARKs are in EXTRA_TRUSTED_ARKS. */
      TEST_CHIPS: ChipTransfer[];
      /** Legacy SEV platforms: `trusted`'s ARK is in EXTRA_TRUSTED_ARKS, `unlisted`'s is not. */
      /** Admin JWT signers (EdDSA, ES256) whose public keys are in ADMIN_JWT_PUBLIC_KEYS. */
      TEST_JWT_SIGNERS: JwtSigner[];
      TEST_SEV_PLATFORMS: { trusted: SevPlatformTransfer; unlisted: SevPlatformTransfer };
    }
  }
}
