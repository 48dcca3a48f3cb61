/*
** transport.c: the HTTP side of the apify extension, and the only file that includes
** <curl/curl.h>.
**
** apifyHttpSend() sends calls (a method, a path under the base URL, a body) through libcurl's
** multi interface:
** a sliding window of up to `concurrency` requests in flight, each finished request handed back
** as soon as its answer arrives and its slot refilled at once, so one slow request never holds
** the others up. The easy handles live as long as the database connection (ApifyHttp), so TCP
** connections, DNS answers and TLS sessions are reused from one statement to the next.
**
** Retries. A call that may be replayed (bReplay: GET, PUT and DELETE, and a POST that carries an
** idempotencyKey, which the API answers with the webhook it created first) is retried after
** network errors (no answer, cut connection, timeout), 429 and 5xx, and after 2xx answers the
** caller finds unusable (xDone returns APIFY_AGAIN). Any other call is retried only after a 429
** or when no attempt can have reached the API (no connection), since a lost answer may hide an
** action done. Never after other 4xx. The delay before attempt k+1 is random(1..2) x 500 ms x
** 2^(k-1), as the API asks, or Retry-After when the server sends it; no attempt starts after
** max_retry_time_ms, and no wait is ever longer than that bound, whatever a server says.
**
** Pacing. Until the rate limit is known, one request goes out alone; its X-RateLimit-Limit
** header (never taken as less than RATE_FLOOR per second), or the configured rate_limit, then
** sets an even spacing of request starts at 98% of the limit. A 429 pauses every new start (Retry-After, or the backoff) and lowers the rate by
** 30%; each later answer that is not a 429 gives 2% back, so the run recovers after a quiet
** spell. One 429 therefore slows the whole run instead of re-sending into the same wall.
**
** The token goes into one header list built per apifyHttpSend() call and freed at its end; it
** is never put in a URL, an error message or a log line. It goes to the base URL's host only:
** redirects are not followed, and over plain http (allowed to loopback addresses only) no proxy
** is used, whatever http_proxy or ALL_PROXY say, so it never crosses a network in clear text.
** Over https a proxy from the environment only tunnels the TLS session (CONNECT). libcurl writes
** the keys of every TLS session to the file SSLKEYLOGFILE names, so nothing is sent over https
** while that variable is set (apifyHttpCheck).
*/
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include "apify.h"

#define BACKOFF_FIRST 0.5   /* seconds: the first retry waits 0.5 to 1 s */
#define PACE_SHARE    0.98  /* share of X-RateLimit-Limit a run aims at */
#define PAUSE_MAX     30.0  /* seconds: the longest pause after 429s without Retry-After */
#define RATE_FLOOR    1.0   /* requests per second: the least X-RateLimit-Limit is taken for */

typedef struct Slot Slot;

/* One request in the window: an easy handle, reused, and the call it works on. */
struct Slot {
  CURL *pEasy;
  ApifyCall *pCall;        /* NULL when the slot is free */
  sqlite3_str *pBody;      /* the answer of the attempt in flight */
  char *zLocation;         /* its Location header */
  int bRunning;            /* an attempt is in flight */
  int bOversize;           /* the answer outgrew APIFY_MAX_REPLY */
  int bNoMem;              /* the answer could not be kept: out of memory */
  double tFirst;           /* when the first attempt started */
  double tReady;           /* no attempt starts before this */
  double tStart;           /* when the attempt in flight started */
  char *zUrl;              /* the URL of the attempt in flight */
  char zErr[CURL_ERROR_SIZE];
};

struct ApifyHttp {
  CURLM *pMulti;
  struct pollfd *aPoll;    /* the sockets libcurl asked us to watch (CURLMOPT_SOCKETFUNCTION) */
  int nPoll, nPollAlloc;
  double tTimer;           /* libcurl's next timeout (CURLMOPT_TIMERFUNCTION), <0 for none */
  int bNoMem;              /* a socket could not be watched: the run stops with SQLITE_NOMEM */
  Slot *aSlot;             /* the window; grows to the configured concurrency */
  int nSlot;
  double rLimit;           /* X-RateLimit-Limit last heard, 0 when never heard */
  double rFactor;          /* share of the pace kept after 429s, 0.25 to 1 */
  double tNext;            /* earliest start of the next attempt (pacing) */
  double tLast;            /* when the last attempt started */
  double tPause;           /* no attempt starts before this (after a 429) */
  double tPaused;          /* when tPause was last decided */
  int n429;                /* 429s in a row */
  int bHeard;              /* an HTTP answer has arrived on this connection */
  char zAgent[128];        /* User-Agent */
};

/* Seconds on a clock that never jumps. */
static double nowSeconds(void){
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec/1e9;
}

/* A uniformly random number in [1, 2), for backoff jitter. */
static double jitter(void){
  unsigned int u;
  sqlite3_randomness(sizeof(u), &u);
  return 1.0 + (double)u/4294967296.0;
}

/* The backoff before attempt nDone+1, after nDone failed attempts. */
static double backoff(int nDone){
  double d = BACKOFF_FIRST*jitter();
  int i;
  for(i=1; i<nDone && d<3600.0; i++) d *= 2.0;
  return d;
}

int apifyUrlParse(const char *zUrl, char **pzScheme, char **pzHost){
  int rc = SQLITE_ERROR;
  char *zScheme = 0, *zHost = 0;
  CURLU *pUrl = curl_url();
  if( pUrl==0 ) return SQLITE_NOMEM;
  if( zUrl && curl_url_set(pUrl, CURLUPART_URL, zUrl, CURLU_NON_SUPPORT_SCHEME)==CURLUE_OK
   && curl_url_get(pUrl, CURLUPART_SCHEME, &zScheme, 0)==CURLUE_OK
   && curl_url_get(pUrl, CURLUPART_HOST, &zHost, 0)==CURLUE_OK
   && zHost[0] ){
    rc = SQLITE_OK;
    if( pzScheme && (*pzScheme = sqlite3_mprintf("%s", zScheme))==0 ) rc = SQLITE_NOMEM;
    if( pzHost && (*pzHost = sqlite3_mprintf("%s", zHost))==0 ) rc = SQLITE_NOMEM;
    if( rc!=SQLITE_OK && pzScheme ){ sqlite3_free(*pzScheme); *pzScheme = 0; }
  }
  curl_free(zScheme);
  curl_free(zHost);
  curl_url_cleanup(pUrl);
  return rc;
}

/* True if zHost names this machine: localhost, an address of 127.0.0.0/8, or [::1]. A name
** that merely starts with "127." (127.evil.example) is not one; libcurl has already turned the
** other spellings of IPv4 addresses (2130706433, 0x7f.1) into dotted decimal. */
static int isLoopback(const char *zHost){
  struct in_addr a4;
  struct in6_addr a6;
  char zBare[64];
  size_t n = strlen(zHost);
  if( sqlite3_stricmp(zHost, "localhost")==0 ) return 1;
  if( inet_pton(AF_INET, zHost, &a4)==1 ) return (ntohl(a4.s_addr)>>24)==127;
  if( n>2 && n<sizeof(zBare) && zHost[0]=='[' && zHost[n-1]==']' ){
    memcpy(zBare, zHost+1, n-2);
    zBare[n-2] = 0;
    return inet_pton(AF_INET6, zBare, &a6)==1 && IN6_IS_ADDR_LOOPBACK(&a6);
  }
  return 0;
}

/* Whether a failed transfer (curl code cc) is worth another attempt: the network's passing
** faults are; a certificate that does not verify, a malformed URL or an answer over the cap
** are not, and will fail the same way every time. */
static int isTransient(CURLcode cc){
  switch( cc ){
    case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:      case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:          case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:           case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:                case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
      return 1;
    default:
      return 0;
  }
}

/* Whether a failed transfer (curl code cc) surely never reached the API: no connection, or no
** TLS session, so nothing can have been created. A cut or a timeout proves nothing. */
static int isUnsent(CURLcode cc){
  return cc==CURLE_COULDNT_RESOLVE_HOST || cc==CURLE_COULDNT_RESOLVE_PROXY
      || cc==CURLE_COULDNT_CONNECT || cc==CURLE_PEER_FAILED_VERIFICATION
      || cc==CURLE_SSL_CACERT_BADFILE || cc==CURLE_SSL_CERTPROBLEM;
}

int apifyHttpCheck(const ApifyConfig *pCfg, char **pzErr){
  char *zScheme = 0, *zHost = 0;
  int rc;
  *pzErr = 0;
  if( pCfg->zToken==0 || pCfg->zToken[0]==0 ){
    *pzErr = sqlite3_mprintf("apify: no API token; set APIFY_TOKEN in the environment before "
                             "loading the extension");
    return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
  }
  rc = apifyUrlParse(pCfg->zBaseUrl, &zScheme, &zHost);
  if( rc==SQLITE_ERROR ){
    *pzErr = sqlite3_mprintf("apify: base_url \"%s\" is not an absolute http or https URL "
                             "(check APIFY_API_BASE_URL)", pCfg->zBaseUrl);
  }else if( rc==SQLITE_OK && strcmp(zScheme, "https")!=0 ){
    /* Refused unless it is http to this machine; a refusal whose message cannot be made is
    ** SQLITE_NOMEM below, never a pass. */
    rc = SQLITE_ERROR;
    if( strcmp(zScheme, "http")!=0 ){
      *pzErr = sqlite3_mprintf("apify: base_url \"%s\" must be http or https", pCfg->zBaseUrl);
    }else if( !isLoopback(zHost) ){
      *pzErr = sqlite3_mprintf("apify: refusing to send the token in clear text to \"%s\"; "
                               "use https, or http only to a loopback address", zHost);
    }else{
      rc = SQLITE_OK;
    }
  }else if( rc==SQLITE_OK && getenv("SSLKEYLOGFILE") && getenv("SSLKEYLOGFILE")[0] ){
    /* libcurl would write the keys of the TLS sessions that carry the token to that file. */
    rc = SQLITE_ERROR;
    *pzErr = sqlite3_mprintf("apify: SSLKEYLOGFILE is set, so libcurl would write the keys of "
                             "the TLS sessions that carry your token to \"%s\"; unset it to "
                             "send", getenv("SSLKEYLOGFILE"));
  }
  if( rc==SQLITE_ERROR && *pzErr==0 ) rc = SQLITE_NOMEM;
  sqlite3_free(zScheme);
  sqlite3_free(zHost);
  return rc;
}

char *apifyHttpUrl(const ApifyConfig *pCfg, const char *zPath){
  return sqlite3_mprintf("%s%s", pCfg->zBaseUrl, zPath ? zPath : "/v2/webhooks");
}

int apifyHttpGlobalInit(void){
  return curl_global_init(CURL_GLOBAL_DEFAULT)==CURLE_OK ? SQLITE_OK : SQLITE_ERROR;
}

/* CURLMOPT_SOCKETFUNCTION: watch socket s for what libcurl wants, or stop watching it. Only
** sockets with something to do are handed to libcurl (curl_multi_socket_action), so a window
** of many idle connections costs nothing per event. */
static int onSocket(CURL *e, curl_socket_t s, int what, void *pArg, void *pSockArg){
  ApifyHttp *p = (ApifyHttp*)pArg;
  int i;
  (void)e;
  (void)pSockArg;
  for(i=0; i<p->nPoll && p->aPoll[i].fd!=s; i++){}
  if( what==CURL_POLL_REMOVE ){
    if( i<p->nPoll ) p->aPoll[i] = p->aPoll[--p->nPoll];
    return 0;
  }
  if( i==p->nPoll ){
    if( p->nPoll==p->nPollAlloc ){
      int nNew = p->nPollAlloc ? 2*p->nPollAlloc : 16;
      struct pollfd *aNew = sqlite3_realloc64(p->aPoll, nNew*sizeof(*aNew));
      if( aNew==0 ){
        p->bNoMem = 1;
        return -1;
      }
      p->aPoll = aNew;
      p->nPollAlloc = nNew;
    }
    p->aPoll[p->nPoll++].fd = s;
  }
  p->aPoll[i].events = (short)(((what & CURL_POLL_IN) ? POLLIN : 0)
                             | ((what & CURL_POLL_OUT) ? POLLOUT : 0));
  p->aPoll[i].revents = 0;
  return 0;
}

/* CURLMOPT_TIMERFUNCTION: when libcurl wants to be called with CURL_SOCKET_TIMEOUT. */
static int onTimer(CURLM *pMulti, long ms, void *pArg){
  ApifyHttp *p = (ApifyHttp*)pArg;
  (void)pMulti;
  p->tTimer = ms<0 ? -1.0 : nowSeconds() + ms/1000.0;
  return 0;
}

/* Wait up to msWait for a watched socket or libcurl's timer, and let libcurl act on what is
** ready. Returns SQLITE_OK, or SQLITE_NOMEM when a socket could not be watched. */
static int drive(ApifyHttp *p, int msWait){
  int i, nReady, nRunning = 0;
  double now = nowSeconds();
  if( p->tTimer>=0.0 ){
    int msTimer = p->tTimer<=now ? 0 : (int)((p->tTimer-now)*1000.0)+1;
    if( msTimer<msWait ) msWait = msTimer;
  }
  nReady = msWait>0 || p->nPoll>0 ? poll(p->aPoll, (nfds_t)p->nPoll, msWait) : 0;
  /* libcurl may add or remove watched sockets while it acts: walk from the end, and act on
  ** each socket's events as poll() left them. */
  for(i=p->nPoll-1; nReady>0 && i>=0; i--){
    if( i<p->nPoll && p->aPoll[i].revents ){
      short r = p->aPoll[i].revents;
      int ev = ((r & POLLIN) ? CURL_CSELECT_IN : 0) | ((r & POLLOUT) ? CURL_CSELECT_OUT : 0)
             | ((r & (POLLERR|POLLHUP|POLLNVAL)) ? CURL_CSELECT_ERR : 0);
      p->aPoll[i].revents = 0;
      curl_multi_socket_action(p->pMulti, p->aPoll[i].fd, ev, &nRunning);
    }
  }
  if( p->tTimer>=0.0 && p->tTimer<=nowSeconds() ){
    p->tTimer = -1.0;
    curl_multi_socket_action(p->pMulti, CURL_SOCKET_TIMEOUT, 0, &nRunning);
  }
  return p->bNoMem ? SQLITE_NOMEM : SQLITE_OK;
}

int apifyHttpOpen(ApifyHttp **pp){
  ApifyHttp *p = sqlite3_malloc64(sizeof(*p));
  *pp = 0;
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->tTimer = -1.0;
  p->pMulti = curl_multi_init();
  if( p->pMulti==0
   || curl_multi_setopt(p->pMulti, CURLMOPT_SOCKETFUNCTION, onSocket)
   || curl_multi_setopt(p->pMulti, CURLMOPT_SOCKETDATA, p)
   || curl_multi_setopt(p->pMulti, CURLMOPT_TIMERFUNCTION, onTimer)
   || curl_multi_setopt(p->pMulti, CURLMOPT_TIMERDATA, p) ){
    curl_multi_cleanup(p->pMulti);
    sqlite3_free(p);
    return SQLITE_NOMEM;
  }
  p->rFactor = 1.0;
  sqlite3_snprintf(sizeof(p->zAgent), p->zAgent, "apify-sqlite/%s (SQLite %s; libcurl %s)",
                   APIFY_VERSION, sqlite3_libversion(), curl_version_info(CURLVERSION_NOW)->version);
  *pp = p;
  return SQLITE_OK;
}

void apifyHttpClose(ApifyHttp *p){
  int i;
  if( p==0 ) return;
  for(i=0; i<p->nSlot; i++){
    Slot *pSlot = &p->aSlot[i];
    if( pSlot->bRunning ) curl_multi_remove_handle(p->pMulti, pSlot->pEasy);
    curl_easy_cleanup(pSlot->pEasy);
    sqlite3_free(sqlite3_str_finish(pSlot->pBody));
    sqlite3_free(pSlot->zLocation);
    sqlite3_free(pSlot->zUrl);
  }
  sqlite3_free(p->aSlot);
  curl_multi_cleanup(p->pMulti);
  sqlite3_free(p->aPoll);
  sqlite3_free(p);
}

void apifyCallReset(ApifyCall *pCall){
  sqlite3_free(pCall->zReply);
  sqlite3_free(pCall->zLocation);
  sqlite3_free(pCall->zNetError);
  pCall->zReply = pCall->zLocation = pCall->zNetError = 0;
  pCall->httpStatus = 0;
  pCall->nAttempt = 0;
  pCall->bAborted = 0;
  pCall->bCanRetry = 0;
}

/* CURLOPT_WRITEFUNCTION: append to the slot's answer. Returning less than given aborts the
** transfer on purpose when the answer outgrows the cap or memory runs out. */
static size_t onBody(char *pData, size_t sz, size_t n, void *pArg){
  Slot *pSlot = (Slot*)pArg;
  size_t nByte = sz*n;
  if( (size_t)sqlite3_str_length(pSlot->pBody)+nByte > APIFY_MAX_REPLY ){
    pSlot->bOversize = 1;
    return 0;
  }
  sqlite3_str_append(pSlot->pBody, pData, (int)nByte);
  if( sqlite3_str_errcode(pSlot->pBody)!=SQLITE_OK ){
    pSlot->bNoMem = 1;
    return 0;
  }
  return nByte;
}

/* True if header line z (n bytes) is "zName: ..."; then *pzVal and *pnVal hold the trimmed
** value. */
static int headerIs(const char *z, size_t n, const char *zName, const char **pzVal, int *pnVal){
  size_t nName = strlen(zName);
  if( n<=nName || z[nName]!=':' || sqlite3_strnicmp(z, zName, (int)nName)!=0 ) return 0;
  z += nName+1;
  n -= nName+1;
  while( n>0 && (z[0]==' ' || z[0]=='\t') ){ z++; n--; }
  while( n>0 && (z[n-1]=='\r' || z[n-1]=='\n' || z[n-1]==' ') ) n--;
  *pzVal = z;
  *pnVal = (int)n;
  return 1;
}

/* CURLOPT_HEADERFUNCTION: keep Location and learn X-RateLimit-Limit. */
static size_t onHeader(char *z, size_t sz, size_t n, void *pArg){
  ApifyHttp *p = ((void**)pArg)[0];
  Slot *pSlot = ((void**)pArg)[1];
  const char *zVal;
  int nVal;
  n *= sz;
  if( headerIs(z, n, "Location", &zVal, &nVal) ){
    sqlite3_free(pSlot->zLocation);
    pSlot->zLocation = sqlite3_mprintf("%.*s", nVal, zVal);
    if( pSlot->zLocation==0 ){
      pSlot->bNoMem = 1;
      return 0;
    }
  }else if( headerIs(z, n, "X-RateLimit-Limit", &zVal, &nVal) ){
    double r = 0.0;
    char zNum[32];
    sqlite3_snprintf(sizeof(zNum), zNum, "%.*s", nVal, zVal);
    r = strtod(zNum, 0);
    if( r>0.0 ) p->rLimit = r<RATE_FLOOR ? RATE_FLOOR : r;   /* a tiny limit cannot stall us */
  }
  return n;
}

/* Grow the window to nWant slots, each with an easy handle whose fixed options are set. */
static int slotsEnsure(ApifyHttp *p, int nWant){
  Slot *aNew;
  if( nWant<=p->nSlot ) return SQLITE_OK;
  aNew = sqlite3_realloc64(p->aSlot, nWant*sizeof(Slot));
  if( aNew==0 ) return SQLITE_NOMEM;
  p->aSlot = aNew;
  while( p->nSlot<nWant ){
    Slot *pSlot = &p->aSlot[p->nSlot];
    memset(pSlot, 0, sizeof(*pSlot));
    pSlot->pEasy = curl_easy_init();
    if( pSlot->pEasy==0 ) return SQLITE_NOMEM;
    p->nSlot++;
  }
  return SQLITE_OK;
}

int apifyHttpHeader(ApifyHttp *p, const ApifyConfig *pCfg, int i, int bRedact, char **pz){
  *pz = 0;
  switch( i ){
    case 0:
      if( pCfg->zToken==0 ) return SQLITE_OK;
      *pz = sqlite3_mprintf("Authorization: Bearer %s", bRedact ? "<redacted>" : pCfg->zToken);
      break;
    case 1: *pz = sqlite3_mprintf("Content-Type: application/json"); break;
    case 2: *pz = sqlite3_mprintf("Accept: application/json"); break;
    case 3: *pz = sqlite3_mprintf("User-Agent: %s", p->zAgent); break;
    default: return SQLITE_DONE;
  }
  return *pz ? SQLITE_OK : SQLITE_NOMEM;
}

/* The header list of one run: the only place the token is written. NULL when out of memory. */
static struct curl_slist *headersBuild(ApifyHttp *p, const ApifyConfig *pCfg){
  struct curl_slist *pList = curl_slist_append(0, "Expect:"), *pNew;  /* no 100-continue wait */
  char *z = 0;
  int i, rc = pList ? SQLITE_OK : SQLITE_NOMEM;
  for(i=0; rc==SQLITE_OK; i++){
    rc = apifyHttpHeader(p, pCfg, i, 0, &z);
    if( rc==SQLITE_OK && z ){
      pNew = curl_slist_append(pList, z);
      if( pNew==0 ) rc = SQLITE_NOMEM; else pList = pNew;
      memset(z, 0, strlen(z));   /* libcurl keeps its own copy; ours leaves no token behind */
      sqlite3_free(z);
    }
  }
  if( rc!=SQLITE_DONE ){
    curl_slist_free_all(pList);
    pList = 0;
  }
  return pList;
}

/* Everything one run of apifyHttpSend() needs. */
typedef struct Run Run;
struct Run {
  ApifyHttp *p;
  sqlite3 *db;             /* probed for sqlite3_interrupt() */
  const ApifyConfig *pCfg;
  int (*xNext)(void*, ApifyCall**);
  int (*xDone)(void*, ApifyCall*);
  void *pArg;
  struct curl_slist *pHeaders;
  int rc;                  /* first error: the run stops starting new work */
  /* Progress: shown on stderr when asked for, or when it is a terminal, for big enough runs */
  int bProgress;
  sqlite3_int64 nTotal;    /* calls expected, 0 if unknown */
  sqlite3_int64 nSent;     /* calls started */
  sqlite3_int64 nOk;       /* calls done that succeeded */
  sqlite3_int64 nFailed;   /* calls done that did not */
  double tStart;           /* when the run began */
  double tShown;           /* when the progress line was last written */
  double tProbe;           /* when the interrupt flag was last looked at */
};

#define PROGRESS_MIN   6     /* runs smaller than this show no progress line */
#define PROGRESS_EVERY 0.25  /* seconds between progress updates */
#define PROBE_EVERY    0.05  /* seconds between looks at the interrupt flag */

/* True if sqlite3_interrupt() was called on db while the statement calling us runs. SQLite
** 3.40 has no sqlite3_is_interrupted(), but while the flag is set, preparing or stepping any
** statement fails at once with SQLITE_INTERRUPT; a one-row SELECT is that probe. */
static int isInterrupted(sqlite3 *db){
  sqlite3_stmt *pStmt = 0;
  int rc;
  if( db==0 ) return 0;
#if SQLITE_VERSION_NUMBER>=3041000
  /* Built against 3.41 or later: the routine table has sqlite3_is_interrupted(), but the
  ** library that loaded us may be older, and its table shorter: ask it only when it has it. */
  if( sqlite3_libversion_number()>=3041000 ) return sqlite3_is_interrupted(db);
#endif
  rc = sqlite3_prepare_v2(db, "SELECT 1", -1, &pStmt, 0);   /* the parser checks the flag too */
  if( rc==SQLITE_OK ) rc = sqlite3_step(pStmt);
  sqlite3_finalize(pStmt);
  return rc==SQLITE_INTERRUPT;
}

/* Write the progress line: in place while the run goes on, and a last line when bDone. */
static void progressShow(Run *pRun, int nRetrying, double now, int bDone){
  double elapsed = now - pRun->tStart;
  sqlite3_int64 nDone = pRun->nOk + pRun->nFailed;
  double rate = elapsed>0.0 ? nDone/elapsed : 0.0;
  if( !pRun->bProgress || (!bDone && now-pRun->tShown<PROGRESS_EVERY) ) return;
  pRun->tShown = now;
  if( bDone ){
    fprintf(stderr, "\rapify: %lld requests in %.1f s: %lld created, %lld failed, %.1f/s%20s\n",
            (long long)nDone, elapsed, (long long)pRun->nOk, (long long)pRun->nFailed, rate, "");
  }else{
    char zLeft[32] = "?";
    if( rate>0.0 && pRun->nTotal>=nDone ){
      sqlite3_snprintf(sizeof(zLeft), zLeft, "%.0f s", (pRun->nTotal-nDone)/rate);
    }
    fprintf(stderr, "\rapify: %lld/%lld sent, %lld created, %lld failed, %d retrying, "
            "%.1f/s, %s left   ", (long long)pRun->nSent, (long long)pRun->nTotal,
            (long long)pRun->nOk, (long long)pRun->nFailed, nRetrying, rate, zLeft);
  }
  fflush(stderr);
}

/* Requests per second the run aims at now, 0 for unpaced. */
static double paceRate(ApifyHttp *p, const ApifyConfig *pCfg){
  double r = pCfg->rateLimit>0 ? pCfg->rateLimit : PACE_SHARE*p->rLimit;
  return r*p->rFactor;
}

/* When the next start is due: on the schedule, and never closer than 3/4 of a gap to the last
** start (the probe's included), 0 when unpaced. */
static double paceDue(ApifyHttp *p, const ApifyConfig *pCfg){
  double r = paceRate(p, pCfg), tMin;
  if( r<=0.0 ) return 0.0;
  tMin = p->tLast + 0.75/r;
  return p->tNext>tMin ? p->tNext : tMin;
}

/* Start the next attempt of pSlot's call. */
static int slotStart(Run *pRun, Slot *pSlot, void **aArg, double now){
  ApifyHttp *p = pRun->p;
  const ApifyConfig *pCfg = pRun->pCfg;
  CURL *e = pSlot->pEasy;
  ApifyCall *pCall = pSlot->pCall;
  const char *zMethod = pCall->zMethod ? pCall->zMethod : "POST";
  double r = paceRate(p, pCfg);
  int bPost = strcmp(zMethod, "POST")==0;
  sqlite3_free(pSlot->zUrl);
  pSlot->zUrl = apifyHttpUrl(pCfg, pCall->zPath);
  sqlite3_free(sqlite3_str_finish(pSlot->pBody));
  pSlot->pBody = sqlite3_str_new(0);
  sqlite3_free(pSlot->zLocation);
  pSlot->zLocation = 0;
  pSlot->bOversize = 0;
  pSlot->bNoMem = 0;
  pSlot->zErr[0] = 0;
  aArg[0] = p;
  aArg[1] = pSlot;
  curl_easy_reset(e);
  if( pSlot->zUrl==0
   || curl_easy_setopt(e, CURLOPT_URL, pSlot->zUrl)
   || curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https")
   /* plain http goes to a loopback address (apifyHttpCheck), never through a proxy */
   || (strncmp(pSlot->zUrl, "https:", 6)!=0 && curl_easy_setopt(e, CURLOPT_PROXY, ""))
   || curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L)
   || curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)pCfg->connectTimeoutMs)
   || curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)pCfg->timeoutMs)
   || curl_easy_setopt(e, CURLOPT_ERRORBUFFER, pSlot->zErr)
   || curl_easy_setopt(e, CURLOPT_HTTPHEADER, pRun->pHeaders)
   || (bPost && curl_easy_setopt(e, CURLOPT_POSTFIELDS, pCall->zBody ? pCall->zBody : ""))
   || (bPost && curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                                 (curl_off_t)(pCall->zBody ? strlen(pCall->zBody) : 0)))
   || (!bPost && pCall->zBody && curl_easy_setopt(e, CURLOPT_POSTFIELDS, pCall->zBody))
   || (!bPost && pCall->zBody && curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                                                  (curl_off_t)strlen(pCall->zBody)))
   || (strcmp(zMethod, "GET")==0 && curl_easy_setopt(e, CURLOPT_HTTPGET, 1L))
   || (!bPost && strcmp(zMethod, "GET")!=0
       && curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, zMethod))
   || curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, onBody)
   || curl_easy_setopt(e, CURLOPT_WRITEDATA, pSlot)
   || curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, onHeader)
   || curl_easy_setopt(e, CURLOPT_HEADERDATA, aArg)
   || curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "")
   || curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L)
   || curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L)
   || (pCfg->zCaFile && curl_easy_setopt(e, CURLOPT_CAINFO, pCfg->zCaFile))
   || pSlot->pBody==0
   || curl_multi_add_handle(p->pMulti, e)!=CURLM_OK ){
    return SQLITE_NOMEM;
  }
  if( pCall->nAttempt==0 ){
    pSlot->tFirst = now;
    pCall->bUnsent = 1;    /* until an attempt gets further than connecting */
    pRun->nSent++;
  }
  pCall->nAttempt++;
  pSlot->bRunning = 1;
  pSlot->tStart = now;
  p->tLast = now;
  if( r>0.0 ){
    /* Keep to the schedule, not to when we woke: a start a little late must not push every
    ** later one back (that drift alone cost 5% of the rate). But a late start makes up at most
    ** a quarter of a gap, so two starts never come closer than 3/4 of one. */
    double gap = 1.0/r;
    if( p->tNext<=0.0 ) p->tNext = now;              /* the schedule starts here */
    else if( p->tNext < now-0.25*gap ) p->tNext = now-0.25*gap;
    p->tNext += gap;
  }
  return SQLITE_OK;
}

/* Hand pSlot's call back to the caller and free the slot, unless the caller asks for another
** attempt (APIFY_AGAIN) while one is allowed. */
static void slotDone(Run *pRun, Slot *pSlot, double now){
  ApifyCall *pCall = pSlot->pCall;
  int bRetry = pCall->bCanRetry;   /* read first: xDone may free the call */
  int rc;
  pSlot->pCall = 0;
  rc = pRun->xDone(pRun->pArg, pCall);
  if( rc==APIFY_AGAIN && bRetry ){
    pSlot->pCall = pCall;
    pSlot->tReady = now + backoff(pCall->nAttempt);
    return;
  }
  if( rc==SQLITE_OK ) pRun->nOk++; else pRun->nFailed++;
  if( rc!=SQLITE_OK && rc!=APIFY_AGAIN && rc!=APIFY_FAILED && pRun->rc==SQLITE_OK ) pRun->rc = rc;
}

/* An attempt of pSlot ended with curl code cc: record what arrived, then retry or finish. */
static void slotFinish(Run *pRun, Slot *pSlot, CURLcode cc, double now){
  ApifyHttp *p = pRun->p;
  const ApifyConfig *pCfg = pRun->pCfg;
  ApifyCall *pCall = pSlot->pCall;
  long status = 0;
  curl_off_t nRetryAfter = 0;     /* seconds; 0 when there is no Retry-After */
  double delay;
  int bRetry = 0;

  curl_multi_remove_handle(p->pMulti, pSlot->pEasy);
  pSlot->bRunning = 0;
  sqlite3_free(pCall->zReply);
  sqlite3_free(pCall->zNetError);
  sqlite3_free(pCall->zLocation);
  pCall->zReply = pCall->zNetError = 0;
  pCall->zLocation = pSlot->zLocation;   /* ownership moves to the call */
  pSlot->zLocation = 0;
  if( cc==CURLE_OK ){
    curl_easy_getinfo(pSlot->pEasy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(pSlot->pEasy, CURLINFO_RETRY_AFTER, &nRetryAfter);
    /* An empty answer finishes as NULL too: only the error code tells out of memory. */
    if( sqlite3_str_errcode(pSlot->pBody)!=SQLITE_OK ) pSlot->bNoMem = 1;
    pCall->zReply = sqlite3_str_finish(pSlot->pBody);
    pSlot->pBody = 0;
    bRetry = status==429 || (status>=500 && pCall->bReplay);
    pCall->bUnsent = 0;
    p->bHeard = 1;
  }else{
    const char *zWhy = pSlot->zErr[0] ? pSlot->zErr : curl_easy_strerror(cc);
    if( pSlot->bOversize ){
      pCall->zNetError = sqlite3_mprintf("the answer is larger than %d bytes", APIFY_MAX_REPLY);
    }else if( cc==CURLE_PEER_FAILED_VERIFICATION ){
      pCall->zNetError = sqlite3_mprintf("%s; to trust a private CA, "
                                         "SELECT apify_config('ca_file', '/path/to/ca.pem')", zWhy);
    }else{
      pCall->zNetError = sqlite3_mprintf("%s", zWhy);
    }
    if( pCall->zNetError==0 && pRun->rc==SQLITE_OK ) pRun->rc = SQLITE_NOMEM;
    if( !isUnsent(cc) ) pCall->bUnsent = 0;   /* an earlier attempt may have got through */
    bRetry = !pSlot->bOversize && isTransient(cc) && (pCall->bReplay || isUnsent(cc));
  }
  if( pSlot->bNoMem ){
    /* The answer was lost here, not on the network: the run stops with SQLITE_NOMEM, and the
    ** call goes back unfinished (it may exist remotely; its key finds it next time). */
    if( pRun->rc==SQLITE_OK ) pRun->rc = SQLITE_NOMEM;
    bRetry = 1;
  }
  pCall->httpStatus = (int)status;

  if( status==429 ){
    if( pSlot->tStart>=p->tPaused ){
      /* A new 429, for a request started after the last pause was decided: slow down and
      ** pause everything. The 429s of requests that were in flight together with it belong to
      ** the same burst and only wait out the same pause, or a burst of 16 would double it 16
      ** times. */
      p->n429++;
      p->rFactor = p->rFactor*0.7 < 0.25 ? 0.25 : p->rFactor*0.7;
      delay = nRetryAfter>0 ? (double)nRetryAfter : backoff(p->n429);
      if( nRetryAfter<=0 && delay>PAUSE_MAX ) delay = PAUSE_MAX;
      /* No pause outlasts max_retry_time_ms, whatever Retry-After says. */
      if( delay>pCfg->maxRetryMs/1000.0 ) delay = pCfg->maxRetryMs/1000.0;
      if( now+delay > p->tPause ) p->tPause = now+delay;
      p->tPaused = now;
    }
    delay = p->tPause>now ? p->tPause-now : 0.0;
  }else{
    if( status>0 ){
      p->n429 = 0;
      p->rFactor = p->rFactor+0.02 > 1.0 ? 1.0 : p->rFactor+0.02;
    }
    delay = nRetryAfter>0 ? (double)nRetryAfter : backoff(pCall->nAttempt);
  }
  if( delay>pCfg->maxRetryMs/1000.0 ) delay = pCfg->maxRetryMs/1000.0;
  pCall->bCanRetry = pRun->rc==SQLITE_OK
                  && pCall->nAttempt < pCfg->maxAttempts
                  && now+delay-pSlot->tFirst <= pCfg->maxRetryMs/1000.0;
  if( bRetry && pCall->bCanRetry ){
    pSlot->tReady = now+delay;
    return;
  }
  pCall->bAborted = bRetry && pRun->rc!=SQLITE_OK;
  slotDone(pRun, pSlot, now);
}

int apifyHttpSend(ApifyHttp *p, sqlite3 *db, const ApifyConfig *pCfg, sqlite3_int64 nTotal,
                  int (*xNext)(void *pArg, ApifyCall **pp),
                  int (*xDone)(void *pArg, ApifyCall *pCall),
                  void *pArg){
  Run run;
  void *(*aArg)[2] = 0;    /* header-callback arguments, one pair per slot */
  int nWindow = pCfg->concurrency>0 ? pCfg->concurrency : 1;
  int bMore = 1;           /* xNext may have more calls */
  int i;

  memset(&run, 0, sizeof(run));
  run.p = p;
  run.db = db;
  run.pCfg = pCfg;
  run.nTotal = nTotal;
  run.tStart = nowSeconds();
  run.bProgress = nTotal>=PROGRESS_MIN && (pCfg->progress>0 || (pCfg->progress<0 && isatty(2)));
  run.xNext = xNext;
  run.xDone = xDone;
  run.pArg = pArg;
  run.pHeaders = headersBuild(p, pCfg);
  aArg = sqlite3_malloc64(nWindow*sizeof(*aArg));
  if( run.pHeaders==0 || aArg==0 ) run.rc = SQLITE_NOMEM;
  if( run.rc==SQLITE_OK ) run.rc = slotsEnsure(p, nWindow);
  if( run.rc!=SQLITE_OK ) nWindow = 0;   /* the window may not exist: start nothing, end now */
  if( pCfg->rateLimit<=0 && p->rLimit<=0 ) p->tNext = 0;
  p->n429 = 0;             /* a new statement starts without the last one's 429 streak, */
  p->tPause = 0.0;         /* and without its pause: no pause outlives the run that heard it
                           ** (the slower pace it learned stays) */

  while( 1 ){
    double now = nowSeconds();
    double tWake = now + 0.1;
    int nBusy = 0, nRunning = 0, nRetrying = 0;
    int bProbe = pCfg->rateLimit<=0 && p->rLimit<=0 && !p->bHeard;  /* learn the limit first */

    /* Ctrl-C in the shell: start nothing new; what is in flight finishes and is recorded. */
    if( run.rc==SQLITE_OK && now-run.tProbe>=PROBE_EVERY ){
      run.tProbe = now;
      if( isInterrupted(db) ) run.rc = SQLITE_INTERRUPT;
    }

    /* Refill free slots from the caller's queue. */
    for(i=0; i<nWindow && bMore && run.rc==SQLITE_OK; i++){
      Slot *pSlot = &p->aSlot[i];
      if( pSlot->pCall ) continue;
      run.rc = xNext(pArg, &pSlot->pCall);
      if( run.rc==SQLITE_OK && pSlot->pCall==0 ) bMore = 0;
      if( pSlot->pCall ) pSlot->tReady = now;
    }

    /* Start the attempts that are due, paced, in slot order. */
    for(i=0; i<nWindow; i++){
      if( p->aSlot[i].bRunning ) nRunning++;
    }
    for(i=0; i<nWindow; i++){
      Slot *pSlot = &p->aSlot[i];
      if( pSlot->pCall==0 ) continue;
      if( pSlot->bRunning ){ nBusy++; continue; }
      if( run.rc!=SQLITE_OK ){
        /* The run is stopping: a call waiting for a retry goes back unfinished. */
        pSlot->pCall->bAborted = 1;
        pSlot->pCall->bCanRetry = 0;
        slotDone(&run, pSlot, now);
        continue;
      }
      nBusy++;
      if( pSlot->tReady>now ){
        if( pSlot->pCall->nAttempt>0 ) nRetrying++;
        if( pSlot->tReady<tWake ) tWake = pSlot->tReady;
      }else if( p->tPause>now ){
        if( p->tPause<tWake ) tWake = p->tPause;
      }else if( paceDue(p, pCfg)>now ){
        if( paceDue(p, pCfg)<tWake ) tWake = paceDue(p, pCfg);
      }else if( !(bProbe && nRunning>0) ){
        run.rc = slotStart(&run, pSlot, aArg[i], now);
        if( run.rc==SQLITE_OK ) nRunning++;
      }
    }
    if( nBusy==0 && (!bMore || run.rc!=SQLITE_OK) ) break;
    progressShow(&run, nRetrying, now, 0);

    /* Hand back what finished; else wait for a socket, libcurl's timer or our next start. */
    {
      int nMsg = 0, bDone = 0;
      CURLMsg *pMsg;
      while( (pMsg = curl_multi_info_read(p->pMulti, &nMsg))!=0 ){
        if( pMsg->msg!=CURLMSG_DONE ) continue;
        for(i=0; i<nWindow; i++){
          if( p->aSlot[i].pEasy==pMsg->easy_handle && p->aSlot[i].bRunning ){
            slotFinish(&run, &p->aSlot[i], pMsg->data.result, nowSeconds());
            break;
          }
        }
        bDone = 1;
      }
      if( !bDone && drive(p, (int)((tWake-now)*1000.0)+1)!=SQLITE_OK ){
        /* A socket could not be watched, and libcurl, told so, gave up on every transfer of
        ** the multi handle without finishing them: end them here (their calls go back
        ** unfinished) so that the loop ends, and the next run starts on a clean handle. */
        if( run.rc==SQLITE_OK ) run.rc = SQLITE_NOMEM;
        for(i=0; i<nWindow; i++){
          if( p->aSlot[i].bRunning ){
            p->aSlot[i].bNoMem = 1;
            slotFinish(&run, &p->aSlot[i], CURLE_OUT_OF_MEMORY, nowSeconds());
          }
        }
        p->bNoMem = 0;
      }
    }
  }
  progressShow(&run, 0, nowSeconds(), 1);

  curl_slist_free_all(run.pHeaders);
  sqlite3_free(aArg);
  return run.rc;
}
