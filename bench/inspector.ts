// The Worker's own isolate, seen through wrangler dev's inspector (`--inspector-port`, Chrome DevTools
// Protocol): V8's sampling profiler for the isolate's CPU per request, and its JS heap. Used by
// bench/workerd.ts (CPU) and bench/load.ts (heap).
import WebSocket from "ws";
import { median } from "./report";

/** What workerd's Profiler.stop returns (its own build of V8's CpuProfile; timeDeltas in µs, each since the previous sample). */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string } }[];
  samples: number[];
  timeDeltas: number[];
}

export class Inspector {
  private lastId = 0;
  private pending = new Map<number, { resolve: (result: unknown) => void; reject: (e: Error) => void }>();
  private profilerEnabled = false;

  private constructor(private ws: WebSocket) {
    ws.on("message", (data) => {
      // A reply carries our id; events (no id) and replies to wrangler's own requests (ids from 1e8) are not ours.
      // workerd answers the Profiler commands it handles itself with the request echoed back (method and params,
      // and a result only for Profiler.stop): that echo is the reply.
      const m = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string } };
      const p = m.id === undefined ? undefined : this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id!);
      if (m.error) p.reject(new Error(`inspector: ${m.error.message}`));
      else p.resolve(m.result ?? {});
    });
    ws.on("close", () => {
      for (const p of this.pending.values()) p.reject(new Error("inspector: connection closed"));
      this.pending.clear();
    });
  }

  /** Connects to the one target wrangler dev lists at http://127.0.0.1:<port>/json. */
  static async connect(port: number): Promise<Inspector> {
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json`, { signal: AbortSignal.timeout(10_000) })).json()) as { webSocketDebuggerUrl: string }[];
    if (!targets[0]) throw new Error(`inspector: no target at 127.0.0.1:${port}`);
    const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    return new Inspector(ws);
  }

  send<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.lastId;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (r: unknown) => void, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Starts V8's sampling profiler, asking for a sample every `intervalUs` µs. */
  async startProfiling(intervalUs: number): Promise<void> {
    if (!this.profilerEnabled) {
      await this.send("Profiler.enable");
      await this.send("Profiler.setSamplingInterval", { interval: intervalUs });
      this.profilerEnabled = true;
    }
    await this.send("Profiler.start");
  }

  async stopProfiling(): Promise<CpuProfile> {
    const { profile } = await this.send<{ profile?: CpuProfile }>("Profiler.stop");
    // A reloaded Worker (wrangler dev restarts it when a file under src/ changes) is a new isolate with no profiler.
    if (!profile) throw new Error("inspector: Profiler.stop returned no profile: the Worker was reloaded (a change under src/?) during the benchmark");
    return profile;
  }

  /** The isolate's JS heap in MiB: in use (live and not yet collected, or after a full GC with `gc`) and reserved by V8. */
  async heapMiB(gc = false): Promise<{ used: number; total: number }> {
    if (gc) await this.send("HeapProfiler.collectGarbage");
    const { usedSize, totalSize } = await this.send<{ usedSize: number; totalSize: number }>("Runtime.getHeapUsage");
    return { used: usedSize / 2 ** 20, total: totalSize / 2 ** 20 };
  }

  close(): void {
    this.ws.close();
  }
}

/** One sample of a profile: the time since the previous sample (ms), what V8 was doing, and the native function it was in, if any. */
export interface Tick {
  ms: number;
  kind: "idle" | "program" | "run";
  native?: string;
}

export function ticks(profile: CpuProfile): Tick[] {
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  return profile.samples.map((id, i) => {
    const { functionName, url } = frames.get(id)!;
    const kind = functionName === "(idle)" ? "idle" : functionName === "(program)" ? "program" : "run";
    return { ms: profile.timeDeltas[i]! / 1000, kind, native: url === "" && kind === "run" ? functionName : undefined };
  });
}

/**
 * The sampler's actual period (ms) over some profiles of one server: the median time between two consecutive
 * samples taken while the isolate ran. It is longer than the interval asked for (the sampler thread has to be
 * scheduled), and a property of the machine and its load rather than of one request.
 */
export function samplingPeriod(profiles: Tick[][]): number {
  const gaps = profiles.flatMap((t) => t.flatMap((s, i) => (i > 0 && s.kind !== "idle" && t[i - 1]!.kind !== "idle" ? [s.ms] : [])));
  return median(gaps);
}

/** A sample more than this many periods after the previous one follows an idle gap. */
export const GAP = 2;

/**
 * The isolate's CPU (ms) in one profile. V8 samples only while the isolate is locked by its thread, but each
 * sample carries the time since the previous one, idle gaps included. So a sample within `GAP`× the period of
 * the previous one counts its own interval; one after a longer gap counts one period (the isolate ran for an
 * unknown part of the period before it). "(idle)" samples count nothing; "(program)" samples (workerd's own
 * C++ holding the isolate, e.g. building the Request) count inside a busy stretch but not after a gap, where
 * they are mostly the inspector itself (Profiler.stop) rather than the request.
 */
export function isolateCpuMs(t: Tick[], period: number, only?: (s: Tick) => boolean): number {
  let ms = 0;
  for (const s of t) {
    const afterGap = s.ms > GAP * period;
    if (s.kind === "idle" || (s.kind === "program" && afterGap) || (only && !only(s))) continue;
    ms += afterGap ? period : s.ms;
  }
  return ms;
}
