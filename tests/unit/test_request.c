/*
** test_request.c: unit tests of ext/request.c and ext/template.c: every validation rule and its
** exact message, the canonical body and the derived key, templates checked and rendered (the
** dispatch preview), the API's answers, and running out of memory at every allocation.
**
**   cc -std=c11 -Wall -Wextra -Werror -g -DSQLITE_CORE -Iext tests/unit/test_request.c \
**      ext/request.c ext/template.c tests/unit/url_stub.c -lsqlite3 -lcrypto -o /tmp/test_request
**
** (make unit links ext/transport.c, the real apifyUrlParse, instead of the temporary stub.)
**
** Webhooks are written with ' for " so the tests stay readable; build() swaps them back.
*/
#include "apify.h"
#include "unit.h"
#include "fault.h"

static sqlite3 *db;                    /* the connection every test but the memory ones uses */
static char *zBody, *zKey, *zErr;      /* outputs of the last build() */

/* ------------------------------------------------------------------------------------------ */

static void buildReset(void){
  sqlite3_free(zBody);
  sqlite3_free(zKey);
  sqlite3_free(zErr);
  zBody = zKey = zErr = 0;
}

/* apifyRequestBuild() on the n bytes at z, exactly. */
static int buildRaw(const char *z, int n){
  buildReset();
  return apifyRequestBuild(db, 0, z, n, &zBody, &zKey, &zErr);
}

/* apifyRequestBuild() on zJson with every ' turned into ". */
static int build(const char *zJson){
  char *z = sqlite3_mprintf("%s", zJson), *p;
  int rc;
  for(p=z; *p; p++) if( *p=='\'' ) *p = '"';
  rc = buildRaw(z, -1);
  sqlite3_free(z);
  return rc;
}

#define CHECK_ERR(json, msg) do{ \
  CHECK_EQ_INT(build(json), SQLITE_ERROR); CHECK_STR(zErr, msg); \
  CHECK_STR(zBody, 0); CHECK_STR(zKey, 0); \
}while(0)
#define CHECK_OK(json) do{ \
  CHECK_EQ_INT(build(json), SQLITE_OK); CHECK_STR(zErr, 0); CHECK(zBody && zKey); \
}while(0)

/* A minimal valid webhook, in parts that tests combine and change one at a time. */
#define URL   "'requestUrl':'https://example.com/hook'"
#define EVENT "'eventTypes':['ACTOR.RUN.SUCCEEDED']"
#define COND  "'condition':{'actorId':'HDSasDasz78YcAPEB'}"
#define BASE  URL "," EVENT "," COND

/* The body of {BASE} and its key: the SHA-256 of the body without the key, verified with
**   printf '%s' '{"requestUrl":"https://example.com/hook","eventTypes":["ACTOR.RUN.SUCCEEDED"],\
**   "condition":{"actorId":"HDSasDasz78YcAPEB"}}' | sha256sum     (as one line, without the \) */
#define BASE_KEY "apify-sqlite-172cb6db351eccd8866a17eb8dfacd1ba71d3ab808cafe2d4d89f19e1986400f"
#define BASE_BODY "{\"requestUrl\":\"https://example.com/hook\"," \
  "\"eventTypes\":[\"ACTOR.RUN.SUCCEEDED\"],\"condition\":{\"actorId\":\"HDSasDasz78YcAPEB\"}," \
  "\"idempotencyKey\":\"" BASE_KEY "\"}"

/* Every field, in reverse order, with an explicit null in condition. */
static const char zFull[] =
  "{\"doNotRetry\": true, \"ignoreSslErrors\": false, \"shouldInterpolateStrings\": true,"
  " \"description\": \"nightly \\u00e9 run\\n\","
  " \"headersTemplate\":"
  " \"{\\\"X-Run\\\": {{resource.id}}, \\\"X-Event\\\": \\\"{{eventType}}\\\"}\","
  " \"payloadTemplate\": \"{\\\"a\\\": {{resource.id}},  \\\"b\\\": \\\"{{eventType}}\\\"}\","
  " \"idempotencyKey\": \"my-key-\\u00e9\", \"isAdHoc\": false,"
  " \"condition\": {\"actorRunId\": \"run1\", \"actorTaskId\": null, \"actorId\": \"act1\"},"
  " \"eventTypes\": [\"ACTOR.RUN.FAILED\", \"ACTOR.RUN.SUCCEEDED\"],"
  " \"requestUrl\": \"https://example.com/hook?x=1\"}";
static const char zFullBody[] =
  "{\"requestUrl\":\"https://example.com/hook?x=1\","
  "\"eventTypes\":[\"ACTOR.RUN.FAILED\",\"ACTOR.RUN.SUCCEEDED\"],"
  "\"condition\":{\"actorId\":\"act1\",\"actorRunId\":\"run1\"},\"isAdHoc\":false,"
  "\"idempotencyKey\":\"my-key-\xc3\xa9\","
  "\"payloadTemplate\":\"{\\\"a\\\": {{resource.id}},  \\\"b\\\": \\\"{{eventType}}\\\"}\","
  "\"headersTemplate\":"
  "\"{\\\"X-Run\\\": {{resource.id}}, \\\"X-Event\\\": \\\"{{eventType}}\\\"}\","
  "\"description\":\"nightly \xc3\xa9 run\\n\",\"shouldInterpolateStrings\":true,"
  "\"ignoreSslErrors\":false,\"doNotRetry\":true}";

static void testInput(void){
  char aBig[200];
  CHECK_EQ_INT(buildRaw(0, 0), SQLITE_ERROR);
  CHECK_STR(zErr, "apify: the webhook is NULL; pass a JSON object");
  CHECK_EQ_INT(buildRaw("{\"description\":\"\xff\"}", -1), SQLITE_ERROR);
  CHECK_STR(zErr, "apify: the webhook is not valid UTF-8 (byte 16)");
  CHECK_EQ_INT(buildRaw("{\"a\":\"\xc0\xaf\"}", -1), SQLITE_ERROR);          /* overlong */
  CHECK_STR(zErr, "apify: the webhook is not valid UTF-8 (byte 6)");
  CHECK_EQ_INT(buildRaw("{\"a\":\"\xed\xa0\x80\"}", -1), SQLITE_ERROR);      /* surrogate */
  CHECK_STR(zErr, "apify: the webhook is not valid UTF-8 (byte 6)");
  CHECK_EQ_INT(buildRaw("{\"a\":\"\xe2\x82", -1), SQLITE_ERROR);             /* cut short */
  CHECK_STR(zErr, "apify: the webhook is not valid UTF-8 (byte 6)");
  CHECK_EQ_INT(buildRaw("{}\0{}", 5), SQLITE_ERROR);
  CHECK_STR(zErr, "apify: the webhook contains a NUL byte at byte 2");
  CHECK_EQ_INT(buildRaw("{\"description\":\"a\\u0000b\"}", -1), SQLITE_ERROR);
  CHECK_STR(zErr, "apify: the webhook contains a NUL character (\\u0000) at byte 17");
  CHECK_ERR("{'description':'a\\\\u0000b'}",                    /* an escaped backslash, no NUL */
            "apify: requestUrl is required");
  CHECK_ERR("{requestUrl", "apify: the webhook is not valid JSON: \"{requestUrl\"");
  CHECK_ERR("", "apify: the webhook is not valid JSON: \"\"");
  CHECK_ERR("{'a':1,}", "apify: the webhook is not valid JSON: \"{\"a\":1,}\"");
  memset(aBig, 'x', sizeof(aBig)-1);
  aBig[sizeof(aBig)-1] = 0;
  CHECK_ERR(aBig, "apify: the webhook is not valid JSON: "
            "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\"");
  CHECK_ERR("[" BASE "]", "apify: the webhook is not valid JSON: "
            "\"[\"requestUrl\":\"https://example.com/hook\",\"eventTypes\":[\"ACTO...\"");
  CHECK_ERR("[{" BASE "}]", "apify: the webhook must be a JSON object, not an array");
  CHECK_ERR("'x'", "apify: the webhook must be a JSON object, not a string");
  CHECK_ERR("1.5", "apify: the webhook must be a JSON object, not a number");
  CHECK_ERR("12", "apify: the webhook must be a JSON object, not a number");
  CHECK_ERR("true", "apify: the webhook must be a JSON object, not a boolean");
  CHECK_ERR(" null ", "apify: the webhook must be a JSON object, not null");
}

static void testFields(void){
  CHECK_ERR("{'requestURL':'https://x.io'}",
            "apify: unknown field \"requestURL\"; did you mean \"requestUrl\"?");
  CHECK_ERR("{" BASE ",'eventType':'TEST'}",
            "apify: unknown field \"eventType\"; did you mean \"eventTypes\"?");
  CHECK_ERR("{" BASE ",'idempotency_key':'k'}",
            "apify: unknown field \"idempotency_key\"; did you mean \"idempotencyKey\"?");
  CHECK_ERR("{" BASE ",'ShouldInterpolateStrings':true}",
            "apify: unknown field \"ShouldInterpolateStrings\"; did you mean "
            "\"shouldInterpolateStrings\"?");
  CHECK_ERR("{'foo':1," BASE "}",
            "apify: unknown field \"foo\"; known fields: requestUrl, eventTypes, condition, "
            "isAdHoc, idempotencyKey, payloadTemplate, headersTemplate, description, "
            "shouldInterpolateStrings, ignoreSslErrors, doNotRetry");
  CHECK_ERR("{'aVeryLongFieldNameThatNobodyWouldEverSendToTheApifyApiOnPurpose':1}",
            "apify: unknown field "
            "\"aVeryLongFieldNameThatNobodyWouldEverSendToTheApifyApiOnPurp...\"; known fields: "
            "requestUrl, eventTypes, condition, isAdHoc, idempotencyKey, payloadTemplate, "
            "headersTemplate, description, shouldInterpolateStrings, ignoreSslErrors, doNotRetry");
  CHECK_ERR("{" BASE ",'isAdHoc':true,'isAdHoc':false}",
            "apify: field \"isAdHoc\" appears twice");
  CHECK_ERR("{" BASE ",'requestUrl':'https://example.com/hook'}",
            "apify: field \"requestUrl\" appears twice");

  CHECK_ERR("{" EVENT "," COND "}", "apify: requestUrl is required");
  CHECK_ERR("{" URL "," COND "}", "apify: eventTypes is required");
  CHECK_ERR("{" URL "," EVENT "}", "apify: condition is required");
  CHECK_ERR("{'requestUrl':null," EVENT "," COND "}", "apify: requestUrl is required");
  CHECK_ERR("{" URL ",'eventTypes':null," COND "}", "apify: eventTypes is required");
  CHECK_ERR("{" URL "," EVENT ",'condition':null}", "apify: condition is required");
  CHECK_ERR("{}", "apify: requestUrl is required");

  CHECK_ERR("{'requestUrl':7," EVENT "," COND "}",
            "apify: requestUrl must be a string, not a number");
  CHECK_ERR("{" URL ",'eventTypes':'TEST'," COND "}",
            "apify: eventTypes must be an array, not a string");
  CHECK_ERR("{" URL "," EVENT ",'condition':['a']}",
            "apify: condition must be an object, not an array");
  CHECK_ERR("{" BASE ",'isAdHoc':'yes'}", "apify: isAdHoc must be a boolean or null, not a string");
  CHECK_ERR("{" BASE ",'doNotRetry':1}",
            "apify: doNotRetry must be a boolean or null, not a number");
  CHECK_ERR("{" BASE ",'ignoreSslErrors':{}}",
            "apify: ignoreSslErrors must be a boolean or null, not an object");
  CHECK_ERR("{" BASE ",'shouldInterpolateStrings':[]}",
            "apify: shouldInterpolateStrings must be a boolean or null, not an array");
  CHECK_ERR("{" BASE ",'idempotencyKey':12}",
            "apify: idempotencyKey must be a string or null, not a number");
  CHECK_ERR("{" BASE ",'payloadTemplate':{}}",
            "apify: payloadTemplate must be a string or null, not an object");
  CHECK_ERR("{" BASE ",'headersTemplate':true}",
            "apify: headersTemplate must be a string or null, not a boolean");
  CHECK_ERR("{" BASE ",'description':2.5}",
            "apify: description must be a string or null, not a number");
  CHECK_OK("{" BASE ",'isAdHoc':null,'idempotencyKey':null,'payloadTemplate':null,"
           "'headersTemplate':null,'description':null,'shouldInterpolateStrings':null,"
           "'ignoreSslErrors':null,'doNotRetry':null}");
}

static void testValues(void){
  char *z;
  int nOver;
  CHECK_ERR("{'requestUrl':'ftp://x'," EVENT "," COND "}",
            "apify: requestUrl \"ftp://x\" must be an absolute http or https URL");
  CHECK_ERR("{'requestUrl':'example.com/hook'," EVENT "," COND "}",
            "apify: requestUrl \"example.com/hook\" must be an absolute http or https URL");
  CHECK_ERR("{'requestUrl':''," EVENT "," COND "}",
            "apify: requestUrl \"\" must be an absolute http or https URL");
  CHECK_ERR("{'requestUrl':'https://example.com/a\\nb'," EVENT "," COND "}",
            "apify: requestUrl \"https://example.com/a b\" must be an absolute http or https URL");
  CHECK_ERR("{'requestUrl':'mailto:someone@example.com/and/a/path/long/enough/to/be/cut/short',"
            EVENT "," COND "}",
            "apify: requestUrl \"mailto:someone@example.com/and/a/path/long/enough/to/be/cut/"
            "...\" must be an absolute http or https URL");
  CHECK_OK("{'requestUrl':'HTTP://127.0.0.1:8080/x'," EVENT "," COND "}");

  CHECK_ERR("{" URL ",'eventTypes':[]," COND "}", "apify: eventTypes must not be empty");
  CHECK_ERR("{" URL ",'eventTypes':[1]," COND "}",
            "apify: eventTypes[0] must be a string, not a number");
  CHECK_ERR("{" URL ",'eventTypes':['TEST',null]," COND "}",
            "apify: eventTypes[1] must be a string, not null");
  CHECK_ERR("{" URL ",'eventTypes':['TEST','ACTOR.RUN.DONE']," COND "}",
            "apify: eventTypes[1]: \"ACTOR.RUN.DONE\" is not an event type; event types: "
            "ACTOR.BUILD.ABORTED, ACTOR.BUILD.CREATED, ACTOR.BUILD.FAILED, ACTOR.BUILD.SUCCEEDED, "
            "ACTOR.BUILD.TIMED_OUT, ACTOR.RUN.ABORTED, ACTOR.RUN.CREATED, ACTOR.RUN.FAILED, "
            "ACTOR.RUN.RESURRECTED, ACTOR.RUN.SUCCEEDED, ACTOR.RUN.TIMED_OUT, TEST");
  CHECK_ERR("{" URL ",'eventTypes':['ACTOR.RUN.SUCEEDED']," COND "}",
            "apify: eventTypes[0]: \"ACTOR.RUN.SUCEEDED\" is not an event type; "
            "did you mean \"ACTOR.RUN.SUCCEEDED\"?");
  CHECK_ERR("{" URL ",'eventTypes':['actor.run.failed']," COND "}",
            "apify: eventTypes[0]: \"actor.run.failed\" is not an event type; "
            "did you mean \"ACTOR.RUN.FAILED\"?");
  CHECK_OK("{" URL ",'eventTypes':['ACTOR.BUILD.ABORTED','ACTOR.BUILD.CREATED',"
           "'ACTOR.BUILD.FAILED','ACTOR.BUILD.SUCCEEDED','ACTOR.BUILD.TIMED_OUT',"
           "'ACTOR.RUN.ABORTED','ACTOR.RUN.CREATED','ACTOR.RUN.FAILED','ACTOR.RUN.RESURRECTED',"
           "'ACTOR.RUN.SUCCEEDED','ACTOR.RUN.TIMED_OUT','TEST']," COND "}");

  CHECK_ERR("{" URL "," EVENT ",'condition':{}}",
            "apify: condition must name actorId, actorTaskId or actorRunId");
  CHECK_ERR("{" URL "," EVENT ",'condition':{'actorId':null}}",
            "apify: condition must name actorId, actorTaskId or actorRunId");
  CHECK_ERR("{" URL "," EVENT ",'condition':{'actorID':'a'}}",
            "apify: condition: unknown field \"actorID\"; did you mean \"actorId\"?");
  CHECK_ERR("{" URL "," EVENT ",'condition':{'actorId':'a','actorTaskID':'u'}}",
            "apify: condition: unknown field \"actorTaskID\"; did you mean \"actorTaskId\"?");
  CHECK_ERR("{" URL "," EVENT ",'condition':{'actorRun':'r'}}",
            "apify: condition: unknown field \"actorRun\"; did you mean \"actorRunId\"?");
  CHECK_ERR("{" URL "," EVENT ",'condition':{'webhookName':'a'}}",
            "apify: condition: unknown field \"webhookName\"; "
            "known fields: actorId, actorTaskId, actorRunId");
  CHECK_ERR("{" URL "," EVENT ",'condition':{'actorId':''}}",
            "apify: condition.actorId must be a non-empty string");
  CHECK_ERR("{" URL "," EVENT ",'condition':{'actorTaskId':5}}",
            "apify: condition.actorTaskId must be a non-empty string, not a number");
  CHECK_ERR("{" URL "," EVENT ",'condition':{'actorRunId':'r','actorRunId':'s'}}",
            "apify: condition: field \"actorRunId\" appears twice");
  CHECK_OK("{" URL "," EVENT ",'condition':{'actorId':'a','actorTaskId':'t','actorRunId':'r'}}");

  z = sqlite3_mprintf("{" BASE ",'idempotencyKey':'%300c'}", 'k');
  CHECK_ERR(z, "apify: idempotencyKey must be 1 to 256 characters, not 300");
  sqlite3_free(z);
  CHECK_ERR("{" BASE ",'idempotencyKey':''}",
            "apify: idempotencyKey must be 1 to 256 characters, not 0");
  /* The body limit: a description that makes the body exactly the limit, then one byte more. */
  CHECK_OK("{" BASE ",'description':''}");
  nOver = (int)strlen(zBody);
  z = sqlite3_mprintf("{" BASE ",'description':'%*c'}", APIFY_MAX_BODY-nOver, 'd');
  CHECK_OK(z);
  CHECK_EQ_INT(zBody ? strlen(zBody) : 0, APIFY_MAX_BODY);
  sqlite3_free(z);
  z = sqlite3_mprintf("{" BASE ",'description':'%*c'}", APIFY_MAX_BODY-nOver+1, 'd');
  CHECK_EQ_INT(build(z), SQLITE_ERROR);
  CHECK_STR(zErr, "apify: the request body is 9437185 bytes; the API accepts at most 9437184");
  sqlite3_free(z);
}

static void testKeyLength(void){
  char aKey[600];
  char *z;
  int i;
  for(i=0; i<257; i++){ aKey[2*i] = '\xc3'; aKey[2*i+1] = '\xa9'; }     /* 257 times U+00E9 */
  aKey[514] = 0;
  z = sqlite3_mprintf("{" BASE ",'idempotencyKey':'%s'}", aKey);
  CHECK_ERR(z, "apify: idempotencyKey must be 1 to 256 characters, not 257");
  sqlite3_free(z);
  aKey[512] = 0;                                                       /* 256 of them */
  z = sqlite3_mprintf("{" BASE ",'idempotencyKey':'%s'}", aKey);
  CHECK_OK(z);
  CHECK_STR(zKey, aKey);
  sqlite3_free(z);
}

/* apifyTemplateCheck() on z; its message, or NULL when the template is valid. */
static char *zTplErr;
static const char *tpl(const char *z, int bHeaders, int bInterpolate){
  int rc;
  sqlite3_free(zTplErr);
  zTplErr = 0;
  rc = apifyTemplateCheck(db, 0, bHeaders ? "headersTemplate" : "payloadTemplate", z, -1,
                          bHeaders, bInterpolate, &zTplErr);
  CHECK_EQ_INT(rc, zTplErr ? SQLITE_ERROR : SQLITE_OK);
  return zTplErr;
}

static void testTemplates(void){
  const char *zDefault =
    "{\"userId\": {{userId}}, \"createdAt\": {{createdAt}}, \"eventType\": {{eventType}},\n"
    " \"eventData\": {{eventData}}, \"resource\": {{resource}}}";
  const char *zAllowed = "; allowed: userId, createdAt, eventType, eventData, resource, globals";
  char *zWant;
  CHECK_STR(tpl(zDefault, 0, 0), 0);
  CHECK_STR(tpl(zDefault, 0, 1), 0);
  CHECK_STR(tpl("{\"a\": {{resource.id}}, \"b\": \"{{eventType}}\"}", 0, 0), 0);
  CHECK_STR(tpl("{\"a\": {{resource.id}}, \"b\": \"{{eventType}}\"}", 0, 1), 0);
  CHECK_STR(tpl("", 0, 0), 0);
  CHECK_STR(tpl("", 1, 1), 0);
  CHECK_EQ_INT(apifyTemplateCheck(db, 0, "payloadTemplate", 0, 0, 0, 0, &zTplErr), SQLITE_OK);
  CHECK_STR(tpl("{{eventData}}", 0, 0), 0);
  CHECK_STR(tpl("[{{ globals.x_y }}, { \"n\": {{resource.defaultDatasetId}} }]", 0, 0), 0);
  CHECK_STR(tpl("{\"a\": \"\\\"{{foo}}\\\\\", \"b\": 1}", 0, 0), 0);    /* escapes in strings */
  CHECK_STR(tpl("{\"a\": \"{{foo}}\"}", 0, 0), 0);           /* strings are not interpolated */
  CHECK_STR(tpl("{\"a\": \"{{ foo }} {{foo_bar}}\"}", 0, 1), 0);  /* not variables in strings */

  zWant = sqlite3_mprintf("apify: payloadTemplate: unknown variable \"{{foo}}\"%s", zAllowed);
  CHECK_STR(tpl("{\"a\": {{foo}}}", 0, 0), zWant);
  CHECK_STR(tpl("{\"a\": \"x{{foo}}y\"}", 0, 1), zWant);
  sqlite3_free(zWant);
  zWant = sqlite3_mprintf("apify: payloadTemplate: unknown variable \"{{ user id }}\"%s", zAllowed);
  CHECK_STR(tpl("[{{ user id }}]", 0, 0), zWant);
  sqlite3_free(zWant);
  zWant = sqlite3_mprintf("apify: payloadTemplate: unknown variable \"{{}}\"%s", zAllowed);
  CHECK_STR(tpl("[{{}}]", 0, 0), zWant);
  sqlite3_free(zWant);
  zWant = sqlite3_mprintf("apify: payloadTemplate: unknown variable \"{{users.id}}\"%s", zAllowed);
  CHECK_STR(tpl("[{{userId}}, {{users.id}}]", 0, 0), zWant);
  sqlite3_free(zWant);
  zWant = sqlite3_mprintf("apify: headersTemplate: unknown variable \"{{resourceId}}\"%s",
                          zAllowed);
  CHECK_STR(tpl("{\"X\": \"{{resourceId}}\"}", 1, 1), zWant);
  sqlite3_free(zWant);

  CHECK_STR(tpl("{\"a\": {{userId}", 0, 0), "apify: payloadTemplate: unclosed \"{{\" at byte 6");
  CHECK_STR(tpl("{\"a\": \"}}\", \"b\": {{", 0, 0),
            "apify: payloadTemplate: unclosed \"{{\" at byte 17");
  CHECK_STR(tpl("{\"a\": {{userId}} \"b\"}", 0, 0),
            "apify: payloadTemplate is not valid JSON after its {{variables}} are replaced");
  CHECK_STR(tpl("{ {{userId}}: 1}", 0, 0),
            "apify: payloadTemplate is not valid JSON after its {{variables}} are replaced");
  CHECK_STR(tpl("{\"a\": 1", 0, 0),
            "apify: payloadTemplate is not valid JSON after its {{variables}} are replaced");
  CHECK_STR(tpl("plain text", 0, 0),
            "apify: payloadTemplate is not valid JSON after its {{variables}} are replaced");

  CHECK_STR(tpl("{\"X-Run\": {{resource.id}}, \"X-Event\": \"{{eventType}}\", \"X-A\": \"a\"}",
                1, 1), 0);
  CHECK_STR(tpl("{}", 1, 0), 0);
  CHECK_STR(tpl("[{{userId}}]", 1, 0),
            "apify: headersTemplate must be a JSON object of header names to string values");
  CHECK_STR(tpl("{{resource}}", 1, 0),
            "apify: headersTemplate must be a JSON object of header names to string values");
  CHECK_STR(tpl("{\"X-Count\": 3}", 1, 0),
            "apify: headersTemplate: the value of \"X-Count\" must be a string, not a number");
  CHECK_STR(tpl("{\"X-A\": {{userId}}, \"X-B\": null}", 1, 0),
            "apify: headersTemplate: the value of \"X-B\" must be a string, not null");
  CHECK_STR(tpl("{\"X-A\": {\"b\": {{userId}}}}", 1, 0),
            "apify: headersTemplate: the value of \"X-A\" must be a string, not an object");
  CHECK_STR(tpl("{\"X-A\": 1}", 0, 0), 0);                     /* only headers need strings */

  /* Exactly n bytes are the template; a NUL byte in them is not JSON. */
  CHECK_EQ_INT(apifyTemplateCheck(db, 0, "payloadTemplate", "{}garbage", 2, 0, 0, &zTplErr), 0);
  CHECK_EQ_INT(apifyTemplateCheck(db, 0, "payloadTemplate", "{}\0{}", 5, 0, 0, &zTplErr), 1);
  CHECK_STR(zTplErr,
            "apify: payloadTemplate is not valid JSON after its {{variables}} are replaced");

  /* Through apifyRequestBuild: the field named, shouldInterpolateStrings honoured. */
  CHECK_OK("{" BASE ",'payloadTemplate':'{\\'a\\': \\'{{foo}}\\'}'}");
  CHECK_ERR("{" BASE ",'payloadTemplate':'{\\'a\\': \\'{{foo}}\\'}',"
            "'shouldInterpolateStrings':true}",
            "apify: payloadTemplate: unknown variable \"{{foo}}\"; allowed: userId, createdAt, "
            "eventType, eventData, resource, globals");
  CHECK_OK("{" BASE ",'payloadTemplate':'','headersTemplate':''}");
  CHECK_ERR("{" BASE ",'headersTemplate':'{\\'X-Count\\': 1}'}",
            "apify: headersTemplate: the value of \"X-Count\" must be a string, not a number");
  CHECK_ERR("{" BASE ",'payloadTemplate':'{'}",
            "apify: payloadTemplate is not valid JSON after its {{variables}} are replaced");
  sqlite3_free(zTplErr);
  zTplErr = 0;
}

/* apifyPreviewDispatch() on zHook and zVars (each with ' turned into ", NULL for SQL NULL):
** the text of zPath ('->>') in its result, or its message when it fails. */
static char *zPreview;
static const char *preview(const char *zHook, const char *zVars, const char *zPath){
  char *zH = zHook ? sqlite3_mprintf("%s", zHook) : 0;
  char *zV = zVars ? sqlite3_mprintf("%s", zVars) : 0;
  char *zOut = 0, *zErr2 = 0, *p;
  sqlite3_stmt *pStmt = 0;
  int rc;
  for(p=zH; p && *p; p++) if( *p=='\'' ) *p = '"';
  for(p=zV; p && *p; p++) if( *p=='\'' ) *p = '"';
  sqlite3_free(zPreview);
  zPreview = 0;
  rc = apifyPreviewDispatch(db, zH, -1, zV, -1, &zOut, &zErr2);
  CHECK_EQ_INT(rc, zErr2 ? SQLITE_ERROR : SQLITE_OK);
  CHECK(rc==SQLITE_OK ? zOut!=0 : zOut==0);
  if( rc==SQLITE_OK ){
    sqlite3_prepare_v2(db, "SELECT ?1 ->> ?2", -1, &pStmt, 0);
    sqlite3_bind_text(pStmt, 1, zOut, -1, SQLITE_STATIC);
    sqlite3_bind_text(pStmt, 2, zPath, -1, SQLITE_STATIC);
    if( sqlite3_step(pStmt)==SQLITE_ROW && sqlite3_column_text(pStmt, 0) ){
      zPreview = sqlite3_mprintf("%s", sqlite3_column_text(pStmt, 0));
    }
    sqlite3_finalize(pStmt);
  }else{
    zPreview = zErr2;
    zErr2 = 0;            /* ownership moved to zPreview */
  }
  sqlite3_free(zOut);
  sqlite3_free(zErr2);
  sqlite3_free(zH);
  sqlite3_free(zV);
  return zPreview;
}

/* Rendering: what the preview says the platform POSTs, byte for byte. */
static void testRender(void){
  const char *zVars = "{'userId':'u1','createdAt':'2026-02-03T04:05:06.007Z',"
    "'eventType':'ACTOR.RUN.FAILED','eventData':{'actorId':'a1','actorRunId':'r1'},"
    "'resource':{'id':'r1','meta':{'origin':'WEB'},'n':[1, 2.50],'q':'say \\'hi\\'\\n'},"
    "'globals':{}}";
  const char *zPlatform = "\"Content-Type\":\"application/json\",\"X-Apify-Webhook\":"
    "\"<webhook id>\",\"X-Apify-Webhook-Dispatch-Id\":\"<dispatch id>\","
    "\"X-Apify-Request-Origin\":\"APIFY\"}";
  char *zWant;

  /* The default payload: one line, each variable's compact JSON. */
  CHECK_STR(preview("{}", zVars, "$.payload"),
    "{\"userId\": \"u1\", \"createdAt\": \"2026-02-03T04:05:06.007Z\", \"eventType\": "
    "\"ACTOR.RUN.FAILED\", \"eventData\": {\"actorId\":\"a1\",\"actorRunId\":\"r1\"}, "
    "\"resource\": {\"id\":\"r1\",\"meta\":{\"origin\":\"WEB\"},\"n\":[1,2.50],"
    "\"q\":\"say \\\"hi\\\"\\n\"}}");
  CHECK_STR(preview("{'payloadTemplate':null}", zVars, "$.body.resource.meta.origin"), "WEB");
  CHECK_STR(preview("{'payloadTemplate':''}", zVars, "$.body.userId"), "u1");
  CHECK_STR(preview("{'requestUrl':'https://example.com/h?x=1'}", 0, "$.url"),
            "https://example.com/h?x=1");
  CHECK_STR(preview("{}", 0, "$.url"), 0);
  CHECK_STR(preview("{}", 0, "$.method"), "POST");

  /* Outside strings: paths, blanks trimmed, whitespace and the rest copied exactly. */
  CHECK_STR(preview("{'payloadTemplate':'[ {{resource.meta}},{{ resource.meta.origin }}\\n,"
                    "{{resource.n}}, \\'{{userId}}\\' ]'}", zVars, "$.payload"),
            "[ {\"origin\":\"WEB\"},\"WEB\"\n,[1,2.50], \"{{userId}}\" ]");
  /* Inside strings, with shouldInterpolateStrings: text as itself, other values as JSON, both
  ** escaped for the string; names outside [A-Za-z0-9.] stay as they are. */
  CHECK_STR(preview("{'shouldInterpolateStrings':true,'payloadTemplate':"
                    "'{\\'a\\': \\'<{{resource.q}}|{{resource.meta}}|{{resource.n}}>\\',"
                    " \\'b\\': \\'{{ userId }} {{user_id}} {{userId\\'}'}", zVars, "$.payload"),
            "{\"a\": \"<say \\\"hi\\\"\\n|{\\\"origin\\\":\\\"WEB\\\"}|[1,2.50]>\","
            " \"b\": \"{{ userId }} {{user_id}} {{userId\"}");
  CHECK_STR(preview("{'shouldInterpolateStrings':true,'payloadTemplate':"
                    "'{\\'a\\': \\'<{{resource.q}}|{{resource.meta}}|{{resource.n}}>\\'}'}",
                    zVars, "$.body.a"),
            "<say \"hi\"\n|{\"origin\":\"WEB\"}|[1,2.50]>");
  CHECK_STR(preview("{'shouldInterpolateStrings':false,'payloadTemplate':"
                    "'{\\'a\\': \\'{{resource.id}}\\', \\'b\\': {{resource.id}}}'}",
                    zVars, "$.payload"),
            "{\"a\": \"{{resource.id}}\", \"b\": \"r1\"}");
  /* JSON1's text of a value is kept: escapes in strings and numbers as written. */
  CHECK_STR(preview("{'shouldInterpolateStrings':true,'payloadTemplate':"
                    "'[{{resource.s}}, \\'{{resource.s}}\\', {{resource.x}}]'}",
                    "{'resource':{'s':'\\u00e9\\/','x':1E+2}}", "$.payload"),
            "[\"\\u00e9\\/\", \"\xc3\xa9/\", 1E+2]");

  /* A missing path names the field and the variable; paths walk objects only. */
  CHECK_STR(preview("{'payloadTemplate':'{{resource.nope}}'}", 0, "$.payload"),
            "apify: payloadTemplate: {{resource.nope}} has no value: resource has no member "
            "\"nope\"");
  CHECK_STR(preview("{'payloadTemplate':'{{ resource.meta.origin.x }}'}", zVars, "$.payload"),
            "apify: payloadTemplate: {{resource.meta.origin.x}} has no value: "
            "resource.meta.origin has no member \"x\"");
  CHECK_STR(preview("{'payloadTemplate':'{{resource.n.0}}'}", zVars, "$.payload"),
            "apify: payloadTemplate: {{resource.n.0}} has no value: resource.n has no member "
            "\"0\"");
  CHECK_STR(preview("{'payloadTemplate':'{{globals.x}}'}", 0, "$.payload"),
            "apify: payloadTemplate: {{globals.x}} has no value: globals has no member \"x\"");
  CHECK_STR(preview("{'shouldInterpolateStrings':true,"
                    "'headersTemplate':'{\\'X\\': \\'{{eventData.actorTaskId}}\\'}'}",
                    0, "$.payload"),
            "apify: headersTemplate: {{eventData.actorTaskId}} has no value: eventData has no "
            "member \"actorTaskId\"");

  /* Headers: the template's, rendered, in order, less the platform's (any case), then those. */
  zWant = sqlite3_mprintf("{\"X-Run\":\"r1\",\"x-event\":\"ACTOR.RUN.FAILED\",%s", zPlatform);
  CHECK_STR(preview("{'shouldInterpolateStrings':true,'headersTemplate':"
                    "'{\\'X-Run\\': {{resource.id}}, \\'content-TYPE\\': \\'text/plain\\',"
                    " \\'x-event\\': \\'{{eventType}}\\', \\'X-APIFY-WEBHOOK\\': \\'mine\\'}'}",
                    zVars, "$.headers"), zWant);
  sqlite3_free(zWant);
  zWant = sqlite3_mprintf("{%s", zPlatform);
  CHECK_STR(preview("{'headersTemplate':''}", 0, "$.headers"), zWant);
  CHECK_STR(preview("{'headersTemplate':'{}'}", 0, "$.headers"), zWant);
  sqlite3_free(zWant);
  CHECK_STR(preview("{'id':'WH1','userId':'uX','createdAt':'2025-01-01T00:00:00.000Z',"
                    "'stats':{'totalDispatches':3}}", 0, "$.headers.X-Apify-Webhook"), "WH1");
  CHECK_STR(preview("{'id':'WH1'}", 0, "$.headers.\"X-Apify-Webhook\""), "WH1");
  CHECK_STR(preview("{'headersTemplate':'{\\'X-N\\': {{resource.exitCode}}}'}", 0, "$.headers"),
            "apify: headersTemplate: the value of \"X-N\" must be a string, not a number");

  /* Defaults: realistic, from the webhook; the variables given replace them member by member. */
  CHECK_STR(preview("{'userId':'uW','eventTypes':['ACTOR.RUN.ABORTED','TEST'],"
                    "'condition':{'actorTaskId':'t1','actorId':'a9'}}", 0, "$.body.eventData"),
            "{\"actorId\":\"a9\",\"actorTaskId\":\"t1\",\"actorRunId\":\"7wKpQzR3mXn8YtBvL\"}");
  CHECK_STR(preview("{'userId':'uW','eventTypes':['ACTOR.RUN.ABORTED']}", 0,
                    "$.body.eventType"), "ACTOR.RUN.ABORTED");
  CHECK_STR(preview("{'userId':'uW'}", 0, "$.body.resource.userId"), "uW");
  CHECK_STR(preview("{'condition':{'actorRunId':'run9'}}", 0, "$.body.resource.id"), "run9");
  CHECK_STR(preview("{}", 0, "$.body.eventData"),
            "{\"actorId\":\"HDSasDasz78YcAPEB\",\"actorRunId\":\"7wKpQzR3mXn8YtBvL\"}");
  CHECK_STR(preview("{}", 0, "$.body.resource.meta"), "{\"origin\":\"API\"}");
  CHECK_STR(preview("{}", 0, "$.body.createdAt"), "2026-01-01T12:00:00.000Z");
  CHECK_STR(preview("{}", 0, "$.body.eventType"), "ACTOR.RUN.SUCCEEDED");
  CHECK_STR(preview("{}", 0, "$.body.userId"), "wRsJZtadYvn4mBZmm");
  CHECK_STR(preview("{}", "{'userId':null,'resource':{'id':'x'}}", "$.payload"),
            "{\"userId\": null, \"createdAt\": \"2026-01-01T12:00:00.000Z\", \"eventType\": "
            "\"ACTOR.RUN.SUCCEEDED\", \"eventData\": {\"actorId\":\"HDSasDasz78YcAPEB\","
            "\"actorRunId\":\"7wKpQzR3mXn8YtBvL\"}, \"resource\": {\"id\":\"x\"}}");

  /* Inputs. */
  CHECK_STR(preview(0, 0, "$"), "apify: the webhook is NULL; pass a JSON object");
  CHECK_STR(preview("[1]", 0, "$"), "apify: the webhook must be a JSON object, not an array");
  CHECK_STR(preview("{x", 0, "$"), "apify: the webhook is not valid JSON: \"{x\"");
  CHECK_STR(preview("{}", "'x'", "$"), "apify: the variables must be a JSON object, not a string");
  CHECK_STR(preview("{}", "{", "$"), "apify: the variables are not valid JSON: \"{\"");
  CHECK_STR(preview("{}", "{'resources':{}}", "$"),
            "apify: variables: unknown variable \"resources\"; allowed: userId, createdAt, "
            "eventType, eventData, resource, globals");
  CHECK_STR(preview("{'payloadTemplate':5}", 0, "$"),
            "apify: payloadTemplate must be a string or null, not a number");
  CHECK_STR(preview("{'shouldInterpolateStrings':'yes'}", 0, "$"),
            "apify: shouldInterpolateStrings must be a boolean or null, not a string");
  CHECK_STR(preview("{'payloadTemplate':'{{foo}}'}", 0, "$"),
            "apify: payloadTemplate: unknown variable \"{{foo}}\"; allowed: userId, createdAt, "
            "eventType, eventData, resource, globals");
  CHECK_STR(preview("{'headersTemplate':'[]'}", 0, "$"),
            "apify: headersTemplate must be a JSON object of header names to string values");
  sqlite3_free(zPreview);
  zPreview = 0;
}

static void testCanonical(void){
  char *zBody1, *zKey1;
  const char *azVariant[] = {           /* each differs from {BASE} in one field */
    "{'requestUrl':'https://example.com/hook2'," EVENT "," COND "}",
    "{" URL ",'eventTypes':['ACTOR.RUN.FAILED']," COND "}",
    "{" URL ",'eventTypes':['ACTOR.RUN.SUCCEEDED','ACTOR.RUN.FAILED']," COND "}",
    "{" URL ",'eventTypes':['ACTOR.RUN.FAILED','ACTOR.RUN.SUCCEEDED']," COND "}",
    "{" URL "," EVENT ",'condition':{'actorId':'HDSasDasz78YcAPEc'}}",
    "{" URL "," EVENT ",'condition':{'actorTaskId':'HDSasDasz78YcAPEB'}}",
    "{" BASE ",'isAdHoc':false}",
    "{" BASE ",'isAdHoc':true}",
    "{" BASE ",'payloadTemplate':''}",
    "{" BASE ",'headersTemplate':''}",
    "{" BASE ",'description':''}",
    "{" BASE ",'description':' '}",
    "{" BASE ",'shouldInterpolateStrings':false}",
    "{" BASE ",'ignoreSslErrors':false}",
    "{" BASE ",'doNotRetry':false}",
  };
  char *azKey[sizeof(azVariant)/sizeof(azVariant[0])];
  int i, j, nVariant = (int)(sizeof(azVariant)/sizeof(azVariant[0]));

  CHECK_OK("{" BASE "}");
  CHECK_STR(zBody, BASE_BODY);
  CHECK_STR(zKey, BASE_KEY);
  /* Order, whitespace, explicit nulls and escapes change nothing. */
  CHECK_OK(" {\n  'condition' : { 'actorTaskId':null, 'actorId' : 'HDSasDasz78YcAPEB' } ,\n"
           "  'eventTypes':[ 'ACTOR.RUN.\\u0053UCCEEDED' ], 'description':null, 'isAdHoc':null,\n"
           "  'requestUrl':'https:\\/\\/example.com\\/hook', 'idempotencyKey':null\t}\n");
  CHECK_STR(zBody, BASE_BODY);
  CHECK_STR(zKey, BASE_KEY);

  CHECK_EQ_INT(buildRaw(zFull, -1), SQLITE_OK);
  CHECK_STR(zBody, zFullBody);
  CHECK_STR(zKey, "my-key-\xc3\xa9");                          /* the user's key, unchanged */

  /* Without a key: derived, and at its canonical place, after isAdHoc. */
  CHECK_OK("{" BASE ",'isAdHoc':true,'description':'d'}");
  CHECK(strncmp(zKey, "apify-sqlite-", 13)==0 && strlen(zKey)==13+64);
  {
    char *zWant = sqlite3_mprintf("{\"requestUrl\":\"https://example.com/hook\","
      "\"eventTypes\":[\"ACTOR.RUN.SUCCEEDED\"],\"condition\":{\"actorId\":\"HDSasDasz78YcAPEB\"},"
      "\"isAdHoc\":true,\"idempotencyKey\":\"%s\",\"description\":\"d\"}", zKey);
    CHECK_STR(zBody, zWant);
    sqlite3_free(zWant);
  }

  /* Stable: the same on another connection. */
  {
    sqlite3 *db2 = 0;
    char *zB = 0, *zK = 0, *zE = 0;
    CHECK_EQ_INT(sqlite3_open(":memory:", &db2), SQLITE_OK);
    CHECK_EQ_INT(apifyRequestBuild(db2, 0, zFull, -1, &zB, &zK, &zE), SQLITE_OK);
    CHECK_STR(zB, zFullBody);
    sqlite3_free(zB); sqlite3_free(zK); sqlite3_free(zE);
    CHECK_EQ_INT(apifyRequestBuild(db2, 0, "{" "\"requestUrl\":\"https://example.com/hook\","
      "\"eventTypes\":[\"ACTOR.RUN.SUCCEEDED\"],\"condition\":{\"actorId\":\"HDSasDasz78YcAPEB\"}}",
      -1, &zB, &zK, &zE), SQLITE_OK);
    CHECK_STR(zK, BASE_KEY);
    sqlite3_free(zB); sqlite3_free(zK); sqlite3_free(zE);
    sqlite3_close(db2);
  }

  /* Any differing field, a different key. */
  CHECK_OK("{" BASE "}");
  zBody1 = zBody; zKey1 = zKey;      /* ownership moves here */
  zBody = zKey = 0;
  for(i=0; i<nVariant; i++){
    CHECK_OK(azVariant[i]);
    azKey[i] = zKey;                 /* ownership moves to azKey */
    zKey = 0;
    CHECK(azKey[i]==0 || strcmp(azKey[i], zKey1)!=0);
    for(j=0; j<i; j++) CHECK(azKey[i]==0 || azKey[j]==0 || strcmp(azKey[i], azKey[j])!=0);
  }
  for(i=0; i<nVariant; i++) sqlite3_free(azKey[i]);
  sqlite3_free(zBody1);
  sqlite3_free(zKey1);
}

static void testReply(void){
  char *zData = 0, *zType = 0, *zMsg = 0;
  #define REPLY(status, body) do{ \
    sqlite3_free(zData); sqlite3_free(zType); sqlite3_free(zMsg); \
    CHECK_EQ_INT(apifyReplyRead(db, 0, status, body, &zData, &zType, &zMsg), SQLITE_OK); \
  }while(0)
  REPLY(201, "{\"data\": {\"id\": \"abc\", \"eventTypes\": [\"TEST\", \"ACTOR.RUN.FAILED\"]}}");
  CHECK_STR(zData, "{\"id\":\"abc\",\"eventTypes\":[\"TEST\",\"ACTOR.RUN.FAILED\"]}");
  CHECK_STR(zType, 0);
  CHECK_STR(zMsg, 0);
  REPLY(200, "{\"data\":{}}");
  CHECK_STR(zData, "{}");
  REPLY(201, "{\"data\":[]}");
  CHECK_STR(zData, 0);
  CHECK_STR(zType, 0);
  CHECK_STR(zMsg, "the answer is not an Apify webhook: \"{\"data\":[]}\"");
  REPLY(201, "<html>ok</html>");
  CHECK_STR(zMsg, "the answer is not an Apify webhook: \"<html>ok</html>\"");
  REPLY(201, 0);
  CHECK_STR(zData, 0);
  CHECK_STR(zMsg, "empty answer");
  REPLY(400, "{\"error\":{\"type\":\"invalid-input\","
             "\"message\":\"Invalid payload template variable: foo\"}}");
  CHECK_STR(zData, 0);
  CHECK_STR(zType, "invalid-input");
  CHECK_STR(zMsg, "Invalid payload template variable: foo");
  REPLY(404, "{\"data\":{\"id\":\"x\"}}");
  CHECK_STR(zData, 0);
  CHECK_STR(zType, 0);
  CHECK_STR(zMsg, "the answer is not an Apify error: \"{\"data\":{\"id\":\"x\"}}\"");
  REPLY(502, "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>nginx</body>\n</html>");
  CHECK_STR(zType, 0);
  CHECK_STR(zMsg, "the answer is not JSON: "
            "\"<html> <head><title>502 Bad Gateway</title></head> <body>ngi...\"");
  REPLY(500, "");
  CHECK_STR(zType, 0);
  CHECK_STR(zMsg, "empty answer");
  REPLY(503, 0);
  CHECK_STR(zMsg, "empty answer");
  REPLY(429, "{\"error\":{\"type\":\"rate-limit-exceeded\"}}");
  CHECK_STR(zType, "rate-limit-exceeded");
  CHECK_STR(zMsg, "the answer is not an Apify error: "
                  "\"{\"error\":{\"type\":\"rate-limit-exceeded\"}}\"");
  sqlite3_free(zData); sqlite3_free(zType); sqlite3_free(zMsg);
  #undef REPLY
}

/* ---------------------------------------------------------------------------------------------
** Out of memory. For N = 1, 2, ... the Nth allocation of the call fails (and with bAfter, every
** later one too) until a run meets no failure. Each run must return SQLITE_NOMEM or, when SQLite
** absorbed the failure, exactly what a run without failures returns; after sqlite3_close() no
** block may be left.
*/

/* Call the function under test: 0 apifyRequestBuild, 1 apifyTemplateCheck, 2
** apifyPreviewDispatch (with variables), else apifyReplyRead with that HTTP status. */
static int oomCall(sqlite3 *pDb, int eKind, const char *zIn, char **az){
  if( eKind==0 ) return apifyRequestBuild(pDb, 0, zIn, -1, &az[0], &az[1], &az[2]);
  if( eKind==1 ) return apifyTemplateCheck(pDb, 0, "headersTemplate", zIn, -1, 1, 1, &az[2]);
  if( eKind==2 ) return apifyPreviewDispatch(pDb, zIn, -1,
                          "{\"resource\":{\"id\":\"r1\",\"meta\":{\"origin\":\"WEB\"}}}", -1,
                          &az[0], &az[2]);
  return apifyReplyRead(pDb, 0, eKind, zIn, &az[0], &az[1], &az[2]);
}

static int sameStr(const char *zA, const char *zB){
  return (zA==0 || zB==0) ? zA==zB : strcmp(zA, zB)==0;
}

static void oomTest(int eKind, const char *zIn, int bAfter){
  sqlite3 *pDb = 0;
  char *azWant[3] = {0, 0, 0};
  int rcWant, iFail, nBad = 0, bDone = 0;

  sqlite3_open(":memory:", &pDb);
  rcWant = oomCall(pDb, eKind, zIn, azWant);
  sqlite3_close(pDb);
  for(iFail=1; !bDone; iFail++){
    char *az[3] = {0, 0, 0};
    long long nBefore = nLive;
    int rc = SQLITE_OK, i;
    pDb = 0;
    if( sqlite3_open(":memory:", &pDb)==SQLITE_OK ){
      faultArm(iFail, bAfter);
      rc = oomCall(pDb, eKind, zIn, az);
      bDone = nFaults==0;
      faultArm(0, 0);
      if( rc!=SQLITE_NOMEM || bDone ){
        int bSame = rc==rcWant;
        for(i=0; i<3; i++) bSame = bSame && sameStr(az[i], azWant[i]);
        if( !bSame ){
          nBad++;
          fprintf(stderr, "oom %d/%d: fail at %d: rc=%d %s\n", eKind, bAfter, iFail, rc,
                  az[2] ? az[2] : "");
        }
      }else{
        for(i=0; i<3; i++) if( az[i] ){ nBad++; fprintf(stderr, "output %d kept on NOMEM\n", i); }
      }
    }
    for(i=0; i<3; i++) sqlite3_free(az[i]);
    if( sqlite3_close(pDb)!=SQLITE_OK ){
      nBad++;
      fprintf(stderr, "oom %d: fail at %d: a statement was not finalized\n", eKind, iFail);
    }
    if( nLive!=nBefore ){
      nBad++;
      fprintf(stderr, "oom %d: fail at %d: %lld blocks leaked\n", eKind, iFail, nLive-nBefore);
    }
  }
  CHECK_EQ_INT(nBad, 0);
  CHECK(iFail>20);             /* the calls allocate, so the loop really ran */
  for(iFail=0; iFail<3; iFail++) sqlite3_free(azWant[iFail]);
}

static void testOutOfMemory(void){
  char *zNoKey = sqlite3_mprintf("%s", zFull);
  char *p = strstr(zNoKey, "\"idempotencyKey\": \"my-key-\\u00e9\",");
  int bAfter;
  memset(p, ' ', strlen("\"idempotencyKey\": \"my-key-\\u00e9\","));
  for(bAfter=0; bAfter<2; bAfter++){
    oomTest(0, zFull, bAfter);
    oomTest(0, zNoKey, bAfter);
    oomTest(0, "{\"requestUrl\":\"https://x.io\",\"eventTypes\":[\"ACTOR.RUN.SUCEEDED\"]}", bAfter);
    oomTest(0, "{\"foo\":1}", bAfter);
    oomTest(0, "[1,2", bAfter);
    oomTest(1, "{\"X-A\": {{userId}}, \"X-B\": \"{{eventType}}\", \"X-C\": 1}", bAfter);
    oomTest(2, "{\"shouldInterpolateStrings\":true,\"payloadTemplate\":"
               "\"{\\\"a\\\": {{resource.meta}}, \\\"b\\\": \\\"{{resource.meta}}\\\"}\","
               "\"headersTemplate\":\"{\\\"X\\\": {{resource.id}}}\"}", bAfter);
    oomTest(2, "{\"payloadTemplate\":\"{{resource.nope}}\"}", bAfter);
    oomTest(201, "{\"data\":{\"id\":\"abc\"}}", bAfter);
    oomTest(400, "{\"error\":{\"type\":\"invalid-input\",\"message\":\"bad\"}}", bAfter);
    oomTest(502, "<html>bad gateway</html>", bAfter);
  }
  sqlite3_free(zNoKey);
}

int main(void){
  faultInstall();                                    /* before sqlite3_initialize() */
  CHECK_EQ_INT(sqlite3_initialize(), SQLITE_OK);
  CHECK_EQ_INT(sqlite3_open(":memory:", &db), SQLITE_OK);

  testInput();
  testFields();
  testValues();
  testKeyLength();
  testTemplates();
  testRender();
  testCanonical();
  testReply();
  buildReset();
  CHECK_EQ_INT(sqlite3_close(db), SQLITE_OK);
  testOutOfMemory();
  return unitSummary();
}
