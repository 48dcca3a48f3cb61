/*
** remote.c: the account as tables. Two eponymous, read-only virtual tables that read the Apify
** account through its list endpoints, a page at a time as the cursor advances:
**
**   SELECT id, request_url, actor_id FROM apify_remote_webhooks;        -- GET /v2/webhooks
**   SELECT id FROM apify_remote_webhooks WHERE actor_id = 'X';     -- GET /v2/actors/X/webhooks
**   SELECT id FROM apify_remote_webhooks WHERE actor_task_id = 'T'; -- GET /v2/actor-tasks/T/...
**   SELECT status, error_message FROM apify_webhook_dispatches;   -- GET /v2/webhook-dispatches
**   SELECT * FROM apify_webhook_dispatches('ID');          -- GET /v2/webhooks/ID/dispatches
**
** When the network is used. xFilter sends one GET of the first page (offset=0&limit=1000) and
** xNext sends the next one when the rows of the page in hand run out, so a statement that stops
** early (LIMIT, EXISTS) reads only the pages it needs, and only one page is in memory at a time:
** memory stays flat whatever the size of the account. The last page is the one with fewer items
** than asked for, or the one that reaches the answer's total. A page larger than the transport's
** cap on answers (APIFY_MAX_REPLY) is asked for again with half the limit, from the same offset.
** An error (no token, 401, the API unreachable, an answer that is not a list) ends the statement
** with its message. Nothing is written: the tables have no xUpdate.
**
** What a row holds is the server's text: every text value is cleaned (apifyTextClean, trust.c)
** before it reaches a column, so no control character and never the token comes out of them.
**
** Why DIRECTONLY (sqlite3_vtab_config in xConnect): reading them spends the user's token, so a
** view or a trigger of a database file someone else wrote must not be able to; and xFilter
** checks the schemas (apifySchemaGuard) before anything is sent, as the functions do.
*/
#include <string.h>
#include "apify.h"

#define PAGE_LIMIT 1000          /* items per page: the API's maximum */

/* ---------------------------------------------------------------------------------------------
** The two tables: their columns, and where each column comes from in a list item. A column of
** kind 't' is a scalar read with ->> (text cleaned as plain text), 'j' JSON text read with ->
** (cleaned as JSON), '*' the whole item (JSON).
*/
typedef struct RemoteColumn RemoteColumn;
struct RemoteColumn {
  const char *zName;
  const char *zType;
  const char *zPath;        /* JSON path in the item; NULL for the whole item */
  char eKind;
};

static const RemoteColumn aWebhookCol[] = {
  { "id",                         "TEXT",    "$.id",                       't' },
  { "request_url",                "TEXT",    "$.requestUrl",               't' },
  { "event_types",                "TEXT",    "$.eventTypes",               'j' },
  { "actor_id",                   "TEXT",    "$.condition.actorId",        't' },
  { "actor_task_id",              "TEXT",    "$.condition.actorTaskId",    't' },
  { "actor_run_id",               "TEXT",    "$.condition.actorRunId",     't' },
  { "is_ad_hoc",                  "INTEGER", "$.isAdHoc",                  't' },
  { "payload_template",           "TEXT",    "$.payloadTemplate",          't' },
  { "headers_template",           "TEXT",    "$.headersTemplate",          't' },
  { "description",                "TEXT",    "$.description",              't' },
  { "should_interpolate_strings", "INTEGER", "$.shouldInterpolateStrings", 't' },
  { "ignore_ssl_errors",          "INTEGER", "$.ignoreSslErrors",          't' },
  { "do_not_retry",               "INTEGER", "$.doNotRetry",               't' },
  { "created_at",                 "TEXT",    "$.createdAt",                't' },
  { "modified_at",                "TEXT",    "$.modifiedAt",               't' },
  { "user_id",                    "TEXT",    "$.userId",                   't' },
  { "last_dispatch_status",       "TEXT",    "$.lastDispatch.status",      't' },
  { "last_dispatch_finished_at",  "TEXT",    "$.lastDispatch.finishedAt",  't' },
  { "total_dispatches",           "INTEGER", "$.stats.totalDispatches",    't' },
  { "is_enabled",                 "INTEGER", "$.isEnabled",                't' },
  { "action_type",                "TEXT",    "$.actionType",               't' },
  { "webhook",                    "TEXT",    0,                            '*' },
};
#define WH_ACTOR_ID       3      /* aWebhookCol index: equality uses /v2/actors/{id}/webhooks */
#define WH_ACTOR_TASK_ID  4      /* ... /v2/actor-tasks/{id}/webhooks */

static const RemoteColumn aDispatchCol[] = {
  { "id",               "TEXT",    "$.id",                       't' },
  { "webhook_id",       "TEXT",    "$.webhookId",                't' },
  { "event_type",       "TEXT",    "$.eventType",                't' },
  { "status",           "TEXT",    "$.status",                   't' },
  { "created_at",       "TEXT",    "$.createdAt",                't' },
  { "response_status",  "INTEGER", "$.calls[#-1].responseStatus", 't' },
  { "error_message",    "TEXT",    "$.calls[#-1].errorMessage",  't' },
  { "calls",            "TEXT",    "$.calls",                    'j' },
  { "event_data",       "TEXT",    "$.eventData",                'j' },
  { "dispatch",         "TEXT",    0,                            '*' },
};
/* After the columns above: the hidden argument, apify_webhook_dispatches('ID'). It reads back
** as the row's webhookId, which equals the argument when there is one. */
#define DS_WEBHOOK_ARG    10
#define DS_WEBHOOK_ID     1

typedef struct RemoteKind RemoteKind;
struct RemoteKind {
  const char *zModule;
  const RemoteColumn *aCol;
  int nCol;                 /* columns of aCol; a hidden argument column may follow */
  int iArgCol;              /* the hidden argument column, or -1 */
};
static const RemoteKind webhookKind = {
  "apify_remote_webhooks", aWebhookCol, (int)(sizeof(aWebhookCol)/sizeof(aWebhookCol[0])), -1
};
static const RemoteKind dispatchKind = {
  "apify_webhook_dispatches", aDispatchCol, (int)(sizeof(aDispatchCol)/sizeof(aDispatchCol[0])),
  DS_WEBHOOK_ARG
};

typedef struct RemoteTab RemoteTab;
typedef struct RemoteCursor RemoteCursor;

struct RemoteTab {
  sqlite3_vtab base;       /* must come first */
  sqlite3 *db;
  Apify *pApify;           /* the connection's configuration and transport (a reference) */
  const RemoteKind *pKind;
};

struct RemoteCursor {
  sqlite3_vtab_cursor base; /* must come first */
  char *zPath;             /* the list's path, without the query */
  sqlite3_int64 iOffset;   /* offset of the page in hand */
  int nLimit;              /* the limit asked for (halved when a page outgrows the cap) */
  int bLast;               /* the page in hand is the last one */
  int bEof;
  char *zPage;             /* the page in hand: the answer's data object, cleaned */
  sqlite3_int64 nPageItem; /* items in it */
  sqlite3_stmt *pItems;    /* one row per item of zPage, one column per column of the table */
  sqlite3_int64 iRowid;    /* position in the whole list, from 1 */
};

/* Set the table's error message to z (sqlite3_malloc'd, taken over) and return rc; NULL z is
** out of memory. */
static int remoteError(RemoteTab *pTab, int rc, char *z){
  sqlite3_free(pTab->base.zErrMsg);
  pTab->base.zErrMsg = z;
  return z ? rc : SQLITE_NOMEM;
}

/* ---------------------------------------------------------------------------------------------
** Paths.
*/

char *apifyPath(const char *zPrefix, const char *zPart, const char *zSuffix){
  static const char zHex[] = "0123456789ABCDEF";
  sqlite3_str *p = sqlite3_str_new(0);
  const unsigned char *z = (const unsigned char*)zPart;
  sqlite3_str_appendall(p, zPrefix);
  for(; z && *z; z++){
    int c = *z;
    if( (c>='A' && c<='Z') || (c>='a' && c<='z') || (c>='0' && c<='9')
     || c=='-' || c=='.' || c=='_' || c=='~' ){
      sqlite3_str_appendchar(p, 1, (char)c);
    }else{
      char aEsc[3];
      aEsc[0] = '%';
      aEsc[1] = zHex[c>>4];
      aEsc[2] = zHex[c&15];
      sqlite3_str_append(p, aEsc, 3);
    }
  }
  sqlite3_str_appendall(p, zSuffix);
  if( sqlite3_str_errcode(p)!=SQLITE_OK ){
    sqlite3_free(sqlite3_str_finish(p));
    return 0;
  }
  return sqlite3_str_finish(p);
}

/* ---------------------------------------------------------------------------------------------
** One page: a one-call queue for the transport.
*/
typedef struct PageCall PageCall;
struct PageCall {
  sqlite3 *db;
  ApifyCall call;
  int bTaken;              /* xNext has handed the call over */
  char *zData, *zType, *zMsg;
};

static int pageNext(void *pArg, ApifyCall **pp){
  PageCall *p = (PageCall*)pArg;
  *pp = p->bTaken ? 0 : &p->call;
  p->bTaken = 1;
  return SQLITE_OK;
}

/* Judge the answer; a 2xx that is not an Apify answer is asked for again while attempts are
** left (a GET may be sent twice). */
static int pageDone(void *pArg, ApifyCall *pCall){
  PageCall *p = (PageCall*)pArg;
  int rc;
  sqlite3_free(p->zData);
  sqlite3_free(p->zType);
  sqlite3_free(p->zMsg);
  rc = apifyOutcome(p->db, 0, pCall, &p->zData, &p->zType, &p->zMsg);
  if( rc==SQLITE_OK && p->zData==0 && pCall->httpStatus/100==2 && pCall->bCanRetry ){
    return APIFY_AGAIN;
  }
  return rc==SQLITE_OK && p->zData==0 ? APIFY_FAILED : rc;
}

static void pageFree(PageCall *p){
  apifyCallReset(&p->call);
  sqlite3_free(p->zData);
  sqlite3_free(p->zType);
  sqlite3_free(p->zMsg);
}

/* True if the call failed only because its answer outgrew APIFY_MAX_REPLY (transport.c says
** so in the call's network error, which is the only place it does). */
static int pageOversize(const ApifyCall *pCall){
  static const char zCap[] = "the answer is larger than ";
  return pCall->httpStatus==0 && pCall->zNetError
      && strncmp(pCall->zNetError, zCap, sizeof(zCap)-1)==0;
}

/* The statement that reads the items of a page ?1 (a data object) as rows of the table. */
static int remotePrepare(RemoteTab *pTab, sqlite3_stmt **pp){
  const RemoteKind *pKind = pTab->pKind;
  sqlite3_str *pSql = sqlite3_str_new(pTab->db);
  char *zSql;
  int i, rc;
  sqlite3_str_appendall(pSql, "SELECT ");
  for(i=0; i<pKind->nCol; i++){
    const RemoteColumn *pCol = &pKind->aCol[i];
    if( i ) sqlite3_str_appendall(pSql, ", ");
    if( pCol->eKind=='*' ) sqlite3_str_appendall(pSql, "value");
    else sqlite3_str_appendf(pSql, "value%s%Q", pCol->eKind=='j' ? "->" : "->>", pCol->zPath);
  }
  sqlite3_str_appendall(pSql, " FROM json_each(?1, '$.items')");
  zSql = sqlite3_str_finish(pSql);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(pTab->db, zSql, -1, pp, 0);
  sqlite3_free(zSql);
  return rc;
}

/* What the data object zData of a list answer says: whether items is an array, how many, the
** total (-1 when it gives none). */
static int pageShape(sqlite3 *db, const char *zData, int *pbList, sqlite3_int64 *pnItem,
                     sqlite3_int64 *pnTotal){
  static const char zSql[] =
    "SELECT json_type(?1, '$.items')='array', json_array_length(?1, '$.items'),"
    " json_type(?1, '$.total')='integer', json_extract(?1, '$.total')";
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  *pbList = 0;
  *pnItem = 0;
  *pnTotal = -1;
  if( rc==SQLITE_OK ) rc = sqlite3_bind_text(pStmt, 1, zData, -1, SQLITE_STATIC);
  if( rc==SQLITE_OK ){
    if( sqlite3_step(pStmt)==SQLITE_ROW ){
      *pbList = sqlite3_column_int(pStmt, 0);
      *pnItem = sqlite3_column_int64(pStmt, 1);
      if( sqlite3_column_int(pStmt, 2) ) *pnTotal = sqlite3_column_int64(pStmt, 3);
    }
    rc = sqlite3_reset(pStmt);
    /* A data object that is not JSON at all reads as no list: that is the message. */
    if( rc==SQLITE_ERROR ) rc = SQLITE_OK;
  }
  sqlite3_finalize(pStmt);
  return rc;
}

/* Fetch the page at pCur->iOffset into pCur->zPage and start reading its items. SQLITE_OK, or
** an error with the table's message set. */
static int remoteFetch(RemoteCursor *pCur){
  RemoteTab *pTab = (RemoteTab*)pCur->base.pVtab;
  Apify *pApify = pTab->pApify;
  char *zErr = 0;
  int rc;
  sqlite3_reset(pCur->pItems);
  sqlite3_clear_bindings(pCur->pItems);
  sqlite3_free(pCur->zPage);     /* one page in memory at a time */
  pCur->zPage = 0;
  pCur->nPageItem = 0;
  rc = apifyReady(pApify, &zErr);
  if( rc!=SQLITE_OK ) return remoteError(pTab, rc, zErr);
  for(;;){
    PageCall page;
    char *zPath = sqlite3_mprintf("%s?offset=%lld&limit=%d&desc=0", pCur->zPath,
                                  pCur->iOffset, pCur->nLimit);
    if( zPath==0 ) return SQLITE_NOMEM;
    memset(&page, 0, sizeof(page));
    page.db = pTab->db;
    page.call.zMethod = "GET";
    page.call.zPath = zPath;
    page.call.bReplay = 1;       /* a GET changes nothing: safe to send again */
    rc = apifyHttpSend(pApify->pHttp, pTab->db, &pApify->cfg, 1, pageNext, pageDone, &page);
    if( rc==SQLITE_OK && page.zData==0 && pageOversize(&page.call) && pCur->nLimit>1 ){
      pCur->nLimit /= 2;         /* a smaller page fits: ask again from the same offset */
      pageFree(&page);
      sqlite3_free(zPath);
      continue;
    }
    if( rc==SQLITE_OK && page.zData ){
      int bList = 0;
      sqlite3_int64 nTotal = -1;
      pCur->zPage = apifyTextClean(page.zData, -1, pApify->cfg.zToken, 1);
      rc = pCur->zPage ? pageShape(pTab->db, pCur->zPage, &bList, &pCur->nPageItem, &nTotal)
                       : SQLITE_NOMEM;
      if( rc==SQLITE_OK && !bList ){
        char *zWhat = sqlite3_mprintf("apify: GET %s%s answered data that is not a list: %.200s",
                                      pApify->cfg.zBaseUrl, zPath, pCur->zPage);
        zErr = zWhat ? apifyTextClean(zWhat, -1, pApify->cfg.zToken, 0) : 0;
        sqlite3_free(zWhat);
        rc = zErr ? SQLITE_ERROR : SQLITE_NOMEM;
      }
      if( rc==SQLITE_OK ){
        pCur->bLast = pCur->nPageItem==0 || pCur->nPageItem<pCur->nLimit
                   || (nTotal>=0 && pCur->iOffset+pCur->nPageItem>=nTotal);
        rc = sqlite3_bind_text(pCur->pItems, 1, pCur->zPage, -1, SQLITE_STATIC);
      }
    }else if( rc==SQLITE_OK ){
      char *zWhat = apifyFailure(&pApify->cfg, &page.call, page.zType, page.zMsg);
      zErr = zWhat ? apifyTextClean(zWhat, -1, pApify->cfg.zToken, 0) : 0;
      sqlite3_free(zWhat);
      rc = zErr ? SQLITE_ERROR : SQLITE_NOMEM;
    }else if( rc==SQLITE_INTERRUPT ){
      zErr = sqlite3_mprintf("apify: interrupted");
    }
    pageFree(&page);
    sqlite3_free(zPath);
    break;
  }
  if( rc==SQLITE_NOMEM ){
    sqlite3_free(zErr);
    return SQLITE_NOMEM;
  }
  if( rc!=SQLITE_OK ){
    return remoteError(pTab, rc, zErr ? zErr : sqlite3_mprintf("apify: %s", sqlite3_errstr(rc)));
  }
  return SQLITE_OK;
}

/* ---------------------------------------------------------------------------------------------
** The virtual table methods, shared by both tables.
*/

/* xConnect of either table: declare its columns; DIRECTONLY, because reading spends the
** token. Eponymous only: there is no xCreate. */
static int remoteConnect(sqlite3 *db, void *pAux, const RemoteKind *pKind,
                         sqlite3_vtab **ppVtab, char **pzErr){
  sqlite3_str *pSql = sqlite3_str_new(db);
  RemoteTab *pTab;
  char *zSql;
  int i, rc;
  *ppVtab = 0;
  (void)pzErr;
  sqlite3_str_appendall(pSql, "CREATE TABLE x(");
  for(i=0; i<pKind->nCol; i++){
    sqlite3_str_appendf(pSql, "%s%s %s", i ? ", " : "", pKind->aCol[i].zName,
                        pKind->aCol[i].zType);
  }
  if( pKind->iArgCol>=0 ) sqlite3_str_appendall(pSql, ", webhook HIDDEN");
  sqlite3_str_appendall(pSql, ")");
  zSql = sqlite3_str_finish(pSql);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_declare_vtab(db, zSql);
  sqlite3_free(zSql);
  if( rc==SQLITE_OK ) rc = sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  if( rc!=SQLITE_OK ) return rc;
  pTab = sqlite3_malloc64(sizeof(*pTab));
  if( pTab==0 ) return SQLITE_NOMEM;
  memset(pTab, 0, sizeof(*pTab));
  pTab->db = db;
  pTab->pKind = pKind;
  pTab->pApify = (Apify*)pAux;
  apifyRef(pTab->pApify);
  *ppVtab = &pTab->base;
  return SQLITE_OK;
}

static int webhooksConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                           sqlite3_vtab **ppVtab, char **pzErr){
  (void)argc;
  (void)argv;
  return remoteConnect(db, pAux, &webhookKind, ppVtab, pzErr);
}

static int dispatchesConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                             sqlite3_vtab **ppVtab, char **pzErr){
  (void)argc;
  (void)argv;
  return remoteConnect(db, pAux, &dispatchKind, ppVtab, pzErr);
}

/* xDisconnect */
static int remoteDisconnect(sqlite3_vtab *pVtab){
  RemoteTab *pTab = (RemoteTab*)pVtab;
  apifyUnref(pTab->pApify);
  sqlite3_free(pTab);
  return SQLITE_OK;
}

/*
** xBestIndex. apify_remote_webhooks: an equality on actor_id (idxNum 1) or else on actor_task_id
** (idxNum 2) reads the scoped list of that actor or task; SQLite still checks it (omit 0), and
** every other constraint is left to SQLite. apify_webhook_dispatches: an equality on the hidden
** argument (idxNum 1) reads that webhook's log; it is used up (omit 1), since every row of that
** log has that webhook id. The cost tells SQLite that a scoped list is much cheaper.
*/
#define IDX_ALL    0
#define IDX_ACTOR  1
#define IDX_TASK   2
#define IDX_HOOK   1
static int remoteBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo){
  RemoteTab *pTab = (RemoteTab*)pVtab;
  int i, iUse = -1, idxNum = IDX_ALL;
  for(i=0; i<pInfo->nConstraint; i++){
    const struct sqlite3_index_constraint *pCons = &pInfo->aConstraint[i];
    int idxThis = IDX_ALL;
    if( !pCons->usable || pCons->op!=SQLITE_INDEX_CONSTRAINT_EQ ) continue;
    if( pTab->pKind==&dispatchKind ){
      if( pCons->iColumn==DS_WEBHOOK_ARG ) idxThis = IDX_HOOK;
    }else if( pCons->iColumn==WH_ACTOR_ID ){
      idxThis = IDX_ACTOR;
    }else if( pCons->iColumn==WH_ACTOR_TASK_ID ){
      idxThis = IDX_TASK;
    }
    /* actor_id wins over actor_task_id: the smaller idxNum */
    if( idxThis!=IDX_ALL && (idxNum==IDX_ALL || idxThis<idxNum) ){
      iUse = i;
      idxNum = idxThis;
    }
  }
  if( pTab->pKind==&dispatchKind && idxNum==IDX_ALL ){
    /* An argument that is not usable yet (a join's later table) must not be planned away:
    ** SQLite would then read the account's whole log for each row. */
    for(i=0; i<pInfo->nConstraint; i++){
      if( pInfo->aConstraint[i].iColumn==DS_WEBHOOK_ARG && !pInfo->aConstraint[i].usable ){
        return SQLITE_CONSTRAINT;
      }
    }
  }
  pInfo->idxNum = idxNum;
  if( iUse>=0 ){
    pInfo->aConstraintUsage[iUse].argvIndex = 1;
    pInfo->aConstraintUsage[iUse].omit = pTab->pKind==&dispatchKind;
    pInfo->estimatedCost = 1000.0;
    pInfo->estimatedRows = 100;
  }else{
    pInfo->estimatedCost = 1000000.0;
    pInfo->estimatedRows = 10000;
  }
  return SQLITE_OK;
}

/* xOpen */
static int remoteOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur){
  RemoteCursor *pCur = sqlite3_malloc64(sizeof(*pCur));
  (void)pVtab;
  if( pCur==0 ) return SQLITE_NOMEM;
  memset(pCur, 0, sizeof(*pCur));
  pCur->bEof = 1;
  *ppCur = &pCur->base;
  return SQLITE_OK;
}

/* xClose */
static int remoteClose(sqlite3_vtab_cursor *cur){
  RemoteCursor *pCur = (RemoteCursor*)cur;
  sqlite3_finalize(pCur->pItems);
  sqlite3_free(pCur->zPage);
  sqlite3_free(pCur->zPath);
  sqlite3_free(pCur);
  return SQLITE_OK;
}

/* xNext: the next item of the page in hand, else the first item of the next page. */
static int remoteNext(sqlite3_vtab_cursor *cur){
  RemoteCursor *pCur = (RemoteCursor*)cur;
  RemoteTab *pTab = (RemoteTab*)cur->pVtab;
  for(;;){
    int rc = sqlite3_step(pCur->pItems);
    if( rc==SQLITE_ROW ){
      pCur->iRowid++;
      return SQLITE_OK;
    }
    if( rc!=SQLITE_DONE ){
      rc = sqlite3_reset(pCur->pItems);
      pCur->bEof = 1;
      if( rc==SQLITE_NOMEM ) return rc;
      return remoteError(pTab, rc ? rc : SQLITE_ERROR,
                         sqlite3_mprintf("apify: %s", sqlite3_errmsg(pTab->db)));
    }
    if( pCur->bLast ){
      pCur->bEof = 1;
      return SQLITE_OK;
    }
    pCur->iOffset += pCur->nPageItem;
    rc = remoteFetch(pCur);
    if( rc!=SQLITE_OK ){
      pCur->bEof = 1;
      return rc;
    }
  }
}

/* xFilter: choose the list from idxNum and its argument, check the schemas, read the first
** page. An equality with NULL matches nothing: no request is sent. */
static int remoteFilter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr,
                        int argc, sqlite3_value **argv){
  RemoteCursor *pCur = (RemoteCursor*)cur;
  RemoteTab *pTab = (RemoteTab*)cur->pVtab;
  const char *zArg = 0;
  char *zErr = 0;
  int rc;
  (void)idxStr;
  pCur->bEof = 1;
  pCur->iRowid = 0;
  pCur->iOffset = 0;
  pCur->nLimit = PAGE_LIMIT;
  pCur->bLast = 0;
  sqlite3_free(pCur->zPath);
  pCur->zPath = 0;
  rc = apifySchemaGuard(pTab->db, 1, &zErr);
  if( rc!=SQLITE_OK ) return remoteError(pTab, rc, zErr);
  if( argc>0 ){
    if( sqlite3_value_type(argv[0])==SQLITE_NULL ) return SQLITE_OK;
    zArg = (const char*)sqlite3_value_text(argv[0]);
    if( zArg==0 ) return SQLITE_NOMEM;
  }
  if( pTab->pKind==&webhookKind ){
    pCur->zPath = idxNum==IDX_ACTOR ? apifyPath("/v2/actors/", zArg, "/webhooks")
                : idxNum==IDX_TASK ? apifyPath("/v2/actor-tasks/", zArg, "/webhooks")
                : sqlite3_mprintf("/v2/webhooks");
  }else{
    pCur->zPath = idxNum==IDX_HOOK ? apifyPath("/v2/webhooks/", zArg, "/dispatches")
                : sqlite3_mprintf("/v2/webhook-dispatches");
  }
  if( pCur->zPath==0 ) return SQLITE_NOMEM;
  if( pCur->pItems==0 ){
    rc = remotePrepare(pTab, &pCur->pItems);
    if( rc!=SQLITE_OK ){
      return rc==SQLITE_NOMEM ? rc
           : remoteError(pTab, rc, sqlite3_mprintf("apify: %s", sqlite3_errmsg(pTab->db)));
    }
  }
  rc = remoteFetch(pCur);
  if( rc!=SQLITE_OK ) return rc;
  pCur->bEof = 0;
  return remoteNext(cur);
}

/* xEof */
static int remoteEof(sqlite3_vtab_cursor *cur){
  return ((RemoteCursor*)cur)->bEof;
}

/* xColumn: the item's value, its text cleaned again as plain text (tab and newline, which
** JSON text keeps, become U+FFFD too) or as JSON. The hidden argument reads as the webhook id. */
static int remoteColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i){
  RemoteCursor *pCur = (RemoteCursor*)cur;
  RemoteTab *pTab = (RemoteTab*)cur->pVtab;
  const RemoteKind *pKind = pTab->pKind;
  int iCol = i==pKind->iArgCol ? DS_WEBHOOK_ID : i;
  sqlite3_value *pVal;
  if( iCol<0 || iCol>=pKind->nCol ) return SQLITE_OK;
  pVal = sqlite3_column_value(pCur->pItems, iCol);
  if( sqlite3_value_type(pVal)==SQLITE_TEXT ){
    const char *z = (const char*)sqlite3_value_text(pVal);
    char *zClean;
    if( z==0 ) return SQLITE_NOMEM;
    zClean = apifyTextClean(z, sqlite3_value_bytes(pVal), pTab->pApify->cfg.zToken,
                            pKind->aCol[iCol].eKind!='t');
    if( zClean==0 ) return SQLITE_NOMEM;
    sqlite3_result_text(ctx, zClean, -1, sqlite3_free);
  }else{
    sqlite3_result_value(ctx, pVal);
  }
  return SQLITE_OK;
}

/* xRowid: the row's position in the whole list, from 1. */
static int remoteRowid(sqlite3_vtab_cursor *cur, sqlite_int64 *pRowid){
  *pRowid = ((RemoteCursor*)cur)->iRowid;
  return SQLITE_OK;
}

/* The two modules differ only in xConnect (which table it declares). */
#define REMOTE_MODULE(xConnect) {                                                             \
  0,                         /* iVersion */                                                   \
  0,                         /* xCreate: none, so the table is eponymous only */              \
  xConnect,                  /* xConnect */                                                   \
  remoteBestIndex,           /* xBestIndex: the scoped lists */                               \
  remoteDisconnect,          /* xDisconnect */                                                \
  0,                         /* xDestroy */                                                   \
  remoteOpen,                /* xOpen */                                                      \
  remoteClose,               /* xClose */                                                     \
  remoteFilter,              /* xFilter: the first page */                                    \
  remoteNext,                /* xNext: the next pages, as needed */                           \
  remoteEof,                 /* xEof */                                                       \
  remoteColumn,              /* xColumn */                                                    \
  remoteRowid,               /* xRowid */                                                     \
  0,                         /* xUpdate: none, read-only */                                   \
  0, 0, 0, 0,                /* xBegin, xSync, xCommit, xRollback: nothing to send */         \
  0,                         /* xFindFunction */                                              \
  0,                         /* xRename */                                                    \
  0, 0, 0,                   /* xSavepoint, xRelease, xRollbackTo */                          \
  0                          /* xShadowName */                                                \
}
static sqlite3_module webhooksModule = REMOTE_MODULE(webhooksConnect);
static sqlite3_module dispatchesModule = REMOTE_MODULE(dispatchesConnect);

int apifyRemoteRegister(sqlite3 *db, Apify *p){
  int rc;
  apifyRef(p);   /* held by the module; create_module_v2 releases it even on failure */
  rc = sqlite3_create_module_v2(db, webhookKind.zModule, &webhooksModule, p, apifyUnref);
  if( rc==SQLITE_OK ){
    apifyRef(p);
    rc = sqlite3_create_module_v2(db, dispatchKind.zModule, &dispatchesModule, p, apifyUnref);
  }
  return rc;
}
