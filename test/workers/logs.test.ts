// Nothing secret in logs or audit rows, with guest event lines on (this file's project runs LOG_LEVEL=info).
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { guestKey } from "../helpers/guest";
import { kdsResponder } from "../helpers/kds-mock";
import { importChip } from "../helpers/synthetic-amd";
import { attestAs, registerWorkload, releasedSecret } from "./flows";
import { attest, exportAudit, getKey, register } from "./kbs";

afterEach(() => vi.restoreAllMocks());

describe("nothing secret in logs or audit rows", () => {
  it("logs no passphrase, admin token, session id or guest key across a full flow and its refusals", async () => {
    const [milan, key] = await Promise.all([importChip(env.TEST_CHIPS[0]!), guestKey()]);
    vi.spyOn(globalThis, "fetch").mockImplementation(kdsResponder([milan]).fetch);
    const lines: string[] = [];
    for (const level of ["log", "info", "warn", "error", "debug"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
    }
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
