#!/usr/bin/env bash
# Compiles contracts/*.sol with the pinned solc (npm `solc`, installed by setup-tools.sh --node) and
# writes one JSON per contract, {"abi": [...], "bytecode": "0x..."}, into an output folder
# (default contracts/build/, which is checked in: the coordinator's `sol!` bindings and the
# deployments read it). Usage: scripts/build-contracts.sh [OUT_DIR]
# The chain test binary runs this into a temporary folder and fails if the checked-in build
# differs, so the build always matches the source.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$root/contracts/build"}
mkdir -p "$out"
cd "$root"
[ -x node_modules/.bin/solcjs ] || { echo "build-contracts: solcjs missing; run scripts/setup-tools.sh" >&2; exit 1; }
node - "$out" <<'JS'
const fs = require("fs");
const path = require("path");
const solc = require(path.resolve("node_modules/solc"));
const out = process.argv[2];
const sources = {};
for (const f of fs.readdirSync("contracts").filter((f) => f.endsWith(".sol")).sort()) {
  sources[f] = { content: fs.readFileSync(path.join("contracts", f), "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    // No metadata hash: the bytecode then depends on the source only, not on file paths.
    metadata: { bytecodeHash: "none", appendCBOR: false },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const result = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (result.errors || []).filter((e) => e.severity === "error");
for (const e of result.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);
for (const file of Object.keys(result.contracts).sort()) {
  for (const [name, c] of Object.entries(result.contracts[file])) {
    if (name.startsWith("I")) continue; // interfaces have no bytecode
    const json = { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
    fs.writeFileSync(path.join(out, name + ".json"), JSON.stringify(json, null, 2) + "\n");
  }
}
console.log(`build-contracts: solc ${solc.version()} -> ${out}`);
JS
