/*
** apify.c: the entry point of the apify extension, the state of each database connection, its
** configuration, and the scalar functions.
**
**   .load ./build/apify
**   SELECT apify_config('token', 'apify_api_...');        -- or set APIFY_TOKEN before starting
**   SELECT apify_create_webhook('{"requestUrl":"https://example.com/h",
**            "eventTypes":["ACTOR.RUN.SUCCEEDED"],"condition":{"actorId":"HDSasDasz78YcAPEB"}}');
**   SELECT apify_dry_run('{...}');                         -- what would be sent; sends nothing
**   SELECT apify_config();                                 -- every setting; never the token
**   SELECT apify_test_webhook('ID') ->> 'status';          -- POST /v2/webhooks/ID/test
**
** Why DIRECTONLY: apify_create_webhook and apify_test_webhook spend the user's API token (and
** the test makes the platform deliver) and apify_config can point the next request at another
** host, so none may run from a trigger or a view of a database file someone else wrote; SQLite
** then refuses them outside top-level SQL. SQLite 3.40 misses CHECK constraints, so they also
** refuse to run while any table of an attached database names one of them in a CHECK
** constraint (calledSafely, trust.c). apify_dry_run, apify_preview_dispatch and apify_version
** send nothing and reveal no secret: they are all that the second entry point,
** sqlite3_apify_no_network_init, registers (`.load ./build/apify sqlite3_apify_no_network_init`),
** for hosts such as Datasette that run other people's top-level SQL, which DIRECTONLY does not
** stop.
*/
#include <stdlib.h>
#include <string.h>
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1
#include "apify.h"

#define JSON_SUBTYPE 74   /* 'J': what JSON1 puts on its results, so ->> and json_* compose */

/* ---------------------------------------------------------------------------------------------
** Connection state and configuration.
*/

/* A setting: its name, kind, where it lives in ApifyConfig, its range and its default. */
typedef struct Setting Setting;
struct Setting {
  const char *zName;
  char eKind;              /* 's' text, 'i' integer, 'r' real, 'p' progress (auto/on/off) */
  size_t iOffset;
  double rMin, rMax, rDefault;
};
static const Setting aSetting[] = {
  { "token",              's', offsetof(ApifyConfig, zToken),           0, 0, 0 },
  { "base_url",           's', offsetof(ApifyConfig, zBaseUrl),         0, 0, 0 },
  { "ca_file",            's', offsetof(ApifyConfig, zCaFile),          0, 0, 0 },
  { "connect_timeout_ms", 'i', offsetof(ApifyConfig, connectTimeoutMs), 1, 3600000, 10000 },
  { "timeout_ms",         'i', offsetof(ApifyConfig, timeoutMs),        1, 3600000, 30000 },
  { "max_attempts",       'i', offsetof(ApifyConfig, maxAttempts),      1, 100, 8 },
  { "max_retry_time_ms",  'i', offsetof(ApifyConfig, maxRetryMs),       0, 86400000, 300000 },
  { "concurrency",        'i', offsetof(ApifyConfig, concurrency),      1, 256, 16 },
  { "rate_limit",         'r', offsetof(ApifyConfig, rateLimit),        0, 1000000, 0 },
  { "progress",           'p', offsetof(ApifyConfig, progress),         -1, 1, -1 },
};
#define N_SETTING (int)(sizeof(aSetting)/sizeof(aSetting[0]))
#define DEFAULT_BASE_URL "https://api.apify.com"

static char **settingText(ApifyConfig *pCfg, const Setting *pSet){
  return (char**)((char*)pCfg + pSet->iOffset);
}
static int *settingInt(ApifyConfig *pCfg, const Setting *pSet){
  return (int*)((char*)pCfg + pSet->iOffset);
}
static double *settingReal(ApifyConfig *pCfg, const Setting *pSet){
  return (double*)((char*)pCfg + pSet->iOffset);
}

void apifyRef(Apify *p){
  p->nRef++;
}

/* Drop one reference; the last one frees the state, wiping the token first. */
void apifyUnref(void *pArg){
  Apify *p = (Apify*)pArg;
  if( p==0 || --p->nRef>0 ) return;
  if( p->cfg.zToken ) memset(p->cfg.zToken, 0, strlen(p->cfg.zToken));
  memset(p->aTokenKey, 0, sizeof(p->aTokenKey));   /* derived from the token: no copy left */
  sqlite3_free(p->cfg.zToken);
  sqlite3_free(p->cfg.zBaseUrl);
  sqlite3_free(p->cfg.zCaFile);
  apifyHttpClose(p->pHttp);
  apifyHeardClose(p);
  sqlite3_free(p);
}

/* Set text setting pSet to z (NULL or "" clears it, and base_url falls back to its default).
** A base URL loses its trailing slashes and must be an absolute http(s) URL. */
static int settingSetText(Apify *p, const Setting *pSet, const char *z, char **pzErr){
  char **pz = settingText(&p->cfg, pSet);
  char *zNew = 0;
  int bBase = strcmp(pSet->zName, "base_url")==0;
  if( bBase && (z==0 || z[0]==0) ) z = DEFAULT_BASE_URL;
  if( z && z[0] ){
    zNew = sqlite3_mprintf("%s", z);
    if( zNew==0 ) return SQLITE_NOMEM;
  }
  if( bBase ){
    char *zScheme = 0;
    size_t n = strlen(zNew);
    int rc;
    while( n>0 && zNew[n-1]=='/' ) zNew[--n] = 0;
    rc = apifyUrlParse(zNew, &zScheme, 0);
    if( rc==SQLITE_OK && strcmp(zScheme, "http")!=0 && strcmp(zScheme, "https")!=0 ){
      rc = SQLITE_ERROR;
    }
    sqlite3_free(zScheme);
    if( rc!=SQLITE_OK ){
      if( rc==SQLITE_ERROR ){
        *pzErr = sqlite3_mprintf("apify: base_url \"%s\" must be an absolute http or https URL", z);
      }
      sqlite3_free(zNew);
      return rc;
    }
  }
  if( *pz ) memset(*pz, 0, strlen(*pz));   /* an old token leaves no copy behind */
  sqlite3_free(*pz);
  *pz = zNew;
  if( pz==&p->cfg.zToken ) p->iToken++;   /* the records' key is derived again */
  return SQLITE_OK;
}

/* Set setting pSet from SQL value pVal: SQLITE_OK, or SQLITE_ERROR with *pzErr. */
static int settingSet(Apify *p, const Setting *pSet, sqlite3_value *pVal, char **pzErr){
  int eType = sqlite3_value_numeric_type(pVal);
  double r = sqlite3_value_double(pVal);
  if( pSet->eKind=='s' ){
    if( eType!=SQLITE_TEXT && eType!=SQLITE_NULL ){
      *pzErr = sqlite3_mprintf("apify: %s must be text", pSet->zName);
      return SQLITE_ERROR;
    }
    return settingSetText(p, pSet, (const char*)sqlite3_value_text(pVal), pzErr);
  }
  if( pSet->eKind=='p' && eType==SQLITE_TEXT ){
    const char *z = (const char*)sqlite3_value_text(pVal);
    eType = SQLITE_INTEGER;
    if( sqlite3_stricmp(z, "auto")==0 ) r = -1;
    else if( sqlite3_stricmp(z, "on")==0 ) r = 1;
    else if( sqlite3_stricmp(z, "off")==0 ) r = 0;
    else eType = SQLITE_TEXT;
  }
  if( (eType!=SQLITE_INTEGER && (eType!=SQLITE_FLOAT || pSet->eKind!='r'))
   || r<pSet->rMin || r>pSet->rMax ){
    const char *zWhat = pSet->eKind=='p' ? "'auto', 'on' or 'off'" :
                        pSet->eKind=='r' ? "a number" : "an integer";
    *pzErr = pSet->eKind=='p'
      ? sqlite3_mprintf("apify: progress must be %s, not %Q", zWhat, sqlite3_value_text(pVal))
      : sqlite3_mprintf("apify: %s must be %s from %g to %g, not %Q", pSet->zName, zWhat,
                        pSet->rMin, pSet->rMax, sqlite3_value_text(pVal));
    return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
  }
  if( pSet->eKind=='r' ) *settingReal(&p->cfg, pSet) = r;
  else *settingInt(&p->cfg, pSet) = (int)r;
  return SQLITE_OK;
}

/* Set the SQL result to the value of setting pSet. The token is never returned: only whether
** one is set. */
static void settingResult(sqlite3_context *ctx, Apify *p, const Setting *pSet){
  switch( pSet->eKind ){
    case 's': {
      const char *z = *settingText(&p->cfg, pSet);
      if( z && pSet->iOffset==offsetof(ApifyConfig, zToken) ) z = "(set)";
      if( z ) sqlite3_result_text(ctx, z, -1, SQLITE_TRANSIENT);
      else sqlite3_result_null(ctx);
      break;
    }
    case 'r':
      sqlite3_result_double(ctx, *settingReal(&p->cfg, pSet));
      break;
    case 'p': {
      int v = *settingInt(&p->cfg, pSet);
      sqlite3_result_text(ctx, v<0 ? "auto" : v ? "on" : "off", -1, SQLITE_STATIC);
      break;
    }
    default:
      sqlite3_result_int(ctx, *settingInt(&p->cfg, pSet));
  }
}

/* The settings as one JSON object, built by JSON1 from the settings' own results. */
static void configAll(sqlite3_context *ctx, Apify *p){
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  sqlite3_str *pSql = sqlite3_str_new(db);
  sqlite3_stmt *pStmt = 0;
  char *zSql;
  int i, rc;
  sqlite3_str_appendall(pSql, "SELECT json_object(");
  for(i=0; i<N_SETTING; i++){
    sqlite3_str_appendf(pSql, "%s%Q,apify_config(%Q)", i ? "," : "",
                        aSetting[i].zName, aSetting[i].zName);
  }
  sqlite3_str_appendall(pSql, ")");
  zSql = sqlite3_str_finish(pSql);
  rc = zSql ? sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0) : SQLITE_NOMEM;
  if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    sqlite3_result_text(ctx, (const char*)sqlite3_column_text(pStmt, 0), -1, SQLITE_TRANSIENT);
    sqlite3_result_subtype(ctx, JSON_SUBTYPE);
  }else if( rc==SQLITE_NOMEM ){
    sqlite3_result_error_nomem(ctx);
  }else{
    sqlite3_result_error(ctx, sqlite3_errmsg(db), -1);
  }
  (void)p;
  sqlite3_finalize(pStmt);
  sqlite3_free(zSql);
}

/* True if nothing in the database's schemas could have made this call: no table takes the
** place of the extension's, and no table's CHECK constraint can call a function that sends or
** configures (SQLite 3.40 runs DIRECTONLY functions there). Otherwise sets the error. */
static int calledSafely(sqlite3_context *ctx){
  char *zErr = 0;
  int rc = apifySchemaGuard(sqlite3_context_db_handle(ctx), 1, &zErr);
  if( rc==SQLITE_OK ) return 1;
  if( zErr ) sqlite3_result_error(ctx, zErr, -1); else sqlite3_result_error_nomem(ctx);
  sqlite3_free(zErr);
  return 0;
}

/*
** apify_config()               -> every setting as a JSON object
** apify_config(name)           -> one setting
** apify_config(name, value)    -> sets it for this connection, returns the new value
** The token reads back as '(set)' or NULL.
*/
static void configFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  Apify *p = (Apify*)sqlite3_user_data(ctx);
  const char *zName;
  char *zErr = 0;
  int i, rc;
  if( !calledSafely(ctx) ) return;
  if( argc==0 ){
    configAll(ctx, p);
    return;
  }
  zName = (const char*)sqlite3_value_text(argv[0]);
  for(i=0; zName && i<N_SETTING; i++){
    if( sqlite3_stricmp(zName, aSetting[i].zName)==0 ) break;
  }
  if( zName==0 || i==N_SETTING ){
    sqlite3_str *pMsg = sqlite3_str_new(0);
    sqlite3_str_appendf(pMsg, "apify: unknown setting %Q; settings:", zName ? zName : "NULL");
    for(i=0; i<N_SETTING; i++) sqlite3_str_appendf(pMsg, "%s %s", i ? "," : "", aSetting[i].zName);
    zErr = sqlite3_str_finish(pMsg);
    if( zErr ) sqlite3_result_error(ctx, zErr, -1); else sqlite3_result_error_nomem(ctx);
    sqlite3_free(zErr);
    return;
  }
  if( argc==2 ){
    rc = settingSet(p, &aSetting[i], argv[1], &zErr);
    if( rc!=SQLITE_OK ){
      if( zErr ) sqlite3_result_error(ctx, zErr, -1); else sqlite3_result_error_nomem(ctx);
      sqlite3_free(zErr);
      return;
    }
  }
  settingResult(ctx, p, &aSetting[i]);
}

/* A fresh state: defaults, then (bEnv) APIFY_TOKEN and APIFY_API_BASE_URL from the environment.
** An environment base URL that is not an http(s) URL is kept, and refused when something is
** sent. Without bEnv (the no-network entry point) nothing is read: no token, the default URL. */
static int apifyNew(Apify **pp, int bEnv){
  Apify *p = sqlite3_malloc64(sizeof(*p));
  char *zErr = 0;
  int i, rc = SQLITE_OK;
  *pp = 0;
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->nRef = 1;
  sqlite3_randomness(sizeof(p->aSession), p->aSession);   /* seals this session's queue */
  for(i=0; i<N_SETTING; i++){
    const Setting *pSet = &aSetting[i];
    if( pSet->eKind=='r' ) *settingReal(&p->cfg, pSet) = pSet->rDefault;
    else if( pSet->eKind!='s' ) *settingInt(&p->cfg, pSet) = (int)pSet->rDefault;
  }
  rc = settingSetText(p, &aSetting[0], bEnv ? getenv("APIFY_TOKEN") : 0, &zErr);
  if( rc==SQLITE_OK ){
    rc = settingSetText(p, &aSetting[1], bEnv ? getenv("APIFY_API_BASE_URL") : 0, &zErr);
  }
  if( rc==SQLITE_ERROR ){
    /* Kept as it is, so the first request fails naming it; falling back to the default would
    ** send the token to the production API because of a typo. */
    sqlite3_free(zErr);
    p->cfg.zBaseUrl = sqlite3_mprintf("%s", getenv("APIFY_API_BASE_URL"));
    rc = p->cfg.zBaseUrl ? SQLITE_OK : SQLITE_NOMEM;
  }
  if( rc!=SQLITE_OK ){
    apifyUnref(p);
    return rc;
  }
  *pp = p;
  return SQLITE_OK;
}

int apifyReady(Apify *p, char **pzErr){
  int rc = apifyHttpCheck(&p->cfg, pzErr);
  if( rc==SQLITE_OK && p->pHttp==0 ) rc = apifyHttpOpen(&p->pHttp);
  return rc;
}

/* ---------------------------------------------------------------------------------------------
** Outcomes and the scalar functions.
*/

int apifyOutcome(sqlite3 *db, ApifyRules *pRules, ApifyCall *pCall,
                 char **pzData, char **pzType, char **pzMsg){
  *pzData = *pzType = *pzMsg = 0;
  if( pCall->zNetError ){
    *pzMsg = sqlite3_mprintf("%s", pCall->zNetError);
    return *pzMsg ? SQLITE_OK : SQLITE_NOMEM;
  }
  return apifyReplyRead(db, pRules, pCall->httpStatus, pCall->zReply, pzData, pzType, pzMsg);
}

/* The one-call queue of apify_create_webhook. */
typedef struct OneCall OneCall;
struct OneCall {
  sqlite3 *db;
  ApifyCall call;
  int bTaken;              /* xNext has handed the call over */
  char *zData, *zType, *zMsg;
};

static int oneNext(void *pArg, ApifyCall **pp){
  OneCall *p = (OneCall*)pArg;
  *pp = p->bTaken ? 0 : &p->call;
  p->bTaken = 1;
  return SQLITE_OK;
}

/* Judge the answer; a 2xx that is not an Apify answer is tried again while attempts are left. */
static int oneDone(void *pArg, ApifyCall *pCall){
  OneCall *p = (OneCall*)pArg;
  int rc;
  sqlite3_free(p->zData);
  sqlite3_free(p->zType);
  sqlite3_free(p->zMsg);
  rc = apifyOutcome(p->db, 0, pCall, &p->zData, &p->zType, &p->zMsg);
  if( rc==SQLITE_OK && p->zData==0 && pCall->httpStatus/100==2 && pCall->bCanRetry
   && pCall->bReplay ){
    return APIFY_AGAIN;
  }
  return rc==SQLITE_OK && p->zData==0 ? APIFY_FAILED : rc;
}

char *apifyFailure(const ApifyConfig *pCfg, const ApifyCall *pCall,
                   const char *zType, const char *zMsg){
  sqlite3_str *pOut = sqlite3_str_new(0);
  if( pCall->httpStatus==0 ){
    sqlite3_str_appendf(pOut, "apify: %s %s%s failed: %s",
                        pCall->zMethod ? pCall->zMethod : "POST", pCfg->zBaseUrl,
                        pCall->zPath ? pCall->zPath : "/v2/webhooks", zMsg);
  }else if( zType ){
    sqlite3_str_appendf(pOut, "apify: %d %s: %s", pCall->httpStatus, zType, zMsg);
  }else{
    sqlite3_str_appendf(pOut, "apify: %d: %s", pCall->httpStatus, zMsg);
  }
  if( pCall->nAttempt>1 ) sqlite3_str_appendf(pOut, " (after %d attempts)", pCall->nAttempt);
  return sqlite3_str_finish(pOut);
}

/* Text of argument pVal for the request builder: NULL for SQL NULL; BLOBs are read as text. */
static const char *argJson(sqlite3_value *pVal, int *pn){
  const char *z = (const char*)sqlite3_value_text(pVal);
  *pn = sqlite3_value_bytes(pVal);
  return z;
}

/* The SQL result of a one-call function (apify_create_webhook, apify_test_webhook), from the
** run's rc and the call's outcome: the API's data, cleaned of control characters and of the
** token like every answer, with the JSON subtype; or the error (zErr when the run failed before
** sending, else the API's or the network's). Frees the outcome and zErr. */
static void oneResult(sqlite3_context *ctx, Apify *p, OneCall *one, int rc, char *zErr){
  if( rc==SQLITE_OK && one->zData ){
    char *zClean = apifyTextClean(one->zData, -1, p->cfg.zToken, 1);
    if( zClean ){
      sqlite3_result_text(ctx, zClean, -1, sqlite3_free);   /* SQLite owns it now */
      sqlite3_result_subtype(ctx, JSON_SUBTYPE);
    }else{
      rc = SQLITE_NOMEM;
    }
  }else if( rc==SQLITE_OK ){
    char *zWhy = apifyFailure(&p->cfg, &one->call, one->zType, one->zMsg);
    zErr = zWhy ? apifyTextClean(zWhy, -1, p->cfg.zToken, 0) : 0;
    sqlite3_free(zWhy);
    rc = zErr ? SQLITE_ERROR : SQLITE_NOMEM;
  }
  if( rc==SQLITE_NOMEM ) sqlite3_result_error_nomem(ctx);
  else if( rc==SQLITE_INTERRUPT ){
    sqlite3_result_error(ctx, "apify: interrupted", -1);
    sqlite3_result_error_code(ctx, rc);
  }else if( rc!=SQLITE_OK ){
    sqlite3_result_error(ctx, zErr ? zErr : sqlite3_errstr(rc), -1);
  }
  apifyCallReset(&one->call);
  sqlite3_free(one->zData);
  sqlite3_free(one->zType);
  sqlite3_free(one->zMsg);
  sqlite3_free(zErr);
}

/* apify_create_webhook(json): validate, send (retrying what is safe), return the webhook. */
static void createFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  Apify *p = (Apify*)sqlite3_user_data(ctx);
  OneCall one;
  char *zBody = 0, *zKey = 0, *zErr = 0;
  const char *zJson;
  int n, rc;
  (void)argc;
  if( !calledSafely(ctx) ) return;
  memset(&one, 0, sizeof(one));
  one.db = sqlite3_context_db_handle(ctx);
  zJson = argJson(argv[0], &n);
  if( zJson==0 && sqlite3_value_type(argv[0])!=SQLITE_NULL ){
    sqlite3_result_error_nomem(ctx);
    return;
  }
  rc = apifyRequestBuild(one.db, 0, zJson, n, &zBody, &zKey, &zErr);
  if( rc==SQLITE_OK ) rc = apifyReady(p, &zErr);
  if( rc==SQLITE_OK ){
    one.call.zBody = zBody;
    one.call.bReplay = 1;      /* it carries an idempotencyKey */
    rc = apifyHttpSend(p->pHttp, one.db, &p->cfg, 1, oneNext, oneDone, &one);
  }
  oneResult(ctx, p, &one, rc, zErr);   /* frees zErr */
  sqlite3_free(zBody);
  sqlite3_free(zKey);
}

/* apify_test_webhook(id): POST /v2/webhooks/{id}/test, and the dispatch the API answers (JSON
** subtype). Sent once: a test dispatch is not idempotent, so the call is not replayed after
** an answer may have been lost (bReplay 0). The answer and any message are cleaned of control
** characters and the token. */
static void testFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  Apify *p = (Apify*)sqlite3_user_data(ctx);
  OneCall one;
  char *zPath = 0, *zErr = 0;
  const char *zId;
  int rc;
  (void)argc;
  if( !calledSafely(ctx) ) return;
  if( sqlite3_value_type(argv[0])!=SQLITE_TEXT || sqlite3_value_bytes(argv[0])==0 ){
    zErr = sqlite3_mprintf("apify: apify_test_webhook needs a webhook id (non-empty text), not %s",
                           sqlite3_value_type(argv[0])==SQLITE_NULL ? "NULL" :
                           sqlite3_value_type(argv[0])==SQLITE_TEXT ? "''" :
                           sqlite3_value_type(argv[0])==SQLITE_INTEGER ? "an integer" :
                           sqlite3_value_type(argv[0])==SQLITE_FLOAT ? "a real" : "a blob");
    if( zErr ) sqlite3_result_error(ctx, zErr, -1); else sqlite3_result_error_nomem(ctx);
    sqlite3_free(zErr);
    return;
  }
  memset(&one, 0, sizeof(one));
  one.db = sqlite3_context_db_handle(ctx);
  zId = (const char*)sqlite3_value_text(argv[0]);
  rc = zId && (zPath = apifyPath("/v2/webhooks/", zId, "/test"))!=0 ? SQLITE_OK : SQLITE_NOMEM;
  if( rc==SQLITE_OK ) rc = apifyReady(p, &zErr);
  if( rc==SQLITE_OK ){
    one.call.zMethod = "POST";
    one.call.zPath = zPath;
    one.call.bReplay = 0;      /* a second POST would be a second test dispatch */
    rc = apifyHttpSend(p->pHttp, one.db, &p->cfg, 1, oneNext, oneDone, &one);
  }
  oneResult(ctx, p, &one, rc, zErr);   /* frees zErr */
  sqlite3_free(zPath);
}

/* apify_dry_run(json): the request apify_create_webhook would send, as JSON: method, url,
** headers (the token redacted) and body. Validates like the real call; sends nothing. */
static void dryRunFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  static const char zAddHeader[] =
    "SELECT json_set(?1, '$.' || json_quote(substr(?2, 1, instr(?2, ':')-1)),"
    "                trim(substr(?2, instr(?2, ':')+1)))";
  static const char zRequest[] =
    "SELECT json_object('method', 'POST', 'url', ?1, 'headers', json(?2), 'body', json(?3))";
  Apify *p = (Apify*)sqlite3_user_data(ctx);
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  sqlite3_stmt *pAdd = 0, *pReq = 0;
  char *zBody = 0, *zKey = 0, *zErr = 0, *zUrl = 0, *zHeaders = 0, *zLine = 0;
  const char *zJson;
  int i, n, rc;
  (void)argc;
  zJson = argJson(argv[0], &n);
  rc = apifyRequestBuild(db, 0, zJson, n, &zBody, &zKey, &zErr);
  if( rc==SQLITE_OK && p->pHttp==0 ) rc = apifyHttpOpen(&p->pHttp);
  if( rc==SQLITE_OK ) rc = sqlite3_prepare_v2(db, zAddHeader, -1, &pAdd, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_prepare_v2(db, zRequest, -1, &pReq, 0);
  if( rc==SQLITE_OK ) rc = (zHeaders = sqlite3_mprintf("{}")) ? SQLITE_OK : SQLITE_NOMEM;
  /* Add the headers the transport sends, one by one; JSON1 does all the quoting. */
  for(i=0; rc==SQLITE_OK; i++){
    rc = apifyHttpHeader(p->pHttp, &p->cfg, i, 1, &zLine);
    if( rc!=SQLITE_OK || zLine==0 ) continue;
    sqlite3_bind_text(pAdd, 1, zHeaders, -1, SQLITE_STATIC);
    sqlite3_bind_text(pAdd, 2, zLine, -1, SQLITE_STATIC);
    if( sqlite3_step(pAdd)==SQLITE_ROW ){
      char *zNew = sqlite3_mprintf("%s", sqlite3_column_text(pAdd, 0));
      sqlite3_free(zHeaders);
      zHeaders = zNew;
    }
    rc = sqlite3_reset(pAdd);
    if( rc==SQLITE_OK && zHeaders==0 ) rc = SQLITE_NOMEM;
    sqlite3_free(zLine);
    zLine = 0;
  }
  if( rc==SQLITE_DONE ) rc = (zUrl = apifyHttpUrl(&p->cfg, 0)) ? SQLITE_OK : SQLITE_NOMEM;
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(pReq, 1, zUrl, -1, SQLITE_STATIC);
    sqlite3_bind_text(pReq, 2, zHeaders, -1, SQLITE_STATIC);
    sqlite3_bind_text(pReq, 3, zBody, -1, SQLITE_STATIC);
    if( sqlite3_step(pReq)==SQLITE_ROW ){
      sqlite3_result_text(ctx, (const char*)sqlite3_column_text(pReq, 0), -1, SQLITE_TRANSIENT);
      sqlite3_result_subtype(ctx, JSON_SUBTYPE);
    }
    rc = sqlite3_reset(pReq);
  }
  if( rc==SQLITE_NOMEM ) sqlite3_result_error_nomem(ctx);
  else if( rc!=SQLITE_OK ) sqlite3_result_error(ctx, zErr ? zErr : sqlite3_errmsg(db), -1);
  sqlite3_finalize(pAdd);
  sqlite3_finalize(pReq);
  sqlite3_free(zHeaders);
  sqlite3_free(zUrl);
  sqlite3_free(zBody);
  sqlite3_free(zKey);
  sqlite3_free(zErr);
}

/* apify_preview_dispatch(webhook [, variables]): what the platform would POST to the webhook's
** requestUrl, rendered offline from its templates. Sends nothing and reads no setting, so it is
** safe anywhere (INNOCUOUS): in a view, a trigger or a schema. */
static void previewFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char *zOut = 0, *zErr = 0;
  const char *zHook, *zVars = 0;
  int nHook, nVars = 0, rc;
  zHook = argJson(argv[0], &nHook);
  if( argc>1 && sqlite3_value_type(argv[1])!=SQLITE_NULL ) zVars = argJson(argv[1], &nVars);
  if( (zHook==0 && sqlite3_value_type(argv[0])!=SQLITE_NULL)
   || (argc>1 && zVars==0 && sqlite3_value_type(argv[1])!=SQLITE_NULL) ){
    rc = SQLITE_NOMEM;
  }else{
    rc = apifyPreviewDispatch(db, zHook, nHook, zVars, nVars, &zOut, &zErr);
  }
  if( rc==SQLITE_OK ){
    sqlite3_result_text(ctx, zOut, -1, sqlite3_free);
    sqlite3_result_subtype(ctx, JSON_SUBTYPE);
    zOut = 0;   /* ownership moved to SQLite */
  }else if( rc==SQLITE_NOMEM ){
    sqlite3_result_error_nomem(ctx);
  }else{
    sqlite3_result_error(ctx, zErr ? zErr : sqlite3_errmsg(db), -1);
  }
  sqlite3_free(zOut);
  sqlite3_free(zErr);
}

/* apify_version(): the extension's version. */
static void versionFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  (void)argc;
  (void)argv;
  sqlite3_result_text(ctx, APIFY_VERSION, -1, SQLITE_STATIC);
}

/* ---------------------------------------------------------------------------------------------
** Registration.
*/

/* Register the functions and, unless bNoNetwork, the virtual table. With bNoNetwork only what
** sends nothing and reveals no secret is registered (the no-network entry point, for hosts that
** run other people's top-level SQL, which DIRECTONLY does not stop): the state then reads no
** token and no environment. */
static int apifyRegister(sqlite3 *db, int bNoNetwork, char **pzErrMsg){
  static const struct {
    const char *zName;
    int nArg;
    int eFlags;
    int bNetwork;          /* sends, configures or reads the token: not in the no-network set */
    void (*xFunc)(sqlite3_context*, int, sqlite3_value**);
  } aFunc[] = {
    { "apify_create_webhook",   1, SQLITE_DIRECTONLY, 1, createFunc },
    { "apify_test_webhook",     1, SQLITE_DIRECTONLY, 1, testFunc },
    { "apify_config",           0, SQLITE_DIRECTONLY, 1, configFunc },
    { "apify_config",           1, SQLITE_DIRECTONLY, 1, configFunc },
    { "apify_config",           2, SQLITE_DIRECTONLY, 1, configFunc },
    { "apify_dry_run",          1, 0,                 0, dryRunFunc },
    { "apify_preview_dispatch", 1, SQLITE_INNOCUOUS|SQLITE_DETERMINISTIC, 0, previewFunc },
    { "apify_preview_dispatch", 2, SQLITE_INNOCUOUS|SQLITE_DETERMINISTIC, 0, previewFunc },
    { "apify_version",          0, SQLITE_INNOCUOUS|SQLITE_DETERMINISTIC, 0, versionFunc },
  };
  Apify *p = 0;
  int i, rc = SQLITE_OK;
  /* A table or view of the database named like one of the extension's tables would take its
  ** place: statements meant for the extension would reach it. Refuse to load, saying so. (The
  ** no-network entry point registers no table.) */
  if( !bNoNetwork ) rc = apifySchemaGuard(db, 0, pzErrMsg);
  if( rc==SQLITE_OK ) rc = apifyHttpGlobalInit();
  if( rc==SQLITE_OK ) rc = apifyNew(&p, !bNoNetwork);
  for(i=0; rc==SQLITE_OK && i<(int)(sizeof(aFunc)/sizeof(aFunc[0])); i++){
    if( bNoNetwork && aFunc[i].bNetwork ) continue;
    apifyRef(p);   /* held by the function; create_function_v2 releases it even on failure */
    rc = sqlite3_create_function_v2(db, aFunc[i].zName, aFunc[i].nArg,
                                    SQLITE_UTF8|aFunc[i].eFlags, p, aFunc[i].xFunc, 0, 0,
                                    apifyUnref);
  }
  if( rc==SQLITE_OK && !bNoNetwork ) rc = apifyVtabRegister(db, p);
  if( rc==SQLITE_OK && !bNoNetwork ) rc = apifyRemoteRegister(db, p);
  apifyUnref(p);   /* the registrations hold what is needed from here on */
  return rc;
}

#if defined(_WIN32)
# define APIFY_EXPORT __declspec(dllexport)
#elif defined(__GNUC__)
# define APIFY_EXPORT __attribute__((visibility("default")))   /* the entry points only */
#else
# define APIFY_EXPORT
#endif

/* .load ./apify: everything. */
APIFY_EXPORT
int sqlite3_apify_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi){
  SQLITE_EXTENSION_INIT2(pApi);
  return apifyRegister(db, 0, pzErrMsg);
}

/* .load ./apify sqlite3_apify_no_network_init: only what sends nothing and reveals no secret. */
APIFY_EXPORT
int sqlite3_apify_no_network_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi){
  SQLITE_EXTENSION_INIT2(pApi);
  return apifyRegister(db, 1, pzErrMsg);
}
