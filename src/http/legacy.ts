import { Hono, type Context } from "hono";
import * as z from "zod/mini";
import { commitAudited } from "../audit/admin-log";
import { config, currentRequestId } from "../config";
import { NO_SESSION } from "../session/outcome";
import type { BeginInit, SnpEvidence } from "../session/session";
import { registrationStatements } from "../store/workloads";
import { parseLaunchMeasurement, parseSevRequest } from "../tee/sev/json";
import { PRODUCTS } from "../tee/snp/types";
import { requireAdmin, requireWorkload, type AdminEnv } from "./admin-auth";
import { clientIp, throttle } from "./limits";
import { answerOf, cookieSessionId, newSessionId, refuseHead } from "./sessions";
import { trusteeAuth } from "./trustee";
import { jsonBody, LaunchMeasurement, parse, SecretValue, teeOfMeasurement, validate, WorkloadId } from "./body";
import { fail } from "./problem";
import { checkTeeConfig } from "./tee-config";

/** The reference-kbs wire format (kbs-types 0.2), byte-compatible with libkrun's clients. */
export const legacy = new Hono<AdminEnv>({ strict: false });

const SUPPORTED_TEES = ["snp", "sev"] as const;

export const RegisterBody = z.object({
  workload_id: WorkloadId,
  launch_measurement: LaunchMeasurement,
  tee_config: z.string().check(z.maxLength(16_384)),
  passphrase: SecretValue,
});

/** kbs-types 0.2 sends extra-params as a JSON string; later versions as an object: both are accepted. */
const ExtraParams = z.union([z.string(), z.record(z.string(), z.unknown())]);
export const AuthBody = z.object({ version: z.string().check(z.maxLength(64)), tee: z.string().check(z.maxLength(64)), "extra-params": ExtraParams });
export type AuthRequest = z.output<typeof AuthBody>;
/** Both protocols' challenge: reference-kbs's nonce is the session id; Trustee's is base64 and its extra-params "". */
export const AuthAnswer = z.object({ "extra-params": z.string(), nonce: z.string() });
const SnpRequest = z.object({ workload_id: WorkloadId });

export const AttestBody = z.object({
  "tee-pubkey": z.object({ alg: z.string().check(z.maxLength(64)), "k-mod": z.string().check(z.maxLength(2048)), "k-exp": z.string().check(z.maxLength(64)) }),
  "tee-evidence": z.string().check(z.maxLength(65_536)),
});
const SnpEvidenceJson = z.object({
  report: z.string().check(z.maxLength(4096)),
  cert_chain: z.string().check(z.maxLength(60_000)),
  gen: z
    .pipe(
      z.string(),
      z.transform((g: string) => PRODUCTS.find((p) => p.toLowerCase() === g.toLowerCase())),
    )
    .check(z.refine((p) => p !== undefined, `gen must be one of ${PRODUCTS.map((p) => p.toLowerCase()).join(", ")}`)),
});

/** SEV /auth: kbs-types SevRequest (the platform's certificate chain and firmware build). */
function sevBegin(extra: unknown, sessionId: string): BeginInit {
  const req = parseSevRequest(extra);
  const id = WorkloadId.safeParse(req.workloadId);
  if (!id.success) fail(400, "body-invalid", `extra-params.workload_id: ${id.error.issues[0]!.message}`);
  return { tee: "sev", sessionId, workloadId: req.workloadId, build: req.build, chain: req.chain };
}

/** The session id from `Cookie: session_id=…`. */
async function sessionId(c: Context<AdminEnv>): Promise<string> {
  const id = cookieSessionId(c, "session_id");
  if (!id) await answerOf(c, NO_SESSION);
  return id!;
}

const session = (c: Context<AdminEnv>, id: string) => c.env.SESSIONS.get(c.env.SESSIONS.idFromName(id));

legacy.get("/", () => fail(401, "unauthorized", "authenticate with POST /kbs/v0/auth"));

legacy.post("/register_workload", requireAdmin, async (c) => {
  const body = await jsonBody(c, RegisterBody);
  const admin = requireWorkload(c, body.workload_id);
  // reference-kbs's body names no TEE: the measurement's length does (32 bytes SEV, 48 SNP). It is stored.
  const tee = teeOfMeasurement(body.launch_measurement);
  checkTeeConfig(tee, body.tee_config);
  const launchMeasurement = body.launch_measurement.toLowerCase();
  const ring = await config(c.env).masterKeys();
  // Concurrent registrations of one id each get the next version (the loser is prepared again), or 409.
  await commitAudited(c.env, body.workload_id, async () => {
    const registration = { workloadId: body.workload_id, tee, launchMeasurement, teeConfig: body.tee_config, passphrase: body.passphrase, actor: admin.subject, now: Date.now() };
    const { version, statements } = await registrationStatements(c.env.DB, ring, registration);
    return {
      statements,
      audit: {
        actor: admin.subject,
        event: "workload.register",
        keyId: body.workload_id,
        version,
        details: { launch_measurement: launchMeasurement, tee },
      },
      result: undefined,
    };
  });
  return c.body(null, 200);
});

legacy.post("/auth", async (c) => {
  await throttle(c.env.AUTH_PER_IP, clientIp(c), "sessions from this address");
  // A body neither protocol would send (another KBS protocol, a typo) is told which protocols are spoken here.
  const body = validate(AuthBody, await jsonBody(c, z.unknown()), "not a reference-kbs (kbs-types 0.2) or Trustee KBS 0.4.0 /auth", "protocol-unsupported");
  const raw = body["extra-params"];
  // The Trustee protocol's extra-params is an object naming no workload; ours is a string, or an object with one.
  if (typeof raw !== "string" && !("workload_id" in raw)) return trusteeAuth(c, body);
  const tee = body.tee;
  if (tee !== "snp" && tee !== "sev") {
    return fail(400, "tee-unsupported", `unknown tee ${JSON.stringify(tee.slice(0, 16))}; supported: ${SUPPORTED_TEES.join(", ")}`);
  }
  const extra: unknown = typeof raw === "string" ? parse(z.unknown(), raw, "extra-params") : raw;
  const id = newSessionId();
  const init: BeginInit = tee === "snp" ? { tee, sessionId: id, workloadId: validate(SnpRequest, extra, "extra-params").workload_id } : sevBegin(extra, id);
  const { extraParams } = await answerOf(c, await session(c, id).begin(init, currentRequestId()));
  c.header("set-cookie", `session_id=${id}; SameSite=Strict; Path=/`);
  // SEV: extra-params is the SevChallenge as a JSON string, exactly as sev 1.1.0 serialises it.
  return c.json({ "extra-params": extraParams, nonce: id } satisfies z.output<typeof AuthAnswer>);
});

legacy.post("/attest", async (c) => {
  const id = await sessionId(c);
  const body = await jsonBody(c, AttestBody);
  const evidence = parse(z.record(z.string(), z.unknown()), body["tee-evidence"], "tee-evidence");
  if ("measure" in evidence) {
    // SEV: the VMM forwards LAUNCH_MEASURE; its tee-pubkey is empty and unused.
    await answerOf(c, await session(c, id).attestSev(parseLaunchMeasurement(evidence), currentRequestId()));
  } else {
    const pk = body["tee-pubkey"];
    const ev = validate(SnpEvidenceJson, evidence, "tee-evidence");
    const snp: SnpEvidence = { report: ev.report, certChain: ev.cert_chain, gen: ev.gen! };
    await answerOf(c, await session(c, id).attestSnp({ alg: pk.alg, kMod: pk["k-mod"], kExp: pk["k-exp"] }, snp, currentRequestId()));
  }
  // libkrun's SNP client treats any response body as failure: success is exactly empty.
  return c.body(null, 200);
});

legacy.get("/key/:key_id", async (c) => {
  refuseHead(c, "/key");
  // Refused before any lookup: key ids are workload-id shaped, at most 128 characters.
  const keyId = validate(WorkloadId, c.req.param("key_id"), "key id");
  const id = await sessionId(c);
  const { body } = await answerOf(c, await session(c, id).releaseSecret(keyId, currentRequestId()));
  // Exactly `"<hex>"` with a Content-Length: the C client strips the quotes and reads one chunk.
  return c.body(body, 200, { "content-type": "application/json", "cache-control": "no-store" });
});
