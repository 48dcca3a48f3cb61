/*
** test_alloc.c: the whole extension (every file of ext/, linked in here with SQLITE_CORE)
** running out of memory at every allocation it makes through SQLite, on the paths a user takes:
** registration, apify_config(), apify_dry_run(), apify_create_webhook() with bad input or no
** token, INSERT INTO apify_webhooks of valid rows (no token: the commit fails), of invalid rows
** and in savepoints, SELECT from an empty and a filled store, CREATE VIRTUAL TABLE and DROP
** TABLE. With APIFY_TEST_BASE_URL set (tests/run.py starts an emulator and sets it; token
** "test-token") the sending paths too: apify_create_webhook() and INSERTs that post at commit,
** apify_remote_webhooks, apify_webhook_dispatches and apify_test_webhook().
**
**   make build/test_alloc && build/test_alloc         (APIFY_ALLOC_VERBOSE=1: runs per case)
**
** For each case and N = 1, 2, ... the Nth allocation (and, in a second pass, every one after
** it too) fails, until a run meets no failure. Each statement of a run must give exactly what
** it gives without failures, or SQLITE_NOMEM, or its own error code with SQLite's generic text
** (SQLite drops a message it cannot copy; see isLostMessage()); the run stops there. After
** sqlite3_close() (which must succeed: no statement left unfinalized) no block may be left.
** A run that breaks the rule prints the stack of the allocation that failed. libcurl allocates
** with malloc, not through SQLite: its memory is not counted here (the ASan build of this
** program, with leak detection, and valgrind see it).
*/
#define _POSIX_C_SOURCE 200809L   /* unsetenv */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "apify.h"
#include "unit.h"
#include "fault.h"

int sqlite3_apify_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi);

/* ---------------------------------------------------------------------------------------------
** Running SQL and writing down what it gave, in fixed buffers: the test's own bookkeeping must
** not allocate through the allocator under test.
*/
#define MAX_STMT 16
#define OUT_SIZE 8192

typedef struct Outcome Outcome;
struct Outcome {
  int nStmt;               /* statements run */
  int aRc[MAX_STMT];       /* primary result code of each */
  char azOut[MAX_STMT][OUT_SIZE];  /* rows ("a|b" lines), or "error N: message" */
};

/* Append z to the buffer zOut of OUT_SIZE bytes. */
static void outAppend(char *zOut, const char *z){
  size_t n = strlen(zOut);
  if( n+1<OUT_SIZE ) snprintf(zOut+n, OUT_SIZE-n, "%s", z);
}

/* Run the one statement zSql on db, writing its rows or its error into zOut. Returns the
** primary result code: SQLITE_OK when every step succeeded. */
static int runStmt(sqlite3 *db, const char *zSql, char *zOut){
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  zOut[0] = 0;
  while( rc==SQLITE_OK && (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
    int i, n = sqlite3_column_count(pStmt);
    rc = SQLITE_OK;
    for(i=0; i<n; i++){
      const char *z = (const char*)sqlite3_column_text(pStmt, i);
      if( z==0 && sqlite3_column_type(pStmt, i)!=SQLITE_NULL ){
        rc = SQLITE_NOMEM;          /* the conversion to text ran out of memory */
        break;
      }
      if( i ) outAppend(zOut, "|");
      outAppend(zOut, z ? z : "NULL");
    }
    outAppend(zOut, "\n");
  }
  if( rc==SQLITE_DONE ) rc = SQLITE_OK;
  if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = sqlite3_errcode(db);
  rc &= 0xff;
  if( rc!=SQLITE_OK ){
    char zErr[OUT_SIZE];
    snprintf(zErr, sizeof(zErr), "error %d: %s", rc, sqlite3_errmsg(db));
    snprintf(zOut, OUT_SIZE, "%s", zErr);
  }
  return rc;
}

/* ---------------------------------------------------------------------------------------------
** The cases. zSetup runs before failures are armed (on a db with the extension registered);
** azSql run armed, one statement each. Tokens and base URLs come from apify_config() in zSetup,
** never from the environment (main() clears APIFY_TOKEN and APIFY_API_BASE_URL).
*/
#define HOOK(url) "'{\"requestUrl\":\"" url "\",\"eventTypes\":[\"ACTOR.RUN.SUCCEEDED\"]," \
                  "\"condition\":{\"actorId\":\"HDSasDasz78YcAPEB\"}}'"
#define FULL_HOOK "'{\"requestUrl\":\"https://example.com/full?x=1\",\"eventTypes\":" \
  "[\"ACTOR.RUN.FAILED\",\"TEST\"],\"condition\":{\"actorId\":\"a\",\"actorRunId\":\"r\"}," \
  "\"isAdHoc\":true,\"idempotencyKey\":\"k-full\",\"description\":\"d\"," \
  "\"payloadTemplate\":\"{\\\"a\\\": {{resource.id}}, \\\"b\\\": \\\"{{eventType}}\\\"}\"," \
  "\"headersTemplate\":\"{\\\"X-A\\\": {{userId}}}\",\"shouldInterpolateStrings\":true," \
  "\"ignoreSslErrors\":false,\"doNotRetry\":true}'"
#define ROW_COLS "INSERT INTO apify_webhooks(request_url, event_types, actor_id"

/* The store of apify_webhooks as store.c creates it on the first write, filled directly: a
** created row, a failed one and a pending one. */
#define STORE_FILLED \
  "CREATE TABLE apify_webhooks_store(seq INTEGER PRIMARY KEY," \
  " idempotency_key TEXT NOT NULL UNIQUE, request TEXT NOT NULL," \
  " status TEXT NOT NULL CHECK(status IN ('pending','created','failed'))," \
  " id TEXT, http_status INTEGER, location TEXT, error_type TEXT, error_message TEXT," \
  " response TEXT, attempts INTEGER NOT NULL DEFAULT 0, queued_at TEXT, completed_at TEXT);" \
  "CREATE INDEX apify_webhooks_store_id ON apify_webhooks_store(id);" \
  "CREATE INDEX apify_webhooks_store_status ON apify_webhooks_store(status);" \
  "CREATE TABLE apify_webhooks_queue(idempotency_key TEXT NOT NULL UNIQUE," \
  " request TEXT NOT NULL, pos INTEGER NOT NULL);" \
  "INSERT INTO apify_webhooks_store VALUES(1, 'k1', '{\"requestUrl\":\"https://example.com/1\"," \
  "\"eventTypes\":[\"TEST\"],\"condition\":{\"actorId\":\"a\"},\"idempotencyKey\":\"k1\"}'," \
  " 'created', 'W1', 201, 'http://127.0.0.1/v2/webhooks/W1', NULL, NULL, '{\"id\":\"W1\"}', 1," \
  " '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z');" \
  "INSERT INTO apify_webhooks_store VALUES(2, 'k2', '{\"requestUrl\":\"https://example.com/2\"," \
  "\"eventTypes\":[\"TEST\"],\"condition\":{\"actorId\":\"a\"},\"idempotencyKey\":\"k2\"}'," \
  " 'failed', NULL, 400, NULL, 'invalid-input', 'bad', NULL, 1, NULL, NULL);" \
  "INSERT INTO apify_webhooks_store VALUES(3, 'k3', '{\"requestUrl\":\"https://example.com/3\"," \
  "\"eventTypes\":[\"TEST\"],\"condition\":{\"actorId\":\"a\"},\"idempotencyKey\":\"k3\"}'," \
  " 'pending', NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL);"

typedef struct Case Case;
struct Case {
  const char *zName;
  int bNet;                        /* sends: needs APIFY_TEST_BASE_URL */
  int bEach;                       /* the statements do not depend on each other: each is run
                                   ** as a case of its own (N runs each, not N for them all) */
  const char *zSetup;              /* run unarmed after registration, or NULL */
  const char *azSql[MAX_STMT];     /* run armed; NULL ends the list */
};

static const Case aCase[] = {
  { "config", 0, 1, 0, {
    "SELECT apify_config()",
    "SELECT apify_config('concurrency'), apify_config('rate_limit'), apify_config('progress')",
    "SELECT apify_config('concurrency', 4), apify_config('rate_limit', 2.5)",
    "SELECT apify_config('progress', 'on'), apify_config('PROGRESS', 0)",
    "SELECT apify_config('base_url', 'http://127.0.0.1:9/x//')",
    "SELECT apify_config('base_url', 'ftp://127.0.0.1')",
    "SELECT apify_config('base_url', NULL)",
    "SELECT apify_config('token', 'secret'), apify_config('token')",
    "SELECT apify_config('ca_file', '/nonexistent.pem'), apify_config('ca_file', '')",
    "SELECT apify_config('nope')",
    "SELECT apify_config(NULL, 1)",
    "SELECT apify_config('timeout_ms', 'soon')",
    "SELECT apify_config('progress', 'maybe')",
    "SELECT apify_config('token', 5)",
    0 } },
  { "config, set then read", 0, 0, 0, {
    "SELECT apify_config('token', 'secret'), apify_config('base_url', 'http://127.0.0.1:1/')",
    "SELECT apify_config()",
    0 } },
  { "dry run", 0, 1, "SELECT apify_config('token', 'secret')", {
    "SELECT apify_dry_run(" HOOK("https://example.com/h") ")",
    "SELECT apify_dry_run(" FULL_HOOK ")",
    "SELECT apify_dry_run('{\"requestUrl\":\"nope\"}')",
    "SELECT apify_dry_run(NULL)",
    "SELECT apify_dry_run('[1,2')",
    "SELECT apify_dry_run(" HOOK("https://example.com/h") ")->>'$.headers.Authorization'",
    0 } },
  { "create without sending", 0, 1, 0, {
    "SELECT apify_create_webhook('{\"requestUrl\":\"https://x.io\","
      "\"eventTypes\":[\"ACTOR.RUN.SUCEEDED\"]}')",
    "SELECT apify_create_webhook(NULL)",
    "SELECT apify_create_webhook(x'7b7d')",
    "SELECT apify_create_webhook(" HOOK("https://example.com/h") ")",
    0 } },
  { "create refused before sending", 0, 1,
    "SELECT apify_config('token', 'secret'), apify_config('base_url', 'http://example.com')", {
    "SELECT apify_create_webhook(" HOOK("https://example.com/h") ")",
    0 } },
  { "insert without a token", 0, 1, 0, {
    ROW_COLS ") VALUES ('https://example.com/a', '[\"TEST\"]', 'a1'),"
      " ('https://example.com/b', '[\"TEST\"]', 'a2')",
    "INSERT INTO apify_webhooks(webhook) VALUES (" FULL_HOOK ")",
    0 } },
  { "insert without a token, savepoints", 0, 0, 0, {
    "BEGIN",
    ROW_COLS ", is_ad_hoc, description)"
      " VALUES ('https://example.com/a', '[\"TEST\"]', 'a1', 1, 'd')",
    "SAVEPOINT s1",
    ROW_COLS ") VALUES ('https://example.com/c', '[\"TEST\"]', 'a3')",
    "ROLLBACK TO s1",
    ROW_COLS ") VALUES ('https://example.com/d', '[\"TEST\"]', 'a4')",
    "SELECT count(*) FROM apify_webhooks_queue",
    "COMMIT",
    "SELECT count(*) FROM apify_webhooks",
    0 } },
  { "invalid rows", 0, 1, 0, {
    ROW_COLS ") VALUES ('https://example.com/a', '[\"TEST\"]', 'a1'), ('nope', '[]', 'a2')",
    ROW_COLS ", is_ad_hoc) VALUES ('https://example.com/a', '[\"TEST\"]', 'a1', 2)",
    ROW_COLS ") VALUES ('https://example.com/a', 7, 'a1')",
    ROW_COLS ", status) VALUES ('https://example.com/a', '[\"TEST\"]', 'a1', 'created')",
    "INSERT INTO apify_webhooks(rowid, webhook) VALUES (5, " HOOK("https://example.com/a") ")",
    "INSERT INTO apify_webhooks(webhook) VALUES ('not json')",
    "INSERT INTO apify_webhooks(webhook, description) VALUES ('[1]', 'x')",
    "INSERT INTO apify_webhooks(webhook, event_types) VALUES ('{}', 'not json')",
    ROW_COLS ", idempotency_key) VALUES ('https://example.com/a', '[\"TEST\"]', 'a1', 'same'),"
      " ('https://example.com/b', '[\"TEST\"]', 'a1', 'same')",
    "UPDATE apify_webhooks SET description='x'",
    "DELETE FROM apify_webhooks",
    0 } },
  { "select, empty store", 0, 1, 0, {
    "SELECT * FROM apify_webhooks",
    "SELECT id FROM apify_webhooks WHERE status='created' AND id='x'",
    "SELECT rowid FROM apify_webhooks WHERE rowid=1 OR idempotency_key='k'",
    0 } },
  { "select, filled store", 0, 1, STORE_FILLED, {
    "SELECT rowid, * FROM apify_webhooks",
    "SELECT rowid, id, location FROM apify_webhooks WHERE status='created' ORDER BY rowid",
    "SELECT rowid, status FROM apify_webhooks WHERE id='W1'",
    "SELECT rowid, status FROM apify_webhooks WHERE rowid=2",
    "SELECT webhook FROM apify_webhooks WHERE idempotency_key='k3' AND status='pending'",
    "SELECT a.rowid, b.rowid FROM apify_webhooks a JOIN apify_webhooks b ON b.rowid=a.rowid+1",
    /* created already: nothing to send, so no token needed */
    ROW_COLS ", idempotency_key) VALUES ('https://example.com/1', '[\"TEST\"]', 'a', 'k1')",
    /* a key that names another request */
    ROW_COLS ", idempotency_key) VALUES ('https://example.com/9', '[\"TEST\"]', 'a', 'k1')",
    /* failed before: sent again, and there is no token */
    ROW_COLS ", idempotency_key) VALUES ('https://example.com/2', '[\"TEST\"]', 'a', 'k2')",
    0 } },
  { "create a table", 0, 1, 0, {
    "CREATE VIRTUAL TABLE nightly USING apify_webhooks",
    "CREATE VIRTUAL TABLE other USING apify_webhooks(x)",
    0 } },
  { "a created table", 0, 1, "CREATE VIRTUAL TABLE nightly USING apify_webhooks", {
    "SELECT count(*) FROM nightly",
    "INSERT INTO nightly(request_url, event_types, actor_id)"
      " VALUES ('https://example.com/n', '[\"TEST\"]', 'a')",
    "DROP TABLE nightly",
    0 } },
  { "drop a table with its store", 0, 0, "CREATE VIRTUAL TABLE nightly USING apify_webhooks;"
    "BEGIN; INSERT INTO nightly(request_url, event_types, actor_id)"
    " VALUES ('https://example.com/n', '[\"TEST\"]', 'a')", {
    "DROP TABLE nightly",
    "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'nightly%'",
    "COMMIT",
    0 } },
  { "create, sent", 1, 1, 0, {
    "SELECT apify_create_webhook(" HOOK("https://example.com/sent") ")->>'requestUrl'",
    "SELECT apify_create_webhook('{\"requestUrl\":\"https://example.com/bad\","
      "\"eventTypes\":[\"TEST\"],\"condition\":{\"actorId\":\"a\"},"
      "\"payloadTemplate\":\"{\\\"a\\\": {{users}}}\"}')",
    0 } },
  { "insert, sent at commit", 1, 0, 0, {
    ROW_COLS ") VALUES ('https://example.com/s1', '[\"TEST\"]', 'a1'),"
      " ('https://example.com/s2', '[\"TEST\"]', 'a1')",
    "SELECT request_url, status, id IS NOT NULL, location IS NOT NULL, error_message"
      " FROM apify_webhooks ORDER BY rowid",
    0 } },
  { "insert, sent again", 1, 1, STORE_FILLED, {
    /* failed before, and pending after an interrupted run: both sent now */
    ROW_COLS ", idempotency_key) VALUES ('https://example.com/2', '[\"TEST\"]', 'a', 'k2'),"
      " ('https://example.com/3', '[\"TEST\"]', 'a', 'k3')",
    0 } },
  { "the account's tables, refused before sending", 0, 1, 0, {
    "SELECT * FROM apify_remote_webhooks",
    "SELECT * FROM apify_webhook_dispatches('x')",
    "SELECT count(*) FROM apify_webhook_dispatches(NULL)",
    "SELECT apify_test_webhook('x')",
    "SELECT apify_test_webhook(NULL)",
    0 } },
  /* A webhook of the account, allocRemote: read through its actor's list, tested (its
  ** dispatches grow from run to run, so their list is not read here: the tables share every
  ** method but xFilter's choice of path), and an unknown webhook's log. */
  { "the account's tables, read", 1, 1,
    "SELECT apify_create_webhook('{\"requestUrl\":\"https://example.com/remote\","
    "\"eventTypes\":[\"TEST\"],\"condition\":{\"actorId\":\"allocRemote\"},"
    "\"idempotencyKey\":\"alloc-remote\"}')", {
    "SELECT id IS NOT NULL, length(webhook)>0, event_types, actor_id, total_dispatches>=0"
      " FROM apify_remote_webhooks WHERE actor_id='allocRemote'",
    "SELECT apify_test_webhook(id)->>'eventType' FROM apify_remote_webhooks"
      " WHERE actor_id='allocRemote'",
    "SELECT count(*) FROM apify_webhook_dispatches('nope')",
    0 } },
};
#define N_CASE (int)(sizeof(aCase)/sizeof(aCase[0]))

static const char *zBaseUrl;       /* APIFY_TEST_BASE_URL: an emulator, or NULL */

/* A fresh in-memory database with the extension registered and pCase's setup done, unarmed.
** For a sending case the extension is pointed at the emulator (token tests.harness.TOKEN),
** with retries and pacing that keep a run short. NULL when that fails. */
static sqlite3 *caseOpen(const Case *pCase){
  sqlite3 *db = 0;
  char *zErr = 0;
  int rc = sqlite3_open(":memory:", &db);
  if( rc==SQLITE_OK ) rc = sqlite3_apify_init(db, &zErr, 0);
  if( rc==SQLITE_OK && pCase->bNet ){
    char *zSql = sqlite3_mprintf(
      "SELECT apify_config('base_url', %Q), apify_config('token', 'test-token'),"
      " apify_config('max_attempts', 2), apify_config('rate_limit', 100000),"
      " apify_config('timeout_ms', 5000), apify_config('progress', 'off')", zBaseUrl);
    rc = zSql ? sqlite3_exec(db, zSql, 0, 0, &zErr) : SQLITE_NOMEM;
    sqlite3_free(zSql);
  }
  if( rc==SQLITE_OK && pCase->zSetup ) rc = sqlite3_exec(db, pCase->zSetup, 0, 0, &zErr);
  if( rc!=SQLITE_OK ){
    fprintf(stderr, "%s: setup failed: %s\n", pCase->zName, zErr ? zErr : sqlite3_errstr(rc));
    sqlite3_free(zErr);
    sqlite3_close(db);
    return 0;
  }
  return db;
}

/* True when zOut is the error rc with SQLite's generic text for it: what a statement reports
** when SQLite could not copy the extension's message (sqlite3_result_error() and the copy of a
** virtual table's zErrMsg drop the text when their allocation fails, and keep the code).
** Nothing the extension can change: a clean failure, though not SQLITE_NOMEM. */
static int isLostMessage(int rc, const char *zOut){
  char zGeneric[200];
  snprintf(zGeneric, sizeof(zGeneric), "error %d: %s", rc, sqlite3_errstr(rc));
  return rc!=SQLITE_OK && strcmp(zOut, zGeneric)==0;
}

/* Run the statements of pCase on db into *p, stopping after the first SQLITE_NOMEM. */
static void caseRun(const Case *pCase, sqlite3 *db, Outcome *p){
  int i;
  p->nStmt = 0;
  for(i=0; i<MAX_STMT && pCase->azSql[i]; i++){
    p->aRc[i] = runStmt(db, pCase->azSql[i], p->azOut[i]);
    p->nStmt++;
    if( p->aRc[i]==SQLITE_NOMEM || isLostMessage(p->aRc[i], p->azOut[i]) ) break;
  }
}

static Outcome want, got;          /* big: kept out of the stack */

/* Close db; count a failure if a statement was left open or a block is left over. */
static int caseClose(const Case *pCase, sqlite3 *db, long long nBefore, int iFail){
  int nBad = 0;
  if( sqlite3_close(db)!=SQLITE_OK ){
    fprintf(stderr, "%s: fail at %d: sqlite3_close: a statement was not finalized\n",
            pCase->zName, iFail);
    sqlite3_close_v2(db);
    nBad++;
  }
  if( nLive!=nBefore ){
    fprintf(stderr, "%s: fail at %d: %lld blocks leaked\n", pCase->zName, iFail,
            nLive-nBefore);
    nBad++;
  }
  return nBad;
}

/* Run pCase without failures (what every run must give), then with the Nth allocation failing
** (and every later one too when bAfter) for N = 1, 2, ... until a run meets no failure. */
static void oomCase(const Case *pCase, int bAfter){
  int iFail, nBad = 0, bDone = 0, i;
  long long nBefore = nLive;
  struct timespec t0, t1;
  sqlite3 *db;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  db = caseOpen(pCase);
  if( db==0 ){
    CHECK(db!=0);
    return;
  }
  caseRun(pCase, db, &want);
  nBad += caseClose(pCase, db, nBefore, 0);
  for(i=0; i<want.nStmt; i++){
    if( want.aRc[i]==SQLITE_NOMEM ){
      fprintf(stderr, "%s: statement %d is SQLITE_NOMEM without a failure\n", pCase->zName, i);
      nBad++;
    }
  }
  for(iFail=1; !bDone && nBad<10; iFail++){
    nBefore = nLive;
    db = caseOpen(pCase);
    if( db==0 ){
      nBad++;
      break;
    }
    faultArm(iFail, bAfter);
    caseRun(pCase, db, &got);
    bDone = nFaults==0;
    faultArm(0, 0);
    for(i=0; i<got.nStmt; i++){
      int bNoMem = !bDone && (got.aRc[i]==SQLITE_NOMEM
                    || (want.aRc[i]==got.aRc[i] && isLostMessage(got.aRc[i], got.azOut[i])));
      if( !bNoMem && (got.aRc[i]!=want.aRc[i] || strcmp(got.azOut[i], want.azOut[i])!=0) ){
        fprintf(stderr, "%s: fail at %d%s: statement %d: %s\n  got:  %s\n  want: %s\n",
                pCase->zName, iFail, bAfter ? " and after" : "", i, pCase->azSql[i],
                got.azOut[i], want.azOut[i]);
        faultStackPrint();
        nBad++;
        break;
      }
    }
    nBad += caseClose(pCase, db, nBefore, iFail);
  }
  if( !CHECK_EQ_INT(nBad, 0) ){
    fprintf(stderr, "%s%s: %d runs\n", pCase->zName, bAfter ? " (fail after)" : "", iFail-1);
  }
  CHECK(iFail>20);                 /* the case allocates, so the loop really ran */
  if( getenv("APIFY_ALLOC_VERBOSE") ){      /* how long each case is, to keep the program fast */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%6.2f s %5d runs  %s%s\n", (double)(t1.tv_sec-t0.tv_sec) + (t1.tv_nsec-t0.tv_nsec)/1e9,
           iFail-1, pCase->zName, bAfter ? " (fail after)" : "");
  }
}

/* Registration itself: sqlite3_apify_init() fails cleanly and leaks nothing. */
static void oomInit(void){
  int iFail, nBad = 0, bDone = 0, bAfter;
  for(bAfter=0; bAfter<2; bAfter++){
    for(iFail=1, bDone=0; !bDone; iFail++){
      long long nBefore = nLive;
      sqlite3 *db = 0;
      char *zErr = 0;
      int rc;
      if( sqlite3_open(":memory:", &db)!=SQLITE_OK ){ nBad++; break; }
      faultArm(iFail, bAfter);
      rc = sqlite3_apify_init(db, &zErr, 0);
      bDone = nFaults==0;
      faultArm(0, 0);
      if( bDone ? rc!=SQLITE_OK : (rc!=SQLITE_OK && rc!=SQLITE_NOMEM) ){
        fprintf(stderr, "init: fail at %d: rc=%d\n", iFail, rc);
        nBad++;
      }
      if( rc==SQLITE_OK ){
        char zOut[OUT_SIZE];
        if( runStmt(db, "SELECT apify_version()", zOut)!=SQLITE_OK ) nBad++;
      }
      sqlite3_free(zErr);
      {
        static const Case init = { "init", 0, 0, 0, {0} };
        nBad += caseClose(&init, db, nBefore, iFail);
      }
    }
    CHECK(iFail>5);
  }
  CHECK_EQ_INT(nBad, 0);
}

int main(void){
  int i, bAfter;
  unsetenv("APIFY_TOKEN");
  unsetenv("APIFY_API_BASE_URL");
  zBaseUrl = getenv("APIFY_TEST_BASE_URL");
  if( zBaseUrl && zBaseUrl[0]==0 ) zBaseUrl = 0;
  faultInstall();                                    /* before sqlite3_initialize() */
  CHECK_EQ_INT(sqlite3_initialize(), SQLITE_OK);

  oomInit();
  for(i=0; i<N_CASE; i++){
    if( aCase[i].bNet && zBaseUrl==0 ){
      printf("skipped: %s (no APIFY_TEST_BASE_URL: tests/run.py sets it)\n", aCase[i].zName);
      continue;
    }
    for(bAfter=0; bAfter<2; bAfter++){
      if( aCase[i].bEach ){
        Case one = aCase[i];
        int j;
        for(j=0; aCase[i].azSql[j]; j++){
          one.azSql[0] = aCase[i].azSql[j];
          one.azSql[1] = 0;
          oomCase(&one, bAfter);
        }
      }else{
        oomCase(&aCase[i], bAfter);
      }
    }
  }
  return unitSummary();
}
