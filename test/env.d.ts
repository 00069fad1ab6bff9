import type { D1Migration } from "cloudflare:test";
import type { Env as WorkerEnv } from "../src/env";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {
      TEST_SCHEMA: D1Migration[];
      /** research data file path → base64 content; empty when ../shared/research/data is absent. */
      TEST_RESEARCH_DATA: Record<string, string>;
    }
  }
}
