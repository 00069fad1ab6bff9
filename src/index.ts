import { app } from "./app";

export { AuditWitness } from "./audit/witness";
export { LoginThrottle } from "./auth/throttle";
export { AttestationSession } from "./session/session";

// D1's client orders session bookmarks with String.prototype.localeCompare, whose first call in an isolate
// builds ICU's collator: about 15 ms of the first guest's /attest in a profile (BENCHMARKS.md, cold isolate).
// The global scope has a start-up budget of its own, so the isolate pays it here instead.
"0".localeCompare("1");

export default app;
