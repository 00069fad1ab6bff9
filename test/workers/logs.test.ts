// Nothing secret in logs or audit rows, with guest event lines on (this file's project runs LOG_LEVEL=info); admin
// actions logged like guest events; every line carrying its request's id, the session object's lines included.
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { guestKey } from "../../lab/guest";
import { kdsResponder } from "../helpers/kds-mock";
import { importChip } from "../../lab/synthetic-amd";
import { attestAs, registerWorkload, releasedSecret } from "./flows";
import { attest, auth, call, exportAudit, getKey, register } from "./kbs";

afterEach(() => vi.restoreAllMocks());

/** Every console line from here on, whatever the level. */
function captureLines(): string[] {
  const lines: string[] = [];
  for (const level of ["log", "info", "warn", "error", "debug"] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
  }
  return lines;
}

describe("nothing secret in logs or audit rows", () => {
  it("logs no passphrase, admin token, session id or guest key across a full flow and its refusals", async () => {
    const [milan, key] = await Promise.all([importChip(env.TEST_CHIPS[0]!), guestKey()]);
    vi.spyOn(globalThis, "fetch").mockImplementation(kdsResponder([milan]).fetch);
    const lines = captureLines();
    const w = await registerWorkload("logs");
    const session = await attestAs(milan, key, w);
    await releasedSecret(key, session, w.workloadId);
    await getKey(session, "nope");
    await register({ workload_id: "x", launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "p" }, { authorization: "Bearer wrong-token-value" });
    await attest(session, key, new Uint8Array(1184));
    await exportAudit(session);

    // The guest's steps were logged (one line each), so the search below searched something.
    expect(lines.filter((l) => l.includes('"event":"secret.release"')).length).toBeGreaterThan(0);
    const logged = lines.join("\n");
    const audited = JSON.stringify((await env.DB.prepare("SELECT * FROM audit_log").all()).results);
    const sessionId = session.cookie.slice("session_id=".length);
    for (const secret of [w.passphrase, env.ADMIN_TOKEN!, "wrong-token-value", sessionId, key.kMod, env.KBS_MASTER_KEY!.split(":")[1]!]) {
      expect(logged).not.toContain(secret);
      expect(audited).not.toContain(secret);
    }
  });
});

describe("log lines", () => {
  it("name each admin action's actor, action and subject, and carry the request id, on the session object's side too", async () => {
    const lines = captureLines();
    const w = await registerWorkload("logs-admin");
    await register({ workload_id: "x", launch_measurement: "ab".repeat(48), tee_config: "", passphrase: "p" }, { authorization: "Bearer wrong" });
    const ray = "0123456789abcdef-LHR";
    const answer = await call("/auth", {
      method: "POST",
      headers: { "content-type": "application/json", "cf-ray": ray },
      body: JSON.stringify({ version: "0.0.0", tee: "snp", "extra-params": JSON.stringify({ workload_id: w.workloadId }) }),
    });
    expect(answer.headers.get("x-request-id")).toBe(ray);
    await auth(w.workloadId);

    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const e of events) expect(e.request_id, JSON.stringify(e)).toMatch(/^[0-9a-f]{16}(-[A-Z]{3})?$/);
    expect(events).toContainEqual({ request_id: expect.any(String), event: "workload.register", actor: "token", workload: w.workloadId, key_id: w.workloadId, version: 1, ok: true });
    expect(events).toContainEqual({ request_id: expect.any(String), event: "admin.unauthorized", ok: false, reason: "the token is not valid" });
    // The session object's "auth" line carries the id of the request that reached it, and each request its own.
    const authLines = events.filter((e) => e.event === "auth");
    expect(authLines.map((e) => e.request_id)).toEqual([ray, expect.not.stringMatching(ray)]);
  });
});
