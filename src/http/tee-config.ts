import { parseSevPolicy } from "../tee/sev/json";
import { parseSnpPolicy } from "../tee/snp/policy";

/**
 * A policy that /auth or /attest could not use is refused at registration (a TeeError with code
 * policy-invalid: 400 tee-config-invalid), not at the guest's boot.
 */
export function checkTeeConfig(tee: "snp" | "sev", teeConfig: string): void {
  if (tee === "sev") parseSevPolicy(teeConfig);
  else parseSnpPolicy(teeConfig);
}
