/*
** store.c: what is kept behind an apify_webhooks table, and how far it is believed. For a table
** named T in schema S:
**
**   S."T_store"   one record per webhook this table manages: its idempotency key (NULL for an
**                 adopted webhook), the request as first inserted (origin: what the key names),
**                 the request as the webhook stands, its status (created, failed, or deleted: a
**                 tombstone that keeps the record's history and generation), the last operation
**                 sent (create, update, delete, adopt), the webhook's id, the Location header as
**                 received, the API's answer or error, attempts and times. An operation queued by
**                 the open transaction shows in `pending` (its name) and `pending_stamp` (its
**                 queue entry) until its commit.
**                 And a MAC: HMAC-SHA256 of the record under a key derived from the API token.
**   temp."apify_queue_N"
**                 the operations the open transaction has validated, each with a stamp (a
**                 counter of this connection, never reused) and sealed with an HMAC under a key
**                 of this connection's session. TEMP: only this connection can see or write it, so
**                 nothing a database file holds can add to it; the seal proves each entry was
**                 written by xUpdate after validation, so not even the user's own SQL can change
**                 what goes out behind the extension's back. The queue is only appended to: a
**                 record's pending_stamp, in T_store, names the entry that is its operation now.
**                 So what a rolled-back statement or savepoint queued is taken back with the
**                 record's stamp, by SQLite itself (a TEMP table is not rolled back with a failed
**                 statement that wrote it from inside a virtual table; T_store is), and an entry
**                 no record names is never sent.
**
** Records prove where they came from. A record is verified when its MAC matches under the key
** of the token now set: the extension wrote it, for this account. Only verified records are acted
** on (skipped as created, updated, deleted); any other is shown as 'unverified' and never
** resent, and a change of token makes every record unverified until it is adopted again. The
** store's shape is checked before use: triggers or another shape in place of T_store are refused.
**
** One ApifyStore per table per connection, shared by every sqlite3_vtab SQLite connects for the
** table (a schema change inside a transaction connects a second one while the first stays in the
** transaction): the row count and savepoint marks of a transaction live here, not in a vtab. The
** tables are created on the first write, inside its transaction (a rolled-back first write takes
** them away again: bReady is forgotten at every rollback).
*/
#include <string.h>
#include "apify.h"

/* Columns of a record as every statement below reads them, and the MAC's fields. */
#define RECORD_COLS "s.seq, s.idempotency_key, s.origin, s.request, s.status, s.operation," \
  " s.generation, s.id, s.http_status, s.location, s.error_type, s.error_message, s.response," \
  " s.attempts, s.queued_at, s.completed_at, q.op, q.body, s.mac, q.pos, q.stamp, q.seal"
/* The records, each with the queue entry its pending_stamp names (the record's own), if any. */
#define RECORD_FROM(JOIN) " FROM \"%w\".\"%w_store\" AS s " JOIN " temp.\"apify_queue_%d\" AS q" \
  " ON q.stamp=s.pending_stamp AND q.seq=s.seq"
#define RC_SEQ       0
#define RC_KEY       1
#define RC_ORIGIN    2
#define RC_REQUEST   3
#define RC_STATUS    4
#define RC_OPERATION 5
#define RC_GEN       6
#define RC_ID        7
#define RC_LOCATION  9
#define RC_PENDING  16
#define RC_PREQUEST 17
#define RC_MAC      18
#define RC_POS      19
#define RC_STAMP    20
#define RC_SEAL     21
/* What the MAC covers: every column the extension writes at an outcome (not seq, not
** queued_at, which a queued operation changes, not the pending columns). */
static const int aMacCol[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15 };
#define N_MACCOL ((int)(sizeof(aMacCol)/sizeof(aMacCol[0])))

static const char zStoreSchema[] =
  "CREATE TABLE IF NOT EXISTS \"%w\".\"%w_store\"("
  "seq INTEGER PRIMARY KEY, idempotency_key TEXT UNIQUE, origin TEXT, request TEXT,"
  " status TEXT NOT NULL, operation TEXT NOT NULL, generation INTEGER NOT NULL DEFAULT 1,"
  " id TEXT UNIQUE, http_status INTEGER, location TEXT, error_type TEXT, error_message TEXT,"
  " response TEXT, attempts INTEGER NOT NULL DEFAULT 0, queued_at TEXT, completed_at TEXT,"
  " pending TEXT, pending_stamp INTEGER, mac BLOB)";

#define NOW "strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ')"

enum {
  STMT_FIND_KEY, STMT_FIND_ID, STMT_FIND_SEQ, STMT_NEW, STMT_PEND, STMT_FORGET, STMT_RECORD,
  STMT_SEAL_MAC, STMT_Q_ADD, STMT_Q_NEXT, STMT_Q_COUNT, STMT_Q_CLEAR, STMT_COUNT
};
/* Each statement is formatted with (schema, table, queue number); %.0s skips an argument. */
static const char *const azStmt[STMT_COUNT] = {
  "SELECT " RECORD_COLS RECORD_FROM("LEFT JOIN") " WHERE s.idempotency_key=?1",
  "SELECT " RECORD_COLS RECORD_FROM("LEFT JOIN") " WHERE s.id=?1",
  "SELECT " RECORD_COLS RECORD_FROM("LEFT JOIN") " WHERE s.seq=?1",
  /* STMT_NEW: a record for key ?1 (NULL to adopt id ?4), request ?2, operation ?3 */
  "INSERT INTO \"%w\".\"%w_store\"(idempotency_key, origin, request, status, operation, id,"
  " queued_at) VALUES(?1, ?2, ?2, 'pending', ?3, ?4, " NOW ")",
  /* STMT_PEND: record ?1's operation is now ?2 (NULL: none), queue entry ?3 */
  "UPDATE \"%w\".\"%w_store\" SET pending=?2, pending_stamp=?3,"
  " queued_at=CASE WHEN ?2 IS NULL THEN queued_at ELSE " NOW " END WHERE seq=?1",
  "DELETE FROM \"%w\".\"%w_store\" WHERE seq=?1",
  /* STMT_RECORD: the outcome of record ?1's operation; pending cleared, the MAC set after */
  "UPDATE \"%w\".\"%w_store\" SET idempotency_key=?2, origin=?3, request=?4, status=?5,"
  " operation=?6, generation=?7, id=?8, http_status=?9, location=?10, error_type=?11,"
  " error_message=?12, response=?13, attempts=?14, completed_at=" NOW ", pending=NULL,"
  " pending_stamp=NULL, mac=NULL WHERE seq=?1",
  "UPDATE \"%w\".\"%w_store\" SET mac=?2 WHERE seq=?1",
  "INSERT INTO temp.\"apify_queue_%.0s%.0s%d\"(stamp, seq, op, body, pos, seal)"
  " VALUES(?1,?2,?3,?4,?5,?6)",
  /* STMT_Q_NEXT: the next operation to send, after stamp ?1, with its record */
  "SELECT " RECORD_COLS RECORD_FROM("JOIN") " WHERE q.stamp>?1 ORDER BY q.stamp LIMIT 1",
  "SELECT count(*)" RECORD_FROM("JOIN"),
  "DELETE FROM temp.\"apify_queue_%.0s%.0s%d\"",
};

struct ApifyStore {
  ApifyStore *pNext;       /* the connection's other stores */
  int nRef;                /* sqlite3_vtab objects using it */
  Apify *pApify;           /* the connection's state (which owns the list of stores) */
  sqlite3 *db;
  char *zDb;               /* schema name */
  char *zName;             /* table name T */
  int iQueue;              /* temp."apify_queue_N" */
  int bReady;              /* the tables are known to exist in this transaction */
  int bInTxn;              /* a transaction of this table is open (xBegin seen) */
  const void *pJoining;    /* a second sqlite3_vtab joining it, until its first xSavepoint */
  int nRow;                /* rows written by this transaction, to name a bad one */
  int nMark;               /* nRow at each savepoint, -1 where the table had not joined */
  int *aMark;
  sqlite3_stmt *aStmt[STMT_COUNT];
};

static int heardAdd(ApifyStore *p, sqlite3_int64 iSeq, const ApifyOutcomeRow *o);
static void outcomeBind(sqlite3_stmt *pStmt, int iFirst, const ApifyOutcomeRow *o);
static int heardReplay(ApifyStore *p);
static int recordWrite(ApifyStore *p, sqlite3_int64 iSeq, const ApifyOutcomeRow *o);

/* ------------------------------------------------------------------------------------------ */
/* Opening, sharing */

int apifyStoreOpen(Apify *pApify, sqlite3 *db, const char *zDb, const char *zName,
                   ApifyStore **pp){
  ApifyStore *p;
  *pp = 0;
  for(p=pApify->pStores; p; p=p->pNext){
    if( sqlite3_stricmp(p->zDb, zDb)==0 && sqlite3_stricmp(p->zName, zName)==0 ){
      p->nRef++;
      *pp = p;
      return SQLITE_OK;
    }
  }
  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->nRef = 1;
  p->pApify = pApify;
  p->db = db;
  p->iQueue = ++pApify->nQueue;
  p->zDb = sqlite3_mprintf("%s", zDb);
  p->zName = sqlite3_mprintf("%s", zName);
  if( p->zDb==0 || p->zName==0 ){
    sqlite3_free(p->zDb);
    sqlite3_free(p->zName);
    sqlite3_free(p);
    return SQLITE_NOMEM;
  }
  p->pNext = pApify->pStores;
  pApify->pStores = p;
  *pp = p;
  return SQLITE_OK;
}

static void stmtsFinalize(ApifyStore *p){
  int i;
  for(i=0; i<STMT_COUNT; i++){
    sqlite3_finalize(p->aStmt[i]);
    p->aStmt[i] = 0;
  }
}

void apifyStoreClose(ApifyStore *p){
  ApifyStore **pp;
  if( p==0 || --p->nRef>0 ) return;
  for(pp=&p->pApify->pStores; *pp && *pp!=p; pp=&(*pp)->pNext){}
  if( *pp ) *pp = p->pNext;
  stmtsFinalize(p);
  sqlite3_free(p->aMark);
  sqlite3_free(p->zDb);
  sqlite3_free(p->zName);
  sqlite3_free(p);
}

const char *apifyStoreSchema(ApifyStore *p){ return p->zDb; }
const char *apifyStoreName(ApifyStore *p){ return p->zName; }
int apifyStoreQueueNumber(ApifyStore *p){ return p->iQueue; }

/* Statement i, prepared on first use; NULL with *pRc set on failure. */
static sqlite3_stmt *stmtGet(ApifyStore *p, int i, int *pRc){
  if( *pRc!=SQLITE_OK ) return 0;
  if( p->aStmt[i]==0 ){
    char *zSql = sqlite3_mprintf(azStmt[i], p->zDb, p->zName, p->iQueue);
    if( zSql==0 ){
      *pRc = SQLITE_NOMEM;
      return 0;
    }
    *pRc = sqlite3_prepare_v3(p->db, zSql, -1, SQLITE_PREPARE_PERSISTENT, &p->aStmt[i], 0);
    sqlite3_free(zSql);
    if( *pRc!=SQLITE_OK ) return 0;
  }
  return p->aStmt[i];
}

/* Step a write statement once and reset it; its result code. */
static int stmtRun(sqlite3_stmt *pStmt, int rc){
  if( rc!=SQLITE_OK || pStmt==0 ) return rc;
  sqlite3_step(pStmt);
  rc = sqlite3_reset(pStmt);
  sqlite3_clear_bindings(pStmt);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The tables: existence, shape, creation */

int apifyStoreExists(ApifyStore *p, int *pbExists){
  char *zSql = sqlite3_mprintf("SELECT 1 FROM \"%w\".sqlite_schema WHERE name='%q_store'",
                               p->zDb, p->zName);
  sqlite3_stmt *pStmt = 0;
  int rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &pStmt, 0) : SQLITE_NOMEM;
  *pbExists = 0;
  if( rc==SQLITE_OK ){
    *pbExists = sqlite3_step(pStmt)==SQLITE_ROW;
    rc = sqlite3_finalize(pStmt);
  }
  sqlite3_free(zSql);
  return rc;
}

/* True if z ends with zEnd. */
static int textEndsWith(const char *z, const char *zEnd){
  size_t n = strlen(z), nEnd = strlen(zEnd);
  return n>=nEnd && strcmp(z+n-nEnd, zEnd)==0;
}

int apifyStoreCheck(ApifyStore *p, char **pzErr){
  static const char zObjects[] =
    "SELECT type, name, sql FROM \"%w\".sqlite_schema WHERE name=%Q OR tbl_name=%Q";
  char *zTable = sqlite3_mprintf("%s_store", p->zName);
  char *zSql = zTable ? sqlite3_mprintf(zObjects, p->zDb, zTable, zTable) : 0;
  sqlite3_stmt *pStmt = 0;
  int rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &pStmt, 0) : SQLITE_NOMEM;
  int bTable = 0, bShape = 0;
  *pzErr = 0;
  sqlite3_free(zSql);
  zSql = 0;
  while( rc==SQLITE_OK && *pzErr==0 && sqlite3_step(pStmt)==SQLITE_ROW ){
    const char *zType = (const char*)sqlite3_column_text(pStmt, 0);
    const char *zName = (const char*)sqlite3_column_text(pStmt, 1);
    const char *zText = (const char*)sqlite3_column_text(pStmt, 2);
    if( zType==0 || zName==0 ){ rc = SQLITE_NOMEM; break; }
    if( strcmp(zType, "table")==0 && sqlite3_stricmp(zName, zTable)==0 ){
      /* our columns exactly: no CHECK, DEFAULT, COLLATE or other rule of the file's own */
      bTable = 1;
      bShape = zText && textEndsWith(zText, strchr(zStoreSchema, '('));
    }else if( strcmp(zType, "index")==0 && (zText==0 || (strncmp(zText, "CREATE INDEX ", 13)==0
              && textEndsWith(zText, "(status)"))) ){
      /* a UNIQUE constraint's own index, or the index on status this store makes */
    }else{
      *pzErr = sqlite3_mprintf("apify: %s \"%s\" in database \"%s\" %s %s's store \"%s\";"
                               " the extension refuses a store it does not own alone: DROP %s"
                               " \"%w\".\"%w\"", zType, zName, p->zDb,
                               strcmp(zType, "trigger")==0 ? "is a trigger on" : "stands in for",
                               p->zName, zTable, strcmp(zType, "trigger")==0 ? "TRIGGER" :
                               strcmp(zType, "view")==0 ? "VIEW" :
                               strcmp(zType, "index")==0 ? "INDEX" : "TABLE", p->zDb, zName);
      if( *pzErr==0 ) rc = SQLITE_NOMEM;
    }
  }
  if( pStmt && sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = sqlite3_errcode(p->db);
  pStmt = 0;
  if( rc==SQLITE_OK && *pzErr==0 && bTable && !bShape ){
    *pzErr = sqlite3_mprintf("apify: table \"%s\" in database \"%s\" is not a store of this"
                             " version of the extension (%s): its definition is not the one the"
                             " extension makes; rename it aside (ALTER TABLE \"%w\".\"%w\""
                             " RENAME TO \"%w_old\"), then adopt the webhooks you know are yours:"
                             " INSERT INTO %s(id) VALUES (...)", zTable, p->zDb, APIFY_VERSION,
                             p->zDb, zTable, zTable, p->zName);
    if( *pzErr==0 ) rc = SQLITE_NOMEM;
  }
  sqlite3_free(zSql);
  sqlite3_free(zTable);
  if( rc==SQLITE_OK && *pzErr ) rc = SQLITE_ERROR;
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM && *pzErr==0 ){
    *pzErr = sqlite3_mprintf("apify: %s", sqlite3_errmsg(p->db));
    if( *pzErr==0 ) rc = SQLITE_NOMEM;
  }
  return rc;
}

/* Indexes keep their names through ALTER TABLE RENAME, and can be dropped neither in xRename
** nor in xUpdate (SQLite refuses to drop a b-tree while a statement runs). So T_store's
** indexes are found by the columns they index, not by name, and a new one takes the first
** free name of T_store_<column>, T_store_<column>_2, ... (the plain name may belong to a table
** renamed away from T). */
static int storeIndex(ApifyStore *p, const char *zCol){
  static const char zFind[] =
    "SELECT (SELECT count(*) FROM pragma_index_list(%Q, %Q) l, pragma_index_info(l.name, %Q) i"
    "        WHERE i.name=%Q),"
    "       (SELECT count(*) FROM \"%w\".sqlite_schema WHERE name=?1)";
  char *zTable = sqlite3_mprintf("%s_store", p->zName), *zSql = 0, *zName = 0;
  sqlite3_stmt *pStmt = 0;
  int i, rc, bHave = 0, bTaken = 1;
  if( zTable ) zSql = sqlite3_mprintf(zFind, zTable, p->zDb, p->zDb, zCol, p->zDb);
  rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &pStmt, 0) : SQLITE_NOMEM;
  for(i=1; rc==SQLITE_OK && bTaken && !bHave; i++){
    sqlite3_free(zName);
    zName = i==1 ? sqlite3_mprintf("%s_%s", zTable, zCol)
                 : sqlite3_mprintf("%s_%s_%d", zTable, zCol, i);
    if( zName==0 ){ rc = SQLITE_NOMEM; break; }
    sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
    if( sqlite3_step(pStmt)==SQLITE_ROW ){
      bHave = sqlite3_column_int(pStmt, 0)>0;
      bTaken = sqlite3_column_int(pStmt, 1)>0;
    }
    rc = sqlite3_reset(pStmt);
  }
  sqlite3_finalize(pStmt);
  sqlite3_free(zSql);
  if( rc==SQLITE_OK && !bHave ){
    zSql = sqlite3_mprintf("CREATE INDEX \"%w\".\"%w\" ON \"%w\"(%s)", p->zDb, zName, zTable, zCol);
    rc = zSql ? sqlite3_exec(p->db, zSql, 0, 0, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
  }
  sqlite3_free(zName);
  sqlite3_free(zTable);
  return rc;
}

int apifyStoreEnsure(ApifyStore *p, char **pzErr){
  char *zSql;
  int rc;
  *pzErr = 0;
  if( p->bReady ) return SQLITE_OK;
  rc = apifyStoreCheck(p, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  zSql = sqlite3_mprintf(zStoreSchema, p->zDb, p->zName);
  rc = zSql ? sqlite3_exec(p->db, zSql, 0, 0, 0) : SQLITE_NOMEM;
  sqlite3_free(zSql);
  if( rc==SQLITE_OK ) rc = storeIndex(p, "status");
  if( rc==SQLITE_OK ){
    zSql = sqlite3_mprintf("CREATE TEMP TABLE IF NOT EXISTS \"apify_queue_%d\"(stamp INTEGER"
                           " PRIMARY KEY, seq INTEGER NOT NULL, op TEXT NOT NULL, body TEXT,"
                           " pos INTEGER NOT NULL, seal BLOB NOT NULL)", p->iQueue);
    rc = zSql ? sqlite3_exec(p->db, zSql, 0, 0, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
  }
  if( rc==SQLITE_OK ) rc = heardReplay(p);
  if( rc==SQLITE_OK ) p->bReady = 1;
  else if( rc!=SQLITE_NOMEM ){
    *pzErr = sqlite3_mprintf("apify: %s", sqlite3_errmsg(p->db));
    if( *pzErr==0 ) rc = SQLITE_NOMEM;
  }
  return rc;
}

int apifyStoreDrop(ApifyStore *p){
  char *zSql = sqlite3_mprintf("DROP TABLE IF EXISTS \"%w\".\"%w_store\";"
                               "DROP TABLE IF EXISTS temp.\"apify_queue_%d\";",
                               p->zDb, p->zName, p->iQueue);
  int rc;
  stmtsFinalize(p);
  rc = zSql ? sqlite3_exec(p->db, zSql, 0, 0, 0) : SQLITE_NOMEM;
  sqlite3_free(zSql);
  p->bReady = 0;
  return rc;
}

int apifyStoreRename(ApifyStore *p, const char *zNew){
  char *zName = sqlite3_mprintf("%s", zNew);
  char *zSql = sqlite3_mprintf("ALTER TABLE \"%w\".\"%w_store\" RENAME TO \"%w_store\";",
                               p->zDb, p->zName, zNew);
  int bExists = 0;
  int rc = zSql && zName ? apifyStoreExists(p, &bExists) : SQLITE_NOMEM;
  stmtsFinalize(p);
  if( rc==SQLITE_OK && bExists ) rc = sqlite3_exec(p->db, zSql, 0, 0, 0);
  if( rc==SQLITE_OK ){
    sqlite3_free(p->zName);
    p->zName = zName;      /* ownership moves to the store */
    zName = 0;
  }
  sqlite3_free(zName);
  sqlite3_free(zSql);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Transactions and savepoints */

void apifyStoreBegin(ApifyStore *p, const void *pVtab){
  if( p->bInTxn ){
    /* Another sqlite3_vtab of this table (connected after a schema change) joins the
    ** transaction: the xSavepoint() SQLite calls right after is for a level the store marked
    ** when it was opened, not a new savepoint. */
    p->pJoining = pVtab;
    return;
  }
  p->pJoining = 0;
  p->bInTxn = 1;
  p->bReady = 0;
  p->nRow = 0;
  p->nMark = 0;
}

void apifyStoreEnd(ApifyStore *p){
  p->bInTxn = 0;
  p->pJoining = 0;
  p->bReady = 0;
  p->nRow = 0;
  p->nMark = 0;
}

int apifyStoreRowNumber(ApifyStore *p){
  return p->nRow+1;
}

void apifyStoreRowDone(ApifyStore *p, int iRow){
  /* Counted once written: a one-row statement that fails gets no xRollbackTo() */
  p->nRow = iRow;
}

int apifyStoreSavepoint(ApifyStore *p, const void *pVtab, int iSavepoint){
  int i;
  if( pVtab==p->pJoining ){
    p->pJoining = 0;
    if( iSavepoint<p->nMark ) return SQLITE_OK;   /* marked already: keep the mark */
  }
  if( iSavepoint>=p->nMark ){
    int *aNew = sqlite3_realloc64(p->aMark, (sqlite3_uint64)(iSavepoint+8)*sizeof(int));
    if( aNew==0 ) return SQLITE_NOMEM;
    p->aMark = aNew;
    /* Savepoints opened before this table joined the transaction: rolling back to one of them
    ** takes back everything this table did, so their mark is the start, 0 rows. */
    for(i=p->nMark; i<iSavepoint; i++) p->aMark[i] = 0;
    p->nMark = iSavepoint+1;
  }
  p->aMark[iSavepoint] = p->nRow;
  return SQLITE_OK;
}

void apifyStoreRollbackTo(ApifyStore *p, int iSavepoint){
  /* SQLite itself takes back the rows written after the savepoint (the store's and the TEMP
  ** queue's alike); what is left is the row count, and the knowledge that the tables exist
  ** (a first write rolled back takes them away). */
  p->nRow = iSavepoint<p->nMark ? p->aMark[iSavepoint] : 0;
  p->bReady = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Records */

/* The key that vouches for records, HMAC(token, label), into aKey; *pbHave is 0 when no token
** is set. SQLITE_OK or SQLITE_NOMEM. */
static int tokenKey(ApifyStore *p, unsigned char *aKey, int *pbHave){
  static const char zLabel[] = "apify-sqlite record key 2";
  Apify *pA = p->pApify;
  const char *zToken = pA->cfg.zToken;
  const char *az[1] = { zLabel };
  int an[1] = { -1 };
  int rc = SQLITE_OK;
  *pbHave = zToken && zToken[0];
  if( !*pbHave ) return SQLITE_OK;
  /* derived once per token, not once per record read */
  if( pA->iTokenKey!=pA->iToken+1 ){
    rc = apifyMac((const unsigned char*)zToken, (int)strlen(zToken), 1, az, an, pA->aTokenKey);
    if( rc==SQLITE_OK ) pA->iTokenKey = pA->iToken+1;
  }
  if( rc==SQLITE_OK ) memcpy(aKey, pA->aTokenKey, APIFY_MAC_SIZE);
  return rc;
}

int apifyStoreTrust(ApifyStore *p, sqlite3_stmt *pStmt, int iFirst, int *peTrust){
  unsigned char aKey[APIFY_MAC_SIZE], aMac[APIFY_MAC_SIZE];
  const char *az[N_MACCOL];
  int an[N_MACCOL], i, bHave = 0;
  const void *pMac = sqlite3_column_blob(pStmt, iFirst+RC_MAC);
  int nMac = sqlite3_column_bytes(pStmt, iFirst+RC_MAC);
  int rc = tokenKey(p, aKey, &bHave);
  *peTrust = APIFY_TRUST_UNKNOWN;
  if( rc!=SQLITE_OK || !bHave ) return rc;
  for(i=0; i<N_MACCOL; i++){
    az[i] = (const char*)sqlite3_column_text(pStmt, iFirst+aMacCol[i]);
    an[i] = sqlite3_column_bytes(pStmt, iFirst+aMacCol[i]);
    if( az[i]==0 && sqlite3_column_type(pStmt, iFirst+aMacCol[i])!=SQLITE_NULL ){
      return SQLITE_NOMEM;
    }
  }
  *peTrust = APIFY_TRUST_FORGED;
  if( pMac==0 || nMac!=APIFY_MAC_SIZE ) return SQLITE_OK;
  rc = apifyMac(aKey, APIFY_MAC_SIZE, N_MACCOL, az, an, aMac);
  if( rc==SQLITE_OK && memcmp(aMac, pMac, APIFY_MAC_SIZE)==0 ) *peTrust = APIFY_TRUST_VERIFIED;
  if( rc!=SQLITE_OK ) *peTrust = APIFY_TRUST_UNKNOWN;
  return rc;
}


void apifyRecordFree(ApifyRecord *r){
  sqlite3_free(r->zKey);
  sqlite3_free(r->zOrigin);
  sqlite3_free(r->zRequest);
  sqlite3_free(r->zStatus);
  sqlite3_free(r->zOperation);
  sqlite3_free(r->zId);
  sqlite3_free(r->zPending);
  sqlite3_free(r->zPendingRequest);
  sqlite3_free(r->zLocation);
  memset(r, 0, sizeof(*r));
}

/* Copy of column i of pStmt (NULL stays NULL); *pRc becomes SQLITE_NOMEM on failure. */
static char *columnCopy(sqlite3_stmt *pStmt, int i, int *pRc){
  const unsigned char *z = sqlite3_column_text(pStmt, i);
  char *zCopy;
  if( z==0 ){
    if( sqlite3_column_type(pStmt, i)!=SQLITE_NULL ) *pRc = SQLITE_NOMEM;
    return 0;
  }
  zCopy = sqlite3_mprintf("%s", z);
  if( zCopy==0 ) *pRc = SQLITE_NOMEM;
  return zCopy;
}

/* The seal of a queue entry: HMAC under the session's key of the table, record, operation,
** body, row number and stamp. */
static int queueSeal(ApifyStore *p, sqlite3_int64 iSeq, const char *zOp, const char *zBody,
                     int iPos, sqlite3_int64 iStamp, unsigned char *aSeal){
  char zSeq[32], zPos[32], zStamp[32];
  const char *az[7];
  int an[7] = { -1, -1, -1, -1, -1, -1, -1 };
  sqlite3_snprintf(sizeof(zSeq), zSeq, "%lld", (long long)iSeq);
  sqlite3_snprintf(sizeof(zPos), zPos, "%d", iPos);
  sqlite3_snprintf(sizeof(zStamp), zStamp, "%lld", (long long)iStamp);
  az[0] = p->zDb; az[1] = p->zName; az[2] = zSeq; az[3] = zOp; az[4] = zBody; az[5] = zPos;
  az[6] = zStamp;
  return apifyMac(p->pApify->aSession, (int)sizeof(p->pApify->aSession), 7, az, an, aSeal);
}

/* Read the record in the current row of pStmt (RECORD_COLS) into r. */
static int recordRead(ApifyStore *p, sqlite3_stmt *pStmt, ApifyRecord *r){
  int rc = SQLITE_OK;
  r->iSeq = sqlite3_column_int64(pStmt, RC_SEQ);
  r->zKey = columnCopy(pStmt, RC_KEY, &rc);
  r->zOrigin = columnCopy(pStmt, RC_ORIGIN, &rc);
  r->zRequest = columnCopy(pStmt, RC_REQUEST, &rc);
  r->zStatus = columnCopy(pStmt, RC_STATUS, &rc);
  r->zOperation = columnCopy(pStmt, RC_OPERATION, &rc);
  r->iGeneration = sqlite3_column_int(pStmt, RC_GEN);
  r->zId = columnCopy(pStmt, RC_ID, &rc);
  r->zLocation = columnCopy(pStmt, RC_LOCATION, &rc);
  r->zPending = columnCopy(pStmt, RC_PENDING, &rc);
  r->zPendingRequest = columnCopy(pStmt, RC_PREQUEST, &rc);
  r->iPos = sqlite3_column_int(pStmt, RC_POS);
  r->iStamp = sqlite3_column_int64(pStmt, RC_STAMP);
  if( rc==SQLITE_OK ) rc = apifyStoreTrust(p, pStmt, 0, &r->eTrust);
  if( rc==SQLITE_OK && r->zPending ){
    unsigned char aSeal[APIFY_MAC_SIZE];
    const void *pSeal = sqlite3_column_blob(pStmt, RC_SEAL);
    rc = queueSeal(p, r->iSeq, r->zPending, r->zPendingRequest, r->iPos, r->iStamp, aSeal);
    r->bSealed = rc==SQLITE_OK && pSeal && sqlite3_column_bytes(pStmt, RC_SEAL)==APIFY_MAC_SIZE
              && memcmp(pSeal, aSeal, APIFY_MAC_SIZE)==0;
  }
  if( rc==SQLITE_OK && r->zStatus==0 ) rc = SQLITE_NOMEM;
  if( rc!=SQLITE_OK ) apifyRecordFree(r);
  return rc;
}

/* Find a record by key (eBy 'k'), id ('i') or seq ('s'); *pbFound says whether there is one.
** The SQL lookup only narrows: the value found is compared in C, whatever collation a file
** gave the column. The tables must exist (apifyStoreEnsure). */
int apifyStoreFind(ApifyStore *p, char eBy, const char *zVal, sqlite3_int64 iSeq,
                   ApifyRecord *r, int *pbFound){
  int rc = SQLITE_OK;
  int iStmt = eBy=='k' ? STMT_FIND_KEY : eBy=='i' ? STMT_FIND_ID : STMT_FIND_SEQ;
  sqlite3_stmt *pStmt = stmtGet(p, iStmt, &rc);
  memset(r, 0, sizeof(*r));
  *pbFound = 0;
  if( pStmt==0 ) return rc;
  if( eBy=='s' ) sqlite3_bind_int64(pStmt, 1, iSeq);
  else sqlite3_bind_text(pStmt, 1, zVal, -1, SQLITE_STATIC);
  while( sqlite3_step(pStmt)==SQLITE_ROW ){
    const char *zGot = (const char*)sqlite3_column_text(pStmt, eBy=='k' ? RC_KEY : RC_ID);
    if( eBy!='s' && (zGot==0 || strcmp(zGot, zVal)!=0) ) continue;
    rc = recordRead(p, pStmt, r);
    *pbFound = rc==SQLITE_OK;
    break;
  }
  if( sqlite3_reset(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = sqlite3_errcode(p->db);
  sqlite3_clear_bindings(pStmt);
  if( rc!=SQLITE_OK ) apifyRecordFree(r);
  return rc;
}

int apifyStoreNew(ApifyStore *p, const char *zKey, const char *zRequest, const char *zOp,
                  const char *zId, sqlite3_int64 *piSeq){
  int rc = SQLITE_OK;
  sqlite3_stmt *pStmt = stmtGet(p, STMT_NEW, &rc);
  if( pStmt ){
    sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_STATIC);
    sqlite3_bind_text(pStmt, 2, zRequest, -1, SQLITE_STATIC);
    sqlite3_bind_text(pStmt, 3, zOp, -1, SQLITE_STATIC);
    sqlite3_bind_text(pStmt, 4, zId, -1, SQLITE_STATIC);
    rc = stmtRun(pStmt, rc);
    if( rc==SQLITE_OK ) *piSeq = sqlite3_last_insert_rowid(p->db);
  }
  return rc;
}

int apifyStorePend(ApifyStore *p, sqlite3_int64 iSeq, const char *zOp, const char *zBody,
                   int iPos){
  unsigned char aSeal[APIFY_MAC_SIZE];
  sqlite3_int64 iStamp = 0;
  int rc = SQLITE_OK;
  sqlite3_stmt *pStmt;
  if( zOp ){
    iStamp = ++p->pApify->nStamp;
    rc = queueSeal(p, iSeq, zOp, zBody, iPos, iStamp, aSeal);
    pStmt = stmtGet(p, STMT_Q_ADD, &rc);
    if( pStmt ){
      sqlite3_bind_int64(pStmt, 1, iStamp);
      sqlite3_bind_int64(pStmt, 2, iSeq);
      sqlite3_bind_text(pStmt, 3, zOp, -1, SQLITE_STATIC);
      sqlite3_bind_text(pStmt, 4, zBody, -1, SQLITE_STATIC);
      sqlite3_bind_int(pStmt, 5, iPos);
      sqlite3_bind_blob(pStmt, 6, aSeal, APIFY_MAC_SIZE, SQLITE_STATIC);
    }
    rc = stmtRun(pStmt, rc);
  }
  pStmt = stmtGet(p, STMT_PEND, &rc);
  if( pStmt ){
    sqlite3_bind_int64(pStmt, 1, iSeq);
    sqlite3_bind_text(pStmt, 2, zOp, -1, SQLITE_STATIC);
    if( zOp ) sqlite3_bind_int64(pStmt, 3, iStamp);
  }
  return stmtRun(pStmt, rc);
}

int apifyStoreForget(ApifyStore *p, sqlite3_int64 iSeq){
  int rc = SQLITE_OK;
  sqlite3_stmt *pStmt = stmtGet(p, STMT_FORGET, &rc);
  if( pStmt ) sqlite3_bind_int64(pStmt, 1, iSeq);
  return stmtRun(pStmt, rc);
}

int apifyStoreRecord(ApifyStore *p, sqlite3_int64 iSeq, const ApifyOutcomeRow *o){
  /* Heard first: if T_store cannot take it (an interrupted connection runs no SQL), the
  ** outcome is still kept. */
  int rc = heardAdd(p, iSeq, o);
  return rc==SQLITE_OK ? recordWrite(p, iSeq, o) : rc;
}

/* Write outcome o into record iSeq of T_store, with its MAC. */
static int recordWrite(ApifyStore *p, sqlite3_int64 iSeq, const ApifyOutcomeRow *o){
  unsigned char aKey[APIFY_MAC_SIZE], aMac[APIFY_MAC_SIZE];
  int rc = SQLITE_OK, bFound = 0, bHave = 0, i;
  sqlite3_stmt *pStmt = stmtGet(p, STMT_RECORD, &rc);
  if( pStmt ){
    sqlite3_bind_int64(pStmt, 1, iSeq);
    outcomeBind(pStmt, 2, o);
  }
  rc = stmtRun(pStmt, rc);
  /* The MAC over the columns as SQLite now returns them, so that reading computes the same. */
  if( rc==SQLITE_OK ) rc = tokenKey(p, aKey, &bHave);
  if( rc==SQLITE_OK && bHave ){
    pStmt = stmtGet(p, STMT_FIND_SEQ, &rc);
    if( pStmt ){
      const char *az[N_MACCOL];
      int an[N_MACCOL];
      sqlite3_bind_int64(pStmt, 1, iSeq);
      if( sqlite3_step(pStmt)==SQLITE_ROW ){
        bFound = 1;
        for(i=0; i<N_MACCOL; i++){
          az[i] = (const char*)sqlite3_column_text(pStmt, aMacCol[i]);
          an[i] = sqlite3_column_bytes(pStmt, aMacCol[i]);
        }
        rc = apifyMac(aKey, APIFY_MAC_SIZE, N_MACCOL, az, an, aMac);
      }
      if( sqlite3_reset(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = sqlite3_errcode(p->db);
      sqlite3_clear_bindings(pStmt);
    }
    if( rc==SQLITE_OK && bFound ){
      pStmt = stmtGet(p, STMT_SEAL_MAC, &rc);
      if( pStmt ){
        sqlite3_bind_int64(pStmt, 1, iSeq);
        sqlite3_bind_blob(pStmt, 2, aMac, APIFY_MAC_SIZE, SQLITE_STATIC);
      }
      rc = stmtRun(pStmt, rc);
    }
  }
  return rc;
}

/* Bind the fields of outcome o to parameters iFirst, iFirst+1, ... of pStmt, in the order key,
** origin, request, status, operation, generation, id, http_status (NULL for 0), location,
** error_type, error_message, response, attempts: the store's and the heard outcomes' order. */
static void outcomeBind(sqlite3_stmt *pStmt, int iFirst, const ApifyOutcomeRow *o){
  const char *az[] = { o->zKey, o->zOrigin, o->zRequest, o->zStatus, o->zOperation };
  const char *azAfter[] = { o->zLocation, o->zErrorType, o->zErrorMessage, o->zResponse };
  int i;
  for(i=0; i<5; i++) sqlite3_bind_text(pStmt, iFirst+i, az[i], -1, SQLITE_STATIC);
  sqlite3_bind_int(pStmt, iFirst+5, o->iGeneration);
  sqlite3_bind_text(pStmt, iFirst+6, o->zId, -1, SQLITE_STATIC);
  if( o->httpStatus ) sqlite3_bind_int(pStmt, iFirst+7, o->httpStatus);
  else sqlite3_bind_null(pStmt, iFirst+7);
  for(i=0; i<4; i++) sqlite3_bind_text(pStmt, iFirst+8+i, azAfter[i], -1, SQLITE_STATIC);
  sqlite3_bind_int(pStmt, iFirst+12, o->nAttempt);
}

/* ------------------------------------------------------------------------------------------ */
/* Outcomes heard, kept by the connection until a commit keeps them */

#define HEARD_COLS "tab, seq, key, origin, request, status, operation, generation, wid," \
  " http_status, location, error_type, error_message, response, attempts"
enum { HEARD_ADD, HEARD_FORGET, HEARD_LIST };
static const char *const azHeard[] = {
  "INSERT INTO heard(" HEARD_COLS ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)",
  "DELETE FROM heard WHERE tab=?1",
  "SELECT " HEARD_COLS " FROM heard WHERE tab=?1 ORDER BY rowid",
};

/* Statement i of the connection's database of heard outcomes, opened on first use: a private
** temporary database (its own file, deleted at close), not the user's, so that nothing that
** rolls back the user's transaction takes the outcomes with it. */
static sqlite3_stmt *heardStmt(Apify *pA, int i, int *pRc){
  if( *pRc!=SQLITE_OK ) return 0;
  if( pA->pHeard==0 ){
    *pRc = sqlite3_open_v2("", &pA->pHeard, SQLITE_OPEN_READWRITE|SQLITE_OPEN_CREATE, 0);
    if( *pRc==SQLITE_OK ){
      /* a small cache: a big send spills to its temporary file, memory stays flat */
      *pRc = sqlite3_exec(pA->pHeard, "PRAGMA cache_size=-256; CREATE TABLE heard(tab TEXT, seq INTEGER, key TEXT,"
                          " origin TEXT, request TEXT, status TEXT, operation TEXT,"
                          " generation INTEGER, wid TEXT, http_status INTEGER, location TEXT,"
                          " error_type TEXT, error_message TEXT, response TEXT, attempts INTEGER)",
                          0, 0, 0);
    }
    if( *pRc!=SQLITE_OK ){
      if( *pRc!=SQLITE_NOMEM ) *pRc = SQLITE_ERROR;
      apifyHeardClose(pA);
      return 0;
    }
  }
  if( pA->apHeard[i]==0 ){
    *pRc = sqlite3_prepare_v3(pA->pHeard, azHeard[i], -1, SQLITE_PREPARE_PERSISTENT,
                              &pA->apHeard[i], 0);
    if( *pRc!=SQLITE_OK ) return 0;
  }
  return pA->apHeard[i];
}

void apifyHeardClose(Apify *pA){
  int i;
  for(i=0; i<(int)(sizeof(pA->apHeard)/sizeof(pA->apHeard[0])); i++){
    sqlite3_finalize(pA->apHeard[i]);
    pA->apHeard[i] = 0;
  }
  sqlite3_close(pA->pHeard);
  pA->pHeard = 0;
}

/* "schema.table": which store a heard outcome belongs to. */
static char *heardTab(ApifyStore *p){
  return sqlite3_mprintf("%s.%s", p->zDb, p->zName);
}

/* Keep outcome o of record iSeq among the heard ones. */
static int heardAdd(ApifyStore *p, sqlite3_int64 iSeq, const ApifyOutcomeRow *o){
  int rc = SQLITE_OK;
  char *zTab = heardTab(p);
  sqlite3_stmt *pStmt = zTab ? heardStmt(p->pApify, HEARD_ADD, &rc) : 0;
  if( zTab==0 ) rc = SQLITE_NOMEM;
  if( pStmt ){
    sqlite3_bind_text(pStmt, 1, zTab, -1, SQLITE_STATIC);
    sqlite3_bind_int64(pStmt, 2, iSeq);
    outcomeBind(pStmt, 3, o);
    rc = stmtRun(pStmt, rc);
  }
  sqlite3_free(zTab);
  return rc;
}

void apifyStoreCommitted(ApifyStore *p){
  int rc = SQLITE_OK;
  char *zTab;
  sqlite3_stmt *pStmt;
  if( p->pApify->pHeard==0 ) return;
  zTab = heardTab(p);
  pStmt = zTab ? heardStmt(p->pApify, HEARD_FORGET, &rc) : 0;
  if( pStmt ){
    sqlite3_bind_text(pStmt, 1, zTab, -1, SQLITE_STATIC);
    stmtRun(pStmt, rc);    /* a failure leaves them to be written again: same outcome */
  }
  sqlite3_free(zTab);
}

/* Write the outcomes heard but never committed into T_store, in the order they were heard: the
** first write of a transaction does it, so a re-run finds its creates recorded without asking
** the API. They are forgotten when this transaction commits. */
static int heardReplay(ApifyStore *p){
  int rc = SQLITE_OK;
  char *zTab;
  sqlite3_stmt *pList;
  if( p->pApify->pHeard==0 ) return SQLITE_OK;
  zTab = heardTab(p);
  if( zTab==0 ) return SQLITE_NOMEM;
  pList = heardStmt(p->pApify, HEARD_LIST, &rc);
  if( pList ) sqlite3_bind_text(pList, 1, zTab, -1, SQLITE_STATIC);
  while( rc==SQLITE_OK && pList && sqlite3_step(pList)==SQLITE_ROW ){
    ApifyOutcomeRow o;
    ApifyRecord r;
    sqlite3_int64 iSeq = 0;
    int bFound = 0;
    memset(&o, 0, sizeof(o));
    memset(&r, 0, sizeof(r));
    o.zKey = (const char*)sqlite3_column_text(pList, 2);
    o.zOrigin = (const char*)sqlite3_column_text(pList, 3);
    o.zRequest = (const char*)sqlite3_column_text(pList, 4);
    o.zStatus = (const char*)sqlite3_column_text(pList, 5);
    o.zOperation = (const char*)sqlite3_column_text(pList, 6);
    o.iGeneration = sqlite3_column_int(pList, 7);
    o.zId = (const char*)sqlite3_column_text(pList, 8);
    o.httpStatus = sqlite3_column_int(pList, 9);
    o.zLocation = (const char*)sqlite3_column_text(pList, 10);
    o.zErrorType = (const char*)sqlite3_column_text(pList, 11);
    o.zErrorMessage = (const char*)sqlite3_column_text(pList, 12);
    o.zResponse = (const char*)sqlite3_column_text(pList, 13);
    o.nAttempt = sqlite3_column_int(pList, 14);
    if( o.zStatus==0 || o.zOperation==0 ){ rc = SQLITE_NOMEM; break; }
    /* the record it belongs to: by key, else by webhook id; a new one if there is none (the
    ** transaction that made it rolled back) */
    if( o.zKey ) rc = apifyStoreFind(p, 'k', o.zKey, 0, &r, &bFound);
    else if( o.zId ) rc = apifyStoreFind(p, 'i', o.zId, 0, &r, &bFound);
    if( rc==SQLITE_OK && bFound ) iSeq = r.iSeq;
    if( bFound ) apifyRecordFree(&r);
    if( rc==SQLITE_OK && !bFound ){
      rc = apifyStoreNew(p, o.zKey, o.zRequest, o.zOperation, o.zId, &iSeq);
    }
    if( rc==SQLITE_OK ) rc = recordWrite(p, iSeq, &o);
  }
  if( pList ){
    int rc2 = sqlite3_reset(pList);
    if( rc==SQLITE_OK ) rc = rc2;
  }
  sqlite3_free(zTab);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The queue */

/* Set *pb: whether the TEMP queue of p exists (so does T_store then). */
static int queueExists(ApifyStore *p, int *pb){
  char *zSql = sqlite3_mprintf("SELECT 1 FROM sqlite_temp_schema WHERE name='apify_queue_%d'",
                               p->iQueue);
  sqlite3_stmt *pFind = 0;
  int rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &pFind, 0) : SQLITE_NOMEM;
  *pb = 0;
  sqlite3_free(zSql);
  if( rc==SQLITE_OK ){
    *pb = sqlite3_step(pFind)==SQLITE_ROW;
    rc = sqlite3_finalize(pFind);
  }
  if( rc==SQLITE_OK && *pb ) rc = apifyStoreExists(p, pb);
  return rc;
}

int apifyQueueCount(ApifyStore *p, sqlite3_int64 *pn){
  sqlite3_stmt *pStmt;
  int bExists = 0;
  int rc = p->bReady ? (bExists = 1, SQLITE_OK) : queueExists(p, &bExists);
  *pn = 0;
  if( rc!=SQLITE_OK || !bExists ) return rc;
  pStmt = stmtGet(p, STMT_Q_COUNT, &rc);
  if( pStmt ){
    if( sqlite3_step(pStmt)==SQLITE_ROW ) *pn = sqlite3_column_int64(pStmt, 0);
    rc = sqlite3_reset(pStmt);
  }
  return rc;
}

int apifyQueueNext(ApifyStore *p, sqlite3_int64 iAfter, ApifyRecord *r, int *pbFound){
  int rc = SQLITE_OK;
  sqlite3_stmt *pStmt = stmtGet(p, STMT_Q_NEXT, &rc);
  memset(r, 0, sizeof(*r));
  *pbFound = 0;
  if( pStmt==0 ) return rc;
  sqlite3_bind_int64(pStmt, 1, iAfter);
  if( sqlite3_step(pStmt)==SQLITE_ROW ){
    rc = recordRead(p, pStmt, r);
    *pbFound = rc==SQLITE_OK;
  }
  if( sqlite3_reset(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = sqlite3_errcode(p->db);
  if( rc!=SQLITE_OK ) apifyRecordFree(r);
  return rc;
}

int apifyQueueClear(ApifyStore *p){
  int rc = SQLITE_OK;
  sqlite3_stmt *pStmt = stmtGet(p, STMT_Q_CLEAR, &rc);
  return stmtRun(pStmt, rc);
}

int apifyStoreScan(ApifyStore *p, const char *zMore, sqlite3_str *pSql){
  int bQueue = 0;
  int rc = queueExists(p, &bQueue);
  if( rc!=SQLITE_OK ) return rc;
  if( bQueue ){
    sqlite3_str_appendf(pSql, "SELECT " RECORD_COLS ", %s" RECORD_FROM("LEFT JOIN"),
                        zMore, p->zDb, p->zName, p->iQueue);
  }else{
    /* No queue yet: nothing of this connection is pending. */
    sqlite3_str_appendf(pSql, "SELECT " RECORD_COLS ", %s FROM \"%w\".\"%w_store\" AS s,"
                        " (SELECT NULL AS op, NULL AS body, NULL AS pos, NULL AS stamp,"
                        " NULL AS seal) AS q", zMore, p->zDb, p->zName);
  }
  return SQLITE_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* The write lock */

int apifyStoreLock(ApifyStore *p, char **pzErr){
  char *zSql = sqlite3_mprintf("SELECT (SELECT journal_mode FROM pragma_journal_mode(%Q)),"
                               " (SELECT timeout FROM pragma_busy_timeout)", p->zDb);
  sqlite3_stmt *pStmt = 0;
  sqlite3_file *pFile = 0;
  int rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &pStmt, 0) : SQLITE_NOMEM;
  int bWal = 1, msWait = 0, msSlept = 0, msStep = 1;
  *pzErr = 0;
  sqlite3_free(zSql);
  if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    const char *zMode = (const char*)sqlite3_column_text(pStmt, 0);
    bWal = zMode==0 || sqlite3_stricmp(zMode, "wal")==0 || sqlite3_stricmp(zMode, "memory")==0
        || sqlite3_stricmp(zMode, "off")==0;
    msWait = sqlite3_column_int(pStmt, 1);
  }
  if( pStmt && sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = sqlite3_errcode(p->db);
  if( rc!=SQLITE_OK || bWal ) return rc==SQLITE_NOMEM ? rc : SQLITE_OK;
  /* Rollback journal: the commit needs the file's exclusive lock, which a reader's shared lock
  ** blocks. Take it now, before anything is sent, waiting up to the connection's busy_timeout,
  ** so that no request goes out whose outcome could not be written. The pager, which holds the
  ** reserved lock, finds the exclusive one already taken when it commits. */
  if( sqlite3_file_control(p->db, p->zDb, SQLITE_FCNTL_FILE_POINTER, &pFile)!=SQLITE_OK
   || pFile==0 || pFile->pMethods==0 ){
    return SQLITE_OK;             /* not a file (in memory): nobody else can read it */
  }
  for(;;){
    rc = pFile->pMethods->xLock(pFile, SQLITE_LOCK_EXCLUSIVE);
    if( rc!=SQLITE_BUSY || msSlept>=msWait ) break;
    sqlite3_sleep(msStep);
    msSlept += msStep;
    if( msStep<50 ) msStep *= 2;
  }
  if( rc==SQLITE_BUSY ){
    *pzErr = sqlite3_mprintf("apify: another connection is reading database \"%s\", so this"
                             " commit could not record what it sends: nothing was sent; retry"
                             " when it is done (PRAGMA busy_timeout waits for it), or use WAL"
                             " (PRAGMA journal_mode=WAL), where readers do not block a commit",
                             p->zDb);
    rc = *pzErr ? SQLITE_BUSY : SQLITE_NOMEM;
  }
  return rc;
}
