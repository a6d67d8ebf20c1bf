#!/usr/bin/env node
// Validates HAR files against the published HAR 1.2 JSON Schema (npm: har-schema), with
// ajv and, when installed, ajv-formats (date-time, ipv4, ipv6). Prints "ok FILE" or the
// errors, and exits 1 if any file is invalid. The modules are found through NODE_PATH:
//   npm i --prefix /tmp/harnode har-schema ajv ajv-formats
//   NODE_PATH=/tmp/harnode/node_modules node scripts/har-validate.js out.har
'use strict';
const fs = require('fs');
const Ajv = require('ajv');
const schemas = require('har-schema');

// har-schema is draft-06 and uses two keywords of its own ("optional", "min"): not strict.
const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addMetaSchema(require('ajv/dist/refs/json-schema-draft-06.json'));
let formats = 'without format checks';
try {
  require('ajv-formats')(ajv);
  formats = 'with formats';
} catch (e) {
  ajv.opts.validateFormats = false;
}
for (const s of Object.values(schemas)) ajv.addSchema(s);
const validate = ajv.getSchema('har.json#');

let bad = 0;
for (const file of process.argv.slice(2)) {
  const har = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (validate(har)) {
    console.log(`ok ${file} (HAR 1.2 schema, ${formats})`);
  } else {
    bad++;
    console.log(`INVALID ${file}`);
    for (const e of validate.errors) console.log(`  ${e.instancePath} ${e.message}`);
  }
}
process.exit(bad ? 1 : 0);
