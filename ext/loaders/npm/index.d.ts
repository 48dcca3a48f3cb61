/** A database that can load a SQLite extension: better-sqlite3's Database, among others. */
export interface LoadsExtensions {
  loadExtension(path: string, entryPoint?: string): unknown;
}

export interface LoadOptions {
  /** Load sqlite3_apify_no_network_init: only apify_dry_run() and apify_version(); nothing
   * that sends or reads the token or the environment. */
  noNetwork?: boolean;
}

/** The entry point for hosts that run other people's SQL. */
export declare const NO_NETWORK_ENTRY_POINT: "sqlite3_apify_no_network_init";

/** The absolute path of the compiled extension in this package. */
export declare function getLoadablePath(): string;

/** Load the extension into db (db.loadExtension(getLoadablePath())). */
export declare function load(db: LoadsExtensions, options?: LoadOptions): void;
