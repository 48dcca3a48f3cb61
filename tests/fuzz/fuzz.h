/*
** fuzz.h: what the libFuzzer targets of tests/fuzz share: one in-memory database with SQLite
** linked in directly (the targets are built with SQLITE_CORE, like the unit tests), the request
** rules' kept statements on it, and a check that stops the run with a message.
**
**   make fuzz                      every target, FUZZ_SECONDS (default 60) each
**   build/fuzz/fuzz_request build/fuzz/corpus/fuzz_request tests/fuzz/corpus/fuzz_request \
**       -dict=tests/fuzz/apify.dict       one target by hand (the first directory gets the
**                                         new inputs; the seed corpus stays as it is)
*/
#ifndef FUZZ_H
#define FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "apify.h"

static sqlite3 *fuzzDb;
static ApifyRules *fuzzRules;

/* The database and the kept statements, opened on the first input and kept for the run. */
static inline void fuzzOpen(void){
  if( fuzzDb ) return;
  if( sqlite3_open(":memory:", &fuzzDb)!=SQLITE_OK
   || apifyRulesOpen(fuzzDb, &fuzzRules)!=SQLITE_OK ){
    fprintf(stderr, "fuzz: cannot open the database\n");
    abort();
  }
}

/* Stop the run (libFuzzer keeps the input as a crash) when bOk is false. */
#define FUZZ_CHECK(bOk, ...) do{ if( !(bOk) ){ \
  fprintf(stderr, "fuzz: %s:%d: %s: ", __FILE__, __LINE__, #bOk); \
  fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); abort(); } }while(0)

/* Equal strings, NULL equal only to NULL. */
static inline int fuzzSame(const char *zA, const char *zB){
  return (zA==0 || zB==0) ? zA==zB : strcmp(zA, zB)==0;
}

/* True if z is JSON of type zType ("object", ...), by JSON1 on the fuzz database. */
static inline int fuzzJsonIs(const char *z, const char *zType){
  sqlite3_stmt *pStmt = 0;
  int bIs = 0;
  if( sqlite3_prepare_v2(fuzzDb, "SELECT json_valid(?1) AND json_type(?1)=?2", -1, &pStmt, 0)
      ==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, z, -1, SQLITE_STATIC);
    sqlite3_bind_text(pStmt, 2, zType, -1, SQLITE_STATIC);
    bIs = sqlite3_step(pStmt)==SQLITE_ROW && sqlite3_column_int(pStmt, 0);
  }
  sqlite3_finalize(pStmt);
  return bIs;
}

#endif /* FUZZ_H */
