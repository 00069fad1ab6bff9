import { app } from "./app";

export { AuditWitness } from "./audit/witness";
export { LoginThrottle } from "./auth/throttle";
export { AttestationSession } from "./session/session";
export default app;
