/*
** request.c: the Apify request rules. No other file knows the fields of a WebhookCreate, the
** event types or the limits of POST /v2/webhooks (template.c knows the templates).
**
**   apifyRequestBuild   validate a webhook (a JSON object); build the body and idempotency key
**   apifyReplyRead      read the API's answer: the created webhook, or the error
**
**   SELECT apify_create_webhook('{"condition":{"actorId":"HDSasDasz78YcAPEB"},
**     "eventTypes":["ACTOR.RUN.SUCCEEDED"],"requestUrl":"https://example.com/hook"}');
**   -- sends {"requestUrl":"https://example.com/hook","eventTypes":["ACTOR.RUN.SUCCEEDED"],
**   --        "condition":{"actorId":"HDSasDasz78YcAPEB"},"idempotencyKey":"apify-sqlite-<sha256>"}
**
** The rules in brief (APIFY_API.md has them in full): valid UTF-8 without NUL, valid JSON, an
** object. requestUrl: an absolute http or https URL. eventTypes: a non-empty array of known event
** types. condition: actorId, actorTaskId and/or actorRunId (non-empty strings), nothing else.
** isAdHoc, shouldInterpolateStrings, ignoreSslErrors, doNotRetry: booleans. idempotencyKey: 1 to
** 256 characters. payloadTemplate, headersTemplate: Apify templates, checked by template.c.
** description: a string. The first three are required; JSON null is the same as absent; no other
** field, no field twice; the body at most APIFY_MAX_BODY bytes. Messages name the field, the rule
** and the bad value (quoted, cut after 60 characters); byte offsets in them count from 0.
**
** The canonical body: the fields in the order of azField, condition's in the order of
** azCondition, null and absent ones dropped, values re-serialised minified by JSON1 (strings
** decoded and re-encoded: their text is kept exactly, and "\u00e9" and "é" give the same body).
** So field order, whitespace and explicit nulls in the input change nothing.
**
** The idempotency key, when the input has none: "apify-sqlite-" and the lowercase hex SHA-256
** of the canonical body built without a key; it then takes its canonical place in the body. The
** same webhook always gets the same key and any other webhook another one, so a retry after a
** lost answer, a re-run of the same INSERT or two identical rows create one webhook, because the
** platform remembers keys: this holds even if the local database is lost. A key the user gives
** is sent unchanged.
**
** JSON is read and built by JSON1 through SQL run on the caller's connection; C only scans bytes
** (UTF-8) and never escapes JSON by hand.
*/
#include "apify.h"
#include <string.h>
#include <stdarg.h>
#include <openssl/evp.h>

/* The JSON type of ?1, and whether it is JSON. json_type() fails with "malformed JSON"
** (SQLITE_ERROR) or SQLITE_NOMEM, which json_valid() of SQLite 3.40 does not tell apart (it
** answers 0 to both); json_valid(), run after it on the parse it cached, still rejects the
** JSON5 that json_type() accepts from SQLite 3.42 on. */
static const char zSqlType[] =
  "SELECT json_type(?1), json_valid(?1)";

/* The members of the object or array ?1, which must be valid JSON, in document order. */
static const char zSqlEach[] =
  "SELECT key, type, value FROM json_each(?1)";

/* The canonical body. ?N is field N-1 of azField (booleans as the text true or false, eventTypes
** as its array text; ?3 is unused) and ?12..?14 are condition's members. json_patch() onto {}
** drops the null members, nested ones included, and keeps the others in order. */
static const char zSqlBody[] =
  "SELECT json_patch('{}', json_object("
    "'requestUrl', ?1,"
    "'eventTypes', json((SELECT json_group_array(value) FROM json_each(?2))),"
    "'condition', json_object('actorId', ?12, 'actorTaskId', ?13, 'actorRunId', ?14),"
    "'isAdHoc', json(?4),"
    "'idempotencyKey', ?5,"
    "'payloadTemplate', ?6,"
    "'headersTemplate', ?7,"
    "'description', ?8,"
    "'shouldInterpolateStrings', json(?9),"
    "'ignoreSslErrors', json(?10),"
    "'doNotRetry', json(?11)))";

/* The parts of an answer ?1 of the API, which must be valid JSON: its data, its error's type
** and message, each with its type. */
static const char zSqlReply[] =
  "SELECT json_type(?1, '$.data'), json_extract(?1, '$.data'),"
  " json_type(?1, '$.error.type'), json_extract(?1, '$.error.type'),"
  " json_type(?1, '$.error.message'), json_extract(?1, '$.error.message')";

#define COUNT(a) ((int)(sizeof(a)/sizeof((a)[0])))

/* The statements above, prepared once per connection when the caller keeps an ApifyRules (the
** virtual table does: a bulk INSERT would otherwise spend most of its time in the parser). */
enum { SQL_TYPE, SQL_EACH, SQL_BODY, SQL_REPLY, N_SQL };
static const char *const azSql[N_SQL] = { zSqlType, zSqlEach, zSqlBody, zSqlReply };
struct ApifyRules {
  sqlite3 *db;
  sqlite3_stmt *aStmt[N_SQL];
};

/* JSON types: as json_type() names them, and as messages name them. */
#define JT_INVALID (-1) /* not JSON at all */
#define JT_NULL     0
#define JT_TRUE     1
#define JT_FALSE    2
#define JT_TEXT     5
#define JT_ARRAY    6
#define JT_OBJECT   7
static const char *const azJsonType[] = {
  "null", "true", "false", "integer", "real", "text", "array", "object"
};
static const char *const azTypeName[] = {
  "null", "a boolean", "a boolean", "a number", "a number", "a string", "an array", "an object"
};

/* The fields of a WebhookCreate, in canonical order, and the JSON type each must have (JT_TRUE
** stands for a boolean). The first three are required; the others may also be null. */
#define F_URL          0
#define F_EVENTS       1
#define F_CONDITION    2
#define F_KEY          4
#define F_PAYLOAD      5
#define F_HEADERS      6
#define F_INTERPOLATE  8
#define N_FIELD       11
static const char *const azField[N_FIELD] = {
  "requestUrl", "eventTypes", "condition", "isAdHoc", "idempotencyKey", "payloadTemplate",
  "headersTemplate", "description", "shouldInterpolateStrings", "ignoreSslErrors", "doNotRetry"
};
static const unsigned char aFieldType[N_FIELD] = {
  JT_TEXT, JT_ARRAY, JT_OBJECT, JT_TRUE, JT_TEXT, JT_TEXT,
  JT_TEXT, JT_TEXT, JT_TRUE, JT_TRUE, JT_TRUE
};

static const char *const azCondition[] = { "actorId", "actorTaskId", "actorRunId" };

static const char *const azEvent[] = {
  "ACTOR.BUILD.ABORTED", "ACTOR.BUILD.CREATED", "ACTOR.BUILD.FAILED", "ACTOR.BUILD.SUCCEEDED",
  "ACTOR.BUILD.TIMED_OUT", "ACTOR.RUN.ABORTED", "ACTOR.RUN.CREATED", "ACTOR.RUN.FAILED",
  "ACTOR.RUN.RESURRECTED", "ACTOR.RUN.SUCCEEDED", "ACTOR.RUN.TIMED_OUT", "TEST"
};

#define QUOTE_CHARS 60   /* characters of a bad value quoted in a message */
#define NEAR_EDITS   3   /* a name this many edits away from a known one gets a suggestion */

/* A webhook as read from its JSON object: one slot per known field. */
typedef struct Webhook Webhook;
struct Webhook {
  int aType[N_FIELD];             /* JT_ type of each field; JT_NULL when absent */
  sqlite3_value *apVal[N_FIELD];  /* each field's value as json_each() gives it, NULL if absent */
  sqlite3_value *apCond[3];       /* condition's members in azCondition order, NULL if absent */
};

/* ------------------------------------------------------------------------------------------ */
/* Messages */

/* Set *pzErr to a message formatted like sqlite3_mprintf(). Returns SQLITE_ERROR, or
** SQLITE_NOMEM when the message cannot be made. */
int apifyErrorf(char **pzErr, const char *zFmt, ...){
  va_list ap;
  va_start(ap, zFmt);
  *pzErr = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
}

/* Finish the (non-empty) text p into *pz. SQLITE_OK, or SQLITE_NOMEM and *pz NULL. */
int apifyStrFinish(sqlite3_str *p, char **pz){
  int rc = sqlite3_str_errcode(p)==SQLITE_OK ? SQLITE_OK : SQLITE_NOMEM;
  *pz = sqlite3_str_finish(p);
  if( rc!=SQLITE_OK || *pz==0 ){
    sqlite3_free(*pz);
    *pz = 0;
    rc = SQLITE_NOMEM;
  }
  return rc;
}

/* Finish the message p into *pzErr. Returns SQLITE_ERROR, or SQLITE_NOMEM. */
int apifyErrorStr(char **pzErr, sqlite3_str *p){
  return apifyStrFinish(p, pzErr)==SQLITE_OK ? SQLITE_ERROR : SQLITE_NOMEM;
}

/* Append the names azName[0..nName) to p, separated by commas. */
void apifyAppendList(sqlite3_str *p, const char *const *azName, int nName){
  int i;
  for(i=0; i<nName; i++) sqlite3_str_appendf(p, "%s%s", i ? ", " : "", azName[i]);
}

/* Append z[0..n) (n<0: up to its NUL) to p in double quotes, cut after QUOTE_CHARS characters
** with "...", control characters shown as spaces: a message stays one short line. */
void apifyAppendQuoted(sqlite3_str *p, const char *z, int n){
  int i, nChar = 0;
  if( n<0 ) n = (int)strlen(z);
  sqlite3_str_appendchar(p, 1, '"');
  for(i=0; i<n; i++){
    unsigned char c = (unsigned char)z[i];
    if( (c & 0xc0)!=0x80 && nChar++==QUOTE_CHARS ) break;
    sqlite3_str_appendchar(p, 1, (char)(c<0x20 ? ' ' : c));
  }
  sqlite3_str_appendall(p, i<n ? "...\"" : "\"");
}

/* Index of z[0..n) in azName[0..nName), or -1. */
int apifyNameIndex(const char *z, int n, const char *const *azName, int nName){
  int i;
  for(i=0; i<nName; i++){
    if( (int)strlen(azName[i])==n && memcmp(z, azName[i], (size_t)n)==0 ) return i;
  }
  return -1;
}

/* Levenshtein distance of zA and zB, ignoring ASCII case; NEAR_EDITS+1 when it is larger. */
static int editDistance(const char *zA, const char *zB){
  int aCost[32];                  /* one row of the distance matrix; zB is a known name */
  int nA = (int)strlen(zA), nB = (int)strlen(zB), i, j;
  if( nB>=COUNT(aCost) || nA>nB+NEAR_EDITS || nB>nA+NEAR_EDITS ) return NEAR_EDITS+1;
  for(j=0; j<=nB; j++) aCost[j] = j;
  for(i=1; i<=nA; i++){
    int iDiag = aCost[0];         /* cost of zA[0..i-1) to zB[0..j-1) */
    aCost[0] = i;
    for(j=1; j<=nB; j++){
      int iUp = aCost[j];
      int iBest = iDiag + (sqlite3_strnicmp(&zA[i-1], &zB[j-1], 1)!=0);
      if( iUp+1<iBest ) iBest = iUp+1;
      if( aCost[j-1]+1<iBest ) iBest = aCost[j-1]+1;
      aCost[j] = iBest;
      iDiag = iUp;
    }
  }
  return aCost[nB]>NEAR_EDITS ? NEAR_EDITS+1 : aCost[nB];
}

/* The name in azName[0..nName) that zWord was probably meant to be: one equal to it ignoring
** case, else the first of the nearest within NEAR_EDITS edits. Its index, or -1. */
static int nameNearest(const char *zWord, const char *const *azName, int nName){
  int i, iBest = -1, nBest = NEAR_EDITS+1;
  for(i=0; i<nName; i++){
    if( sqlite3_stricmp(zWord, azName[i])==0 ) return i;
  }
  for(i=0; i<nName; i++){
    int nEdit = editDistance(zWord, azName[i]);
    if( nEdit<nBest ){ nBest = nEdit; iBest = i; }
  }
  return iBest;
}

/* Message for the unknown field zKey (nKey bytes) of an object; zWhere is "" for the webhook,
** else "condition: ". Suggests the field meant when one is near, else lists the known ones. */
static int errorUnknown(char **pzErr, const char *zWhere, const char *zKey, int nKey,
                        const char *const *azName, int nName){
  sqlite3_str *p = sqlite3_str_new(0);
  int i = nameNearest(zKey, azName, nName);
  sqlite3_str_appendf(p, "apify: %sunknown field ", zWhere);
  apifyAppendQuoted(p, zKey, nKey);
  if( i>=0 ){
    sqlite3_str_appendf(p, "; did you mean \"%s\"?", azName[i]);
  }else{
    sqlite3_str_appendall(p, "; known fields: ");
    apifyAppendList(p, azName, nName);
  }
  return apifyErrorStr(pzErr, p);
}

/* ------------------------------------------------------------------------------------------ */
/* SQL and bytes */

int apifyRulesOpen(sqlite3 *db, ApifyRules **pp){
  ApifyRules *p = sqlite3_malloc64(sizeof(*p));
  *pp = p;
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->db = db;
  return SQLITE_OK;
}

void apifyRulesClose(ApifyRules *p){
  int i;
  if( p==0 ) return;
  for(i=0; i<N_SQL; i++) sqlite3_finalize(p->aStmt[i]);
  sqlite3_free(p);
}

/* Statement iSql of azSql in *ppStmt: the cached one of pRules when it is free, else a new one
** (cached when pRules has none yet). Release it with sqlFinish(). */
static int sqlPrepare(sqlite3 *db, ApifyRules *pRules, int iSql, sqlite3_stmt **ppStmt){
  int rc;
  *ppStmt = 0;
  if( pRules && pRules->aStmt[iSql] && !sqlite3_stmt_busy(pRules->aStmt[iSql]) ){
    *ppStmt = pRules->aStmt[iSql];
    return SQLITE_OK;
  }
  if( pRules && pRules->aStmt[iSql]==0 ){
    rc = sqlite3_prepare_v3(db, azSql[iSql], -1, SQLITE_PREPARE_PERSISTENT,
                            &pRules->aStmt[iSql], 0);
    *ppStmt = pRules->aStmt[iSql];
    return rc;
  }
  return sqlite3_prepare_v2(db, azSql[iSql], -1, ppStmt, 0);
}

/* Release pStmt: reset a cached statement, finalize another. Returns rc, or the error of the
** statement when rc is SQLITE_OK. */
static int sqlFinish(ApifyRules *pRules, sqlite3_stmt *pStmt, int rc){
  int i, rc2;
  for(i=0; pRules && i<N_SQL && pRules->aStmt[i]!=pStmt; i++){}
  if( pRules && i<N_SQL && pStmt ){
    rc2 = sqlite3_reset(pStmt);
    sqlite3_clear_bindings(pStmt);
  }else{
    rc2 = sqlite3_finalize(pStmt);
  }
  return rc==SQLITE_OK ? rc2 : rc;
}

/* Copy column i of pStmt to *pz (sqlite3_malloc'd; NULL for an SQL NULL), its length to *pn. */
static int columnDup(sqlite3_stmt *pStmt, int i, char **pz, int *pn){
  const char *z;
  int n;
  *pz = 0;
  if( sqlite3_column_type(pStmt, i)==SQLITE_NULL ) return SQLITE_OK;
  z = (const char*)sqlite3_column_text(pStmt, i);
  n = sqlite3_column_bytes(pStmt, i);
  if( z ) *pz = sqlite3_malloc64((sqlite3_uint64)n+1);
  if( *pz==0 ) return SQLITE_NOMEM;
  memcpy(*pz, z, (size_t)n+1);
  if( pn ) *pn = n;
  return SQLITE_OK;
}

/* The JT_ value of a type named by json_type(), JT_INVALID for NULL. */
static int jsonType(const unsigned char *zType){
  int i;
  for(i=0; zType && i<COUNT(azJsonType); i++){
    if( strcmp((const char*)zType, azJsonType[i])==0 ) return i;
  }
  return JT_INVALID;
}

/* Set *peType to the JT_ type of the text z[0..n), JT_INVALID when it is not JSON. */
static int jsonTypeOf(sqlite3 *db, ApifyRules *pRules, const char *z, int n, int *peType){
  sqlite3_stmt *pStmt = 0;
  int rc = sqlPrepare(db, pRules, SQL_TYPE, &pStmt);
  *peType = JT_INVALID;
  if( rc==SQLITE_OK ) rc = sqlite3_bind_text(pStmt, 1, z, n, SQLITE_STATIC);
  if( rc==SQLITE_OK ) rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW && sqlite3_column_int(pStmt, 1) ){
    *peType = jsonType(sqlite3_column_text(pStmt, 0));
    rc = *peType==JT_INVALID ? SQLITE_NOMEM : SQLITE_OK;
  }else if( rc==SQLITE_ROW || rc==SQLITE_ERROR ){
    rc = SQLITE_OK;               /* not JSON */
  }
  sqlFinish(pRules, pStmt, rc);  /* its error, if any, is rc's */
  return rc;
}

/* Offset of the first byte of z[0..n) that is a NUL, a "\u0000" escape (which JSON1 would cut
** the string at) or not part of valid UTF-8; n when there is none. */
static int utf8Bad(const unsigned char *z, int n){
  int i = 0;
  while( i<n ){
    int c = z[i], nMore, j;
    unsigned int v, vMin;
    if( c==0 ) return i;
    if( c=='\\' && i+1<n && z[i+1]=='\\' ){ i += 2; continue; }
    if( c=='\\' && i+5<n && memcmp(&z[i+1], "u0000", 5)==0 ) return i;
    if( c<0x80 ){ i++; continue; }
    if( c>=0xc2 && c<=0xdf ){ nMore = 1; v = c & 0x1f; vMin = 0x80; }
    else if( c>=0xe0 && c<=0xef ){ nMore = 2; v = c & 0x0f; vMin = 0x800; }
    else if( c>=0xf0 && c<=0xf4 ){ nMore = 3; v = c & 0x07; vMin = 0x10000; }
    else return i;
    if( i+nMore>=n ) return i;
    for(j=1; j<=nMore; j++){
      if( (z[i+j] & 0xc0)!=0x80 ) return i;
      v = (v<<6) | (z[i+j] & 0x3f);
    }
    if( v<vMin || v>0x10ffff || (v>=0xd800 && v<=0xdfff) ) return i;
    i += nMore+1;
  }
  return n;
}

/* Characters in the UTF-8 text z[0..n). */
static int utf8Chars(const char *z, int n){
  int i, nChar = 0;
  for(i=0; i<n; i++) nChar += ((unsigned char)z[i] & 0xc0)!=0x80;
  return nChar;
}

/* ------------------------------------------------------------------------------------------ */
/* The webhook */

/* Read the members of the JSON object zJson (n bytes) into p, refusing unknown and repeated
** fields. The caller frees p with webhookFree() whatever this returns. */
static int webhookRead(sqlite3 *db, ApifyRules *pRules, const char *zJson, int n, Webhook *p,
                       char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int rc = sqlPrepare(db, pRules, SQL_EACH, &pStmt);
  if( rc==SQLITE_OK ) rc = sqlite3_bind_text(pStmt, 1, zJson, n, SQLITE_STATIC);
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    const char *zKey = (const char*)sqlite3_column_text(pStmt, 0);
    int nKey = sqlite3_column_bytes(pStmt, 0);
    int eType = jsonType(sqlite3_column_text(pStmt, 1));
    int i = zKey ? apifyNameIndex(zKey, nKey, azField, N_FIELD) : -1;
    if( zKey==0 || eType==JT_INVALID ){
      rc = SQLITE_NOMEM;
    }else if( i<0 ){
      rc = errorUnknown(pzErr, "", zKey, nKey, azField, N_FIELD);
    }else if( p->apVal[i] ){
      rc = apifyErrorf(pzErr, "apify: field \"%s\" appears twice", azField[i]);
    }else{
      p->aType[i] = eType;
      p->apVal[i] = sqlite3_value_dup(sqlite3_column_value(pStmt, 2));
      if( p->apVal[i]==0 ) rc = SQLITE_NOMEM;
    }
  }
  return sqlFinish(pRules, pStmt, rc);
}

/* Free what webhookRead() and conditionRead() put in p. */
static void webhookFree(Webhook *p){
  int i;
  for(i=0; i<N_FIELD; i++) sqlite3_value_free(p->apVal[i]);
  for(i=0; i<COUNT(p->apCond); i++) sqlite3_value_free(p->apCond[i]);
}

/* Check that the required fields are there and that every field has its JSON type. */
static int webhookCheckTypes(const Webhook *p, char **pzErr){
  int i, rc = SQLITE_OK;
  for(i=0; rc==SQLITE_OK && i<N_FIELD; i++){
    int eType = p->aType[i]==JT_FALSE ? JT_TRUE : p->aType[i];
    int bRequired = i<=F_CONDITION;
    if( eType==JT_NULL && bRequired ){
      rc = apifyErrorf(pzErr, "apify: %s is required", azField[i]);
    }else if( eType!=JT_NULL && eType!=aFieldType[i] ){
      rc = apifyErrorf(pzErr, "apify: %s must be %s%s, not %s", azField[i], azTypeName[aFieldType[i]],
                  bRequired ? "" : " or null", azTypeName[p->aType[i]]);
    }
  }
  return rc;
}

/* Check that requestUrl is an absolute http or https URL. */
static int urlCheck(sqlite3_value *pVal, char **pzErr){
  const char *zUrl = (const char*)sqlite3_value_text(pVal);
  int nUrl = sqlite3_value_bytes(pVal);
  char *zScheme = 0;
  int rc = SQLITE_NOMEM;
  if( zUrl ) rc = (int)strlen(zUrl)==nUrl ? apifyUrlParse(zUrl, &zScheme, 0) : SQLITE_ERROR;
  if( rc==SQLITE_OK
   && (zScheme==0 || (strcmp(zScheme, "http")!=0 && strcmp(zScheme, "https")!=0)) ){
    rc = SQLITE_ERROR;
  }
  if( rc==SQLITE_ERROR ){
    sqlite3_str *p = sqlite3_str_new(0);
    sqlite3_str_appendall(p, "apify: requestUrl ");
    apifyAppendQuoted(p, zUrl, nUrl);
    sqlite3_str_appendall(p, " must be an absolute http or https URL");
    rc = apifyErrorStr(pzErr, p);
  }
  sqlite3_free(zScheme);
  return rc;
}

/* Check that the array pArr holds at least one event type and nothing else. */
static int eventsCheck(sqlite3 *db, ApifyRules *pRules, sqlite3_value *pArr, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int nEvent = 0;
  int rc = sqlPrepare(db, pRules, SQL_EACH, &pStmt);
  if( rc==SQLITE_OK ) rc = sqlite3_bind_value(pStmt, 1, pArr);
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    int eType = jsonType(sqlite3_column_text(pStmt, 1));
    const char *zEvent = 0;
    int nByte = 0;
    if( eType==JT_TEXT ){
      zEvent = (const char*)sqlite3_column_text(pStmt, 2);
      nByte = sqlite3_column_bytes(pStmt, 2);
    }
    if( eType==JT_INVALID || (eType==JT_TEXT && zEvent==0) ){
      rc = SQLITE_NOMEM;
    }else if( eType!=JT_TEXT ){
      rc = apifyErrorf(pzErr, "apify: eventTypes[%d] must be a string, not %s",
                  nEvent, azTypeName[eType]);
    }else if( apifyNameIndex(zEvent, nByte, azEvent, COUNT(azEvent))<0 ){
      sqlite3_str *p = sqlite3_str_new(0);
      int i = nameNearest(zEvent, azEvent, COUNT(azEvent));
      sqlite3_str_appendf(p, "apify: eventTypes[%d]: ", nEvent);
      apifyAppendQuoted(p, zEvent, nByte);
      sqlite3_str_appendall(p, " is not an event type");
      if( i>=0 ){
        sqlite3_str_appendf(p, "; did you mean \"%s\"?", azEvent[i]);
      }else{
        sqlite3_str_appendall(p, "; event types: ");
        apifyAppendList(p, azEvent, COUNT(azEvent));
      }
      rc = apifyErrorStr(pzErr, p);
    }
    nEvent++;
  }
  rc = sqlFinish(pRules, pStmt, rc);
  if( rc==SQLITE_OK && nEvent==0 ) rc = apifyErrorf(pzErr, "apify: eventTypes must not be empty");
  return rc;
}

/* Read condition's members into p->apCond: actorId, actorTaskId and/or actorRunId, each a
** non-empty string (null is the same as absent), nothing else, at least one of them. */
static int conditionRead(sqlite3 *db, ApifyRules *pRules, Webhook *p, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  unsigned int mSeen = 0;         /* bit i set: azCondition[i] appeared */
  int rc = sqlPrepare(db, pRules, SQL_EACH, &pStmt);
  if( rc==SQLITE_OK ) rc = sqlite3_bind_value(pStmt, 1, p->apVal[F_CONDITION]);
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    const char *zKey = (const char*)sqlite3_column_text(pStmt, 0);
    int nKey = sqlite3_column_bytes(pStmt, 0);
    int eType = jsonType(sqlite3_column_text(pStmt, 1));
    int i = zKey ? apifyNameIndex(zKey, nKey, azCondition, COUNT(azCondition)) : -1;
    if( zKey==0 || eType==JT_INVALID ){
      rc = SQLITE_NOMEM;
    }else if( i<0 ){
      rc = errorUnknown(pzErr, "condition: ", zKey, nKey, azCondition, COUNT(azCondition));
    }else if( mSeen & (1u<<i) ){
      rc = apifyErrorf(pzErr, "apify: condition: field \"%s\" appears twice", azCondition[i]);
    }else if( eType!=JT_TEXT && eType!=JT_NULL ){
      rc = apifyErrorf(pzErr, "apify: condition.%s must be a non-empty string, not %s",
                  azCondition[i], azTypeName[eType]);
    }else if( eType==JT_TEXT && sqlite3_column_bytes(pStmt, 2)==0 ){
      rc = apifyErrorf(pzErr, "apify: condition.%s must be a non-empty string", azCondition[i]);
    }else if( eType==JT_TEXT ){
      p->apCond[i] = sqlite3_value_dup(sqlite3_column_value(pStmt, 2));
      if( p->apCond[i]==0 ) rc = SQLITE_NOMEM;
    }
    if( i>=0 ) mSeen |= 1u<<i;
  }
  rc = sqlFinish(pRules, pStmt, rc);
  if( rc==SQLITE_OK && !p->apCond[0] && !p->apCond[1] && !p->apCond[2] ){
    rc = apifyErrorf(pzErr, "apify: condition must name actorId, actorTaskId or actorRunId");
  }
  return rc;
}

/* Check the values of the fields of p, whose types are already right, in canonical order. */
static int webhookCheckValues(sqlite3 *db, ApifyRules *pRules, Webhook *p, char **pzErr){
  int bInterpolate = p->aType[F_INTERPOLATE]==JT_TRUE;
  int i, rc = urlCheck(p->apVal[F_URL], pzErr);
  if( rc==SQLITE_OK ) rc = eventsCheck(db, pRules, p->apVal[F_EVENTS], pzErr);
  if( rc==SQLITE_OK ) rc = conditionRead(db, pRules, p, pzErr);
  if( rc==SQLITE_OK && p->aType[F_KEY]==JT_TEXT ){
    sqlite3_value *pKey = p->apVal[F_KEY];
    const char *zKey = (const char*)sqlite3_value_text(pKey);
    int nChar = zKey ? utf8Chars(zKey, sqlite3_value_bytes(pKey)) : 0;
    if( zKey==0 ){
      rc = SQLITE_NOMEM;
    }else if( nChar<1 || nChar>APIFY_MAX_KEY ){
      rc = apifyErrorf(pzErr, "apify: idempotencyKey must be 1 to %d characters, not %d",
                  APIFY_MAX_KEY, nChar);
    }
  }
  for(i=F_PAYLOAD; rc==SQLITE_OK && i<=F_HEADERS; i++){
    if( p->aType[i]==JT_TEXT ){
      const char *z = (const char*)sqlite3_value_text(p->apVal[i]);
      rc = z ? apifyTemplateCheck(db, pRules, azField[i], z, sqlite3_value_bytes(p->apVal[i]),
                                  i==F_HEADERS, bInterpolate, pzErr) : SQLITE_NOMEM;
    }
  }
  return rc;
}

/* Build the canonical body of p into *pzBody (sqlite3_malloc'd, *pnBody bytes), with zKey as
** the idempotencyKey when it is not NULL. */
static int bodyBuild(sqlite3 *db, ApifyRules *pRules, const Webhook *p, const char *zKey,
                     char **pzBody, int *pnBody){
  sqlite3_stmt *pStmt = 0;
  int i, rc = sqlPrepare(db, pRules, SQL_BODY, &pStmt);
  for(i=0; rc==SQLITE_OK && i<N_FIELD; i++){
    int eType = p->aType[i];
    if( eType==JT_TRUE || eType==JT_FALSE ){
      rc = sqlite3_bind_text(pStmt, i+1, azJsonType[eType], -1, SQLITE_STATIC);
    }else if( eType!=JT_NULL && i!=F_CONDITION ){
      rc = sqlite3_bind_value(pStmt, i+1, p->apVal[i]);
    }
  }
  for(i=0; rc==SQLITE_OK && i<COUNT(p->apCond); i++){
    if( p->apCond[i] ) rc = sqlite3_bind_value(pStmt, N_FIELD+1+i, p->apCond[i]);
  }
  if( rc==SQLITE_OK && zKey ) rc = sqlite3_bind_text(pStmt, F_KEY+1, zKey, -1, SQLITE_STATIC);
  if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ) rc = columnDup(pStmt, 0, pzBody, pnBody);
  rc = sqlFinish(pRules, pStmt, rc);
  if( rc==SQLITE_OK && *pzBody==0 ) rc = SQLITE_NOMEM;   /* json_patch() gave NULL: no memory */
  return rc;
}

/* Derive the idempotency key of the canonical body zBody (built without a key) into *pzKey:
** "apify-sqlite-" and the lowercase hex SHA-256 of the body. */
static int keyDerive(const char *zBody, int nBody, char **pzKey, char **pzErr){
  unsigned char aHash[EVP_MAX_MD_SIZE];
  unsigned int i, nHash = 0;
  int rc = SQLITE_OK;
  if( !EVP_Digest(zBody, (size_t)nBody, aHash, &nHash, EVP_sha256(), 0) ){
    rc = apifyErrorf(pzErr, "apify: cannot compute a SHA-256 with OpenSSL");
  }else{
    sqlite3_str *p = sqlite3_str_new(0);
    sqlite3_str_appendall(p, "apify-sqlite-");
    for(i=0; i<nHash; i++) sqlite3_str_appendf(p, "%02x", aHash[i]);
    rc = apifyStrFinish(p, pzKey);
  }
  return rc;
}

/* apifyRequestBuild(), deriving a key when the webhook has none only when bDerive. */
static int requestBuild(sqlite3 *db, ApifyRules *pRules, const char *zJson, int n, int bDerive,
                        char **pzBody, char **pzKey, char **pzErr){
  Webhook w;
  char *zBody = 0, *zKey = 0;
  int nBody = 0, eType = JT_INVALID, iBad, rc = SQLITE_OK;

  memset(&w, 0, sizeof(w));
  *pzBody = *pzKey = *pzErr = 0;
  if( zJson && n<0 ) n = (int)strlen(zJson);
  iBad = zJson ? utf8Bad((const unsigned char*)zJson, n) : n;
  if( zJson==0 ){
    rc = apifyErrorf(pzErr, "apify: the webhook is NULL; pass a JSON object");
  }else if( iBad<n && zJson[iBad]==0 ){
    rc = apifyErrorf(pzErr, "apify: the webhook contains a NUL byte at byte %d", iBad);
  }else if( iBad<n && zJson[iBad]=='\\' ){
    rc = apifyErrorf(pzErr, "apify: the webhook contains a NUL character (\\u0000) at byte %d", iBad);
  }else if( iBad<n ){
    rc = apifyErrorf(pzErr, "apify: the webhook is not valid UTF-8 (byte %d)", iBad);
  }
  if( rc==SQLITE_OK ) rc = jsonTypeOf(db, pRules, zJson, n, &eType);
  if( rc==SQLITE_OK && eType==JT_INVALID ){
    sqlite3_str *p = sqlite3_str_new(0);
    sqlite3_str_appendall(p, "apify: the webhook is not valid JSON: ");
    apifyAppendQuoted(p, zJson, n);
    rc = apifyErrorStr(pzErr, p);
  }else if( rc==SQLITE_OK && eType!=JT_OBJECT ){
    rc = apifyErrorf(pzErr, "apify: the webhook must be a JSON object, not %s", azTypeName[eType]);
  }
  if( rc==SQLITE_OK ) rc = webhookRead(db, pRules, zJson, n, &w, pzErr);
  if( rc==SQLITE_OK ) rc = webhookCheckTypes(&w, pzErr);
  if( rc==SQLITE_OK ) rc = webhookCheckValues(db, pRules, &w, pzErr);
  if( rc==SQLITE_OK ) rc = bodyBuild(db, pRules, &w, 0, &zBody, &nBody);
  if( rc==SQLITE_OK && w.aType[F_KEY]==JT_TEXT ){
    const char *zUser = (const char*)sqlite3_value_text(w.apVal[F_KEY]);
    zKey = zUser ? sqlite3_mprintf("%s", zUser) : 0;
    if( zKey==0 ) rc = SQLITE_NOMEM;
  }else if( rc==SQLITE_OK && bDerive ){
    rc = keyDerive(zBody, nBody, &zKey, pzErr);
    sqlite3_free(zBody);
    zBody = 0;
    if( rc==SQLITE_OK ) rc = bodyBuild(db, pRules, &w, zKey, &zBody, &nBody);
  }
  if( rc==SQLITE_OK && nBody>APIFY_MAX_BODY ){
    rc = apifyErrorf(pzErr, "apify: the request body is %d bytes; the API accepts at most %d",
                nBody, APIFY_MAX_BODY);
  }
  if( rc==SQLITE_OK ){
    *pzBody = zBody;              /* ownership moves to the caller */
    *pzKey = zKey;
    zBody = zKey = 0;
  }else if( rc!=SQLITE_NOMEM && *pzErr==0 ){
    *pzErr = sqlite3_mprintf("apify: %s", sqlite3_errmsg(db));
    if( *pzErr==0 ) rc = SQLITE_NOMEM;
  }
  sqlite3_free(zBody);
  sqlite3_free(zKey);
  webhookFree(&w);
  return rc;
}

/* See apify.h. Generation 1 sends the record's own key; a later one, after a DELETE, a key no
** request can derive (the hash of the key, a NUL and the generation): whatever the API does with
** a deleted webhook's key (free it, keep answering with the deleted webhook, refuse it), the
** re-created webhook is a new one, created once. */
int apifyRequestKey(const char *zKey, int iGeneration, char **pzSent){
  char *zInput, *zErr = 0;
  int rc;
  if( iGeneration<=1 ){
    *pzSent = sqlite3_mprintf("%s", zKey);
    return *pzSent ? SQLITE_OK : SQLITE_NOMEM;
  }
  {
    sqlite3_str *pIn = sqlite3_str_new(0);
    int nInput;
    sqlite3_str_appendall(pIn, zKey);
    sqlite3_str_appendchar(pIn, 1, 0);
    sqlite3_str_appendf(pIn, "%d", iGeneration);
    nInput = sqlite3_str_length(pIn);
    rc = sqlite3_str_errcode(pIn);
    zInput = sqlite3_str_finish(pIn);
    if( rc==SQLITE_OK && zInput ) rc = keyDerive(zInput, nInput, pzSent, &zErr);
    else rc = SQLITE_NOMEM;
  }
  sqlite3_free(zErr);
  sqlite3_free(zInput);
  return rc;
}

/* See apify.h. */
int apifyRequestBuild(sqlite3 *db, ApifyRules *pRules, const char *zJson, int n,
                      char **pzBody, char **pzKey, char **pzErr){
  return requestBuild(db, pRules, zJson, n, 1, pzBody, pzKey, pzErr);
}

/* See apify.h. */
int apifyRequestCanonical(sqlite3 *db, ApifyRules *pRules, const char *zJson, int n,
                          char **pzBody, char **pzErr){
  char *zKey = 0;
  int rc = requestBuild(db, pRules, zJson, n, 0, pzBody, &zKey, pzErr);
  sqlite3_free(zKey);
  return rc;
}

/* See apify.h. The changed fields of a WebhookUpdate: those of the new request whose JSON
** differs from the old one's, and null for those it no longer has; never idempotencyKey. */
int apifyRequestUpdate(sqlite3 *db, const char *zOld, const char *zNew, char **pzPut){
  static const char zSql[] =
    "WITH o AS (SELECT key, type, value FROM json_each(?1) WHERE key<>'idempotencyKey'),"
    "     n AS (SELECT key, type, value FROM json_each(?2) WHERE key<>'idempotencyKey')"
    /* the JSON subtype does not survive a subquery: json() is applied in the aggregate */
    " SELECT json_group_object(key, CASE WHEN t IN ('object','array') THEN json(v)"
    "   WHEN t='true' THEN json('true') WHEN t='false' THEN json('false') ELSE v END),"
    "   count(*) FROM ("
    "  SELECT n.key AS key, n.type AS t, n.value AS v"
    "    FROM n LEFT JOIN o ON o.key=n.key"
    "   WHERE o.key IS NULL OR o.type<>n.type OR o.value IS NOT n.value"
    "  UNION ALL"
    "  SELECT o.key, 'null', NULL FROM o LEFT JOIN n ON n.key=o.key WHERE n.key IS NULL)";
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  *pzPut = 0;
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, zOld ? zOld : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_text(pStmt, 2, zNew, -1, SQLITE_STATIC);
    if( sqlite3_step(pStmt)==SQLITE_ROW && sqlite3_column_int(pStmt, 1)>0 ){
      rc = columnDup(pStmt, 0, pzPut, 0);
    }
    if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = sqlite3_errcode(db);
  }
  return rc;
}

/* See apify.h. The fields of a WebhookCreate, picked out of a Webhook as the API shows it. */
int apifyRequestFromWebhook(sqlite3 *db, ApifyRules *pRules, const char *zData,
                            char **pzRequest){
  static const char zSql[] =
    "SELECT json_object('requestUrl', ?1->>'requestUrl', 'eventTypes', ?1->'eventTypes',"
    " 'condition', ?1->'condition', 'isAdHoc', ?1->'isAdHoc',"
    " 'payloadTemplate', ?1->>'payloadTemplate', 'headersTemplate', ?1->>'headersTemplate',"
    " 'description', ?1->>'description', 'shouldInterpolateStrings', ?1->'shouldInterpolateStrings',"
    " 'ignoreSslErrors', ?1->'ignoreSslErrors', 'doNotRetry', ?1->'doNotRetry')";
  sqlite3_stmt *pStmt = 0;
  char *zPicked = 0, *zErr = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  *pzRequest = 0;
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, zData, -1, SQLITE_STATIC);
    if( sqlite3_step(pStmt)==SQLITE_ROW ) rc = columnDup(pStmt, 0, &zPicked, 0);
    if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = sqlite3_errcode(db);
  }
  if( rc==SQLITE_OK && zPicked ){
    /* In the canonical form when it passes the rules; as the API has it when it does not (an
    ** event type newer than this extension, say). */
    rc = apifyRequestCanonical(db, pRules, zPicked, -1, pzRequest, &zErr);
    if( rc==SQLITE_ERROR ){
      *pzRequest = zPicked;
      zPicked = 0;
      rc = SQLITE_OK;
    }
  }
  sqlite3_free(zErr);
  sqlite3_free(zPicked);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The answer */

/* See apify.h. The messages made here have no "apify:" prefix: the caller puts them after the
** HTTP status. An empty body is "empty answer"; a non-2xx body that is JSON but not an Apify
** error is "the answer is not an Apify error: ...". */
int apifyReplyRead(sqlite3 *db, ApifyRules *pRules, int httpStatus, const char *zBody,
                   char **pzData, char **pzType, char **pzMsg){
  sqlite3_stmt *pStmt = 0;
  int b2xx = httpStatus>=200 && httpStatus<300;
  int eType = JT_INVALID, rc = SQLITE_OK;

  *pzData = *pzType = *pzMsg = 0;
  if( zBody ) rc = jsonTypeOf(db, pRules, zBody, -1, &eType);
  if( rc==SQLITE_OK && eType!=JT_INVALID ){
    rc = sqlPrepare(db, pRules, SQL_REPLY, &pStmt);
    if( rc==SQLITE_OK ) rc = sqlite3_bind_text(pStmt, 1, zBody, -1, SQLITE_STATIC);
    if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      int eData = jsonType(sqlite3_column_text(pStmt, 0));
      int eErrType = jsonType(sqlite3_column_text(pStmt, 2));
      int eErrMsg = jsonType(sqlite3_column_text(pStmt, 4));
      if( b2xx && eData==JT_OBJECT ) rc = columnDup(pStmt, 1, pzData, 0);
      if( !b2xx && eErrType==JT_TEXT ) rc = columnDup(pStmt, 3, pzType, 0);
      if( rc==SQLITE_OK && !b2xx && eErrMsg==JT_TEXT ) rc = columnDup(pStmt, 5, pzMsg, 0);
    }
    rc = sqlFinish(pRules, pStmt, rc);
  }
  if( rc==SQLITE_OK && *pzData==0 && *pzMsg==0 ){
    sqlite3_str *p = sqlite3_str_new(0);
    if( zBody==0 || zBody[0]==0 ){
      sqlite3_str_appendall(p, "empty answer");
    }else{
      sqlite3_str_appendall(p, b2xx ? "the answer is not an Apify webhook: "
                             : eType!=JT_INVALID ? "the answer is not an Apify error: "
                             : "the answer is not JSON: ");
      apifyAppendQuoted(p, zBody, -1);
    }
    rc = apifyStrFinish(p, pzMsg);
  }
  if( rc!=SQLITE_OK ){
    sqlite3_free(*pzData);
    sqlite3_free(*pzType);
    sqlite3_free(*pzMsg);
    *pzData = *pzType = *pzMsg = 0;
  }
  return rc;
}
