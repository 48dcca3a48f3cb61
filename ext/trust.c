/*
** trust.c: who may make the extension act, and what it may believe. The safety model of the
** README's Guarantees in one place:
**
**   apifyMac          HMAC-SHA256 over a list of fields: records vouched for with a key derived
**                     from the token (store.c), queued requests sealed with a key of the session
**   apifyTextClean    server text made safe for a message or a column: no control characters,
**                     never the token
**   apifySchemaGuard  what a database's schema may not do: take the place of the extension's
**                     tables, or call a function that sends or configures from a CHECK
**                     constraint (SQLite 3.40 runs DIRECTONLY functions there)
**   apifyQualified    the schema a statement's text names for a table (aux.apify_webhooks)
**
** A database file, a server's answer and the environment are data: nothing here lets them make
** the extension send, skip, forge or leak.
*/
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "apify.h"

#define COUNT(a) ((int)(sizeof(a)/sizeof((a)[0])))

/* ------------------------------------------------------------------------------------------ */
/* MACs */

int apifyMac(const unsigned char *aKey, int nKey, int nField, const char *const *azField,
             const int *anField, unsigned char *aOut){
  sqlite3_str *p = sqlite3_str_new(0);
  unsigned int nOut = 0;
  int i, rc;
  /* Each field as a flag (NULL or not), its length in 8 bytes, then its bytes: no two lists of
  ** fields give the same input. */
  for(i=0; i<nField; i++){
    sqlite3_uint64 n = azField[i] ? (sqlite3_uint64)(anField[i]<0 ? (int)strlen(azField[i])
                                                                   : anField[i]) : 0;
    unsigned char aLen[9];
    int j;
    aLen[0] = azField[i]!=0;
    for(j=0; j<8; j++) aLen[1+j] = (unsigned char)(n>>(56-8*j));
    sqlite3_str_append(p, (const char*)aLen, 9);
    if( n ) sqlite3_str_append(p, azField[i], (int)n);
  }
  rc = sqlite3_str_errcode(p);
  if( rc==SQLITE_OK ){
    const unsigned char *z = (const unsigned char*)sqlite3_str_value(p);
    if( HMAC(EVP_sha256(), aKey, nKey, z ? z : (const unsigned char*)"", 
             (size_t)sqlite3_str_length(p), aOut, &nOut)==0 || nOut!=APIFY_MAC_SIZE ){
      rc = SQLITE_ERROR;
    }
  }
  sqlite3_free(sqlite3_str_finish(p));
  return rc==SQLITE_OK ? SQLITE_OK : rc==SQLITE_NOMEM ? SQLITE_NOMEM : SQLITE_ERROR;
}

/* ------------------------------------------------------------------------------------------ */
/* Server text */

/* The length of the control character at z (n bytes left), 0 when there is none: C0 but for the
** blanks kept (tab and newline when bKeepBlanks), DEL, and C1 (U+0080..U+009F, two bytes). */
static int controlLen(const unsigned char *z, int n, int bKeepBlanks){
  if( z[0]<0x20 ) return bKeepBlanks && (z[0]=='\t' || z[0]=='\n') ? 0 : 1;
  if( z[0]==0x7f ) return 1;
  if( z[0]==0xc2 && n>1 && z[1]>=0x80 && z[1]<=0x9f ) return 2;
  return 0;
}

/* The value of the four hex digits at z, or -1. */
static int hex4(const unsigned char *z){
  int i, v = 0;
  for(i=0; i<4; i++){
    int c = z[i];
    v <<= 4;
    if( c>='0' && c<='9' ) v |= c-'0';
    else if( c>='a' && c<='f' ) v |= c-'a'+10;
    else if( c>='A' && c<='F' ) v |= c-'A'+10;
    else return -1;
  }
  return v;
}

char *apifyTextClean(const char *zIn, int n, const char *zToken, int bJson){
  const unsigned char *z = (const unsigned char*)zIn;
  sqlite3_str *p;
  int nToken = zToken ? (int)strlen(zToken) : 0;
  int i = 0, bString = 0;
  if( zIn==0 ) return 0;
  if( n<0 ) n = (int)strlen(zIn);
  p = sqlite3_str_new(0);
  while( i<n ){
    int nCtl;
    if( nToken>=8 && i+nToken<=n && memcmp(&z[i], zToken, (size_t)nToken)==0 ){
      sqlite3_str_appendall(p, "<redacted>");
      i += nToken;
      continue;
    }
    if( bJson && bString && z[i]=='\\' && i+1<n ){
      /* An escape: control characters written as escapes become U+FFFD too (tab and newline
      ** stay: templates and descriptions have them). */
      int c = z[i+1];
      int v = c=='u' && i+5<n ? hex4(&z[i+2]) : -1;
      if( c=='b' || c=='f' || c=='r' || (v>=0 && ((v<0x20 && v!='\t' && v!='\n')
                                                  || (v>=0x7f && v<=0x9f))) ){
        sqlite3_str_appendall(p, "\\ufffd");
        i += c=='u' ? 6 : 2;
      }else{
        sqlite3_str_append(p, (const char*)&z[i], 2);
        i += 2;
      }
      continue;
    }
    if( bJson && z[i]=='"' ) bString = !bString;
    nCtl = controlLen(&z[i], n-i, bJson && !bString);
    if( nCtl ){
      sqlite3_str_appendall(p, bJson && bString ? "\\ufffd" : "\xef\xbf\xbd");
      i += nCtl;
      continue;
    }
    sqlite3_str_appendchar(p, 1, (char)z[i]);
    i++;
  }
  if( sqlite3_str_errcode(p)!=SQLITE_OK ){
    sqlite3_free(sqlite3_str_finish(p));
    return 0;
  }
  {
    char *zOut = sqlite3_str_finish(p);
    return zOut ? zOut : sqlite3_mprintf("%s", "");
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Reading SQL text: names, as SQLite's tokenizer sees them */

#define TK_OTHER 0
#define TK_NAME  1      /* a bare or quoted identifier; its text decoded into zName */
#define TK_DOT   2

/* The next token of z at *pi (advanced past it): its TK_ kind; a name's decoded text goes to
** zName (nName bytes at most, cut; its real length in *pnName). Blanks and comments are
** skipped; strings are one TK_OTHER. -1 at the end. */
static int sqlToken(const char *z, int *pi, char *zName, int nName, int *pnName){
  int i = *pi, k = 0;
  *pnName = 0;
  for(;;){
    while( z[i]==' ' || z[i]=='\t' || z[i]=='\n' || z[i]=='\r' || z[i]=='\f' ) i++;
    if( z[i]=='-' && z[i+1]=='-' ){
      while( z[i] && z[i]!='\n' ) i++;
    }else if( z[i]=='/' && z[i+1]=='*' ){
      i += 2;
      while( z[i] && !(z[i]=='*' && z[i+1]=='/') ) i++;
      if( z[i] ) i += 2;
    }else{
      break;
    }
  }
  if( z[i]==0 ){
    *pi = i;
    return -1;
  }
  if( z[i]=='"' || z[i]=='`' || z[i]=='[' || z[i]=='\'' ){
    char cEnd = z[i]=='[' ? ']' : z[i];
    int bName = z[i]!='\'';
    for(i++; z[i]; i++){
      if( z[i]==cEnd ){
        if( cEnd!=']' && z[i+1]==cEnd ){ i++; }else{ i++; break; }
      }
      if( k<nName ) zName[k] = z[i];
      k++;
    }
    *pi = i;
    *pnName = k;
    return bName ? TK_NAME : TK_OTHER;
  }
  if( z[i]=='.' ){
    *pi = i+1;
    return TK_DOT;
  }
  if( (z[i]>='a' && z[i]<='z') || (z[i]>='A' && z[i]<='Z') || z[i]=='_'
   || (unsigned char)z[i]>=0x80 ){
    while( (z[i]>='a' && z[i]<='z') || (z[i]>='A' && z[i]<='Z') || z[i]=='_' || z[i]=='$'
        || (z[i]>='0' && z[i]<='9') || (unsigned char)z[i]>=0x80 ){
      if( k<nName ) zName[k] = z[i];
      k++;
      i++;
    }
    *pi = i;
    *pnName = k;
    return TK_NAME;
  }
  *pi = i+1;
  return TK_OTHER;
}

/* True if the name zName (n bytes, possibly cut) is zWant, ignoring ASCII case. */
static int nameIs(const char *zName, int n, const char *zWant){
  return n==(int)strlen(zWant) && sqlite3_strnicmp(zName, zWant, n)==0;
}

char *apifyQualified(const char *zSql, const char *zTable){
  char zPrev[64], zName[64];
  int i = 0, nPrev = 0, nName = 0, eTok, ePrev = TK_OTHER, ePrev2 = TK_OTHER;
  if( zSql==0 ) return 0;
  while( (eTok = sqlToken(zSql, &i, zName, (int)sizeof(zName), &nName))>=0 ){
    if( eTok==TK_NAME && ePrev==TK_DOT && ePrev2==TK_NAME && nameIs(zName, nName, zTable)
     && !nameIs(zPrev, nPrev, "main") && !nameIs(zPrev, nPrev, "temp") ){
      return sqlite3_mprintf("%.*s", nPrev<(int)sizeof(zPrev) ? nPrev : (int)sizeof(zPrev),
                             zPrev);
    }
    if( eTok==TK_NAME ){
      memcpy(zPrev, zName, sizeof(zPrev));
      nPrev = nName;
    }
    ePrev2 = ePrev;
    ePrev = eTok;
  }
  return 0;
}

/* True if a CHECK constraint of the CREATE TABLE text zSql names one of azName[0..nName) as an
** identifier. (DEFAULT clauses and views or triggers SQLite keeps from DIRECTONLY functions
** itself; generated columns and indexes take deterministic functions only.) */
static int sqlNames(const char *zSql, const char *const *azName, int nName, int *piFound){
  char zTok[64];
  int i = 0, n = 0, j, eTok, nDepth = 0, bCheck = 0;
  while( (eTok = sqlToken(zSql, &i, zTok, (int)sizeof(zTok), &n))>=0 ){
    if( nDepth==0 ){
      if( eTok==TK_NAME ) bCheck = nameIs(zTok, n, "check");
      else if( eTok==TK_OTHER && zSql[i-1]=='(' && bCheck ) nDepth = 1;
      else bCheck = 0;
      continue;
    }
    if( eTok==TK_OTHER && zSql[i-1]=='(' ) nDepth++;
    if( eTok==TK_OTHER && zSql[i-1]==')' ) nDepth--;
    if( eTok!=TK_NAME ) continue;
    for(j=0; j<nName; j++){
      if( nameIs(zTok, n, azName[j]) ){
        *piFound = j;
        return 1;
      }
    }
  }
  return 0;
}

/* True if the CREATE VIRTUAL TABLE text zSql uses the module zModule. */
static int usesModule(const char *zSql, const char *zModule){
  char zTok[64];
  int i = 0, n = 0, eTok, bUsing = 0;
  while( (eTok = sqlToken(zSql, &i, zTok, (int)sizeof(zTok), &n))>=0 ){
    if( bUsing ) return eTok==TK_NAME && nameIs(zTok, n, zModule);
    bUsing = eTok==TK_NAME && nameIs(zTok, n, "using");
  }
  return 0;
}

/* The functions that send or configure: no schema may call them. */
static const char *const azGuarded[] = {
  "apify_create_webhook", "apify_config", "apify_test_webhook"
};

/* The eponymous tables: no schema object may take their place. */
static const char *const azEponymous[] = {
  "apify_webhooks", "apify_remote_webhooks", "apify_webhook_dispatches"
};

int apifySchemaGuard(sqlite3 *db, int bChecks, char **pzErr){
  sqlite3_stmt *pDbs = 0;
  int rc;
  *pzErr = 0;
  rc = sqlite3_prepare_v2(db, "SELECT name FROM pragma_database_list", -1, &pDbs, 0);
  while( rc==SQLITE_OK && *pzErr==0 && sqlite3_step(pDbs)==SQLITE_ROW ){
    const char *zDb = (const char*)sqlite3_column_text(pDbs, 0);
    sqlite3_stmt *pObj = 0;
    char *zSql = zDb ? sqlite3_mprintf("SELECT type, name, sql FROM \"%w\".sqlite_schema"
                                       " WHERE sql IS NOT NULL AND type IN ('table','view')", zDb)
                     : 0;
    rc = zSql ? sqlite3_prepare_v2(db, zSql, -1, &pObj, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    while( rc==SQLITE_OK && *pzErr==0 && sqlite3_step(pObj)==SQLITE_ROW ){
      const char *zType = (const char*)sqlite3_column_text(pObj, 0);
      const char *zName = (const char*)sqlite3_column_text(pObj, 1);
      const char *zText = (const char*)sqlite3_column_text(pObj, 2);
      int j, iFound = -1;
      if( zType==0 || zName==0 || zText==0 ){ rc = SQLITE_NOMEM; break; }
      for(j=0; j<COUNT(azEponymous) && *pzErr==0; j++){
        if( sqlite3_stricmp(zName, azEponymous[j])==0 && !usesModule(zText, azEponymous[j]) ){
          *pzErr = sqlite3_mprintf(
            "apify: %s \"%s\" in database \"%s\" takes the place of the extension's table %s:"
            " statements that name %s reach it instead; drop or rename it (ALTER TABLE"
            " \"%w\".\"%w\" RENAME TO ...)%s%s%s",
            zType, zName, zDb, azEponymous[j], azEponymous[j], zDb, zName,
            bChecks ? ", or write temp." : " before loading the extension",
            bChecks ? azEponymous[j] : "", bChecks ? ", which always reaches the extension" : "");
          if( *pzErr==0 ) rc = SQLITE_NOMEM;
        }
      }
      if( *pzErr==0 && rc==SQLITE_OK && bChecks && zType[0]=='t' && strcmp(zDb, "temp")!=0
       && sqlNames(zText, azGuarded, COUNT(azGuarded), &iFound) ){
        /* SQLite 3.40 runs DIRECTONLY functions in CHECK constraints read from a file: a table
        ** whose definition names one could call it from an INSERT of the user's. TEMP tables are
        ** the user's own. */
        *pzErr = sqlite3_mprintf(
          "apify: table \"%s\" in database \"%s\" has a CHECK constraint that calls %s();"
          " the extension does not send or change settings while a database's schema can: drop"
          " or rebuild that table", zName, zDb, azGuarded[iFound]);
        if( *pzErr==0 ) rc = SQLITE_NOMEM;
      }
    }
    if( pObj && sqlite3_finalize(pObj)!=SQLITE_OK && rc==SQLITE_OK ) rc = sqlite3_errcode(db);
    if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM && *pzErr==0 ){
      *pzErr = sqlite3_mprintf("apify: %s", sqlite3_errmsg(db));
      if( *pzErr==0 ) rc = SQLITE_NOMEM;
    }
  }
  sqlite3_finalize(pDbs);
  if( rc==SQLITE_OK && *pzErr ) rc = SQLITE_ERROR;
  return rc;
}
