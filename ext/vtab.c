/*
** vtab.c: the apify_webhooks virtual table: SQL's verbs on the webhooks of an Apify account,
** applied at commit, each exactly once, every outcome recorded.
**
**   .load ./build/apify
**   INSERT INTO apify_webhooks(request_url, event_types, actor_id)          -- POST at commit
**     SELECT 'https://example.com/hook/' || name, '["ACTOR.RUN.SUCCEEDED"]', actor_id FROM actors;
**   UPDATE apify_webhooks SET request_url = replace(request_url, 'exmaple', 'example')
**    WHERE request_url LIKE '%exmaple%';                                    -- PUT at commit
**   DELETE FROM apify_webhooks WHERE actor_id IN (SELECT actor_id FROM retired);  -- DELETE
**   INSERT INTO apify_webhooks(id) VALUES ('HDSasDasz78YcAPEB');   -- adopt: GET at commit
**   SELECT id, status, location, error_message FROM apify_webhooks;
**   CREATE VIRTUAL TABLE nightly USING apify_webhooks;   -- another table, its own store
**
** When the network is used. xUpdate only validates the row and queues the operation (store.c:
** the record shows it as 'pending'); nothing is sent. xSync, which SQLite calls when the
** transaction commits (the end of the statement in autocommit mode, COMMIT otherwise), sends
** every queued operation in the order the records were first touched, many requests in flight,
** and records each outcome before it returns. So:
**   - ROLLBACK, or ROLLBACK TO a savepoint, takes the queued operations back: nothing is sent.
**   - An invalid row fails its statement before anything of that statement is sent.
**   - A failure that means nothing more can be done (no token, 401, the API unreachable) makes
**     xSync fail, so the commit fails and the transaction rolls back; its message says what was
**     sent and answered before it.
**   - Other failures are per row: the record keeps the reason, and the commit succeeds.
** Operations on one record in one transaction fold into one: inserted then updated sends one
** create of the final request; inserted then deleted sends nothing; updated then deleted sends
** one DELETE. A webhook that exists on Apify is never undone by a ROLLBACK: the records of a
** rolled-back commit are lost, but every create carries its idempotency key, so running the
** statement again gets the same webhooks back from the API instead of creating new ones.
**
** Which records are acted on: only those the extension can prove it wrote for this account (a
** MAC under the token's key, store.c). Others read as status 'unverified': never resent, never
** skipped as created, never updated or deleted (the statement fails, saying how to adopt them).
**
** Why DIRECTONLY: writing this table spends the user's token; a database file from someone else
** must not be able to do that from a trigger or a view. Views read the store table T_store.
*/
#include <string.h>
#include "apify.h"

/* The declared columns. The request columns map to WebhookCreate fields (aField below). */
static const char zColumns[] =
  "CREATE TABLE x(request_url TEXT, event_types TEXT, actor_id TEXT, actor_task_id TEXT,"
  " actor_run_id TEXT, is_ad_hoc INTEGER, idempotency_key TEXT, payload_template TEXT,"
  " headers_template TEXT, description TEXT, should_interpolate_strings INTEGER,"
  " ignore_ssl_errors INTEGER, do_not_retry INTEGER, webhook TEXT,"
  " id TEXT, status TEXT, http_status INTEGER, location TEXT, error_type TEXT,"
  " error_message TEXT, response TEXT, attempts INTEGER, queued_at TEXT, completed_at TEXT,"
  " operation TEXT, verified INTEGER)";
#define COL_IDEMPOTENCY_KEY  6
#define COL_WEBHOOK         13
#define COL_ID              14   /* first outcome column: set by the extension only */
#define COL_STATUS          15
#define COL_OPERATION       24
#define COL_VERIFIED        25
#define N_REQUEST_COL       13
#define N_COL               26

/* Request column i is WebhookCreate field aField[i].zPath, of kind 't' text, 'j' JSON (an
** array given as text), 'b' boolean. The same table builds requests in xUpdate and reads them
** back in xFilter. */
static const struct { const char *zName; const char *zPath; char eKind; } aField[N_REQUEST_COL] = {
  { "request_url",                "$.requestUrl",               't' },
  { "event_types",                "$.eventTypes",               'j' },
  { "actor_id",                   "$.condition.actorId",        't' },
  { "actor_task_id",              "$.condition.actorTaskId",    't' },
  { "actor_run_id",               "$.condition.actorRunId",     't' },
  { "is_ad_hoc",                  "$.isAdHoc",                  'b' },
  { "idempotency_key",            "$.idempotencyKey",           't' },
  { "payload_template",           "$.payloadTemplate",          't' },
  { "headers_template",           "$.headersTemplate",          't' },
  { "description",                "$.description",              't' },
  { "should_interpolate_strings", "$.shouldInterpolateStrings", 'b' },
  { "ignore_ssl_errors",          "$.ignoreSslErrors",          'b' },
  { "do_not_retry",               "$.doNotRetry",               'b' },
};

/* The outcome columns, from COL_ID on, and the record column each reads (store.c's order). */
static const char *const azOutcome[] = {
  "id", "status", "http_status", "location", "error_type", "error_message", "response",
  "attempts", "queued_at", "completed_at", "operation", "verified"
};
/* In the scan: the record's columns first (apifyStoreScan()), then the request as it stands or
** as pending, then the request columns read out of it. */
#define SC_SEQ        0
#define SC_KEY        1
#define SC_STATUS     4
#define SC_OPERATION  5
#define SC_ID         7
#define SC_HTTP       8
#define SC_PENDING   16      /* the queued operation */
#define SC_REQUEST   22      /* the request as it stands, or as pending */
#define SC_FIELD0    23      /* the request columns */
/* The request as a row shows it: as queued by a create or an update, else as it stands. */
#define ROW_REQUEST "CASE WHEN q.op IN ('create','update') THEN q.body ELSE s.request END"

typedef struct WebhookTab WebhookTab;
typedef struct WebhookCursor WebhookCursor;

struct WebhookTab {
  sqlite3_vtab base;       /* must come first */
  sqlite3 *db;
  Apify *pApify;           /* the connection's configuration and transport (a reference) */
  ApifyStore *pStore;      /* shared with any other sqlite3_vtab of this table */
  sqlite3_stmt *pSet;      /* adds one field to a request: json_set(?1, ?2, value) */
  sqlite3_stmt *pJson;     /* whether ?1 is JSON, and a JSON object */
  ApifyRules *pRules;      /* the request rules' statements, prepared once */
  int bEponymous;          /* the table named after the module, which lives in main */
};

struct WebhookCursor {
  sqlite3_vtab_cursor base; /* must come first */
  WebhookTab *pTab;
  sqlite3_stmt *pScan;     /* records of the store, in seq order; NULL when there is no store */
  int bEof;
  int eTrust;              /* the trust of the current record */
};

/* Replace the table's error message with z (sqlite3_malloc'd, owned from here). */
static int tabError(WebhookTab *pTab, int rc, char *z){
  sqlite3_free(pTab->base.zErrMsg);
  pTab->base.zErrMsg = z;
  return z ? rc : SQLITE_NOMEM;
}

/* The table's error: *pzErr when set (taken), else the connection's message right now (read at
** once: later SQL on the connection would replace it). */
static int tabFail(WebhookTab *pTab, int rc, char **pzErr){
  char *z = *pzErr;
  *pzErr = 0;
  if( rc==SQLITE_OK || rc==SQLITE_NOMEM ){
    sqlite3_free(z);
    return rc;
  }
  if( z==0 ) z = sqlite3_mprintf("apify: %s", sqlite3_errmsg(pTab->db));
  return tabError(pTab, rc, z);
}

/*
** xConnect and xCreate: argv[0] the module, argv[1] the schema, argv[2] the table name, no
** arguments after. The store's tables are not created here but on the first write, inside its
** transaction.
*/
static int webhookConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                          sqlite3_vtab **ppVtab, char **pzErr){
  WebhookTab *pTab;
  int rc;
  *ppVtab = 0;
  if( argc>3 ){
    *pzErr = sqlite3_mprintf("apify: %s takes no arguments", argv[0]);
    return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
  }
  rc = sqlite3_declare_vtab(db, zColumns);
  if( rc==SQLITE_OK ) rc = sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  if( rc!=SQLITE_OK ) return rc;
  pTab = sqlite3_malloc64(sizeof(*pTab));
  if( pTab==0 ) return SQLITE_NOMEM;
  memset(pTab, 0, sizeof(*pTab));
  pTab->db = db;
  pTab->pApify = (Apify*)pAux;
  rc = apifyStoreOpen(pTab->pApify, db, argv[1], argv[2], &pTab->pStore);
  if( rc!=SQLITE_OK ){
    sqlite3_free(pTab);
    return rc;
  }
  pTab->bEponymous = sqlite3_stricmp(argv[0], argv[2])==0 && sqlite3_stricmp(argv[1], "main")==0;
  apifyRef(pTab->pApify);
  *ppVtab = &pTab->base;
  return SQLITE_OK;
}

/* xDisconnect: free the table object; the store's tables stay. */
static int webhookDisconnect(sqlite3_vtab *pVtab){
  WebhookTab *pTab = (WebhookTab*)pVtab;
  apifyStoreClose(pTab->pStore);
  apifyRulesClose(pTab->pRules);
  sqlite3_finalize(pTab->pSet);
  sqlite3_finalize(pTab->pJson);
  apifyUnref(pTab->pApify);
  sqlite3_free(pTab);
  return SQLITE_OK;
}

/* xDestroy (DROP TABLE of a created table): drop the store too. */
static int webhookDestroy(sqlite3_vtab *pVtab){
  WebhookTab *pTab = (WebhookTab*)pVtab;
  int rc = apifyStoreDrop(pTab->pStore);
  if( rc==SQLITE_OK ) webhookDisconnect(pVtab);
  return rc;
}

/*
** xBestIndex: equality on rowid or idempotency_key finds one record, on id about one, on status
** a part; each uses an index of the store. Only constraints compared with BINARY, the columns'
** own collation, are taken (a COLLATE NOCASE one is left to SQLite). status is narrowed, never
** decided, in SQL: 'pending' and 'unverified' are worked out per record in C, so SQLite checks
** it again. idxNum holds one bit per constraint used, in this order, and xFilter's arguments
** come in the same order; idxStr says it for EXPLAIN.
*/
#define IDX_ROWID  1
#define IDX_KEY    2
#define IDX_ID     4
#define IDX_STATUS 8
static int webhookBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo){
  static const struct { int iCol; int bit; const char *zName; double rCost; } aIdx[] = {
    { -1,                  IDX_ROWID,  "rowid",           1.0 },
    { COL_IDEMPOTENCY_KEY, IDX_KEY,    "idempotency_key", 1.0 },
    { COL_ID,              IDX_ID,     "id",              2.0 },
    { COL_STATUS,          IDX_STATUS, "status",          1000.0 },
  };
  sqlite3_str *pDesc = sqlite3_str_new(0);
  int iIdx, i, nArg = 0, idxNum = 0;
  double rCost = 100000.0;
  (void)pVtab;
  for(iIdx=0; iIdx<4; iIdx++){
    for(i=0; i<pInfo->nConstraint; i++){
      const struct sqlite3_index_constraint *pCons = &pInfo->aConstraint[i];
      const char *zColl;
      if( !pCons->usable || pCons->op!=SQLITE_INDEX_CONSTRAINT_EQ ) continue;
      if( pCons->iColumn!=aIdx[iIdx].iCol || (idxNum & aIdx[iIdx].bit) ) continue;
      zColl = pCons->iColumn>=0 ? sqlite3_vtab_collation(pInfo, i) : 0;
      if( zColl && sqlite3_stricmp(zColl, "BINARY")!=0 ) continue;
      idxNum |= aIdx[iIdx].bit;
      pInfo->aConstraintUsage[i].argvIndex = ++nArg;
      pInfo->aConstraintUsage[i].omit = aIdx[iIdx].bit!=IDX_STATUS;
      if( aIdx[iIdx].rCost<rCost ) rCost = aIdx[iIdx].rCost;
      sqlite3_str_appendf(pDesc, "%s%s=?", nArg>1 ? " AND " : "", aIdx[iIdx].zName);
    }
  }
  if( idxNum & (IDX_ROWID|IDX_KEY) ) pInfo->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
  pInfo->idxNum = idxNum;
  pInfo->estimatedCost = rCost;
  pInfo->estimatedRows = (sqlite3_int64)rCost;
  if( pInfo->nOrderBy==1 && pInfo->aOrderBy[0].iColumn<0 && !pInfo->aOrderBy[0].desc ){
    pInfo->orderByConsumed = 1;   /* rows come in rowid (first queued) order */
  }
  if( sqlite3_str_errcode(pDesc) ){
    sqlite3_free(sqlite3_str_finish(pDesc));
    return SQLITE_NOMEM;
  }
  pInfo->idxStr = sqlite3_str_finish(pDesc);   /* NULL when no constraint is used */
  pInfo->needToFreeIdxStr = 1;
  return SQLITE_OK;
}

/* xOpen */
static int webhookOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur){
  WebhookCursor *pCur = sqlite3_malloc64(sizeof(*pCur));
  if( pCur==0 ) return SQLITE_NOMEM;
  memset(pCur, 0, sizeof(*pCur));
  pCur->pTab = (WebhookTab*)pVtab;
  *ppCur = &pCur->base;
  return SQLITE_OK;
}

/* xClose */
static int webhookClose(sqlite3_vtab_cursor *cur){
  WebhookCursor *pCur = (WebhookCursor*)cur;
  sqlite3_finalize(pCur->pScan);
  sqlite3_free(pCur);
  return SQLITE_OK;
}

/* xNext: the next record, with its trust worked out. */
static int webhookNext(sqlite3_vtab_cursor *cur){
  WebhookCursor *pCur = (WebhookCursor*)cur;
  int rc = sqlite3_step(pCur->pScan);
  pCur->bEof = rc!=SQLITE_ROW;
  if( rc==SQLITE_ROW ){
    rc = apifyStoreTrust(pCur->pTab->pStore, pCur->pScan, 0, &pCur->eTrust);
    if( rc==SQLITE_OK ) return SQLITE_OK;
    pCur->bEof = 1;
    return rc;
  }
  if( rc==SQLITE_DONE ) return SQLITE_OK;
  if( rc==SQLITE_ERROR && strstr(sqlite3_errmsg(pCur->pTab->db), "malformed JSON") ){
    /* The extension writes JSON requests only: a record that holds something else was put
    ** there by someone else. Say so, and how to remove it. */
    const char *zT = apifyStoreName(pCur->pTab->pStore);
    return tabError(pCur->pTab, rc, sqlite3_mprintf(
      "apify: a record of \"%w_store\" holds a request that is not JSON: the extension did not"
      " write it; forget such records with DELETE FROM \"%w_store\" WHERE NOT"
      " json_valid(request)", zT, zT));
  }
  return tabError(pCur->pTab, rc, sqlite3_mprintf("apify: %s", sqlite3_errmsg(pCur->pTab->db)));
}

/* xFilter: scan the store, narrowed by the constraints xBestIndex chose, in seq order. The
** request columns are read out of the request as it stands (or as an UPDATE of this transaction
** left it pending). Tombstones, and records a DELETE of this transaction is taking away, are not
** rows of the table. */
static int webhookFilter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr,
                         int argc, sqlite3_value **argv){
  WebhookCursor *pCur = (WebhookCursor*)cur;
  WebhookTab *pTab = (WebhookTab*)cur->pVtab;
  sqlite3_str *pSql, *pMore = sqlite3_str_new(pTab->db);
  char *zSql, *zMore, *zErr = 0;
  int i, rc, bExists = 0;
  (void)idxStr;
  sqlite3_finalize(pCur->pScan);
  pCur->pScan = 0;
  pCur->bEof = 1;
  rc = apifyStoreExists(pTab->pStore, &bExists);
  if( rc==SQLITE_OK && bExists ) rc = apifyStoreCheck(pTab->pStore, &zErr);
  if( rc!=SQLITE_OK || !bExists ){
    sqlite3_free(sqlite3_str_finish(pMore));
    return tabFail(pTab, rc, &zErr);
  }
  pSql = sqlite3_str_new(pTab->db);
  sqlite3_str_appendall(pMore, ROW_REQUEST);
  for(i=0; i<N_REQUEST_COL; i++){
    sqlite3_str_appendf(pMore, ", json_extract(" ROW_REQUEST ", %Q)", aField[i].zPath);
  }
  zMore = sqlite3_str_finish(pMore);
  rc = zMore ? apifyStoreScan(pTab->pStore, zMore, pSql) : SQLITE_NOMEM;
  sqlite3_free(zMore);
  /* Tombstones (unless being created again) and records being deleted are not rows. */
  sqlite3_str_appendall(pSql, " WHERE (s.status<>'deleted' OR q.op='create')"
                              " AND q.op IS NOT 'delete'");
  if( idxNum & IDX_ROWID )  sqlite3_str_appendall(pSql, " AND s.seq=?");
  if( idxNum & IDX_KEY )    sqlite3_str_appendall(pSql, " AND s.idempotency_key=?");
  if( idxNum & IDX_ID )     sqlite3_str_appendall(pSql, " AND s.id=?");
  if( idxNum & IDX_STATUS ){
    /* created and failed are stored as such (unless pending); other values are worked out */
    sqlite3_str_appendall(pSql, " AND (s.status=:s OR q.op IS NOT NULL"
                                " OR :s NOT IN ('created','failed'))");
  }
  sqlite3_str_appendall(pSql, " ORDER BY s.seq");
  zSql = sqlite3_str_finish(pSql);
  if( zSql==0 ) return SQLITE_NOMEM;
  if( rc!=SQLITE_OK ){
    sqlite3_free(zSql);
    return tabFail(pTab, rc, &zErr);
  }
  rc = sqlite3_prepare_v2(pTab->db, zSql, -1, &pCur->pScan, 0);
  sqlite3_free(zSql);
  for(i=0; rc==SQLITE_OK && i<argc; i++){
    /* status, when used, is the last argument, named :s; the others are ?1, ?2... in order */
    int iParam = (idxNum & IDX_STATUS) && i==argc-1
               ? sqlite3_bind_parameter_index(pCur->pScan, ":s") : i+1;
    rc = sqlite3_bind_value(pCur->pScan, iParam, argv[i]);
  }
  if( rc!=SQLITE_OK ) return tabFail(pTab, rc, &zErr);
  return webhookNext(cur);
}
/* xEof */
static int webhookEof(sqlite3_vtab_cursor *cur){
  return ((WebhookCursor*)cur)->bEof;
}

/* xColumn. Under an UPDATE, the columns it does not set are not read (sqlite3_vtab_nochange):
** xUpdate then knows which ones the UPDATE changes. */
static int webhookColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i){
  WebhookCursor *pCur = (WebhookCursor*)cur;
  sqlite3_stmt *pScan = pCur->pScan;
  int bPending = sqlite3_column_type(pScan, SC_PENDING)!=SQLITE_NULL;
  if( sqlite3_vtab_nochange(ctx) ) return SQLITE_OK;
  if( i<N_REQUEST_COL ){
    sqlite3_result_value(ctx, sqlite3_column_value(pScan, SC_FIELD0+i));
  }else if( i==COL_WEBHOOK ){
    sqlite3_result_value(ctx, sqlite3_column_value(pScan, SC_REQUEST));
  }else if( i==COL_STATUS ){
    const char *z = bPending ? "pending"
                  : pCur->eTrust==APIFY_TRUST_FORGED ? "unverified"
                  : (const char*)sqlite3_column_text(pScan, SC_STATUS);
    sqlite3_result_text(ctx, z, -1, SQLITE_TRANSIENT);
  }else if( i==COL_OPERATION ){
    sqlite3_result_value(ctx, sqlite3_column_value(pScan, bPending ? SC_PENDING : SC_OPERATION));
  }else if( i==COL_VERIFIED ){
    if( bPending || pCur->eTrust==APIFY_TRUST_UNKNOWN ) sqlite3_result_null(ctx);
    else sqlite3_result_int(ctx, pCur->eTrust==APIFY_TRUST_VERIFIED);
  }else if( i==COL_ID ){
    sqlite3_result_value(ctx, sqlite3_column_value(pScan, SC_ID));
  }else{
    sqlite3_result_value(ctx, sqlite3_column_value(pScan, SC_HTTP + (i-COL_STATUS-1)));
  }
  return SQLITE_OK;
}

/* xRowid: the store's seq. */
static int webhookRowid(sqlite3_vtab_cursor *cur, sqlite_int64 *pRowid){
  *pRowid = sqlite3_column_int64(((WebhookCursor*)cur)->pScan, SC_SEQ);
  return SQLITE_OK;
}

/* Set *pbValid and *pbObject: whether the SQL value pVal is JSON, and a JSON object. json_type()
** runs first because it tells running out of memory (SQLITE_NOMEM) from malformed JSON
** (SQLITE_ERROR), which json_valid() of SQLite 3.40 answers 0 to alike; json_valid() then reads
** the parse json_type() cached, and still refuses the JSON5 that json_type() of 3.42 accepts. */
static int jsonCheck(WebhookTab *pTab, sqlite3_value *pVal, int *pbValid, int *pbObject){
  int rc = SQLITE_OK;
  *pbValid = *pbObject = 0;
  if( pTab->pJson==0 ){
    rc = sqlite3_prepare_v3(pTab->db, "SELECT json_type(?1)='object', json_valid(?1)", -1,
                            SQLITE_PREPARE_PERSISTENT, &pTab->pJson, 0);
  }
  if( rc==SQLITE_OK ){
    sqlite3_bind_value(pTab->pJson, 1, pVal);
    if( sqlite3_step(pTab->pJson)==SQLITE_ROW ){
      *pbValid = sqlite3_column_int(pTab->pJson, 1);
      *pbObject = *pbValid && sqlite3_column_int(pTab->pJson, 0);
    }
    rc = sqlite3_reset(pTab->pJson);
    if( rc==SQLITE_ERROR ) rc = SQLITE_OK;    /* malformed JSON: not JSON */
  }
  return rc;
}

/* Build the WebhookCreate JSON of a row. INSERT (zBase NULL): the webhook column's object (or
** {}), then each non-NULL request column set over it. UPDATE: the request zBase, or the webhook
** column when the UPDATE sets it, then each request column the UPDATE sets over it (NULL removes
** the field). *pzJson (sqlite3_malloc'd, *pnJson bytes) goes to the request builder, which
** judges it; a webhook value that is not a JSON object passes through unchanged so that the
** builder says what is wrong with it. A column of the wrong SQL type is an error in *pzErr
** naming it. */
static int rowToJson(WebhookTab *pTab, sqlite3_value **aCol, const char *zBase, char **pzJson,
                     int *pnJson, char **pzErr){
  static const char zSet[] =
    "SELECT CASE ?4 WHEN 'j' THEN json_set(?1, ?2, json(?3))"
    "  WHEN 'b' THEN json_set(?1, ?2, json(CASE WHEN ?3 THEN 'true' ELSE 'false' END))"
    "  WHEN 'r' THEN json_remove(?1, ?2)"
    "  ELSE json_set(?1, ?2, ?3) END";
  sqlite3_value *pHook = aCol[COL_WEBHOOK];
  const char *zStart = zBase ? zBase : "{}";
  char *zJson;
  int i, n = (int)strlen(zStart), bValid = 1, bObject = 1, rc = SQLITE_OK;
  *pzJson = 0;
  if( sqlite3_value_type(pHook)!=SQLITE_NULL && !sqlite3_value_nochange(pHook) ){
    zStart = (const char*)sqlite3_value_text(pHook);
    n = sqlite3_value_bytes(pHook);
    if( zStart==0 ) return SQLITE_NOMEM;
    rc = jsonCheck(pTab, pHook, &bValid, &bObject);
    if( rc!=SQLITE_OK ) return rc;
  }
  zJson = sqlite3_malloc64(n+1);
  if( zJson==0 ) return SQLITE_NOMEM;
  memcpy(zJson, zStart, n+1);
  for(i=0; i<N_REQUEST_COL && rc==SQLITE_OK; i++){
    sqlite3_value *pVal = aCol[i];
    int eType = sqlite3_value_type(pVal);
    int bRemove = 0;
    if( sqlite3_value_nochange(pVal) ) continue;      /* UPDATE: not in its SET */
    if( eType==SQLITE_NULL ){
      if( zBase==0 ) continue;                        /* INSERT: NULL is absent */
      bRemove = 1;                                    /* UPDATE: set to NULL, so removed */
    }
    if( bRemove ){
      if( pTab->pSet==0 ){
        rc = sqlite3_prepare_v3(pTab->db, zSet, -1, SQLITE_PREPARE_PERSISTENT, &pTab->pSet, 0);
      }
    }else if( aField[i].eKind=='b' && (eType!=SQLITE_INTEGER || (sqlite3_uint64)sqlite3_value_int64(pVal)>1) ){
      *pzErr = sqlite3_mprintf("%s must be 0 or 1 (false or true), not %Q",
                               aField[i].zName, sqlite3_value_text(pVal));
      rc = *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
    }else if( aField[i].eKind!='b' && eType!=SQLITE_TEXT ){
      *pzErr = sqlite3_mprintf("%s must be text, not %s", aField[i].zName,
                               eType==SQLITE_BLOB ? "a blob" : "a number");
      rc = *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
    }else if( !bObject ){
      continue;            /* the webhook goes to the builder as it is */
    }else if( pTab->pSet==0 ){
      rc = sqlite3_prepare_v3(pTab->db, zSet, -1, SQLITE_PREPARE_PERSISTENT, &pTab->pSet, 0);
    }
    if( rc==SQLITE_OK && aField[i].eKind=='j' && !bRemove ){
      rc = jsonCheck(pTab, pVal, &bValid, &bObject);     /* not JSON: set as a string */
      bObject = 1;
    }
    if( rc==SQLITE_OK ){
      static const char azKind[][2] = { "t", "j", "b", "r" };
      int iKind = bRemove ? 3 : aField[i].eKind=='b' ? 2 : aField[i].eKind=='j' && bValid ? 1 : 0;
      sqlite3_bind_text(pTab->pSet, 1, zJson, n, SQLITE_STATIC);
      sqlite3_bind_text(pTab->pSet, 2, aField[i].zPath, -1, SQLITE_STATIC);
      sqlite3_bind_value(pTab->pSet, 3, pVal);
      sqlite3_bind_text(pTab->pSet, 4, azKind[iKind], 1, SQLITE_STATIC);
      if( sqlite3_step(pTab->pSet)==SQLITE_ROW ){
        /* text first: adding its NUL terminator may allocate, and fail */
        const char *zOut = (const char*)sqlite3_column_text(pTab->pSet, 0);
        int nNew = sqlite3_column_bytes(pTab->pSet, 0);
        char *zNew = zOut ? sqlite3_malloc64(nNew+1) : 0;
        if( zNew ){
          memcpy(zNew, zOut, nNew);
          zNew[nNew] = 0;
          sqlite3_free(zJson);
          zJson = zNew;
          n = nNew;
        }else{
          rc = SQLITE_NOMEM;
        }
      }
      if( sqlite3_reset(pTab->pSet)!=SQLITE_OK && rc==SQLITE_OK ) rc = sqlite3_errcode(pTab->db);
    }
  }
  if( rc==SQLITE_OK ){
    *pzJson = zJson;
    *pnJson = n;
  }else{
    sqlite3_free(zJson);
  }
  return rc;
}


/* The eponymous table lives in main: "INSERT INTO aux.apify_webhooks" reaches it, and its
** records would go to main, not where the statement points. Refuse such a statement before
** anything is queued. */
static int checkStatement(WebhookTab *pTab, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  if( !pTab->bEponymous ) return SQLITE_OK;
  while( (pStmt = sqlite3_next_stmt(pTab->db, pStmt))!=0 ){
    char *zSchema;
    /* every time: a statement finalized and another prepared can have the same address */
    if( !sqlite3_stmt_busy(pStmt) ) continue;
    zSchema = apifyQualified(sqlite3_sql(pStmt), apifyStoreName(pTab->pStore));
    if( zSchema ){
      *pzErr = sqlite3_mprintf("apify: %s.%s is main's %s (a table named after its module lives"
                               " in main), so its records would go to main, not to %s; to keep"
                               " records in %s: CREATE VIRTUAL TABLE %s.webhooks USING %s",
                               zSchema, apifyStoreName(pTab->pStore),
                               apifyStoreName(pTab->pStore), zSchema, zSchema, zSchema,
                               apifyStoreName(pTab->pStore));
      sqlite3_free(zSchema);
      return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
    }
  }
  return SQLITE_OK;
}

/* True if z is a webhook id: 1 to 64 letters and digits (it goes into a URL path). */
static int isWebhookId(const char *z){
  int i;
  for(i=0; z[i]; i++){
    char c = z[i];
    if( i>=64 || !((c>='a' && c<='z') || (c>='A' && c<='Z') || (c>='0' && c<='9')) ) return 0;
  }
  return i>0;
}

/* *pzErr for a record that must be verified before it is acted on, and is not. */
static int notVerified(WebhookTab *pTab, int iRow, const ApifyRecord *r, char **pzErr){
  const char *zT = apifyStoreName(pTab->pStore);
  if( r->eTrust==APIFY_TRUST_UNKNOWN ){
    *pzErr = sqlite3_mprintf("apify: row %d: no API token, so the record of webhook %s cannot be"
                             " verified before it is changed; set APIFY_TOKEN in the environment"
                             " before loading the extension", iRow, r->zId ? r->zId : "?");
  }else{
    char *zAdopt = r->zId && isWebhookId(r->zId)
      ? sqlite3_mprintf("adopt the webhook to manage it (INSERT INTO %s(id) VALUES ('%s')), or ",
                        zT, r->zId) : sqlite3_mprintf("%s", "");
    char *zWhich = r->zId ? sqlite3_mprintf("of webhook %s", r->zId)
                          : sqlite3_mprintf("%lld", (long long)r->iSeq);
    *pzErr = zAdopt && zWhich ? sqlite3_mprintf("apify: row %d: the record %s is not verified:"
                             " this extension did not write it for this account (or wrote it"
                             " under another token), so nothing is sent for it; %sforget the"
                             " record (DELETE FROM \"%w_store\" WHERE seq=%lld)", iRow, zWhich,
                             zAdopt, zT, (long long)r->iSeq) : 0;
    sqlite3_free(zWhich);
    sqlite3_free(zAdopt);
  }
  return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
}


/* True if this transaction has queued operation zOp on record r. Only this connection's TEMP
** queue says so (r->zPending comes from it): pending columns a file holds mean nothing. */
static int pendingIs(const ApifyRecord *r, const char *zOp){
  return r->zPending && strcmp(r->zPending, zOp)==0;
}

/* Queue operation zOp (NULL: none) with body zBody on record iSeq, as row iRow's. */
static int pend(WebhookTab *pTab, sqlite3_int64 iSeq, const char *zOp, const char *zBody,
                int iRow){
  return apifyStorePend(pTab->pStore, iSeq, zOp, zBody, iRow);
}

/* INSERT INTO T(id) VALUES (...): adopt webhook zId, made elsewhere, at commit. */
static int adoptRow(WebhookTab *pTab, int iRow, const char *zId, sqlite3_int64 *pRowid,
                    char **pzErr){
  ApifyRecord r;
  int bFound = 0;
  int rc = apifyStoreFind(pTab->pStore, 'i', zId, 0, &r, &bFound);
  if( rc==SQLITE_OK && !bFound ){
    rc = apifyStoreNew(pTab->pStore, 0, 0, "adopt", zId, pRowid);
    if( rc==SQLITE_OK ) rc = pend(pTab, *pRowid, "adopt", zId, iRow);
  }else if( rc==SQLITE_OK ){
    *pRowid = r.iSeq;
    /* Recorded and verified, or touched already by this transaction: nothing to do. Otherwise
    ** (not verified, failed, deleted) the GET vouches for it again. */
    if( r.zPending==0 && !(r.eTrust==APIFY_TRUST_VERIFIED && strcmp(r.zStatus, "created")==0) ){
      rc = pend(pTab, r.iSeq, "adopt", zId, iRow);
    }
  }
  apifyRecordFree(&r);
  (void)pzErr;
  return rc;
}

/* INSERT: validate the row, then queue its create unless its key is created already. */
static int insertRow(WebhookTab *pTab, int iRow, sqlite3_value **aCol, sqlite3_int64 *pRowid,
                     char **pzErr){
  ApifyRecord r;
  char *zJson = 0, *zBody = 0, *zKey = 0;
  const char *zOp;
  int i, nJson = 0, bFound = 0, bAdopt = 1, rc = SQLITE_OK;

  memset(&r, 0, sizeof(r));
  for(i=0; i<N_COL; i++){
    if( i!=COL_ID && sqlite3_value_type(aCol[i])!=SQLITE_NULL ) bAdopt = 0;
  }
  if( sqlite3_value_type(aCol[COL_ID])!=SQLITE_NULL ){
    const char *zId = (const char*)sqlite3_value_text(aCol[COL_ID]);
    if( !bAdopt ){
      *pzErr = sqlite3_mprintf("id adopts a webhook made elsewhere and goes alone: INSERT INTO"
                               " %s(id) VALUES (...); to create one, leave id out",
                               apifyStoreName(pTab->pStore));
      return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
    }
    if( zId==0 ) return SQLITE_NOMEM;
    if( sqlite3_value_type(aCol[COL_ID])!=SQLITE_TEXT || !isWebhookId(zId) ){
      *pzErr = sqlite3_mprintf("id %Q is not a webhook id (1 to 64 letters and digits)", zId);
      return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
    }
    rc = apifyStoreEnsure(pTab->pStore, pzErr);
    if( rc==SQLITE_OK && *pzErr==0 ) rc = adoptRow(pTab, iRow, zId, pRowid, pzErr);
    return rc;
  }
  for(i=COL_ID; rc==SQLITE_OK && i<N_COL; i++){
    if( sqlite3_value_type(aCol[i])!=SQLITE_NULL ){
      *pzErr = sqlite3_mprintf("%s is set by the extension; leave it out", azOutcome[i-COL_ID]);
      rc = *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
    }
  }
  if( rc==SQLITE_OK ) rc = rowToJson(pTab, aCol, 0, &zJson, &nJson, pzErr);
  if( rc==SQLITE_OK ){
    rc = apifyRequestBuild(pTab->db, pTab->pRules, zJson, nJson, &zBody, &zKey, pzErr);
    if( rc==SQLITE_ERROR && *pzErr && strncmp(*pzErr, "apify: ", 7)==0 ){
      memmove(*pzErr, *pzErr+7, strlen(*pzErr+7)+1);   /* "apify: row N: " goes first */
    }
  }
  if( rc==SQLITE_OK ) rc = apifyStoreEnsure(pTab->pStore, pzErr);
  if( rc==SQLITE_OK ) rc = apifyStoreFind(pTab->pStore, 'k', zKey, 0, &r, &bFound);
  if( rc==SQLITE_OK && !bFound ){
    rc = apifyStoreNew(pTab->pStore, zKey, zBody, "create", 0, pRowid);
    if( rc==SQLITE_OK ) rc = pend(pTab, *pRowid, "create", zBody, iRow);
  }else if( rc==SQLITE_OK ){
    /* The request this key names: what was first inserted, or, for a record that came with a
    ** transaction of this connection, what that transaction queued. */
    const char *zNamed = pendingIs(&r, "create") ? r.zPendingRequest : r.zOrigin;
    int bSame = zNamed && strcmp(zNamed, zBody)==0;
    *pRowid = r.iSeq;
    if( pendingIs(&r, "delete") ){
      /* Deleted and inserted again in one transaction: the webhook stays, as inserted. */
      zOp = strcmp(zBody, r.zRequest ? r.zRequest : "")==0 ? 0 : "update";
      rc = pend(pTab, r.iSeq, zOp, zOp ? zBody : 0, iRow);
    }else if( (r.zPending || r.eTrust==APIFY_TRUST_VERIFIED) && !bSame ){
      *pzErr = pendingIs(&r, "create")
        ? sqlite3_mprintf("idempotencyKey %Q of row %d was already used by row %d for a different"
                          " request (row %d: %.200s; row %d: %.200s)", zKey, iRow, r.iPos,
                          r.iPos, zNamed, iRow, zBody)
        : sqlite3_mprintf("idempotencyKey %Q of row %d already belongs to a different %s request"
                          " (stored: %.200s; row %d: %.200s)", zKey, iRow, r.zStatus,
                          zNamed ? zNamed : "?", iRow, zBody);
      rc = *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
    }else if( r.zPending==0
           && !(r.eTrust==APIFY_TRUST_VERIFIED && strcmp(r.zStatus, "created")==0) ){
      /* Failed, deleted (create it again), or not verified: the user's own request goes out,
      ** and its outcome replaces whatever the record said. */
      rc = pend(pTab, r.iSeq, "create", zBody, iRow);
    }
    /* Otherwise: created already, or queued already with the same request: nothing to do. */
  }
  apifyRecordFree(&r);
  sqlite3_free(zJson);
  sqlite3_free(zBody);
  sqlite3_free(zKey);
  return rc;
}

/* UPDATE of record iSeq: queue a PUT of the changed fields (a created webhook), or the create
** of the corrected request (a failed one, or one inserted by this transaction). */
static int updateRow(WebhookTab *pTab, int iRow, sqlite3_int64 iSeq, sqlite3_value **aCol,
                     char **pzErr){
  ApifyRecord r;
  char *zJson = 0, *zBody = 0;
  const char *zBase;
  int i, nJson = 0, bFound = 0, rc;

  for(i=COL_ID; i<N_COL; i++){
    if( !sqlite3_value_nochange(aCol[i]) ){
      *pzErr = sqlite3_mprintf("%s is set by the extension; it cannot be updated",
                               azOutcome[i-COL_ID]);
      return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
    }
  }
  if( !sqlite3_value_nochange(aCol[COL_IDEMPOTENCY_KEY]) ){
    *pzErr = sqlite3_mprintf("idempotency_key is the record's identity and cannot be updated;"
                             " insert the request with the new key instead");
    return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
  }
  rc = apifyStoreFind(pTab->pStore, 's', 0, iSeq, &r, &bFound);
  if( rc!=SQLITE_OK || !bFound ){
    apifyRecordFree(&r);
    return rc;
  }
  if( pendingIs(&r, "adopt") ){
    *pzErr = sqlite3_mprintf("the webhook %s is adopted by this transaction; update it after its"
                             " commit", r.zId);
    rc = *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
  }else if( r.zPending==0 && r.eTrust!=APIFY_TRUST_VERIFIED ){
    rc = notVerified(pTab, iRow, &r, pzErr);
  }
  zBase = r.zPending ? r.zPendingRequest : r.zRequest;
  if( rc==SQLITE_OK ) rc = rowToJson(pTab, aCol, zBase ? zBase : "{}", &zJson, &nJson, pzErr);
  if( rc==SQLITE_OK ){
    rc = apifyRequestCanonical(pTab->db, pTab->pRules, zJson, nJson, &zBody, pzErr);
    if( rc==SQLITE_ERROR && *pzErr && strncmp(*pzErr, "apify: ", 7)==0 ){
      memmove(*pzErr, *pzErr+7, strlen(*pzErr+7)+1);
    }
  }
  if( rc==SQLITE_OK && !(zBase && strcmp(zBase, zBody)==0) ){
    if( pendingIs(&r, "create") || strcmp(r.zStatus, "failed")==0 ){
      rc = pend(pTab, iSeq, "create", zBody, iRow);
    }else if( r.zRequest && strcmp(r.zRequest, zBody)==0 ){
      rc = pend(pTab, iSeq, 0, 0, iRow);          /* back to what the webhook is */
    }else{
      rc = pend(pTab, iSeq, "update", zBody, iRow);
    }
  }
  apifyRecordFree(&r);
  sqlite3_free(zJson);
  sqlite3_free(zBody);
  return rc;
}

/* DELETE of record iSeq: queue the DELETE of a created webhook; a record that never became one
** is forgotten at once. */
static int deleteRow(WebhookTab *pTab, int iRow, sqlite3_int64 iSeq, char **pzErr){
  ApifyRecord r;
  int bFound = 0;
  int rc = apifyStoreFind(pTab->pStore, 's', 0, iSeq, &r, &bFound);
  if( rc==SQLITE_OK && bFound ){
    /* a webhook to delete: one being updated, or a verified created one */
    int bWebhook = pendingIs(&r, "update")
                || (r.zPending==0 && strcmp(r.zStatus, "created")==0
                    && r.eTrust==APIFY_TRUST_VERIFIED);
    if( bWebhook ){
      rc = pend(pTab, iSeq, "delete", 0, iRow);
    }else if( r.zPending && strcmp(r.zStatus, "deleted")==0 ){
      rc = pend(pTab, iSeq, 0, 0, iRow);            /* a re-creation taken back */
    }else if( r.zPending || strcmp(r.zStatus, "created")!=0 ){
      rc = apifyStoreForget(pTab->pStore, iSeq);    /* never a webhook (this way): forgotten */
    }else{
      rc = notVerified(pTab, iRow, &r, pzErr);      /* created, but not verified */
    }
  }
  apifyRecordFree(&r);
  return rc;
}

/*
** xUpdate. argc==1: DELETE of rowid argv[0]. argc>1: argv[0] is the old rowid (NULL for an
** INSERT), argv[1] the new rowid, argv[2..] the N_COL columns in declaration order (under an
** UPDATE, those it does not set are sqlite3_value_nochange()). The row is validated and its
** operation queued; it is sent at commit.
*/
static int webhookUpdate(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv,
                         sqlite_int64 *pRowid){
  WebhookTab *pTab = (WebhookTab*)pVtab;
  char *zErr = 0;
  int iRow, rc;

  iRow = apifyStoreRowNumber(pTab->pStore);
  rc = checkStatement(pTab, &zErr);
  if( rc==SQLITE_OK && pTab->pRules==0 ) rc = apifyRulesOpen(pTab->db, &pTab->pRules);
  if( rc==SQLITE_OK && argc==1 ){
    rc = apifyStoreEnsure(pTab->pStore, &zErr);
    if( rc==SQLITE_OK ) rc = deleteRow(pTab, iRow, sqlite3_value_int64(argv[0]), &zErr);
  }else if( rc==SQLITE_OK && sqlite3_value_type(argv[0])==SQLITE_NULL ){
    if( sqlite3_value_type(argv[1])!=SQLITE_NULL ){
      zErr = sqlite3_mprintf("rowid is assigned by the extension; leave it out");
      rc = zErr ? SQLITE_ERROR : SQLITE_NOMEM;
    }else{
      rc = insertRow(pTab, iRow, &argv[2], pRowid, &zErr);
    }
  }else if( rc==SQLITE_OK ){
    if( sqlite3_value_int64(argv[0])!=sqlite3_value_int64(argv[1]) ){
      zErr = sqlite3_mprintf("rowid is assigned by the extension; it cannot be changed");
      rc = zErr ? SQLITE_ERROR : SQLITE_NOMEM;
    }else{
      rc = apifyStoreEnsure(pTab->pStore, &zErr);
      if( rc==SQLITE_OK ) rc = updateRow(pTab, iRow, sqlite3_value_int64(argv[0]), &argv[2], &zErr);
    }
  }
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM ){
    /* Every message names the row: "apify: row N: ..." */
    char *zMsg;
    if( zErr && strncmp(zErr, "apify: ", 7)==0 ){
      zMsg = strncmp(zErr+7, "row ", 4)==0 ? sqlite3_mprintf("%s", zErr)
                                           : sqlite3_mprintf("apify: row %d: %s", iRow, zErr+7);
    }else if( zErr ){
      zMsg = sqlite3_mprintf("apify: row %d: %s", iRow, zErr);
    }else{
      zMsg = sqlite3_mprintf("apify: row %d: %s", iRow, sqlite3_errmsg(pTab->db));
    }
    sqlite3_free(zErr);
    return tabError(pTab, rc, zMsg);
  }
  sqlite3_free(zErr);
  if( rc==SQLITE_OK ) apifyStoreRowDone(pTab->pStore, iRow);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* At commit: the queued operations go out, and their outcomes are recorded */

/* One call of xSync: a queued operation and the record it acts on. */
typedef struct SendCall SendCall;
struct SendCall {
  ApifyCall call;          /* must come first: the transport hands back &call */
  ApifyRecord r;           /* the record before it, with its operation (r.zPending) */
  char *zBody;             /* what is sent (owned) */
  char *zPath;             /* where (owned) */
  int iGeneration;         /* the record's generation when it is a create */
};
typedef struct Send Send;
struct Send {
  WebhookTab *pTab;
  sqlite3_int64 iAfter;    /* the stamp of the operation handed out last */
  sqlite3_int64 nTotal;    /* operations queued */
  sqlite3_int64 nHanded;   /* handed to the transport */
  sqlite3_int64 nSent;     /* of those, sent at least once */
  sqlite3_int64 nDone;     /* applied: the API said so */
  sqlite3_int64 nFailed;   /* refused by the API, or failed with no chance of being applied */
  sqlite3_int64 nUnknown;  /* no answer, though it may have been applied */
  int nAnswer;             /* HTTP answers heard */
  int bAllCreates;         /* every operation handed out was a create */
  char *zAbort;            /* why the whole commit fails, or NULL */
};

static void sendCallFree(SendCall *p){
  apifyCallReset(&p->call);
  apifyRecordFree(&p->r);
  sqlite3_free(p->zBody);
  sqlite3_free(p->zPath);
  sqlite3_free(p);
}

/* The body zBody with its idempotencyKey set to zKey (sqlite3_malloc'd in *pzOut). */
static int bodyWithKey(sqlite3 *db, const char *zBody, const char *zKey, char **pzOut){
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, "SELECT json_set(?1, '$.idempotencyKey', ?2)", -1, &pStmt, 0);
  *pzOut = 0;
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, zBody, -1, SQLITE_STATIC);
    sqlite3_bind_text(pStmt, 2, zKey, -1, SQLITE_STATIC);
    if( sqlite3_step(pStmt)==SQLITE_ROW ){
      *pzOut = sqlite3_mprintf("%s", sqlite3_column_text(pStmt, 0));
      if( *pzOut==0 ) rc = SQLITE_NOMEM;
    }
    if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = sqlite3_errcode(db);
  }
  return rc;
}

/* The commit fails with zWhy: nothing of the queue may go out (it is not what was validated). */
static int sendRefuse(Send *pSend, const char *zWhy, int iPos){
  if( pSend->zAbort==0 ){
    pSend->zAbort = sqlite3_mprintf("apify: row %d: %s; nothing of this commit was sent after"
                                    " it", iPos, zWhy);
  }
  return pSend->zAbort ? SQLITE_ERROR : SQLITE_NOMEM;
}

/* xNext of the transport: the call of the next queued operation. Operations that turn out to
** need no request (an UPDATE that changes nothing after all) are settled on the way. */
static int sendNext(void *pArg, ApifyCall **pp){
  Send *pSend = (Send*)pArg;
  WebhookTab *pTab = pSend->pTab;
  ApifyStore *pStore = pTab->pStore;
  SendCall *p = 0;
  int rc = SQLITE_OK;
  *pp = 0;
  while( rc==SQLITE_OK && *pp==0 ){
    int bFound = 0;
    const char *zOp;
    if( p==0 ){
      p = sqlite3_malloc64(sizeof(*p));
      if( p==0 ) return SQLITE_NOMEM;
      memset(p, 0, sizeof(*p));
    }
    rc = apifyQueueNext(pStore, pSend->iAfter, &p->r, &bFound);
    if( rc!=SQLITE_OK || !bFound ) break;
    pSend->iAfter = p->r.iStamp;
    zOp = p->r.zPending;
    if( !p->r.bSealed ){
      rc = sendRefuse(pSend, "its queued operation was changed after it was validated",
                      p->r.iPos);
      break;
    }
    if( strcmp(zOp, "create")!=0 && strcmp(zOp, "adopt")!=0
     && p->r.eTrust!=APIFY_TRUST_VERIFIED ){
      rc = sendRefuse(pSend, "its record is no longer verified (the token changed in this"
                             " transaction)", p->r.iPos);
      break;
    }
    pSend->bAllCreates &= strcmp(zOp, "create")==0;
    if( strcmp(zOp, "create")==0 ){
      char *zKey = 0;
      /* A record that is not verified says nothing: its create is a first one. */
      p->iGeneration = p->r.eTrust!=APIFY_TRUST_VERIFIED || p->r.iGeneration<1 ? 1
                     : p->r.iGeneration + (strcmp(p->r.zStatus, "deleted")==0);
      rc = apifyRequestKey(p->r.zKey ? p->r.zKey : "", p->iGeneration, &zKey);
      if( rc==SQLITE_OK ) rc = bodyWithKey(pTab->db, p->r.zPendingRequest, zKey, &p->zBody);
      sqlite3_free(zKey);
      p->call.bReplay = 1;       /* it carries an idempotencyKey */
    }else if( strcmp(zOp, "update")==0 ){
      rc = apifyRequestUpdate(pTab->db, p->r.zRequest, p->r.zPendingRequest, &p->zBody);
      if( rc==SQLITE_OK && p->zBody==0 ){
        rc = apifyStorePend(pStore, p->r.iSeq, 0, 0, 0);   /* nothing changes after all */
        pSend->nDone++;
        apifyRecordFree(&p->r);
        continue;
      }
      p->call.zMethod = "PUT";
      p->call.bReplay = 1;       /* the same fields twice change nothing more */
    }else if( strcmp(zOp, "delete")==0 ){
      p->call.zMethod = "DELETE";
      p->call.bReplay = 1;       /* a second DELETE answers 404: gone all the same */
    }else{
      p->call.zMethod = "GET";
      p->call.bReplay = 1;
    }
    if( rc==SQLITE_OK && strcmp(zOp, "create")!=0 ){
      const char *zId = strcmp(zOp, "adopt")==0 ? p->r.zPendingRequest : p->r.zId;
      if( zId==0 || !isWebhookId(zId) ){
        rc = sendRefuse(pSend, "its record holds no webhook id", p->r.iPos);
        break;
      }
      p->zPath = sqlite3_mprintf("/v2/webhooks/%s", zId);
      if( p->zPath==0 ) rc = SQLITE_NOMEM;
    }
    if( rc==SQLITE_OK ){
      p->call.zPath = p->zPath;
      p->call.zBody = p->zBody;
      *pp = &p->call;
      pSend->nHanded++;
      p = 0;             /* ownership moves to the transport */
    }
  }
  if( p ) sendCallFree(p);
  return rc;
}

/* When the webhook zData the API answered a create with is not the request zSent (keys aside),
** *pzAs is the request it is (with key zKey); else NULL. */
static int createdAs(WebhookTab *pTab, const char *zKey, const char *zSent, const char *zData,
                     char **pzAs){
  char *zIs = 0, *zPut = 0;
  int rc = apifyRequestFromWebhook(pTab->db, pTab->pRules, zData, &zIs);
  *pzAs = 0;
  if( rc==SQLITE_OK && zIs ) rc = apifyRequestUpdate(pTab->db, zIs, zSent, &zPut);
  if( rc==SQLITE_OK && zPut && zKey ){
    rc = bodyWithKey(pTab->db, zIs, zKey, pzAs);
  }else if( rc==SQLITE_OK && zPut ){
    *pzAs = zIs;
    zIs = 0;
  }
  sqlite3_free(zIs);
  sqlite3_free(zPut);
  return rc;
}

/* The record of an operation's outcome. zData: the API's data (cleaned), or NULL. *pbOk: whether
** it succeeded (set to 0 when the answer cannot be recorded as one). */
static int sendRecord(Send *pSend, SendCall *p, int *pbOk, const char *zData, const char *zType,
                      const char *zMsg, const char *zReply, const char *zLocation){
  WebhookTab *pTab = pSend->pTab;
  int bOk = *pbOk;
  const ApifyRecord *r = &p->r;
  const char *zOp = r->zPending;
  ApifyOutcomeRow o;
  char *zId = 0, *zRequest = 0, *zDup = 0;
  int rc = SQLITE_OK;
  memset(&o, 0, sizeof(o));
  o.zKey = r->zKey;
  o.zOrigin = r->zOrigin;
  o.zRequest = r->zRequest;
  o.zOperation = zOp;
  o.iGeneration = r->iGeneration;
  o.zId = r->zId;
  o.zLocation = r->zLocation;
  o.httpStatus = p->call.httpStatus;
  o.nAttempt = p->call.nAttempt;
  o.zStatus = strcmp(r->zStatus, "pending")==0 ? "failed" : r->zStatus;
  if( zData ){
    sqlite3_stmt *pStmt = 0;
    rc = sqlite3_prepare_v2(pTab->db, "SELECT json_extract(?1, '$.id')", -1, &pStmt, 0);
    if( rc==SQLITE_OK ){
      sqlite3_bind_text(pStmt, 1, zData, -1, SQLITE_STATIC);
      if( sqlite3_step(pStmt)==SQLITE_ROW && sqlite3_column_text(pStmt, 0) ){
        zId = sqlite3_mprintf("%s", sqlite3_column_text(pStmt, 0));
        if( zId==0 ) rc = SQLITE_NOMEM;
      }
      if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = sqlite3_errcode(pTab->db);
    }
  }
  if( bOk && zId && (strcmp(zOp, "create")==0 || strcmp(zOp, "adopt")==0) ){
    /* One record per webhook: an answer naming a webhook another record holds is a failure. */
    ApifyRecord other;
    int bFound = 0;
    if( rc==SQLITE_OK ) rc = apifyStoreFind(pTab->pStore, 'i', zId, 0, &other, &bFound);
    if( rc==SQLITE_OK && bFound && other.iSeq!=r->iSeq ){
      bOk = 0;
      zType = 0;
      zMsg = zDup = sqlite3_mprintf("the API answered with webhook %s, which record %lld"
                                    " already holds", zId, (long long)other.iSeq);
      zReply = zData;
      if( zDup==0 ) rc = SQLITE_NOMEM;
    }
    apifyRecordFree(&other);
  }
  if( strcmp(zOp, "create")==0 ){
    o.zRequest = r->zPendingRequest;
    o.iGeneration = p->iGeneration;
    /* What the key names: kept from a verified record, or one this transaction inserted (its
    ** origin is what was inserted), else what this create sends. */
    if( (r->eTrust!=APIFY_TRUST_VERIFIED && strcmp(r->zStatus, "pending")!=0) || r->zOrigin==0 ){
      o.zOrigin = r->zPendingRequest;
    }
    if( bOk && zData && strcmp(r->zStatus, "pending")!=0 && rc==SQLITE_OK ){
      /* A record created before (failed, say, after an attempt whose answer was lost): the API
      ** answers its key with the webhook created first, which may not be this request. The
      ** record says what the webhook is, and why it differs. */
      rc = createdAs(pTab, r->zKey, r->zPendingRequest, zData, &zRequest);
      if( rc==SQLITE_OK && zRequest ){
        o.zRequest = zRequest;
        zMsg = "the API answered with the webhook created first under this key, whose fields"
               " differ from this request: UPDATE the row again to change them";
        o.zErrorMessage = zMsg;
      }
    }
    o.zStatus = bOk ? "created" : "failed";
    o.zId = bOk ? zId : 0;
    o.zLocation = bOk ? zLocation : 0;
  }else if( strcmp(zOp, "update")==0 ){
    if( bOk ) o.zRequest = r->zPendingRequest;
  }else if( strcmp(zOp, "delete")==0 ){
    if( bOk ) o.zStatus = "deleted";
  }else{
    o.zStatus = bOk ? "created" : "failed";
    o.zId = r->zPendingRequest;
    if( bOk && zData ){
      rc = apifyRequestFromWebhook(pTab->db, pTab->pRules, zData, &zRequest);
      o.zRequest = zRequest;
    }
  }
  if( bOk ){
    o.zResponse = zData;
  }else{
    o.zErrorType = zType;
    o.zErrorMessage = zMsg;
    o.zResponse = zReply;
  }
  if( rc==SQLITE_OK ) rc = apifyStoreRecord(pTab->pStore, r->iSeq, &o);
  *pbOk = bOk;
  sqlite3_free(zId);
  sqlite3_free(zRequest);
  sqlite3_free(zDup);
  return rc;
}

/* xDone of the transport: record the outcome of an operation. A 401, or no connection to the
** API before any answer was heard, means nothing more can be done: the commit fails with that
** message (a cut connection or a timeout proves nothing: that operation is recorded failed). */
static int sendDone(void *pArg, ApifyCall *pApiCall){
  Send *pSend = (Send*)pArg;
  SendCall *p = (SendCall*)pApiCall;
  const char *zToken = pSend->pTab->pApify->cfg.zToken;
  char *zData = 0, *zType = 0, *zMsg = 0, *zReply = 0, *zLocation = 0, *z;
  int bDelete = strcmp(p->r.zPending, "delete")==0;
  int rc = apifyOutcome(pSend->pTab->db, pSend->pTab->pRules, pApiCall, &zData, &zType, &zMsg);
  int bOk;
  if( pApiCall->httpStatus ) pSend->nAnswer++;
  /* A DELETE is done on 204 whatever the body, and on 404 (gone already: an earlier attempt
  ** whose answer was lost, or someone else). */
  bOk = bDelete ? pApiCall->httpStatus/100==2 || pApiCall->httpStatus==404 : zData!=0;
  if( rc==SQLITE_OK && !bOk && pApiCall->httpStatus/100==2 && pApiCall->bCanRetry ){
    rc = APIFY_AGAIN;      /* a 2xx that is not an Apify answer: ask again */
  }else if( rc==SQLITE_OK && !pApiCall->bAborted
         && (pApiCall->httpStatus==401 || (pApiCall->bUnsent && pSend->nAnswer==0)) ){
    if( pSend->zAbort==0 ){
      pSend->zAbort = apifyFailure(&pSend->pTab->pApify->cfg, pApiCall, zType, zMsg);
      if( pSend->zAbort ){
        /* the server's words, cleaned, into the message */
        z = apifyTextClean(pSend->zAbort, -1, zToken, 0);
        sqlite3_free(pSend->zAbort);
        pSend->zAbort = z;
      }
    }
    if( pApiCall->httpStatus ) pSend->nFailed++;        /* a 401: not done */
    else if( !pApiCall->bUnsent ) pSend->nUnknown++;
    rc = pSend->zAbort ? SQLITE_ERROR : SQLITE_NOMEM;
  }else if( rc==SQLITE_OK ){
    /* Server text is cleaned of control characters and of the token before it is kept. */
    char *zCleanData = apifyTextClean(zData, -1, zToken, 1);
    char *zCleanType = apifyTextClean(zType, -1, zToken, 0);
    char *zCleanMsg = apifyTextClean(zMsg, -1, zToken, 0);
    zReply = apifyTextClean(pApiCall->zReply, -1, zToken, 1);
    zLocation = apifyTextClean(pApiCall->zLocation, -1, zToken, 0);
    if( (zData && !zCleanData) || (zType && !zCleanType) || (zMsg && !zCleanMsg)
     || (pApiCall->zReply && !zReply) || (pApiCall->zLocation && !zLocation) ){
      rc = SQLITE_NOMEM;
    }else if( pApiCall->bAborted ){
      /* the run stopped while it waited for another attempt */
      if( pApiCall->httpStatus==429 ) pSend->nFailed++;
      else if( pApiCall->nAttempt>0 && !pApiCall->bUnsent ) pSend->nUnknown++;
    }else{
      rc = sendRecord(pSend, p, &bOk, zCleanData, zCleanType, zCleanMsg, zReply, zLocation);
      if( bOk ) pSend->nDone++;
      else if( pApiCall->httpStatus || pApiCall->bUnsent ) pSend->nFailed++;
      else pSend->nUnknown++;
      if( rc==SQLITE_OK && !bOk ) rc = APIFY_FAILED;
    }
    sqlite3_free(zCleanData);
    sqlite3_free(zCleanType);
    sqlite3_free(zCleanMsg);
  }
  if( rc!=APIFY_AGAIN && pApiCall->nAttempt>0 && !pApiCall->bUnsent ) pSend->nSent++;
  if( rc!=SQLITE_OK && rc!=APIFY_AGAIN && rc!=APIFY_FAILED && rc!=SQLITE_ERROR
   && pSend->zAbort==0 && rc!=SQLITE_NOMEM ){
    /* a store write failed: its message now, before later SQL replaces it */
    pSend->zAbort = sqlite3_mprintf("apify: %s", sqlite3_errmsg(pSend->pTab->db));
  }
  sqlite3_free(zData);
  sqlite3_free(zType);
  sqlite3_free(zMsg);
  sqlite3_free(zReply);
  sqlite3_free(zLocation);
  if( rc!=APIFY_AGAIN ) sendCallFree(p);
  return rc;
}

/* The message of a commit that failed after sending: zWhy, then what was sent and answered. */
static char *sendSummary(const Send *s, const char *zWhy){
  sqlite3_int64 nNotSent = s->nTotal - s->nDone - s->nFailed - s->nUnknown;
  if( s->nDone==0 && s->nUnknown==0 ){
    return sqlite3_mprintf("%s; nothing was %s", zWhy, s->bAllCreates ? "created" : "changed");
  }
  return sqlite3_mprintf("%s; the commit failed after %lld of %lld operations were applied,"
                         " %lld failed, %lld may have been (no answer) and %lld were not sent;"
                         " this connection keeps the outcomes it heard and records them with the"
                         " next change to %s: run the statement again to send the rest (what was"
                         " created comes back under its key, none twice)", zWhy,
                         (long long)s->nDone, (long long)s->nTotal, (long long)s->nFailed,
                         (long long)s->nUnknown, (long long)nNotSent,
                         apifyStoreName(s->pTab->pStore));
}

/* xSync: the transaction commits; send what it queued and record every outcome. An error here
** fails the commit and rolls the whole transaction back. */
static int webhookSync(sqlite3_vtab *pVtab){
  WebhookTab *pTab = (WebhookTab*)pVtab;
  Apify *pApify = pTab->pApify;
  Send send;
  char *zErr = 0;
  int rc;
  memset(&send, 0, sizeof(send));
  send.pTab = pTab;
  send.bAllCreates = 1;
  rc = apifyQueueCount(pTab->pStore, &send.nTotal);
  if( rc!=SQLITE_OK || send.nTotal==0 ) return tabFail(pTab, rc, &zErr);  /* nothing queued */
  if( pTab->pRules==0 ) rc = apifyRulesOpen(pTab->db, &pTab->pRules);
  if( rc==SQLITE_OK ) rc = apifyReady(pApify, &zErr);
  if( rc==SQLITE_OK ) rc = apifyStoreCheck(pTab->pStore, &zErr);
  if( rc==SQLITE_OK ) rc = apifyStoreLock(pTab->pStore, &zErr);
  if( rc==SQLITE_OK ){
    rc = apifyHttpSend(pApify->pHttp, pTab->db, &pApify->cfg, send.nTotal, sendNext, sendDone,
                       &send);
  }
  if( rc==SQLITE_INTERRUPT ){
    /* SQLite runs no SQL on an interrupted connection until its statement ends, so the
    ** outcomes cannot be written to T_store: the commit fails and the transaction rolls back.
    ** The store kept what was heard (a private database) and writes it with the next change. */
    zErr = sqlite3_mprintf("apify: interrupted after %lld of %lld requests were sent; this"
                           " connection keeps the outcomes it heard and records them with the"
                           " next change to %s: run the statement again to send the rest (the"
                           " webhooks already created come back, none twice)",
                           (long long)send.nSent, (long long)send.nTotal,
                           apifyStoreName(pTab->pStore));
  }else if( send.zAbort ){
    zErr = send.zAbort[0]=='a' && strncmp(send.zAbort, "apify: row ", 11)==0
         ? sqlite3_mprintf("%s", send.zAbort) : sendSummary(&send, send.zAbort);
    if( rc==SQLITE_OK ) rc = SQLITE_ERROR;
  }
  sqlite3_free(send.zAbort);
  if( rc==SQLITE_OK ) rc = apifyQueueClear(pTab->pStore);
  /* cppcheck-suppress memleak ; tabFail() takes zErr: it becomes the table's message or is freed */
  return tabFail(pTab, rc, &zErr);
}

/* xBegin: the table joins a transaction (its store counts rows from 1 when it is the first). */
static int webhookBegin(sqlite3_vtab *pVtab){
  apifyStoreBegin(((WebhookTab*)pVtab)->pStore, pVtab);
  return SQLITE_OK;
}

/* xRollback: the transaction is over; forget its state (no writes here). Outcomes heard by a
** commit that failed are kept by the store, to be written with the next change. */
static int webhookEnd(sqlite3_vtab *pVtab){
  apifyStoreEnd(((WebhookTab*)pVtab)->pStore);
  return SQLITE_OK;
}

/* xCommit: the outcomes heard are in T_store for good. */
static int webhookCommit(sqlite3_vtab *pVtab){
  apifyStoreCommitted(((WebhookTab*)pVtab)->pStore);
  return webhookEnd(pVtab);
}

/* xSavepoint: note how many rows the transaction had written. */
static int webhookSavepoint(sqlite3_vtab *pVtab, int iSavepoint){
  return apifyStoreSavepoint(((WebhookTab*)pVtab)->pStore, pVtab, iSavepoint);
}

/* xRelease: nothing to undo later; the marks of released savepoints are simply not used. */
static int webhookRelease(sqlite3_vtab *pVtab, int iSavepoint){
  (void)pVtab;
  (void)iSavepoint;
  return SQLITE_OK;
}

/* xRollbackTo: SQLite takes back the queued operations itself; the row count goes back too. */
static int webhookRollbackTo(sqlite3_vtab *pVtab, int iSavepoint){
  apifyStoreRollbackTo(((WebhookTab*)pVtab)->pStore, iSavepoint);
  return SQLITE_OK;
}

/* xRename: ALTER TABLE T RENAME TO U takes the store along (U_store). */
static int webhookRename(sqlite3_vtab *pVtab, const char *zNew){
  WebhookTab *pTab = (WebhookTab*)pVtab;
  char *zErr = 0;
  int rc = apifyStoreRename(pTab->pStore, zNew);
  return tabFail(pTab, rc, &zErr);
}

static sqlite3_module webhookModule = {
  2,                         /* iVersion: savepoints; no shadow tables (the store is checked
                             ** and vouched for instead, and stays writable to forget records) */
  webhookConnect,            /* xCreate: CREATE VIRTUAL TABLE t USING apify_webhooks */
  webhookConnect,            /* xConnect: also makes the table eponymous */
  webhookBestIndex,          /* xBestIndex */
  webhookDisconnect,         /* xDisconnect */
  webhookDestroy,            /* xDestroy: drops the store */
  webhookOpen,               /* xOpen */
  webhookClose,              /* xClose */
  webhookFilter,             /* xFilter */
  webhookNext,               /* xNext */
  webhookEof,                /* xEof */
  webhookColumn,             /* xColumn */
  webhookRowid,              /* xRowid */
  webhookUpdate,             /* xUpdate: INSERT, UPDATE, DELETE queue their operation */
  webhookBegin,              /* xBegin */
  webhookSync,               /* xSync: sends at commit */
  webhookCommit,             /* xCommit: the outcomes are kept; forget the heard copies */
  webhookEnd,                /* xRollback: nothing was sent */
  0,                         /* xFindFunction */
  webhookRename,             /* xRename: the store's table follows */
  webhookSavepoint,          /* xSavepoint */
  webhookRelease,            /* xRelease */
  webhookRollbackTo,         /* xRollbackTo */
  0,                         /* xShadowName */
#if SQLITE_VERSION_NUMBER>=3044000
  0                          /* xIntegrity: built against 3.44 or later */
#endif
};

int apifyVtabRegister(sqlite3 *db, Apify *p){
  apifyRef(p);   /* held by the module; create_module_v2 releases it even on failure */
  return sqlite3_create_module_v2(db, "apify_webhooks", &webhookModule, p, apifyUnref);
}
