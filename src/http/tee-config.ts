import { parseSevPolicy } from "../tee/sev/json";
import { SevError } from "../tee/sev/types";
import { parseSnpPolicy, PolicyError } from "../tee/snp/policy";
import { fail } from "./problem";


/** A policy that /auth or /attest could not use is refused at registration, not at the guest's boot. */
export function checkTeeConfig(launchMeasurement: string, teeConfig: string): void {
  try {
    // The measurement's length says which TEE the workload is for: 32 bytes SEV, 48 bytes SNP.
    if (launchMeasurement.length === 64) parseSevPolicy(teeConfig);
    else parseSnpPolicy(teeConfig);
  } catch (e) {
    if (e instanceof SevError || e instanceof PolicyError) fail(400, "tee-config-invalid", e.message);
    throw e;
  }
}
