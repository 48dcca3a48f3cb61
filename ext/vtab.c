/*
** vtab.c: the apify_webhooks virtual table: one webhook per inserted row, sent at commit,
** every outcome recorded, each distinct request created once.
**
**   .load ./build/apify
**   INSERT INTO apify_webhooks(request_url, event_types, actor_id)
**     SELECT 'https://example.com/hook/' || name, '["ACTOR.RUN.SUCCEEDED"]', actor_id FROM actors;
**   SELECT id, status, location, error_message FROM apify_webhooks;
**   CREATE VIRTUAL TABLE nightly USING apify_webhooks;   -- another table, its own store
**
** When the network is used. xUpdate only validates the row and queues it (store.c); nothing is
** sent. xSync, which SQLite calls when the transaction commits (the end of the statement in
** autocommit mode, COMMIT otherwise), sends everything queued, many requests in flight, and
** records each outcome in the store before it returns. So:
**   - ROLLBACK, or ROLLBACK TO a savepoint, discards the queued rows: nothing of them is sent.
**   - An invalid row fails its statement before anything of that statement is sent.
**   - A failure that means nothing can be created (no token, 401, the API unreachable) makes
**     xSync fail, so the commit fails and the transaction rolls back, queued rows included.
**   - Other failures are per row: the row is recorded 'failed' with the reason, and the commit
**     succeeds. Inserting the same row again sends it again.
** A webhook that exists on Apify is never undone by a ROLLBACK: the records of a rolled-back
** commit are lost, but every request carries its idempotency key, so running the statement
** again gets the same webhooks back from the API instead of creating new ones.
**
** Why DIRECTONLY: inserting into this table spends the user's token; a database file from
** someone else must not be able to do that from a trigger or a view. Views read the store
** table T_store instead (see README).
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
  " error_message TEXT, response TEXT, attempts INTEGER, queued_at TEXT, completed_at TEXT)";
#define COL_IDEMPOTENCY_KEY  6
#define COL_WEBHOOK         13
#define COL_ID              14   /* first outcome column: set by the extension only */
#define COL_STATUS          15
#define N_REQUEST_COL       13
#define N_COL               24

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

/* Outcome columns N_REQUEST_COL+1 .. are store columns of the same names; the webhook column
** reads back the request as it was sent. */
static const char *const azOutcome[] = {
  "id", "status", "http_status", "location", "error_type", "error_message", "response",
  "attempts", "queued_at", "completed_at"
};

typedef struct WebhookTab WebhookTab;
typedef struct WebhookCursor WebhookCursor;

struct WebhookTab {
  sqlite3_vtab base;       /* must come first */
  sqlite3 *db;
  Apify *pApify;           /* the connection's configuration and transport (a reference) */
  ApifyStore *pStore;
  sqlite3_stmt *pSet;      /* adds one field to a request: json_set(?1, ?2, value) */
  sqlite3_stmt *pJson;     /* whether ?1 is JSON, and a JSON object */
  ApifyRules *pRules;      /* the request rules' statements, prepared once */
  int nRow;                /* rows written in this transaction, to name a bad one */
  int nMark;               /* savepoint marks: queue position and row count per savepoint */
  sqlite3_int64 (*aMark)[2];
};

struct WebhookCursor {
  sqlite3_vtab_cursor base; /* must come first */
  sqlite3_stmt *pScan;     /* rows of the store, in queue order; NULL when there is no store */
  int bEof;
};

/* Replace the table's error message with z (sqlite3_malloc'd, owned from here). */
static int tabError(WebhookTab *pTab, int rc, char *z){
  sqlite3_free(pTab->base.zErrMsg);
  pTab->base.zErrMsg = z;
  return z ? rc : SQLITE_NOMEM;
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
  rc = apifyStoreOpen(db, argv[1], argv[2], &pTab->pStore);
  if( rc!=SQLITE_OK ){
    sqlite3_free(pTab);
    return rc;
  }
  pTab->pApify = (Apify*)pAux;
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
  sqlite3_free(pTab->aMark);
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
** xBestIndex: equality on rowid or idempotency_key finds one row, on id about one, on status
** a part; each uses an index of the store. idxNum holds one bit per constraint used, in this
** order, and xFilter's arguments come in the same order; idxStr says it for EXPLAIN.
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
      if( !pCons->usable || pCons->op!=SQLITE_INDEX_CONSTRAINT_EQ ) continue;
      if( pCons->iColumn!=aIdx[iIdx].iCol || (idxNum & aIdx[iIdx].bit) ) continue;
      idxNum |= aIdx[iIdx].bit;
      pInfo->aConstraintUsage[i].argvIndex = ++nArg;
      pInfo->aConstraintUsage[i].omit = 1;
      if( aIdx[iIdx].rCost<rCost ) rCost = aIdx[iIdx].rCost;
      sqlite3_str_appendf(pDesc, "%s%s=?", nArg>1 ? " AND " : "", aIdx[iIdx].zName);
    }
  }
  if( idxNum & (IDX_ROWID|IDX_KEY) ) pInfo->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
  pInfo->idxNum = idxNum;
  pInfo->estimatedCost = rCost;
  pInfo->estimatedRows = (sqlite3_int64)rCost;
  if( pInfo->nOrderBy==1 && pInfo->aOrderBy[0].iColumn<0 && !pInfo->aOrderBy[0].desc ){
    pInfo->orderByConsumed = 1;   /* rows come in rowid (queue) order */
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
  (void)pVtab;
  if( pCur==0 ) return SQLITE_NOMEM;
  memset(pCur, 0, sizeof(*pCur));
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

/* xNext */
static int webhookNext(sqlite3_vtab_cursor *cur){
  WebhookCursor *pCur = (WebhookCursor*)cur;
  int rc = sqlite3_step(pCur->pScan);
  pCur->bEof = rc!=SQLITE_ROW;
  if( rc==SQLITE_ROW || rc==SQLITE_DONE ) return SQLITE_OK;
  return tabError((WebhookTab*)cur->pVtab, rc,
                  sqlite3_mprintf("apify: %s", sqlite3_errmsg(((WebhookTab*)cur->pVtab)->db)));
}

/* xFilter: scan the store, narrowed by the constraints xBestIndex chose, in queue order. The
** request columns are read back out of the request as sent, with the paths of aField. */
static int webhookFilter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr,
                         int argc, sqlite3_value **argv){
  WebhookCursor *pCur = (WebhookCursor*)cur;
  WebhookTab *pTab = (WebhookTab*)cur->pVtab;
  const char *zDb = apifyStoreSchema(pTab->pStore), *zT = apifyStoreName(pTab->pStore);
  sqlite3_str *pSql = sqlite3_str_new(pTab->db);
  char *zSql;
  int i, rc, bExists = 0;
  (void)idxStr;
  sqlite3_finalize(pCur->pScan);
  pCur->pScan = 0;
  pCur->bEof = 1;
  rc = apifyStoreExists(pTab->pStore, &bExists);
  if( rc!=SQLITE_OK || !bExists ){
    sqlite3_free(sqlite3_str_finish(pSql));
    return rc;
  }
  sqlite3_str_appendall(pSql, "SELECT seq");
  for(i=0; i<N_REQUEST_COL; i++){
    sqlite3_str_appendf(pSql, ", json_extract(request, %Q)", aField[i].zPath);
  }
  sqlite3_str_appendall(pSql, ", request");
  for(i=0; i<(int)(sizeof(azOutcome)/sizeof(azOutcome[0])); i++){
    sqlite3_str_appendf(pSql, ", %s", azOutcome[i]);
  }
  sqlite3_str_appendf(pSql, " FROM \"%w\".\"%w_store\" WHERE 1", zDb, zT);
  if( idxNum & IDX_ROWID )  sqlite3_str_appendall(pSql, " AND seq=?");
  if( idxNum & IDX_KEY )    sqlite3_str_appendall(pSql, " AND idempotency_key=?");
  if( idxNum & IDX_ID )     sqlite3_str_appendall(pSql, " AND id=?");
  if( idxNum & IDX_STATUS ) sqlite3_str_appendall(pSql, " AND status=?");
  sqlite3_str_appendall(pSql, " ORDER BY seq");
  zSql = sqlite3_str_finish(pSql);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(pTab->db, zSql, -1, &pCur->pScan, 0);
  sqlite3_free(zSql);
  for(i=0; rc==SQLITE_OK && i<argc; i++) rc = sqlite3_bind_value(pCur->pScan, i+1, argv[i]);
  if( rc!=SQLITE_OK ){
    return tabError(pTab, rc, sqlite3_mprintf("apify: %s", sqlite3_errmsg(pTab->db)));
  }
  return webhookNext(cur);
}

/* xEof */
static int webhookEof(sqlite3_vtab_cursor *cur){
  return ((WebhookCursor*)cur)->bEof;
}

/* xColumn: column i of the vtab is column i+1 of the scan (column 0 is seq). */
static int webhookColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i){
  WebhookCursor *pCur = (WebhookCursor*)cur;
  sqlite3_result_value(ctx, sqlite3_column_value(pCur->pScan, i+1));
  return SQLITE_OK;
}

/* xRowid: the store's seq. */
static int webhookRowid(sqlite3_vtab_cursor *cur, sqlite_int64 *pRowid){
  *pRowid = sqlite3_column_int64(((WebhookCursor*)cur)->pScan, 0);
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

/* Build the WebhookCreate JSON of an inserted row: the webhook column's object (or {}), then
** each non-NULL request column set over it. *pzJson (sqlite3_malloc'd, *pnJson bytes) goes to
** the request builder, which judges it; a webhook value that is not a JSON object passes
** through unchanged so that the builder says what is wrong with it. A column of the wrong SQL
** type is an error in *pzErr naming it. */
static int rowToJson(WebhookTab *pTab, sqlite3_value **aCol, char **pzJson, int *pnJson,
                     char **pzErr){
  static const char zSet[] =
    "SELECT CASE ?4 WHEN 'j' THEN json_set(?1, ?2, json(?3))"
    "  WHEN 'b' THEN json_set(?1, ?2, json(CASE WHEN ?3 THEN 'true' ELSE 'false' END))"
    "  ELSE json_set(?1, ?2, ?3) END";
  sqlite3_value *pHook = aCol[COL_WEBHOOK];
  const char *zStart = "{}";
  char *zJson;
  int i, n = 2, bValid = 1, bObject = 1, rc = SQLITE_OK;
  *pzJson = 0;
  if( sqlite3_value_type(pHook)!=SQLITE_NULL ){
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
    if( eType==SQLITE_NULL ) continue;
    if( aField[i].eKind=='b' && (eType!=SQLITE_INTEGER || (sqlite3_uint64)sqlite3_value_int64(pVal)>1) ){
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
    if( rc==SQLITE_OK && aField[i].eKind=='j' ){
      rc = jsonCheck(pTab, pVal, &bValid, &bObject);     /* not JSON: set as a string */
      bObject = 1;
    }
    if( rc==SQLITE_OK ){
      static const char azKind[][2] = { "t", "j", "b" };
      int iKind = aField[i].eKind=='b' ? 2 : aField[i].eKind=='j' && bValid ? 1 : 0;
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

/*
** xUpdate. argc==1: DELETE of rowid argv[0]. argc>1: argv[0] is the old rowid (NULL for an
** INSERT), argv[1] the new rowid, argv[2..] the N_COL columns in declaration order. Only INSERT
** is supported: the row is validated, its body built and queued; it is sent at commit.
*/
static int webhookUpdate(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv,
                         sqlite_int64 *pRowid){
  WebhookTab *pTab = (WebhookTab*)pVtab;
  const char *zT = apifyStoreName(pTab->pStore);
  sqlite3_value **aCol = &argv[2];
  char *zJson = 0, *zBody = 0, *zKey = 0, *zErr = 0;
  int i, nJson = 0, rc = SQLITE_OK;

  if( argc==1 ){
    return tabError(pTab, SQLITE_ERROR, sqlite3_mprintf(
      "apify: rows of %s cannot be deleted: their webhooks exist on Apify; delete a webhook "
      "there, and forget its record with DELETE FROM \"%w_store\"", zT, zT));
  }
  if( sqlite3_value_type(argv[0])!=SQLITE_NULL ){
    return tabError(pTab, SQLITE_ERROR, sqlite3_mprintf(
      "apify: rows of %s cannot be updated; to send a failed row again, insert it again: "
      "INSERT INTO %s(webhook) SELECT webhook FROM %s WHERE status = 'failed'", zT, zT, zT));
  }
  pTab->nRow++;
  if( sqlite3_value_type(argv[1])!=SQLITE_NULL ){
    zErr = sqlite3_mprintf("rowid is assigned by the extension; leave it out");
    rc = zErr ? SQLITE_ERROR : SQLITE_NOMEM;
  }
  for(i=COL_ID; rc==SQLITE_OK && i<N_COL; i++){
    if( sqlite3_value_type(aCol[i])!=SQLITE_NULL ){
      zErr = sqlite3_mprintf("%s is set by the extension; leave it out", azOutcome[i-COL_ID]);
      rc = zErr ? SQLITE_ERROR : SQLITE_NOMEM;
    }
  }
  if( rc==SQLITE_OK ) rc = rowToJson(pTab, aCol, &zJson, &nJson, &zErr);
  if( rc==SQLITE_OK ){
    if( pTab->pRules==0 ) rc = apifyRulesOpen(pTab->db, &pTab->pRules);
    if( rc==SQLITE_OK ){
      rc = apifyRequestBuild(pTab->db, pTab->pRules, zJson, nJson, &zBody, &zKey, &zErr);
    }
    if( rc==SQLITE_ERROR && zErr && strncmp(zErr, "apify: ", 7)==0 ){
      memmove(zErr, zErr+7, strlen(zErr+7)+1);   /* in place: "apify: row N: " goes first */
    }
  }
  if( rc==SQLITE_OK ) rc = apifyStoreQueue(pTab->pStore, zKey, zBody, pTab->nRow, &zErr);
  if( rc==SQLITE_OK ){
    *pRowid = apifyStoreMark(pTab->pStore);
  }else if( zErr ){
    rc = tabError(pTab, rc, sqlite3_mprintf("apify: row %d: %s", pTab->nRow, zErr));
  }else if( rc!=SQLITE_NOMEM ){
    rc = tabError(pTab, rc, sqlite3_mprintf("apify: row %d: %s", pTab->nRow,
                                            sqlite3_errmsg(pTab->db)));
  }
  sqlite3_free(zErr);
  sqlite3_free(zJson);
  sqlite3_free(zBody);
  sqlite3_free(zKey);
  return rc;
}

/* One send of xSync: the store rows go out through the transport, outcomes come back. */
typedef struct SendCall SendCall;
struct SendCall {
  ApifyCall call;          /* must come first: the transport hands back &call */
  sqlite3_int64 iSeq;
  char *zBody;
};
typedef struct Send Send;
struct Send {
  WebhookTab *pTab;
  int nAnswer;             /* HTTP answers heard in this run */
  sqlite3_int64 nSent;     /* rows handed to the transport */
  char *zAbort;            /* why the whole commit fails, or NULL */
};

/* xNext of the transport: the next pending row queued by this transaction. */
static int sendNext(void *pArg, ApifyCall **pp){
  Send *pSend = (Send*)pArg;
  SendCall *pCall;
  sqlite3_int64 iSeq;
  char *zBody = 0;
  int rc = apifyStoreNext(pSend->pTab->pStore, &iSeq, &zBody);
  *pp = 0;
  if( rc!=SQLITE_OK || zBody==0 ) return rc;
  pSend->nSent++;
  pCall = sqlite3_malloc64(sizeof(*pCall));
  if( pCall==0 ){
    sqlite3_free(zBody);
    return SQLITE_NOMEM;
  }
  memset(pCall, 0, sizeof(*pCall));
  pCall->iSeq = iSeq;
  pCall->zBody = zBody;    /* ownership moves to the call */
  pCall->call.zBody = zBody;
  pCall->call.bReplay = 1;   /* it carries an idempotencyKey */
  *pp = &pCall->call;
  return SQLITE_OK;
}

/* xDone of the transport: record the outcome of a row. A 401, or no connection to the API
** before any answer was heard, means nothing can be created: the commit fails with that
** message. (A cut connection or a timeout proves nothing: that row is recorded failed.) */
static int sendDone(void *pArg, ApifyCall *pApiCall){
  Send *pSend = (Send*)pArg;
  SendCall *pCall = (SendCall*)pApiCall;
  char *zData = 0, *zType = 0, *zMsg = 0;
  int rc = apifyOutcome(pSend->pTab->db, pSend->pTab->pRules, pApiCall, &zData, &zType, &zMsg);
  if( pApiCall->httpStatus ) pSend->nAnswer++;
  if( rc==SQLITE_OK && zData==0 && pApiCall->httpStatus/100==2 && pApiCall->bCanRetry ){
    rc = APIFY_AGAIN;      /* a 2xx that is not an Apify answer: ask again */
  }else if( rc==SQLITE_OK && !pApiCall->bAborted
         && (pApiCall->httpStatus==401 || (pApiCall->bUnsent && pSend->nAnswer==0)) ){
    if( pSend->zAbort==0 ){
      char *zWhy = apifyFailure(&pSend->pTab->pApify->cfg, pApiCall, zType, zMsg);
      pSend->zAbort = zWhy ? sqlite3_mprintf("%s; nothing was created", zWhy) : 0;
      sqlite3_free(zWhy);
    }
    rc = pSend->zAbort ? SQLITE_ERROR : SQLITE_NOMEM;
  }else if( rc==SQLITE_OK ){
    rc = apifyStoreRecord(pSend->pTab->pStore, pCall->iSeq, pApiCall, zData, zType, zMsg);
    if( rc==SQLITE_OK && zData==0 ) rc = APIFY_FAILED;
  }
  sqlite3_free(zData);
  sqlite3_free(zType);
  sqlite3_free(zMsg);
  if( rc!=APIFY_AGAIN ){
    apifyCallReset(pApiCall);
    sqlite3_free(pCall->zBody);
    sqlite3_free(pCall);
  }
  return rc;
}

/* xSync: the transaction commits; send what it queued and record every outcome. An error here
** fails the commit and rolls the whole transaction back. */
static int webhookSync(sqlite3_vtab *pVtab){
  WebhookTab *pTab = (WebhookTab*)pVtab;
  Apify *pApify = pTab->pApify;
  Send send;
  sqlite3_int64 nPending = 0;
  char *zErr = 0;
  int rc;
  if( apifyStoreMark(pTab->pStore)==0 ) return SQLITE_OK;   /* nothing queued */
  memset(&send, 0, sizeof(send));
  send.pTab = pTab;
  rc = apifyReady(pApify, &zErr);
  if( rc==SQLITE_OK ) rc = apifyStoreMerge(pTab->pStore, &nPending);
  if( rc==SQLITE_OK && nPending>0 ){
    rc = apifyHttpSend(pApify->pHttp, pTab->db, &pApify->cfg, nPending, sendNext, sendDone, &send);
  }
  if( rc==SQLITE_INTERRUPT ){
    /* SQLite 3.40 runs no SQL on an interrupted connection until its statement ends, so the
    ** outcomes cannot be written: the commit fails and the transaction rolls back. What was
    ** created remotely comes back, not doubled, when the statement runs again (the keys). */
    zErr = sqlite3_mprintf("apify: interrupted after %lld of %lld requests; nothing of this "
                           "commit was recorded: run it again to send the rest (the webhooks "
                           "already created come back, none twice)",
                           (long long)send.nSent, (long long)nPending);
  }
  if( rc==SQLITE_OK ) rc = apifyStoreClear(pTab->pStore);
  if( send.zAbort ){
    sqlite3_free(zErr);
    zErr = send.zAbort;    /* ownership moves to zErr */
  }
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM ){
    if( zErr==0 ) zErr = sqlite3_mprintf("apify: %s", sqlite3_errmsg(pTab->db));
    rc = tabError(pTab, rc, zErr);
    zErr = 0;              /* ownership moved to the table */
  }
  sqlite3_free(zErr);
  return rc;
}

/* xBegin: a new transaction counts its rows from 1. */
static int webhookBegin(sqlite3_vtab *pVtab){
  WebhookTab *pTab = (WebhookTab*)pVtab;
  pTab->nRow = 0;
  apifyStoreEnd(pTab->pStore);
  return SQLITE_OK;
}

/* xCommit and xRollback: the transaction is over; forget its state (no writes here). */
static int webhookEnd(sqlite3_vtab *pVtab){
  WebhookTab *pTab = (WebhookTab*)pVtab;
  pTab->nRow = 0;
  apifyStoreEnd(pTab->pStore);
  return SQLITE_OK;
}

/* xSavepoint: note how far the queue and the row count had come. */
static int webhookSavepoint(sqlite3_vtab *pVtab, int iSavepoint){
  WebhookTab *pTab = (WebhookTab*)pVtab;
  if( iSavepoint>=pTab->nMark ){
    sqlite3_int64 (*aNew)[2] = sqlite3_realloc64(pTab->aMark, (iSavepoint+8)*sizeof(*aNew));
    if( aNew==0 ) return SQLITE_NOMEM;
    pTab->aMark = aNew;
    pTab->nMark = iSavepoint+8;
  }
  pTab->aMark[iSavepoint][0] = apifyStoreMark(pTab->pStore);
  pTab->aMark[iSavepoint][1] = pTab->nRow;
  return SQLITE_OK;
}

/* xRelease: nothing to undo later; the marks of released savepoints are simply not used. */
static int webhookRelease(sqlite3_vtab *pVtab, int iSavepoint){
  (void)pVtab;
  (void)iSavepoint;
  return SQLITE_OK;
}

/* xRollbackTo: what was queued after the savepoint will not be sent. */
static int webhookRollbackTo(sqlite3_vtab *pVtab, int iSavepoint){
  WebhookTab *pTab = (WebhookTab*)pVtab;
  if( iSavepoint<pTab->nMark ){
    apifyStoreDiscard(pTab->pStore, pTab->aMark[iSavepoint][0]);
    pTab->nRow = (int)pTab->aMark[iSavepoint][1];
  }
  return SQLITE_OK;
}

/* xRename: ALTER TABLE T RENAME TO U takes the store along (U_store, U_queue). */
static int webhookRename(sqlite3_vtab *pVtab, const char *zNew){
  WebhookTab *pTab = (WebhookTab*)pVtab;
  int rc = apifyStoreRename(pTab->pStore, zNew);
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM ){
    rc = tabError(pTab, rc, sqlite3_mprintf("apify: %s", sqlite3_errmsg(pTab->db)));
  }
  return rc;
}

/* xShadowName: the store's tables are T_store and T_queue. */
static int webhookShadowName(const char *zSuffix){
  return apifyStoreShadow(zSuffix);
}

static sqlite3_module webhookModule = {
  3,                         /* iVersion: xShadowName */
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
  webhookUpdate,             /* xUpdate: INSERT queues; UPDATE and DELETE are refused */
  webhookBegin,              /* xBegin */
  webhookSync,               /* xSync: sends at commit */
  webhookEnd,                /* xCommit */
  webhookEnd,                /* xRollback: nothing was sent */
  0,                         /* xFindFunction */
  webhookRename,             /* xRename: the store's tables follow */
  webhookSavepoint,          /* xSavepoint */
  webhookRelease,            /* xRelease */
  webhookRollbackTo,         /* xRollbackTo */
  webhookShadowName          /* xShadowName */
};

int apifyVtabRegister(sqlite3 *db, Apify *p){
  apifyRef(p);   /* held by the module; create_module_v2 releases it even on failure */
  return sqlite3_create_module_v2(db, "apify_webhooks", &webhookModule, p, apifyUnref);
}
