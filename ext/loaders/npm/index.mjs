// apify-sqlite for Node.js (ES module): the same as index.cjs.
//
//   import Database from "better-sqlite3";
//   import * as apify from "apify-sqlite";
//   const db = new Database("hooks.db");
//   apify.load(db);                            // or apify.load(db, { noNetwork: true })
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const cjs = require("./index.cjs");

export const getLoadablePath = cjs.getLoadablePath;
export const load = cjs.load;
export const NO_NETWORK_ENTRY_POINT = cjs.NO_NETWORK_ENTRY_POINT;
