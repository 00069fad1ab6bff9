import { app } from "./app";

export { AttestationSession } from "./session/session";
export default app;
