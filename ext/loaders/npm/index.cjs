// apify-sqlite for Node.js (CommonJS): the path of the compiled extension, and load(db) for
// better-sqlite3 or any db object with loadExtension(path[, entryPoint]).
//
//   const Database = require("better-sqlite3");
//   const apify = require("apify-sqlite");
//   const db = new Database("hooks.db");
//   apify.load(db);                            // or apify.load(db, { noNetwork: true })
"use strict";
const path = require("node:path");
const fs = require("node:fs");

const SUFFIX = { darwin: "dylib", win32: "dll" }[process.platform] || "so";
const NO_NETWORK_ENTRY_POINT = "sqlite3_apify_no_network_init";

// The absolute path of lib/apify.<suffix> inside this package.
function getLoadablePath() {
  const file = path.join(__dirname, "lib", `apify.${SUFFIX}`);
  if (!fs.existsSync(file)) {
    throw new Error(`apify: this package has no build for ${process.platform}-${process.arch}` +
                    ` (${file} is missing)`);
  }
  return file;
}

// Load the extension into db; { noNetwork: true } uses sqlite3_apify_no_network_init.
function load(db, options) {
  if (options && options.noNetwork) db.loadExtension(getLoadablePath(), NO_NETWORK_ENTRY_POINT);
  else db.loadExtension(getLoadablePath());
}

module.exports = { getLoadablePath, load, NO_NETWORK_ENTRY_POINT };
