/*
** fuzz_request.c: libFuzzer over apifyRequestBuild(), the validation of a webhook and the
** building of its canonical body and idempotency key. The input is the webhook, exactly its
** bytes (no NUL terminator: a read past the end is an ASan report).
**
** Besides no crash, no leak and no undefined behaviour, every input must keep these:
**   - the result is SQLITE_OK with a body and a key, or SQLITE_ERROR with an "apify: " message
**     and nothing else (never SQLITE_NOMEM: memory does not run out here);
**   - the kept statements (ApifyRules) and freshly prepared ones give the same result;
**   - a body built is a JSON object, and building it again gives the same body and key (the
**     canonical body is a fixed point: what is sent would be sent again unchanged).
*/
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *aData, size_t nData);

int LLVMFuzzerTestOneInput(const uint8_t *aData, size_t nData){
  const char *zIn = (const char*)aData;
  char *zBody = 0, *zKey = 0, *zErr = 0;
  char *zBody2 = 0, *zKey2 = 0, *zErr2 = 0;
  int rc, rc2;
  if( nData>(size_t)APIFY_MAX_BODY ) return 0;
  fuzzOpen();

  rc = apifyRequestBuild(fuzzDb, fuzzRules, zIn, (int)nData, &zBody, &zKey, &zErr);
  FUZZ_CHECK(rc==SQLITE_OK || rc==SQLITE_ERROR, "rc=%d %s", rc, zErr ? zErr : "");
  if( rc==SQLITE_OK ){
    FUZZ_CHECK(zBody && zKey && !zErr, "outputs of a success");
    FUZZ_CHECK(fuzzJsonIs(zBody, "object"), "body %s", zBody);
  }else{
    FUZZ_CHECK(!zBody && !zKey && zErr && strncmp(zErr, "apify: ", 7)==0, "error %s",
               zErr ? zErr : "NULL");
  }

  /* The same without kept statements. */
  rc2 = apifyRequestBuild(fuzzDb, 0, zIn, (int)nData, &zBody2, &zKey2, &zErr2);
  FUZZ_CHECK(rc2==rc && fuzzSame(zBody, zBody2) && fuzzSame(zKey, zKey2)
             && fuzzSame(zErr, zErr2), "with and without ApifyRules: %d %s / %d %s",
             rc, zErr ? zErr : zBody, rc2, zErr2 ? zErr2 : zBody2);
  sqlite3_free(zBody2); sqlite3_free(zKey2); sqlite3_free(zErr2);
  zBody2 = zKey2 = zErr2 = 0;

  /* The body as input: the same body and key again. */
  if( rc==SQLITE_OK ){
    rc2 = apifyRequestBuild(fuzzDb, fuzzRules, zBody, -1, &zBody2, &zKey2, &zErr2);
    FUZZ_CHECK(rc2==SQLITE_OK && fuzzSame(zBody, zBody2) && fuzzSame(zKey, zKey2),
               "not a fixed point: %s -> %d %s", zBody, rc2, zErr2 ? zErr2 : zBody2);
    sqlite3_free(zBody2); sqlite3_free(zKey2); sqlite3_free(zErr2);
  }
  sqlite3_free(zBody);
  sqlite3_free(zKey);
  sqlite3_free(zErr);
  return 0;
}
