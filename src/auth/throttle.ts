import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

/** Failed admin authentications allowed per address and window before every attempt is refused unchecked. */
export const LOGIN_FAILURES_ALLOWED = 10;
export const LOGIN_WINDOW_SECONDS = 60;

/**
 * One object per client address. It is asked before a credential is checked, so an address that has
 * used up its failures gets 429 even for the right guess: guessing stops paying, not just failing.
 * A fixed window, exact (unlike the per-location Rate Limiting binding), stored in the object.
 */
export class LoginThrottle extends DurableObject<Env> {
  private window(now: number): { start: number; failures: number } {
    const w = this.ctx.storage.kv.get<{ start: number; failures: number }>("window");
    return w && now < w.start + LOGIN_WINDOW_SECONDS * 1000 ? w : { start: now, failures: 0 };
  }

  /** Seconds until this address may try again; 0 when it may try now. */
  retryAfter(now = Date.now()): number {
    const w = this.window(now);
    return w.failures >= LOGIN_FAILURES_ALLOWED ? Math.ceil((w.start + LOGIN_WINDOW_SECONDS * 1000 - now) / 1000) : 0;
  }

  async failed(now = Date.now()): Promise<void> {
    const w = this.window(now);
    this.ctx.storage.kv.put("window", { start: w.start, failures: w.failures + 1 });
    // Addresses come and go: the object forgets one once its window is over.
    await this.ctx.storage.setAlarm(w.start + LOGIN_WINDOW_SECONDS * 1000);
  }

  override async alarm(): Promise<void> {
    await this.ctx.storage.deleteAll();
  }
}

export function loginThrottle(env: Env, address: string): DurableObjectStub<LoginThrottle> {
  return env.LOGIN_THROTTLE.get(env.LOGIN_THROTTLE.idFromName(`login/${address}`));
}
