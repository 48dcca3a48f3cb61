/*
** fuzz_template.c: libFuzzer over apifyTemplateCheck(), the checker of payloadTemplate and
** headersTemplate. The input is the template, exactly its bytes (no NUL terminator). Each input
** is checked in the four modes: payload or headers, with and without interpolation.
**
** Besides no crash, no leak and no undefined behaviour, every input must keep these:
**   - each result is SQLITE_OK without a message, or SQLITE_ERROR with an "apify: " message
**     naming the field;
**   - the kept statements (ApifyRules) and freshly prepared ones give the same result;
**   - the modes only add rules: a template valid as headers is valid as a payload, and one
**     valid with interpolation is valid without.
*/
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *aData, size_t nData);

int LLVMFuzzerTestOneInput(const uint8_t *aData, size_t nData){
  static const char *const azField[2] = { "payloadTemplate", "headersTemplate" };
  const char *zIn = (const char*)aData;
  int aRc[2][2];
  int bHeaders, bInterp;
  if( nData>(size_t)APIFY_MAX_BODY ) return 0;
  fuzzOpen();
  for(bHeaders=0; bHeaders<2; bHeaders++){
    for(bInterp=0; bInterp<2; bInterp++){
      char *zErr = 0, *zErr2 = 0;
      int rc = apifyTemplateCheck(fuzzDb, fuzzRules, azField[bHeaders], zIn, (int)nData,
                                  bHeaders, bInterp, &zErr);
      int rc2 = apifyTemplateCheck(fuzzDb, 0, azField[bHeaders], zIn, (int)nData,
                                   bHeaders, bInterp, &zErr2);
      FUZZ_CHECK(rc==SQLITE_OK || rc==SQLITE_ERROR, "rc=%d", rc);
      FUZZ_CHECK(rc==SQLITE_OK ? zErr==0
                 : (zErr && strncmp(zErr, "apify: ", 7)==0
                    && strncmp(zErr+7, azField[bHeaders], strlen(azField[bHeaders]))==0),
                 "rc=%d message %s", rc, zErr ? zErr : "NULL");
      FUZZ_CHECK(rc==rc2 && fuzzSame(zErr, zErr2), "with and without ApifyRules: %s / %s",
                 zErr ? zErr : "OK", zErr2 ? zErr2 : "OK");
      aRc[bHeaders][bInterp] = rc;
      sqlite3_free(zErr);
      sqlite3_free(zErr2);
    }
  }
  for(bInterp=0; bInterp<2; bInterp++){
    FUZZ_CHECK(aRc[1][bInterp]!=SQLITE_OK || aRc[0][bInterp]==SQLITE_OK,
               "valid as headers, not as a payload (interpolation %d)", bInterp);
  }
  for(bHeaders=0; bHeaders<2; bHeaders++){
    FUZZ_CHECK(aRc[bHeaders][1]!=SQLITE_OK || aRc[bHeaders][0]==SQLITE_OK,
               "valid with interpolation, not without (headers %d)", bHeaders);
  }
  return 0;
}
