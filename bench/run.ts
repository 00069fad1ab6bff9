// `npm run bench`: runs every benchmark module present (each exports `measure(): Promise<Section>`), prints the
// tables and writes BENCHMARKS.md: method, machine, the floors measured in the same run, results and targets.
// Modules: bench/snp.ts, bench/protocols.ts, and when present bench/sev.ts, bench/workerd.ts, bench/load.ts.
// Skip some with BENCH_ONLY=snp,protocols (comma-separated module names).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { documentMarkdown, sectionText, type Section } from "./report";

const here = dirname(fileURLToPath(import.meta.url));
const MODULES = ["snp", "protocols", "sev", "workerd", "load"] as const;
const only = process.env.BENCH_ONLY?.split(",").map((s) => s.trim());

function machine(): string {
  let model = cpus()[0]?.model ?? "unknown";
  try {
    model = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? model;
  } catch {
    // Not Linux: os.cpus() is the best we have.
  }
  const [l1, l5] = loadavg();
  return `${model}, ${cpus().length} logical cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; Node ${process.version} (${process.platform}/${process.arch}); load average at start ${l1!.toFixed(2)} (1 min), ${l5!.toFixed(2)} (5 min)`;
}

const startedAt = new Date();
const machineLine = machine();
const sections: Section[] = [];
const skipped: string[] = [];
for (const name of MODULES) {
  if (only && !only.includes(name)) {
    skipped.push(`bench/${name}.ts: left out by BENCH_ONLY`);
    continue;
  }
  const file = resolve(here, `${name}.ts`);
  if (!existsSync(file)) {
    skipped.push(`bench/${name}.ts: not present`);
    continue;
  }
  console.error(`— bench/${name}.ts …`);
  const t = performance.now();
  try {
    const mod = (await import(pathToFileURL(file).href)) as { measure?: () => Promise<Section> };
    if (typeof mod.measure !== "function") {
      skipped.push(`bench/${name}.ts: exports no measure()`);
      continue;
    }
    const section = await mod.measure();
    sections.push(section);
    console.log(sectionText(section) + "\n");
    console.error(`  (${((performance.now() - t) / 1000).toFixed(1)} s)`);
  } catch (e) {
    skipped.push(`bench/${name}.ts: failed (${(e as Error).message?.split("\n")[0] ?? e})`);
    console.error(e);
  }
}

const targets = sections.flatMap((s) => s.rows.filter((r) => r.met !== undefined).map((r) => ({ ...r, section: s.title })));
const summary = [
  "## Targets",
  "",
  "| section | measurement | result | target | met | gap and cause |",
  "|---|---|---|---|---|---|",
  ...targets.map((r) => `| ${r.section} | ${r.name} | ${r.value} | ${r.target ?? ""} | ${r.met ? "✅ met" : "❌ missed"} | ${(r.note ?? "").replace(/\|/g, "\\|")} |`),
  "",
].join("\n");

const header = `# Benchmarks

Written by \`npm run bench\` (bench/run.ts) on ${startedAt.toISOString()}; ${((Date.now() - startedAt.getTime()) / 1000).toFixed(0)} s. Do not edit by hand: re-run it.

**Method.** Every figure comes from this one run. Node figures are ratios to a floor measured in the same run and
round (one ECDSA P-384 verify; for the cold path also the WebCrypto work it cannot avoid), so that a faster or
slower machine changes the times but hardly the ratios; each is a median with its spread (min–max over rounds,
or p10–p90 over samples) as the section says. Wall time on a shared machine is noisy: the spread is part of the result.

**Machine.** ${machineLine}.

${targets.length ? summary : ""}${skipped.length ? `\n**Not run:** ${skipped.join("; ")}.\n` : ""}`;

const out = resolve(here, "../BENCHMARKS.md");
writeFileSync(out, documentMarkdown(header, sections));
console.log(`wrote ${out}`);
process.exit(0);
