/*
** fuzz_reply.c: libFuzzer over apifyReplyRead(), which reads what the server answered: the
** only input of the extension that comes from the network. The first two bytes of the input
** are the HTTP status (100 + their value modulo 500), the rest the body; a body holds no NUL
** (the transport hands it over as a C string), so it is cut at its first NUL.
**
** Besides no crash, no leak and no undefined behaviour, every input must keep these:
**   - the result is SQLITE_OK (never SQLITE_NOMEM here);
**   - exactly one of: the webhook (a JSON object, only on a 2xx), or a message;
**   - an error type only with a message, and never on a 2xx;
**   - the kept statements (ApifyRules) and freshly prepared ones give the same result.
*/
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *aData, size_t nData);

int LLVMFuzzerTestOneInput(const uint8_t *aData, size_t nData){
  char *zBody;
  char *zData = 0, *zType = 0, *zMsg = 0, *zData2 = 0, *zType2 = 0, *zMsg2 = 0;
  int iStatus, b2xx, rc, rc2;
  if( nData<2 || nData>(size_t)APIFY_MAX_REPLY ) return 0;
  fuzzOpen();
  iStatus = 100 + (aData[0]*256 + aData[1]) % 500;
  b2xx = iStatus>=200 && iStatus<300;
  zBody = malloc(nData-1);
  if( zBody==0 ) return 0;
  memcpy(zBody, aData+2, nData-2);
  zBody[nData-2] = 0;

  rc = apifyReplyRead(fuzzDb, fuzzRules, iStatus, zBody, &zData, &zType, &zMsg);
  FUZZ_CHECK(rc==SQLITE_OK, "rc=%d", rc);
  FUZZ_CHECK((zData==0)!=(zMsg==0), "data %s, message %s", zData ? zData : "NULL",
             zMsg ? zMsg : "NULL");
  FUZZ_CHECK(zData==0 || (b2xx && fuzzJsonIs(zData, "object")), "data %s on %d", zData,
             iStatus);
  FUZZ_CHECK(zType==0 || (zMsg && !b2xx), "type %s on %d", zType, iStatus);
  rc2 = apifyReplyRead(fuzzDb, 0, iStatus, zBody, &zData2, &zType2, &zMsg2);
  FUZZ_CHECK(rc2==rc && fuzzSame(zData, zData2) && fuzzSame(zType, zType2)
             && fuzzSame(zMsg, zMsg2), "with and without ApifyRules");
  sqlite3_free(zData); sqlite3_free(zType); sqlite3_free(zMsg);
  sqlite3_free(zData2); sqlite3_free(zType2); sqlite3_free(zMsg2);
  free(zBody);
  return 0;
}
