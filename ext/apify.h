/*
** apify.h: what the files of the apify extension share.
**
**   apify.c      entry point, per-connection state, configuration, scalar functions
**   request.c    the Apify request rules: validation, canonical body, derived
**                idempotency key, reading the API's answers
**   template.c   Apify templates: checking them, and rendering what a dispatch POSTs
**   transport.c  libcurl: many requests in flight, retries, pacing
**   vtab.c       the apify_webhooks virtual table (queue in xUpdate, send in xSync)
**   store.c      the records of each table (real tables) and the sealed queue of a transaction
**   trust.c      the safety model: MACs, server text cleaned, what a schema may not do
**   remote.c     the account as tables: apify_remote_webhooks, apify_webhook_dispatches
**
** Only apify.c says SQLITE_EXTENSION_INIT1; every other file includes this header, which says
** SQLITE_EXTENSION_INIT3, so all of them call SQLite through the same routine table.
*/
#ifndef APIFY_H
#define APIFY_H

#include <stddef.h>
#include <stdint.h>
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT3

#define APIFY_VERSION "0.1.0"

/* Limits of the API (see README "Limits"). */
#define APIFY_MAX_BODY       9437184     /* request body, bytes: above it the API says 413 */
#define APIFY_MAX_KEY        256         /* idempotencyKey, characters (project choice) */
#define APIFY_MAX_REPLY      (1<<20)     /* response body cap, bytes */

/* ---------------------------------------------------------------------------------------------
** Configuration of one database connection. Owned by the Apify struct in apify.c; the token is
** never copied anywhere else than into the Authorization header of a request.
*/
typedef struct ApifyConfig ApifyConfig;
struct ApifyConfig {
  char *zToken;            /* API token, or NULL. Never stored, logged or echoed */
  char *zBaseUrl;          /* "https://api.apify.com" unless changed; no trailing slash */
  char *zCaFile;           /* PEM file of trusted CAs, or NULL for the system store */
  int connectTimeoutMs;    /* per attempt, connect phase */
  int timeoutMs;           /* per attempt, whole transfer */
  int maxAttempts;         /* attempts per request, first one included */
  int maxRetryMs;          /* no new attempt starts this long after the first one */
  int concurrency;         /* requests in flight at once */
  double rateLimit;        /* requests per second; 0 means learn it from X-RateLimit-Limit */
  int progress;            /* -1 auto (stderr is a terminal), 0 off, 1 on */
};

/* ---------------------------------------------------------------------------------------------
** apify.c: the state of one database connection, shared by the functions and the virtual
** table. Reference counted: each registration and each connected table holds a reference.
*/
typedef struct ApifyHttp ApifyHttp;
typedef struct ApifyCall ApifyCall;
typedef struct ApifyRules ApifyRules;
typedef struct Apify Apify;
typedef struct ApifyStore ApifyStore;
struct Apify {
  int nRef;
  ApifyConfig cfg;
  ApifyHttp *pHttp;        /* opened on first use */
  ApifyStore *pStores;     /* one per apify_webhooks table used on this connection (store.c) */
  int nQueue;              /* stores opened so far: each names its TEMP queue by number */
  sqlite3_int64 nStamp;    /* queue entries made so far: each is stamped with a new number */
  sqlite3 *pHeard;         /* outcomes heard that no commit has kept yet (store.c), or NULL */
  sqlite3_stmt *apHeard[3];  /* its statements */
  unsigned char aSession[32];  /* random, never stored: seals the TEMP queue's entries */
};
void apifyRef(Apify *p);
void apifyUnref(void *p);

/* Check the configuration and open the transport: SQLITE_OK, or an error in *pzErr. */
int apifyReady(Apify *p, char **pzErr);

/* Judge a finished call. On success *pzData holds the webhook JSON; otherwise *pzType (the Apify
** error type, NULL when there is none) and *pzMsg say why. All sqlite3_malloc'd. SQLITE_OK or
** SQLITE_NOMEM. */
int apifyOutcome(sqlite3 *db, ApifyRules *pRules, ApifyCall *pCall,
                 char **pzData, char **pzType, char **pzMsg);

/* The message for a call that failed: "apify: <status> <type>: <message>", or
** "apify: <METHOD> <url> failed: <what>" without an answer, then " (after N attempts)" when there
** were several. sqlite3_malloc'd; NULL when out of memory. */
char *apifyFailure(const ApifyConfig *pCfg, const ApifyCall *pCall,
                   const char *zType, const char *zMsg);

/* ---------------------------------------------------------------------------------------------
** request.c: the only file that knows the Apify request rules.
*/

/* Messages, shared with template.c. apifyErrorf sets *pzErr like sqlite3_mprintf() and returns
** SQLITE_ERROR (SQLITE_NOMEM when it cannot); apifyStrFinish finishes p into *pz (SQLITE_OK or
** SQLITE_NOMEM); apifyErrorStr finishes the message p into *pzErr (SQLITE_ERROR or SQLITE_NOMEM);
** apifyAppendList appends names separated by commas; apifyAppendQuoted appends z[0..n) (n<0: to
** its NUL) in double quotes, cut after QUOTE_CHARS characters, control characters as spaces;
** apifyNameIndex is the index of z[0..n) in azName[0..nName), or -1. */
int apifyErrorf(char **pzErr, const char *zFmt, ...);
int apifyStrFinish(sqlite3_str *p, char **pz);
int apifyErrorStr(char **pzErr, sqlite3_str *p);
void apifyAppendList(sqlite3_str *p, const char *const *azName, int nName);
void apifyAppendQuoted(sqlite3_str *p, const char *z, int n);
int apifyNameIndex(const char *z, int n, const char *const *azName, int nName);

/* The statements the rules run, kept prepared for one connection. Every function below takes
** one, or NULL to prepare each statement per call. Close it before the connection closes (the
** virtual table keeps one and closes it in xDisconnect). */
int apifyRulesOpen(sqlite3 *db, ApifyRules **pp);
void apifyRulesClose(ApifyRules *p);

/* Validate the WebhookCreate JSON object zJson (n bytes; NULL for SQL NULL) and build the body to send: the fields in one
** canonical order, nulls dropped, and an idempotencyKey derived from the rest when the input
** has none. On success returns SQLITE_OK and sets *pzBody and *pzKey (sqlite3_malloc'd, the
** caller frees). On invalid input returns SQLITE_ERROR and *pzErr (sqlite3_malloc'd) says which
** field breaks which rule, e.g. "apify: eventTypes[1]: \"ACTOR.RUN.DONE\" is not an event type".
** SQLITE_NOMEM when memory runs out. Runs SQL (JSON1) on db; sends nothing. */
int apifyRequestBuild(sqlite3 *db, ApifyRules *pRules, const char *zJson, int n,
                      char **pzBody, char **pzKey, char **pzErr);

/* apifyRequestBuild() for a request that keeps the key it has and gets none derived (an adopted
** webhook has none): the canonical body in *pzBody. */
int apifyRequestCanonical(sqlite3 *db, ApifyRules *pRules, const char *zJson, int n,
                          char **pzBody, char **pzErr);

/* The idempotencyKey to send for the record of key zKey at generation iGeneration (1, then one
** more per re-creation after a DELETE). sqlite3_malloc'd in *pzSent. */
int apifyRequestKey(const char *zKey, int iGeneration, char **pzSent);

/* The body of PUT /v2/webhooks/{id} that turns request zOld into zNew (both canonical): the
** fields that changed, null for those removed, never idempotencyKey. *pzPut is NULL when nothing
** changed. sqlite3_malloc'd. */
int apifyRequestUpdate(sqlite3 *db, const char *zOld, const char *zNew, char **pzPut);

/* The WebhookCreate fields of the Webhook JSON zData as the API returned it, canonical when they
** pass the rules (no key). sqlite3_malloc'd in *pzRequest. */
int apifyRequestFromWebhook(sqlite3 *db, ApifyRules *pRules, const char *zData,
                            char **pzRequest);

/* Read the API's answer: on 2xx with {"data":{...}} sets *pzData to the data object's JSON;
** otherwise sets *pzType and *pzMsg from {"error":{type,message}} (or describes the body that
** is not an Apify answer). Outputs are sqlite3_malloc'd or NULL. Returns SQLITE_OK or
** SQLITE_NOMEM. */
int apifyReplyRead(sqlite3 *db, ApifyRules *pRules, int httpStatus, const char *zBody,
                   char **pzData, char **pzType, char **pzMsg);

/* ---------------------------------------------------------------------------------------------
** template.c: the only file that knows Apify templates (payloadTemplate, headersTemplate).
*/

/* Check an Apify template (payloadTemplate, or headersTemplate when bHeaders) of n bytes:
** replacing each {{variable}} outside strings must leave valid JSON, every variable must be an
** allowed one, and (bInterpolate) so must those inside strings; a headers template must be an
** object whose values are strings (or placeholders). SQLITE_OK, or SQLITE_ERROR with *pzErr
** naming zField and the rule, or SQLITE_NOMEM. pRules is not used (template.c prepares its
** own statements); request.c and the fuzzer pass theirs. */
int apifyTemplateCheck(sqlite3 *db, ApifyRules *pRules, const char *zField, const char *z,
                       int n, int bHeaders, int bInterpolate, char **pzErr);

/* What the platform would POST for the webhook zHook (nHook bytes, <0: up to its NUL; a
** WebhookCreate or a Webhook as the API returns it; NULL for SQL NULL) with the template
** variables zVars (likewise; a JSON object whose members replace the realistic defaults; NULL
** for none), as JSON in *pzOut:
** {"method":"POST","url":..,"headers":{..},"body":<payload as JSON>,"payload":"<its text>"}.
** The templates are checked as apifyTemplateCheck() does, then rendered. Sends nothing, needs
** no token. SQLITE_OK, SQLITE_ERROR with *pzErr, or SQLITE_NOMEM; outputs sqlite3_malloc'd. */
int apifyPreviewDispatch(sqlite3 *db, const char *zHook, int nHook, const char *zVars,
                         int nVars, char **pzOut, char **pzErr);

/* ---------------------------------------------------------------------------------------------
** transport.c: the only file that includes <curl/curl.h>.
*/

struct ApifyCall {
  /* In: set by the caller; the transport never frees them. */
  const char *zMethod;     /* "GET", "POST", "PUT" or "DELETE"; NULL means POST */
  const char *zPath;       /* what follows the base URL, e.g. "/v2/webhooks/ID"; NULL means
                           ** "/v2/webhooks" */
  const char *zBody;       /* request body (JSON), or NULL for none */
  int bReplay;             /* sending it twice does no harm (GET, PUT, DELETE, a POST with an
                           ** idempotencyKey): retried after 5xx and network errors too. Other
                           ** calls are retried only after a 429, or when no attempt can have
                           ** reached the API */
  sqlite3_int64 iRow;      /* the caller's handle for this call (a store rowid, or 0) */
  /* Out: set by the transport before the done callback; freed by apifyCallReset(). */
  int httpStatus;          /* last HTTP status, 0 if no answer ever arrived */
  int nAttempt;            /* attempts made */
  char *zReply;            /* last response body, or NULL */
  char *zLocation;         /* Location header exactly as received, or NULL */
  char *zNetError;         /* transport error of the last attempt, or NULL */
  int bCanRetry;           /* another attempt is allowed (see APIFY_AGAIN) */
  int bAborted;            /* the run stopped before this call got a final answer */
  int bUnsent;             /* no attempt can have reached the API (none connected) */
  /* Private to the transport. */
  void *pPriv;
};

/* What xDone returns to ask for another attempt of a call whose answer it cannot use (a 2xx
** that is not an Apify answer). Honoured only while pCall->bCanRetry; the transport then keeps
** the call and sends it again after a backoff. */
#define APIFY_AGAIN 1000

/* What xDone returns for a call that is done but did not succeed (recorded as failed, say): no
** error of the run, but it counts as failed in the progress line. */
#define APIFY_FAILED 1001

/* Initialise libcurl once per process (thread-safe in the libcurl versions this builds with). */
int apifyHttpGlobalInit(void);

/* Open and close the libcurl handles of one connection. */
int apifyHttpOpen(ApifyHttp **pp);
void apifyHttpClose(ApifyHttp *p);

/* Parse zUrl with libcurl's URL API. SQLITE_OK when it is an absolute URL with a host; then
** *pzScheme and *pzHost (sqlite3_malloc'd, lowercase scheme) are set when not NULL.
** SQLITE_ERROR when it does not parse, SQLITE_NOMEM. */
int apifyUrlParse(const char *zUrl, char **pzScheme, char **pzHost);

/* Check that the configuration can send at all: a token, a base URL that parses, https or a
** loopback host (the token never travels in clear text to another machine). SQLITE_OK, or
** SQLITE_ERROR with *pzErr. Sends nothing. */
int apifyHttpCheck(const ApifyConfig *pCfg, char **pzErr);

/* Send calls, many in flight (pCfg->concurrency), paced, retrying what is safe to retry. xNext
** hands over the next call (or sets *pp to NULL when there are no more); xDone receives each
** finished call and owns it again (unless it returns APIFY_AGAIN), and returns SQLITE_OK when
** it succeeded, APIFY_FAILED when it did not. Any other return from either callback, or sqlite3_interrupt() on db (then the
** result is SQLITE_INTERRUPT), stops the run: calls in flight finish and go to xDone, calls
** waiting for a retry go to xDone with bAborted set, no new one starts. nTotal is the number of
** calls expected (0 if unknown), for the progress line. */
int apifyHttpSend(ApifyHttp *p, sqlite3 *db, const ApifyConfig *pCfg, sqlite3_int64 nTotal,
                  int (*xNext)(void *pArg, ApifyCall **pp),
                  int (*xDone)(void *pArg, ApifyCall *pCall),
                  void *pArg);

/* The URL of path zPath (NULL: "/v2/webhooks") on the base URL (sqlite3_malloc'd). */
char *apifyHttpUrl(const ApifyConfig *pCfg, const char *zPath);

/* Header i (0, 1, ...) of every request as "Name: value" in *pz (sqlite3_malloc'd; NULL for a
** header not sent, such as Authorization without a token), with the token replaced by
** "<redacted>" when bRedact. SQLITE_OK, SQLITE_DONE past the last one, or SQLITE_NOMEM. The dry
** run shows exactly what the transport sends because both read this one list. */
int apifyHttpHeader(ApifyHttp *p, const ApifyConfig *pCfg, int i, int bRedact, char **pz);

/* Free the outcome fields of a call and zero them. */
void apifyCallReset(ApifyCall *pCall);

/* ---------------------------------------------------------------------------------------------
** store.c: the records behind one apify_webhooks table T (S."T_store") and the operations its
** open transaction will send (a sealed TEMP queue), shared by every sqlite3_vtab of the table.
*/
#define APIFY_TRUST_UNKNOWN  0   /* no token is set: nothing can be verified */
#define APIFY_TRUST_VERIFIED 1   /* the MAC matches under the token's key */
#define APIFY_TRUST_FORGED   2   /* it does not: another token, or not written by the extension */

/* A record as read from T_store, with the operation this connection's open transaction has
** queued on it, if any (every text sqlite3_malloc'd; apifyRecordFree()). */
typedef struct ApifyRecord ApifyRecord;
struct ApifyRecord {
  sqlite3_int64 iSeq;
  char *zKey, *zOrigin, *zRequest, *zStatus, *zOperation, *zId, *zLocation;
  int iGeneration;
  int eTrust;              /* APIFY_TRUST_... */
  char *zPending;          /* the queued operation (create, update, delete, adopt), or NULL */
  char *zPendingRequest;   /* its body: the request (create, update), the id (adopt) */
  int iPos;                /* the row of the transaction that queued it */
  sqlite3_int64 iStamp;    /* its queue entry */
  int bSealed;             /* its seal is right: xUpdate queued it, unchanged since */
};
void apifyRecordFree(ApifyRecord *r);

/* What an operation's outcome writes into a record (borrowed texts). */
typedef struct ApifyOutcomeRow ApifyOutcomeRow;
struct ApifyOutcomeRow {
  const char *zKey, *zOrigin, *zRequest, *zStatus, *zOperation, *zId;
  int iGeneration, httpStatus, nAttempt;
  const char *zLocation, *zErrorType, *zErrorMessage, *zResponse;
};

/* Open the store of table zName in schema zDb (shared: a second call for the same table gets the
** same store, with one more reference); close drops a reference. */
int apifyStoreOpen(Apify *pApify, sqlite3 *db, const char *zDb, const char *zName,
                   ApifyStore **pp);
void apifyStoreClose(ApifyStore *p);
const char *apifyStoreSchema(ApifyStore *p);
const char *apifyStoreName(ApifyStore *p);
int apifyStoreQueueNumber(ApifyStore *p);

/* Whether T_store exists; whether it is ours alone (no trigger on it, nothing in its place, our
** columns: else SQLITE_ERROR and *pzErr says what to remove); create the tables when needed. */
int apifyStoreExists(ApifyStore *p, int *pbExists);
int apifyStoreCheck(ApifyStore *p, char **pzErr);
int apifyStoreEnsure(ApifyStore *p, char **pzErr);
int apifyStoreDrop(ApifyStore *p);
int apifyStoreRename(ApifyStore *p, const char *zNew);

/* The trust of the record in the current row of pStmt, whose columns from iFirst on are
** the record's columns (apifyStoreScan()): APIFY_TRUST_... under the token set now, in *peTrust.
** SQLITE_OK or SQLITE_NOMEM. */
int apifyStoreTrust(ApifyStore *p, sqlite3_stmt *pStmt, int iFirst, int *peTrust);

/* Transactions: begin (once, whichever vtab comes first), end, number the next row, and mark or
** return to savepoints (SQLite rolls the tables back itself; the row count is kept here). */
void apifyStoreBegin(ApifyStore *p);
void apifyStoreEnd(ApifyStore *p);
int apifyStoreRowNumber(ApifyStore *p);
int apifyStoreSavepoint(ApifyStore *p, int iSavepoint);
void apifyStoreRollbackTo(ApifyStore *p, int iSavepoint);

/* Records: find by key ('k'), id ('i') or seq ('s') (the tables must exist); add one; queue
** operation zOp (NULL: none any more) with body zBody as row iPos's (a new queue entry, which the
** record now names); forget one; write an operation's outcome (with a fresh MAC when a token is
** set, and nothing pending). */
int apifyStoreFind(ApifyStore *p, char eBy, const char *zVal, sqlite3_int64 iSeq,
                   ApifyRecord *r, int *pbFound);
int apifyStoreNew(ApifyStore *p, const char *zKey, const char *zRequest, const char *zOp,
                  const char *zId, sqlite3_int64 *piSeq);
int apifyStorePend(ApifyStore *p, sqlite3_int64 iSeq, const char *zOp, const char *zBody,
                   int iPos);
int apifyStoreForget(ApifyStore *p, sqlite3_int64 iSeq);
int apifyStoreRecord(ApifyStore *p, sqlite3_int64 iSeq, const ApifyOutcomeRow *o);

/* The queue: how many records have an operation queued; the next one in queue order after
** stamp iAfter (*pbFound 0 at the end); empty it (after the commit's sends). */
int apifyQueueCount(ApifyStore *p, sqlite3_int64 *pn);
int apifyQueueNext(ApifyStore *p, sqlite3_int64 iAfter, ApifyRecord *r, int *pbFound);
int apifyQueueClear(ApifyStore *p);

/* Append to pSql the SELECT of every record, from T_store AS s with its queued operation, if
** any, as q (q.op, q.body): the record's columns as apifyStoreTrust() reads them, then zMore
** (more result columns, over s and q); the caller adds WHERE and ORDER BY. */
int apifyStoreScan(ApifyStore *p, const char *zMore, sqlite3_str *pSql);

/* Outcomes heard but not yet committed. Every outcome is also written to a private database of
** the connection; the commit that keeps them in T_store forgets them there (Committed); a commit
** that fails (a lock, an interrupt, another table's error) leaves them, and the next write to
** the table writes them into T_store first (on its first write, in apifyStoreEnsure). Closed
** with the connection (apifyHeardClose). */
void apifyStoreCommitted(ApifyStore *p);
void apifyHeardClose(Apify *pApify);

/* Before sending: in rollback-journal mode, take the file's exclusive lock (waiting up to the
** connection's busy_timeout), so that the commit cannot fail on a reader after the requests went
** out. SQLITE_OK, or SQLITE_BUSY with *pzErr. */
int apifyStoreLock(ApifyStore *p, char **pzErr);

/* ---------------------------------------------------------------------------------------------
** trust.c: what the extension may act on and believe (the safety model of the README).
*/
#define APIFY_MAC_SIZE 32     /* bytes of an HMAC-SHA256 */

/* HMAC-SHA256 with key aKey (nKey bytes) over the fields azField[0..nField) (anField[i] bytes
** each, -1 for up to the NUL; a NULL field differs from an empty one) into aOut
** (APIFY_MAC_SIZE bytes). SQLITE_OK, SQLITE_NOMEM or SQLITE_ERROR. */
int apifyMac(const unsigned char *aKey, int nKey, int nField, const char *const *azField,
             const int *anField, unsigned char *aOut);

/* A copy of server text z (n bytes, -1 for up to its NUL) safe for a message or a column:
** every occurrence of zToken (when not NULL) replaced by "<redacted>", control characters (C0,
** DEL, C1) by U+FFFD. With bJson, z is JSON text: inside its strings, control characters
** written as escapes become \ufffd too, except tab and newline. sqlite3_malloc'd; NULL only
** for NULL in or out of memory. */
char *apifyTextClean(const char *z, int n, const char *zToken, int bJson);

/* Check what the schemas of db (main, temp, attached) may not do: hold an object named like one
** of the extension's eponymous tables (it would take the place of the extension's), or (bChecks)
** a table whose definition names a function that sends or configures (a CHECK constraint could
** call it; bChecks is 0 only at load, where the message says to fix it before loading).
** SQLITE_OK, or SQLITE_ERROR with *pzErr naming the object and what to do. */
int apifySchemaGuard(sqlite3 *db, int bChecks, char **pzErr);

/* The schema name a statement's text zSql qualifies zTable with, other than main or temp (as
** in "INSERT INTO aux.apify_webhooks"), or NULL. sqlite3_malloc'd. */
char *apifyQualified(const char *zSql, const char *zTable);

/* ---------------------------------------------------------------------------------------------
** vtab.c: register the apify_webhooks module on db; the module holds a reference to p.
*/
int apifyVtabRegister(sqlite3 *db, Apify *p);

/* ---------------------------------------------------------------------------------------------
** remote.c: the read-only tables of the account, paged through the API's list endpoints.
*/

/* Register apify_remote_webhooks and apify_webhook_dispatches on db; each holds a reference. */
int apifyRemoteRegister(sqlite3 *db, Apify *p);

/* zPrefix, then zPart percent-encoded as one path segment (all but A-Z a-z 0-9 - . _ ~), then
** zSuffix: apifyPath("/v2/webhooks/", zId, "/test"). sqlite3_malloc'd; NULL when out of
** memory. */
char *apifyPath(const char *zPrefix, const char *zPart, const char *zSuffix);

#endif /* APIFY_H */
