#!/usr/bin/env node
// scripts/contract-check.js [--schema NAME] CONTRACT CASES...: the differential run of doc/openapi.yaml
// against laaffic's encoder. Each CASES file holds JSON lines written by laaffic (the
// spec suite's log, scripts/contract-gen.lua): { "source", "accepted", "body" (the JSON
// text sent, or the task as JSON when refused), "field", "message" }. ajv (JSON Schema
// 2020-12, OpenAPI 3.1's dialect) validates every body against the request schema:
//   accepted by laaffic -> must be valid under the contract (laaffic refuses nothing more)
//   refused by laaffic  -> must be invalid (laaffic lets nothing through the pages forbid)
// Prints each disagreement and a last line "contract: N bodies, N disagreements";
// exits 1 when there is any.
"use strict";
const fs = require("fs");
const YAML = require("yaml");
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats").default;

function loadSchema(file, name) {
  const doc = YAML.parse(fs.readFileSync(file, "utf8"));
  // components.schemas become $defs of one schema, so the contract's own $refs resolve
  const text = JSON.stringify(doc.components.schemas).replaceAll(
    '"#/components/schemas/', '"#/$defs/');
  return { $id: "laaffic-contract", $defs: JSON.parse(text),
           $ref: "#/$defs/" + name };
}

function makeValidator(file, name) {
  const ajv = new Ajv2020({ allErrors: false, strict: true, allowUnionTypes: true });
  addFormats(ajv);
  // the contract's annotations: no effect on validation
  for (const k of ["x-laaffic-assumed", "x-laaffic-status-codes", "example"]) {
    ajv.addKeyword({ keyword: k, schemaType: ["boolean", "object", "string", "number", "array"] });
  }
  return ajv.compile(loadSchema(file, name));
}

function main() {
  let args = process.argv.slice(2), schema = "CreateTaskRequest";
  if (args[0] === "--schema") {   // another of the contract's schemas, e.g. StatusReportBody
    schema = args[1];
    args = args.slice(2);
  }
  const [contract, ...files] = args;
  if (!contract || files.length === 0) {
    console.error("usage: contract-check.js [--schema NAME] CONTRACT CASES...");
    process.exit(2);
  }
  const validate = makeValidator(contract, schema);
  let n = 0, bad = 0, accepted = 0;
  const shown = new Map();
  for (const file of files) {
    const lines = fs.readFileSync(file, "utf8").split("\n");
    for (const line of lines) {
      if (line === "") continue;
      const c = JSON.parse(line);
      let body;
      try {
        body = JSON.parse(c.body);
      } catch (e) {
        bad++;
        console.log(`${c.source}: laaffic's body is not JSON (${e.message})`);
        continue;
      }
      n++;
      if (c.accepted) accepted++;
      const valid = validate(body);
      if (valid === c.accepted) continue;
      bad++;
      const what = c.accepted
        ? `laaffic accepts, the contract refuses: ${validate.errors[0].instancePath} ` +
          validate.errors[0].message
        : `laaffic refuses (${c.field}: ${c.message}), the contract accepts`;
      const key = what.replace(/got .*/, "");
      const seen = shown.get(key) || 0;
      shown.set(key, seen + 1);
      if (seen < 3) console.log(`${c.source}: ${what}\n  body: ${c.body.slice(0, 600)}`);
    }
  }
  console.log(`contract: ${n} bodies (${accepted} accepted, ${n - accepted} refused by laaffic),` +
              ` ${bad} disagreements`);
  process.exit(bad === 0 ? 0 : 1);
}

main();
