import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

// Shared benchmark report writer. Each bench module exports `async function measure(): Promise<Section>`;
// bench/run.ts collects the sections and assembles BENCHMARKS.md (and prints the same tables).

export interface Row {
  name: string;
  value: string;
  target?: string;
  met?: boolean;
  note?: string;
}

export interface Section {
  title: string;
  method: string;
  rows: Row[];
  notes?: string[];
}

/** Samples of one measurement (ms), sorted on demand. */
export function stats(samples: number[]): { median: number; p10: number; p90: number; min: number; max: number } {
  const s = [...samples].sort((a, b) => a - b);
  return { median: percentile(s, 50), p10: percentile(s, 10), p90: percentile(s, 90), min: s[0]!, max: s[s.length - 1]! };
}

export const median = (samples: number[]) => stats(samples).median;

/** The p-th percentile (0-100) of ascending samples, by nearest rank; NaN for none. */
export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Time `f` n times (after `warmup` untimed calls); returns the samples in ms. */
export async function sample(f: () => Promise<unknown> | unknown, n: number, warmup = Math.min(20, n)): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await f();
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await f();
    times.push(performance.now() - t);
  }
  return times;
}

export const ms = (t: number, digits = 3) => `${t.toFixed(digits)} ms`;

function cell(s: string | undefined): string {
  return (s ?? "").replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/** One section as markdown. */
export function sectionMarkdown(section: Section): string {
  const hasTarget = section.rows.some((r) => r.target !== undefined || r.met !== undefined);
  const hasNote = section.rows.some((r) => r.note);
  const head = ["measurement", "result", ...(hasTarget ? ["target", "met"] : []), ...(hasNote ? ["note"] : [])];
  const lines = [`## ${section.title}`, "", section.method, "", `| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const r of section.rows) {
    const met = r.met === undefined ? "" : r.met ? "✅ met" : "❌ missed";
    lines.push(`| ${[cell(r.name), cell(r.value), ...(hasTarget ? [cell(r.target), met] : []), ...(hasNote ? [cell(r.note)] : [])].join(" | ")} |`);
  }
  if (section.notes?.length) {
    lines.push("");
    for (const n of section.notes) lines.push(`- ${n}`);
  }
  return lines.join("\n") + "\n";
}

/** Plain-text table for the console. */
export function sectionText(section: Section): string {
  const w = Math.max(...section.rows.map((r) => r.name.length), 10);
  const lines = [`== ${section.title}`];
  for (const r of section.rows) {
    const met = r.met === undefined ? "" : r.met ? "  [met]" : "  [MISSED]";
    lines.push(`  ${r.name.padEnd(w)}  ${r.value}${r.target ? `  (target ${r.target})` : ""}${met}`);
  }
  for (const n of section.notes ?? []) lines.push(`  - ${n}`);
  return lines.join("\n");
}

export function documentMarkdown(header: string, sections: Section[]): string {
  return [header.trimEnd() + "\n", ...sections.map(sectionMarkdown)].join("\n");
}

/**
 * Lets a bench module run alone (`npx tsx bench/<name>.ts`): when `moduleUrl` is the script Node started,
 * prints its section and exits (non-zero on failure; the load and workerd benches leave servers to stop).
 */
export function runIfMain(moduleUrl: string, section: () => Promise<Section>): void {
  if (!process.argv[1] || pathToFileURL(resolve(process.argv[1])).href !== moduleUrl) return;
  section().then(
    (s) => {
      console.log(sectionText(s));
      process.exit(0);
    },
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}

