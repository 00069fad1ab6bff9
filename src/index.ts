import { app } from "./app";

export { AuditLog } from "./audit/log";
export { AttestationSession } from "./session/session";
export default app;
