#!/usr/bin/env node
// The `kbs` executable (package.json "bin", npm run kbs). The CLI is TypeScript that shares the Worker's
// sources, so tsx loads it; cli/kbs.ts holds main.
import { tsImport } from "tsx/esm/api";

const { main } = await tsImport("./kbs.ts", import.meta.url);
process.exitCode = await main(process.argv.slice(2), { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) });
