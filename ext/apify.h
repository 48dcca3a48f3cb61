/*
** apify.h: what the files of the apify extension share.
**
**   apify.c      entry point, per-connection state, configuration, scalar functions
**   request.c    the Apify request rules: validation, templates, canonical body,
**                derived idempotency key, reading the API's answers
**   transport.c  libcurl: many requests in flight, retries, pacing
**   vtab.c       the apify_webhooks virtual table (queue in xUpdate, send in xSync)
**   store.c      the local store of idempotency keys and outcomes (real tables)
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
struct Apify {
  int nRef;
  ApifyConfig cfg;
  ApifyHttp *pHttp;        /* opened on first use */
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

/* Check an Apify template (payloadTemplate, or headersTemplate when bHeaders) of n bytes:
** replacing each {{variable}} outside strings must leave valid JSON, every variable must be an
** allowed one, and (bInterpolate) so must those inside strings; a headers template must be an
** object whose values are strings (or placeholders). SQLITE_OK, or SQLITE_ERROR with *pzErr
** naming zField and the rule, or SQLITE_NOMEM. */
int apifyTemplateCheck(sqlite3 *db, ApifyRules *pRules, const char *zField, const char *z,
                       int n, int bHeaders, int bInterpolate, char **pzErr);

/* Read the API's answer: on 2xx with {"data":{...}} sets *pzData to the data object's JSON;
** otherwise sets *pzType and *pzMsg from {"error":{type,message}} (or describes the body that
** is not an Apify answer). Outputs are sqlite3_malloc'd or NULL. Returns SQLITE_OK or
** SQLITE_NOMEM. */
int apifyReplyRead(sqlite3 *db, ApifyRules *pRules, int httpStatus, const char *zBody,
                   char **pzData, char **pzType, char **pzMsg);

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
** store.c: the real tables behind one apify_webhooks table T: T_store (a record per
** idempotency key) and T_queue (what the open transaction will send at commit).
*/
typedef struct ApifyStore ApifyStore;

int apifyStoreOpen(sqlite3 *db, const char *zDb, const char *zName, ApifyStore **pp);
void apifyStoreClose(ApifyStore *p);
const char *apifyStoreSchema(ApifyStore *p);
const char *apifyStoreName(ApifyStore *p);

/* Set *pbExists: whether T_store exists yet (it is created on the first write). */
int apifyStoreExists(ApifyStore *p, int *pbExists);

/* Queue the request zBody under zKey as row iPos of this transaction, unless the key is created
** already or queued already with the same body. A key that names another request is
** SQLITE_ERROR with *pzErr naming both rows. Creates the tables when needed. */
int apifyStoreQueue(ApifyStore *p, const char *zKey, const char *zBody, int iPos, char **pzErr);

/* Savepoints: the queue position now, and forgetting what was queued after position iAfter. */
sqlite3_int64 apifyStoreMark(ApifyStore *p);
void apifyStoreDiscard(ApifyStore *p, sqlite3_int64 iAfter);

/* At commit: move the queue into the store as pending rows (*pnPending: how many to send),
** then hand them out one by one (*pzBody NULL when done; sqlite3_malloc'd), record each
** outcome, and empty the queue. */
int apifyStoreMerge(ApifyStore *p, sqlite3_int64 *pnPending);
int apifyStoreNext(ApifyStore *p, sqlite3_int64 *piSeq, char **pzBody);
int apifyStoreRecord(ApifyStore *p, sqlite3_int64 iSeq, const ApifyCall *pCall,
                     const char *zData, const char *zType, const char *zMsg);
int apifyStoreClear(ApifyStore *p);

/* The transaction is over (committed or rolled back): forget its marks. Writes nothing. */
void apifyStoreEnd(ApifyStore *p);

/* Drop the tables (DROP TABLE of a created table), rename them (ALTER TABLE ... RENAME), and
** name them for xShadowName. */
int apifyStoreDrop(ApifyStore *p);
int apifyStoreRename(ApifyStore *p, const char *zNew);
int apifyStoreShadow(const char *zSuffix);

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
