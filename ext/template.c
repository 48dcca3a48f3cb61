/*
** template.c: Apify templates (payloadTemplate, headersTemplate). No other file knows the
** template variables, the placeholders or how the platform renders them.
**
**   apifyTemplateCheck    check a payloadTemplate or headersTemplate (request.c calls it)
**
** A template is JSON text in which {{name}} or {{name.path}} may stand where a JSON value may
** stand; with shouldInterpolateStrings, {{name}} inside JSON strings counts too. The first
** segment of each name is one of azVariable.
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

#define QUOTE_CHARS 60   /* characters of a bad value quoted in a message */

/* ------------------------------------------------------------------------------------------ */
/* Messages and SQL (the same helpers as request.c's, which keeps its own) */

/* Set *pzErr to a message formatted like sqlite3_mprintf(). Returns SQLITE_ERROR, or
** SQLITE_NOMEM when the message cannot be made. */
static int errorf(char **pzErr, const char *zFmt, ...){
  va_list ap;
  va_start(ap, zFmt);
  *pzErr = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
}

/* Finish the (non-empty) text p into *pz. SQLITE_OK, or SQLITE_NOMEM and *pz NULL. */
static int strFinish(sqlite3_str *p, char **pz){
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
static int errorStr(char **pzErr, sqlite3_str *p){
  return strFinish(p, pzErr)==SQLITE_OK ? SQLITE_ERROR : SQLITE_NOMEM;
}

/* Append the names azName[0..nName) to p, separated by commas. */
static void appendList(sqlite3_str *p, const char *const *azName, int nName){
  int i;
  for(i=0; i<nName; i++) sqlite3_str_appendf(p, "%s%s", i ? ", " : "", azName[i]);
}

/* Append z[0..n) (n<0: up to its NUL) to p in double quotes, cut after QUOTE_CHARS characters
** with "...", control characters shown as spaces: a message stays one short line. */
static void appendQuoted(sqlite3_str *p, const char *z, int n){
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
static int nameIndex(const char *z, int n, const char *const *azName, int nName){
  int i;
  for(i=0; i<nName; i++){
    if( (int)strlen(azName[i])==n && memcmp(z, azName[i], (size_t)n)==0 ) return i;
  }
  return -1;
}

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
  if( nName>0 && i==nName && nameIndex(zName, nHead, azVariable, COUNT(azVariable))>=0 ){
    return SQLITE_OK;
  }
  p = sqlite3_str_new(0);
  sqlite3_str_appendf(p, "apify: %s: unknown variable ", zField);
  appendQuoted(p, z, n);
  sqlite3_str_appendall(p, "; allowed: ");
  appendList(p, azVariable, COUNT(azVariable));
  return errorStr(pzErr, p);
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
        rc = errorf(pzErr, "apify: %s: unclosed \"{{\" at byte %d", zField, i);
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
    rc = strFinish(pOut, pzOut);
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
      appendQuoted(p, zName, sqlite3_column_bytes(pStmt, 0));
      sqlite3_str_appendf(p, " must be a string, not %s", azTypeName[eType]);
      rc = errorStr(pzErr, p);
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
    rc = errorf(pzErr, "apify: %s is not valid JSON after its {{variables}} are replaced", zField);
  }else if( rc==SQLITE_OK && bHeaders && eType!=JT_OBJECT ){
    rc = errorf(pzErr, "apify: %s must be a JSON object of header names to string values", zField);
  }else if( rc==SQLITE_OK && bHeaders ){
    rc = templateReplace(zField, z, n, bInterpolate, "\"\"", &zText, &nText, pzErr);
    if( rc==SQLITE_OK ) rc = headersCheck(db, zField, zText, pzErr);
  }
  sqlite3_free(zNull);
  sqlite3_free(zText);
  return rc;
}
