/*
** template.c: Apify templates (payloadTemplate, headersTemplate). No other file knows the
** template variables, the placeholders or how the platform renders them.
**
**   apifyTemplateCheck    check a payloadTemplate or headersTemplate (request.c calls it)
**   apifyPreviewDispatch  render what the platform would POST for a webhook, offline
**
**   SELECT apify_preview_dispatch(webhook) FROM apify_webhooks;
**   SELECT apify_preview_dispatch('{"payloadTemplate":"{\"run\": {{resource.id}}}"}',
**                                 '{"resource":{"id":"abc"}}') ->> '$.payload';
**   -- {"run": "abc"}
**
** A template is JSON text in which {{name}} or {{name.path}} may stand where a JSON value may
** stand; with shouldInterpolateStrings, {{name}} inside JSON strings counts too. The first
** segment of each name is one of azVariable.
**
** Rendering (the emulator, tests/emulator.py, does the same in Python; they must agree byte for
** byte): the template is copied as it is, except that outside strings each {{name.path}} (blanks
** inside the braces trimmed) becomes the compact JSON text of its value as JSON1 writes it
** (vars -> '$.name.path'), and with shouldInterpolateStrings each {{name.path}} inside a string
** (name of [A-Za-z0-9.]+) becomes a string value's own text, any other value's JSON text, escaped
** as json_quote() does without the outer quotes. Paths walk object members only; a missing one is
** an error naming the field and the variable. A null or "" payloadTemplate is the platform's
** default payload (zDefaultPayload).
**
** JSON is read and built by JSON1 through SQL run on the caller's connection; C only scans bytes
** (the placeholders) and never escapes JSON by hand.
*/
#include "apify.h"
#include <string.h>
#include <stdarg.h>

/* The JSON type of ?1, and whether it is JSON. json_type() fails with "malformed JSON"
** (SQLITE_ERROR) or SQLITE_NOMEM, which json_valid() of SQLite 3.40 does not tell apart (it
** answers 0 to both); json_valid(), run after it on the parse it cached, still rejects the
** JSON5 that json_type() accepts from SQLite 3.42 on. */
static const char zSqlType[] =
  "SELECT json_type(?1), json_valid(?1)";

/* The members of the object ?1, which must be valid JSON, in document order, with their types. */
static const char zSqlEach[] =
  "SELECT key, type FROM json_each(?1)";

#define COUNT(a) ((int)(sizeof(a)/sizeof((a)[0])))

/* JSON types: as json_type() names them, and as messages name them. */
#define JT_INVALID (-1) /* not JSON at all */
#define JT_NULL     0
#define JT_TRUE     1
#define JT_FALSE    2
#define JT_TEXT     5
#define JT_OBJECT   7
static const char *const azJsonType[] = {
  "null", "true", "false", "integer", "real", "text", "array", "object"
};
static const char *const azTypeName[] = {
  "null", "a boolean", "a boolean", "a number", "a number", "a string", "an array", "an object"
};

/* The first segment of every template variable. */
static const char *const azVariable[] = {
  "userId", "createdAt", "eventType", "eventData", "resource", "globals"
};


/* ------------------------------------------------------------------------------------------ */
/* SQL (the message helpers are request.c's: apify.h) */

/* The JT_ value of a type named by json_type(), JT_INVALID for NULL. */
static int jsonType(const unsigned char *zType){
  int i;
  for(i=0; zType && i<COUNT(azJsonType); i++){
    if( strcmp((const char*)zType, azJsonType[i])==0 ) return i;
  }
  return JT_INVALID;
}

/* Set *peType to the JT_ type of the text z[0..n), JT_INVALID when it is not JSON. Templates
** are rare beside the statements request.c runs for every row, so these are prepared per call. */
static int jsonTypeOf(sqlite3 *db, const char *z, int n, int *peType){
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, zSqlType, -1, &pStmt, 0);
  *peType = JT_INVALID;
  if( rc==SQLITE_OK ) rc = sqlite3_bind_text(pStmt, 1, z, n, SQLITE_STATIC);
  if( rc==SQLITE_OK ) rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW && sqlite3_column_int(pStmt, 1) ){
    *peType = jsonType(sqlite3_column_text(pStmt, 0));
    rc = *peType==JT_INVALID ? SQLITE_NOMEM : SQLITE_OK;
  }else if( rc==SQLITE_ROW || rc==SQLITE_ERROR ){
    rc = SQLITE_OK;               /* not JSON */
  }
  sqlite3_finalize(pStmt);        /* its error, if any, is rc's */
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Checking */

/* True for the characters of a variable name: [A-Za-z0-9.], and '_' when bUnderscore. */
static int isNameChar(char c, int bUnderscore){
  return (c>='a' && c<='z') || (c>='A' && c<='Z') || (c>='0' && c<='9') || c=='.'
      || (bUnderscore && c=='_');
}

/* True for the blanks trimmed from a placeholder's name: JSON's whitespace. */
static int isBlank(char c){
  return c==' ' || c=='\t' || c=='\r' || c=='\n';
}

/* Check the placeholder z[0..n), "{{name}}": its name, blanks trimmed, is made of
** [A-Za-z0-9_.] and its first segment is an allowed variable. */
static int templateVar(const char *zField, const char *z, int n, char **pzErr){
  const char *zName = z+2;
  int nName = n-4, nHead = 0, i = 0;
  sqlite3_str *p;
  while( nName>0 && isBlank(zName[0]) ){ zName++; nName--; }
  while( nName>0 && isBlank(zName[nName-1]) ) nName--;
  while( nHead<nName && zName[nHead]!='.' ) nHead++;
  while( i<nName && isNameChar(zName[i], 1) ) i++;
  if( nName>0 && i==nName && apifyNameIndex(zName, nHead, azVariable, COUNT(azVariable))>=0 ){
    return SQLITE_OK;
  }
  p = sqlite3_str_new(0);
  sqlite3_str_appendf(p, "apify: %s: unknown variable ", zField);
  apifyAppendQuoted(p, z, n);
  sqlite3_str_appendall(p, "; allowed: ");
  apifyAppendList(p, azVariable, COUNT(azVariable));
  return apifyErrorStr(pzErr, p);
}

/* Copy the template z[0..n) to *pzOut (sqlite3_malloc'd, *pnOut bytes), each placeholder outside
** JSON strings replaced by zWith, checking every placeholder's variable on the way; those
** inside strings ({{name}} with name in [A-Za-z0-9.]+) are checked only when bInterpolate. */
static int templateReplace(const char *zField, const char *z, int n, int bInterpolate,
                           const char *zWith, char **pzOut, int *pnOut, char **pzErr){
  sqlite3_str *pOut = sqlite3_str_new(0);
  int i, j, iCopy = 0, bString = 0, rc = SQLITE_OK;
  for(i=0; rc==SQLITE_OK && i<n; i++){
    if( bString ){
      if( z[i]=='\\' ){
        i++;
      }else if( z[i]=='"' ){
        bString = 0;
      }else if( bInterpolate && z[i]=='{' && i+1<n && z[i+1]=='{' ){
        for(j=i+2; j<n && isNameChar(z[j], 0); j++){}
        if( j>i+2 && j+1<n && z[j]=='}' && z[j+1]=='}' ){
          rc = templateVar(zField, &z[i], j+2-i, pzErr);
          i = j+1;
        }
      }
    }else if( z[i]=='"' ){
      bString = 1;
    }else if( z[i]=='{' && i+1<n && z[i+1]=='{' ){
      for(j=i+2; j+1<n && (z[j]!='}' || z[j+1]!='}'); j++){}
      if( j+1>=n ){
        rc = apifyErrorf(pzErr, "apify: %s: unclosed \"{{\" at byte %d", zField, i);
      }else{
        rc = templateVar(zField, &z[i], j+2-i, pzErr);
        sqlite3_str_append(pOut, &z[iCopy], i-iCopy);
        sqlite3_str_appendall(pOut, zWith);
        iCopy = j+2;
        i = j+1;
      }
    }
  }
  sqlite3_str_append(pOut, &z[iCopy], n-iCopy);
  *pnOut = sqlite3_str_length(pOut);
  if( rc==SQLITE_OK ){
    rc = apifyStrFinish(pOut, pzOut);
  }else{
    sqlite3_free(sqlite3_str_finish(pOut));
  }
  return rc;
}

/* Check that every member of the JSON object zJson is a string. */
static int headersCheck(sqlite3 *db, const char *zField, const char *zJson, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int rc2, rc = sqlite3_prepare_v2(db, zSqlEach, -1, &pStmt, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    const char *zName = (const char*)sqlite3_column_text(pStmt, 0);
    int eType = jsonType(sqlite3_column_text(pStmt, 1));
    if( zName==0 || eType==JT_INVALID ){
      rc = SQLITE_NOMEM;
    }else if( eType!=JT_TEXT ){
      sqlite3_str *p = sqlite3_str_new(0);
      sqlite3_str_appendf(p, "apify: %s: the value of ", zField);
      apifyAppendQuoted(p, zName, sqlite3_column_bytes(pStmt, 0));
      sqlite3_str_appendf(p, " must be a string, not %s", azTypeName[eType]);
      rc = apifyErrorStr(pzErr, p);
    }
  }
  rc2 = sqlite3_finalize(pStmt);
  return rc==SQLITE_OK ? rc2 : rc;
}

/* See apify.h. The placeholders are replaced by null to check the JSON, and by "" to check that
** a headers template is an object of strings (a placeholder may stand for a header's value).
** pRules is not used: template.c prepares its own statements. */
int apifyTemplateCheck(sqlite3 *db, ApifyRules *pRules, const char *zField, const char *z,
                       int n, int bHeaders, int bInterpolate, char **pzErr){
  char *zNull = 0, *zText = 0;
  int nNull = 0, nText = 0, eType = JT_INVALID, rc = SQLITE_OK;
  (void)pRules;
  *pzErr = 0;
  if( z && n<0 ) n = (int)strlen(z);
  if( z==0 || n==0 ) return SQLITE_OK;    /* absent, or the platform's default */
  rc = templateReplace(zField, z, n, bInterpolate, "null", &zNull, &nNull, pzErr);
  if( rc==SQLITE_OK && (int)strlen(zNull)==nNull ) rc = jsonTypeOf(db, zNull, nNull, &eType);
  if( rc==SQLITE_OK && eType==JT_INVALID ){
    rc = apifyErrorf(pzErr, "apify: %s is not valid JSON after its {{variables}} are replaced", zField);
  }else if( rc==SQLITE_OK && bHeaders && eType!=JT_OBJECT ){
    rc = apifyErrorf(pzErr, "apify: %s must be a JSON object of header names to string values", zField);
  }else if( rc==SQLITE_OK && bHeaders ){
    rc = templateReplace(zField, z, n, bInterpolate, "\"\"", &zText, &nText, pzErr);
    if( rc==SQLITE_OK ) rc = headersCheck(db, zField, zText, pzErr);
  }
  sqlite3_free(zNull);
  sqlite3_free(zText);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Rendering */

/* One step of a placeholder's path: whether the object ?1 has the member ?2, and its value as
** compact JSON text. '$."name"' walks object members only: an array or a scalar has none. */
static const char zSqlStep[] =
  "SELECT json_type(?1, '$.' || json_quote(?2)), ?1 -> ('$.' || json_quote(?2))";

/* The JSON value ?1 as it goes inside a JSON string: a string's own text, any other value's
** JSON text, escaped as json_quote() escapes (the caller drops the outer quotes). */
static const char zSqlInner[] =
  "SELECT CASE json_type(?1) WHEN 'text' THEN json_quote(?1 ->> '$') ELSE json_quote(?1) END";

/* Set *pzVal (sqlite3_malloc'd) to the compact JSON text of the placeholder name
** zName[0..nName) ("resource.meta.origin") in the variables object zVars: segments separated by
** '.', each an object member. A missing variable or member is SQLITE_ERROR, naming zField. */
static int templateValue(sqlite3_stmt *pStep, const char *zField, const char *zVars,
                         const char *zName, int nName, char **pzVal, char **pzErr){
  char *zCur = 0;                 /* the value reached so far; NULL: zVars */
  int i = 0, j, rc = SQLITE_OK;
  for(;;){
    char *zNew = 0;
    for(j=i; j<nName && zName[j]!='.'; j++){}
    rc = sqlite3_bind_text(pStep, 1, zCur ? zCur : zVars, -1, SQLITE_STATIC);
    if( rc==SQLITE_OK ) rc = sqlite3_bind_text(pStep, 2, &zName[i], j-i, SQLITE_STATIC);
    if( rc==SQLITE_OK ) rc = sqlite3_step(pStep);
    if( rc==SQLITE_ROW && sqlite3_column_type(pStep, 0)==SQLITE_NULL ){
      rc = i==0
        ? apifyErrorf(pzErr, "apify: %s: {{%.*s}} has no value: no variable \"%.*s\"",
                 zField, nName, zName, j, zName)
        : apifyErrorf(pzErr, "apify: %s: {{%.*s}} has no value: %.*s has no member \"%.*s\"",
                 zField, nName, zName, i-1, zName, j-i, &zName[i]);
    }else if( rc==SQLITE_ROW ){
      const char *z = (const char*)sqlite3_column_text(pStep, 1);
      zNew = z ? sqlite3_mprintf("%s", z) : 0;
      rc = zNew ? SQLITE_OK : SQLITE_NOMEM;
    }
    if( rc==SQLITE_OK ){
      rc = sqlite3_reset(pStep);
    }else{
      sqlite3_reset(pStep);       /* its error, if any, is rc's */
    }
    sqlite3_free(zCur);           /* no longer bound: the statement is reset */
    zCur = zNew;
    if( rc!=SQLITE_OK || j>=nName ) break;
    i = j+1;
  }
  if( rc!=SQLITE_OK ){
    sqlite3_free(zCur);
    zCur = 0;
  }
  *pzVal = zCur;                  /* ownership moves to the caller */
  return rc;
}

/* Append the value zVal (JSON text) to p as it goes inside a JSON string. */
static int appendInner(sqlite3_stmt *pInner, sqlite3_str *p, const char *zVal){
  int rc = sqlite3_bind_text(pInner, 1, zVal, -1, SQLITE_STATIC);
  if( rc==SQLITE_OK ) rc = sqlite3_step(pInner);
  if( rc==SQLITE_ROW ){
    const char *z = (const char*)sqlite3_column_text(pInner, 0);
    int n = sqlite3_column_bytes(pInner, 0);
    if( z && n>=2 ){
      sqlite3_str_append(p, z+1, n-2);            /* without json_quote()'s outer quotes */
      rc = SQLITE_OK;
    }else{
      rc = SQLITE_NOMEM;
    }
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_reset(pInner);
  }else{
    sqlite3_reset(pInner);
  }
  return rc;
}

/* Render the template z[0..n), which apifyTemplateCheck() accepted, with the variables zVars (a
** JSON object): outside JSON strings each {{name}} (blanks trimmed) becomes the compact JSON
** text of its value; with bInterpolate, inside strings each {{name}} with a name of
** [A-Za-z0-9.]+ becomes its value as appendInner() writes it. Everything else is copied byte for
** byte. *pzOut is sqlite3_malloc'd. SQLITE_OK, SQLITE_ERROR with *pzErr, or SQLITE_NOMEM. */
static int templateRender(sqlite3 *db, const char *zField, const char *z, int n,
                          int bInterpolate, const char *zVars, char **pzOut, char **pzErr){
  sqlite3_stmt *pStep = 0, *pInner = 0;
  sqlite3_str *pOut = sqlite3_str_new(0);
  char *zVal = 0;
  int i, j, iCopy = 0, bString = 0, rc;
  *pzOut = 0;
  rc = sqlite3_prepare_v2(db, zSqlStep, -1, &pStep, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_prepare_v2(db, zSqlInner, -1, &pInner, 0);
  for(i=0; rc==SQLITE_OK && i<n; i++){
    if( bString ){
      if( z[i]=='\\' ){
        i++;
      }else if( z[i]=='"' ){
        bString = 0;
      }else if( bInterpolate && z[i]=='{' && i+1<n && z[i+1]=='{' ){
        for(j=i+2; j<n && isNameChar(z[j], 0); j++){}
        if( j>i+2 && j+1<n && z[j]=='}' && z[j+1]=='}' ){
          rc = templateValue(pStep, zField, zVars, &z[i+2], j-i-2, &zVal, pzErr);
          sqlite3_str_append(pOut, &z[iCopy], i-iCopy);
          if( rc==SQLITE_OK ) rc = appendInner(pInner, pOut, zVal);
          sqlite3_free(zVal);
          zVal = 0;
          iCopy = j+2;
          i = j+1;
        }
      }
    }else if( z[i]=='"' ){
      bString = 1;
    }else if( z[i]=='{' && i+1<n && z[i+1]=='{' ){
      const char *zName = &z[i+2];
      int nName;
      for(j=i+2; j+1<n && (z[j]!='}' || z[j+1]!='}'); j++){}
      if( j+1>=n ){
        rc = apifyErrorf(pzErr, "apify: %s: unclosed \"{{\" at byte %d", zField, i);
        break;
      }
      nName = j-i-2;
      while( nName>0 && isBlank(zName[0]) ){ zName++; nName--; }
      while( nName>0 && isBlank(zName[nName-1]) ) nName--;
      rc = templateValue(pStep, zField, zVars, zName, nName, &zVal, pzErr);
      sqlite3_str_append(pOut, &z[iCopy], i-iCopy);
      if( zVal ) sqlite3_str_appendall(pOut, zVal);
      sqlite3_free(zVal);
      zVal = 0;
      iCopy = j+2;
      i = j+1;
    }
  }
  if( rc==SQLITE_OK ){
    sqlite3_str_append(pOut, &z[iCopy], n-iCopy);
    rc = apifyStrFinish(pOut, pzOut);
  }else{
    sqlite3_free(sqlite3_str_finish(pOut));
  }
  sqlite3_finalize(pStep);
  sqlite3_finalize(pInner);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The preview of a dispatch */

/* The platform's payload when payloadTemplate is null or "". */
static const char zDefaultPayload[] =
  "{\"userId\": {{userId}}, \"createdAt\": {{createdAt}}, \"eventType\": {{eventType}}, "
  "\"eventData\": {{eventData}}, \"resource\": {{resource}}}";

/* The fields of the webhook ?1 that a dispatch reads, with their JSON types. Any other field
** (id, userId, createdAt, stats... of a Webhook the API returned) is ignored here. */
static const char zSqlHook[] =
  "SELECT json_type(?1, '$.payloadTemplate'), ?1 ->> '$.payloadTemplate',"
  " json_type(?1, '$.headersTemplate'), ?1 ->> '$.headersTemplate',"
  " json_type(?1, '$.shouldInterpolateStrings'), json_type(?1, '$.requestUrl')";
#define HOOK_PAYLOAD      0   /* type, then text at +1 */
#define HOOK_HEADERS      2
#define HOOK_INTERPOLATE  4
#define HOOK_URL          5

/* The variables of the webhook ?1: realistic samples built from its userId, first event type
** and condition, each replaced by the member of the same name of ?2 (an object) when it has
** one. ids are 17 characters of [A-Za-z0-9], like the platform's. */
static const char zSqlVars[] =
  "WITH h(userId, eventType, actorId, actorTaskId, actorRunId) AS (SELECT"
  "  CASE json_type(?1, '$.userId') WHEN 'text' THEN ?1 ->> '$.userId'"
  "   ELSE 'wRsJZtadYvn4mBZmm' END,"
  "  CASE json_type(?1, '$.eventTypes[0]') WHEN 'text' THEN ?1 ->> '$.eventTypes[0]'"
  "   ELSE 'ACTOR.RUN.SUCCEEDED' END,"
  "  CASE json_type(?1, '$.condition.actorId') WHEN 'text' THEN ?1 ->> '$.condition.actorId'"
  "   ELSE 'HDSasDasz78YcAPEB' END,"
  "  CASE json_type(?1, '$.condition.actorTaskId') WHEN 'text'"
  "   THEN ?1 ->> '$.condition.actorTaskId' END,"
  "  CASE json_type(?1, '$.condition.actorRunId') WHEN 'text'"
  "   THEN ?1 ->> '$.condition.actorRunId' ELSE '7wKpQzR3mXn8YtBvL' END),"
  " d(v) AS (SELECT json_object("
  "  'userId', userId,"
  "  'createdAt', '2026-01-01T12:00:00.000Z',"
  "  'eventType', eventType,"
  "  'eventData', json_patch('{}', json_object('actorId', actorId,"
  "    'actorTaskId', actorTaskId, 'actorRunId', actorRunId)),"
  "  'resource', json_patch('{}', json_object("
  "    'id', actorRunId, 'actId', actorId, 'actorTaskId', actorTaskId, 'userId', userId,"
  "    'startedAt', '2026-01-01T11:59:00.000Z', 'finishedAt', '2026-01-01T12:00:00.000Z',"
  "    'status', 'SUCCEEDED', 'statusMessage', 'Finished', 'meta', json_object('origin', 'API'),"
  "    'defaultDatasetId', 'bPk2nTq9LwXe4RzCy', 'defaultKeyValueStoreId', 'sV6mJd3HfQa8UcNxp',"
  "    'defaultRequestQueueId', 'gT5rWy2KeLb7ZqDmh', 'buildId', 'Xc4uHn9PsEf2GjKtw',"
  "    'buildNumber', '0.0.1', 'exitCode', 0, 'usageTotalUsd', 0.01)),"
  "  'globals', json_object()) FROM h)"
  " SELECT json_object("
  "  'userId', json(coalesce(?2 -> '$.userId', v -> '$.userId')),"
  "  'createdAt', json(coalesce(?2 -> '$.createdAt', v -> '$.createdAt')),"
  "  'eventType', json(coalesce(?2 -> '$.eventType', v -> '$.eventType')),"
  "  'eventData', json(coalesce(?2 -> '$.eventData', v -> '$.eventData')),"
  "  'resource', json(coalesce(?2 -> '$.resource', v -> '$.resource')),"
  "  'globals', json(coalesce(?2 -> '$.globals', v -> '$.globals'))) FROM d";

/* The headers the platform sends: those of the rendered headers template ?1 (an object of
** strings) in their order, less any the platform sets (names compared ignoring ASCII case),
** then the platform's own. ?2 is the webhook. */
static const char zSqlHeaders[] =
  "SELECT json_group_object(name, value) FROM ("
  " SELECT key AS name, value, 0 AS grp, id AS ord FROM json_each(?1)"
  "  WHERE lower(key) NOT IN ('content-type', 'x-apify-webhook', 'x-apify-webhook-dispatch-id',"
  "                           'x-apify-request-origin')"
  " UNION ALL SELECT 'Content-Type', 'application/json', 1, 1"
  " UNION ALL SELECT 'X-Apify-Webhook', CASE json_type(?2, '$.id') WHEN 'text'"
  "   THEN ?2 ->> '$.id' ELSE '<webhook id>' END, 1, 2"
  " UNION ALL SELECT 'X-Apify-Webhook-Dispatch-Id', '<dispatch id>', 1, 3"
  " UNION ALL SELECT 'X-Apify-Request-Origin', 'APIFY', 1, 4"
  " ORDER BY grp, ord)";

/* The preview itself. */
static const char zSqlPreview[] =
  "SELECT json_object('method', 'POST',"
  " 'url', CASE json_type(?1, '$.requestUrl') WHEN 'text' THEN ?1 ->> '$.requestUrl' END,"
  " 'headers', json(?2), 'body', json(?3), 'payload', ?3)";

/* Check that zJson (n bytes; NULL for SQL NULL) is a JSON object; zWhat names it in messages
** ("the webhook", "the variables") and zIs is its verb ("is", "are"). */
static int objectCheck(sqlite3 *db, const char *zWhat, const char *zIs, const char *zJson, int n,
                       char **pzErr){
  int eType = JT_INVALID, rc;
  if( zJson==0 ) return apifyErrorf(pzErr, "apify: %s %s NULL; pass a JSON object", zWhat, zIs);
  rc = jsonTypeOf(db, zJson, n, &eType);
  if( rc==SQLITE_OK && eType==JT_INVALID ){
    sqlite3_str *p = sqlite3_str_new(0);
    sqlite3_str_appendf(p, "apify: %s %s not valid JSON: ", zWhat, zIs);
    apifyAppendQuoted(p, zJson, n);
    rc = apifyErrorStr(pzErr, p);
  }else if( rc==SQLITE_OK && eType!=JT_OBJECT ){
    rc = apifyErrorf(pzErr, "apify: %s must be a JSON object, not %s", zWhat, azTypeName[eType]);
  }
  return rc;
}

/* Check that every member of the variables object zVars is a template variable. */
static int variablesCheck(sqlite3 *db, const char *zVars, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int rc2, rc = sqlite3_prepare_v2(db, zSqlEach, -1, &pStmt, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_bind_text(pStmt, 1, zVars, -1, SQLITE_STATIC);
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    const char *zName = (const char*)sqlite3_column_text(pStmt, 0);
    int nName = sqlite3_column_bytes(pStmt, 0);
    if( zName==0 ){
      rc = SQLITE_NOMEM;
    }else if( apifyNameIndex(zName, nName, azVariable, COUNT(azVariable))<0 ){
      sqlite3_str *p = sqlite3_str_new(0);
      sqlite3_str_appendall(p, "apify: variables: unknown variable ");
      apifyAppendQuoted(p, zName, nName);
      sqlite3_str_appendall(p, "; allowed: ");
      apifyAppendList(p, azVariable, COUNT(azVariable));
      rc = apifyErrorStr(pzErr, p);
    }
  }
  rc2 = sqlite3_finalize(pStmt);
  return rc==SQLITE_OK ? rc2 : rc;
}

/* Run zSql with the text parameters az[0..nParam) and copy its one text result to *pzOut
** (sqlite3_malloc'd). */
static int sqlText(sqlite3 *db, const char *zSql, const char *const *az, int nParam,
                   char **pzOut){
  sqlite3_stmt *pStmt = 0;
  int i, rc2, rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  *pzOut = 0;
  for(i=0; rc==SQLITE_OK && i<nParam; i++){
    rc = sqlite3_bind_text(pStmt, i+1, az[i], -1, SQLITE_STATIC);
  }
  if( rc==SQLITE_OK ) rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    const char *z = (const char*)sqlite3_column_text(pStmt, 0);
    *pzOut = z ? sqlite3_mprintf("%s", z) : 0;
    rc = *pzOut ? SQLITE_OK : SQLITE_NOMEM;
  }
  rc2 = sqlite3_finalize(pStmt);
  return rc==SQLITE_OK ? rc2 : rc;
}

/* See apify.h. */
int apifyPreviewDispatch(sqlite3 *db, const char *zHook, int nHook, const char *zGiven,
                         int nGiven, char **pzOut, char **pzErr){
  static const char *const azTplField[] = { "payloadTemplate", "headersTemplate" };
  sqlite3_stmt *pStmt = 0;
  char *zHookCopy = 0, *zGivenCopy = 0, *azTpl[2] = { 0, 0 }, *zVars = 0, *zPayload = 0;
  char *zRendered = 0, *zHeaders = 0;
  int i, rc2, bInterpolate = 0, rc;
  *pzOut = 0;
  *pzErr = 0;
  if( zHook && nHook<0 ) nHook = (int)strlen(zHook);
  if( zGiven && nGiven<0 ) nGiven = (int)strlen(zGiven);
  rc = objectCheck(db, "the webhook", "is", zHook, nHook, pzErr);
  if( rc==SQLITE_OK && zGiven ) rc = objectCheck(db, "the variables", "are", zGiven, nGiven, pzErr);
  if( rc==SQLITE_OK ){
    /* NUL-terminated copies of exactly the bytes given, for the statements below */
    zHookCopy = sqlite3_mprintf("%.*s", nHook, zHook);
    zGivenCopy = sqlite3_mprintf("%.*s", zGiven ? nGiven : 2, zGiven ? zGiven : "{}");
    if( zHookCopy==0 || zGivenCopy==0 ) rc = SQLITE_NOMEM;
  }
  if( rc==SQLITE_OK ) rc = variablesCheck(db, zGivenCopy, pzErr);

  /* The fields the dispatch reads, each of its type. */
  if( rc==SQLITE_OK ) rc = sqlite3_prepare_v2(db, zSqlHook, -1, &pStmt, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_bind_text(pStmt, 1, zHookCopy, -1, SQLITE_STATIC);
  if( rc==SQLITE_OK ) rc = sqlite3_step(pStmt);   /* one row, always */
  if( rc==SQLITE_ROW ){
    static const struct { const char *zName; int iCol; int eType; } aField[] = {
      { "payloadTemplate", HOOK_PAYLOAD, JT_TEXT },
      { "headersTemplate", HOOK_HEADERS, JT_TEXT },
      { "requestUrl", HOOK_URL, JT_TEXT },
      { "shouldInterpolateStrings", HOOK_INTERPOLATE, JT_TRUE },   /* a boolean */
    };
    rc = SQLITE_OK;
    for(i=0; rc==SQLITE_OK && i<COUNT(aField); i++){
      int eType = jsonType(sqlite3_column_text(pStmt, aField[i].iCol));   /* absent: invalid */
      if( eType==JT_FALSE ) eType = JT_TRUE;
      if( eType==JT_INVALID || eType==JT_NULL || eType==aField[i].eType ) continue;
      rc = apifyErrorf(pzErr, "apify: %s must be %s or null, not %s", aField[i].zName,
                  azTypeName[aField[i].eType], azTypeName[eType]);
    }
    bInterpolate = jsonType(sqlite3_column_text(pStmt, HOOK_INTERPOLATE))==JT_TRUE;
    for(i=0; rc==SQLITE_OK && i<2; i++){
      int iCol = (i==0 ? HOOK_PAYLOAD : HOOK_HEADERS) + 1;
      const char *z = (const char*)sqlite3_column_text(pStmt, iCol);
      if( z==0 && sqlite3_column_type(pStmt, iCol)!=SQLITE_NULL ){
        rc = SQLITE_NOMEM;
      }else if( z && z[0] ){
        azTpl[i] = sqlite3_mprintf("%s", z);
        if( azTpl[i]==0 ) rc = SQLITE_NOMEM;
      }
    }
  }
  rc2 = sqlite3_finalize(pStmt);
  if( rc==SQLITE_OK ) rc = rc2;

  /* Checked as when created, then rendered with the variables. */
  for(i=0; rc==SQLITE_OK && i<2; i++){
    if( azTpl[i] ) rc = apifyTemplateCheck(db, 0, azTplField[i], azTpl[i], -1, i, bInterpolate,
                                           pzErr);
  }
  if( rc==SQLITE_OK ){
    const char *az[2];
    az[0] = zHookCopy;
    az[1] = zGivenCopy;
    rc = sqlText(db, zSqlVars, az, 2, &zVars);
  }
  if( rc==SQLITE_OK ){
    const char *zTpl = azTpl[0] ? azTpl[0] : zDefaultPayload;
    rc = templateRender(db, azTplField[0], zTpl, (int)strlen(zTpl), bInterpolate, zVars,
                        &zPayload, pzErr);
  }
  if( rc==SQLITE_OK && azTpl[1] ){
    rc = templateRender(db, azTplField[1], azTpl[1], (int)strlen(azTpl[1]), bInterpolate, zVars,
                        &zRendered, pzErr);
    if( rc==SQLITE_OK ) rc = headersCheck(db, azTplField[1], zRendered, pzErr);
  }
  if( rc==SQLITE_OK ){
    const char *az[2];
    az[0] = zRendered ? zRendered : "{}";
    az[1] = zHookCopy;
    rc = sqlText(db, zSqlHeaders, az, 2, &zHeaders);
  }
  if( rc==SQLITE_OK ){
    const char *az[3];
    az[0] = zHookCopy;
    az[1] = zHeaders;
    az[2] = zPayload;
    rc = sqlText(db, zSqlPreview, az, 3, pzOut);
  }
  sqlite3_free(zHookCopy);
  sqlite3_free(zGivenCopy);
  sqlite3_free(azTpl[0]);
  sqlite3_free(azTpl[1]);
  sqlite3_free(zVars);
  sqlite3_free(zPayload);
  sqlite3_free(zRendered);
  sqlite3_free(zHeaders);
  return rc;
}
