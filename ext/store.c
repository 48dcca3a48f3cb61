/*
** store.c: the local store behind an apify_webhooks table, in real tables of the same database
** file. For a table named T in schema S:
**
**   S."T_store"   one row per idempotency key: the request exactly as sent (never the token),
**                 its state (pending, created, failed), the webhook id, the Location header as
**                 received, the API's answer or error, attempts and times. Indexed by key, id
**                 and status. Views and reports read this table (the virtual table itself is
**                 DIRECTONLY).
**   S."T_queue"   the rows inserted by the open transaction, waiting for its commit. Empty
**                 between transactions. The queue is a real table, not an array, so memory
**                 stays flat whatever the number of rows, and so INSERT ... SELECT FROM T (which
**                 reads T_store) never reads back its own output.
**
** Both are created on the first write (inside the writing transaction, so a rolled-back first
** use leaves nothing behind and the next write creates them again), never in xConnect.
**
** Savepoints: the queue's rowids only grow within a transaction, so "everything queued after
** savepoint N" is a rowid range. storeDiscard() notes such a range when a statement or a
** savepoint is rolled back; storePurge() deletes it before the next write, because xRollbackTo
** itself must not write.
*/
#include <string.h>
#include "apify.h"

/* The statements a store keeps prepared; %w is the table name T, %w (first) the schema S. */
enum {
  STMT_QUEUE_FIND, STMT_STORE_FIND, STMT_QUEUE_ADD, STMT_MERGE, STMT_SEND_NEXT,
  STMT_PENDING, STMT_RECORD_OK, STMT_RECORD_FAIL, STMT_RECORD_ABORT, STMT_QUEUE_CLEAR,
  STMT_PURGE, STMT_COUNT
};
static const char *const azStmt[STMT_COUNT] = {
  /* STMT_QUEUE_FIND: a request already queued under key ?1 in this transaction */
  "SELECT request, pos FROM \"%w\".\"%w_queue\" WHERE idempotency_key=?1",
  /* STMT_STORE_FIND: the stored request and state under key ?1 */
  "SELECT request, status FROM \"%w\".\"%w_store\" WHERE idempotency_key=?1",
  /* STMT_QUEUE_ADD: queue key ?1 with body ?2, row position ?3 */
  "INSERT INTO \"%w\".\"%w_queue\"(idempotency_key, request, pos) VALUES(?1, ?2, ?3)",
  /* STMT_MERGE: the queue into the store; a failed key becomes pending again, a created one
  ** stays as it is */
  "INSERT INTO \"%w\".\"%w_store\"(idempotency_key, request, status, queued_at)"
  " SELECT idempotency_key, request, 'pending', strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ')"
  "   FROM \"%w\".\"%w_queue\" WHERE true ORDER BY rowid"
  " ON CONFLICT(idempotency_key) DO UPDATE SET status='pending', attempts=0,"
  "   http_status=NULL, error_type=NULL, error_message=NULL, completed_at=NULL,"
  "   queued_at=excluded.queued_at"
  " WHERE status='failed'",
  /* STMT_SEND_NEXT: the next pending store row of this transaction, in queue order. The queue
  ** drives the loop (CROSS JOIN) because outcomes are written to the store while it runs. */
  "SELECT s.seq, s.request, q.rowid FROM \"%w\".\"%w_queue\" q CROSS JOIN \"%w\".\"%w_store\" s"
  "  ON s.idempotency_key=q.idempotency_key"
  " WHERE q.rowid>?1 AND s.status='pending' ORDER BY q.rowid LIMIT 1",
  /* STMT_PENDING: how many rows of this transaction are to be sent */
  "SELECT count(*) FROM \"%w\".\"%w_queue\" q CROSS JOIN \"%w\".\"%w_store\" s"
  "  ON s.idempotency_key=q.idempotency_key WHERE s.status='pending'",
  /* STMT_RECORD_OK: seq ?1 was created: http ?2, location ?3, webhook ?4, attempts ?5 */
  "UPDATE \"%w\".\"%w_store\" SET status='created', id=json_extract(?4,'$.id'),"
  " http_status=?2, location=?3, response=?4, attempts=attempts+?5, error_type=NULL,"
  " error_message=NULL, completed_at=strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ') WHERE seq=?1",
  /* STMT_RECORD_FAIL: seq ?1 failed: http ?2 (NULL without an answer), type ?3, message ?4,
  ** attempts ?5, answer ?6 */
  "UPDATE \"%w\".\"%w_store\" SET status='failed', http_status=?2, error_type=?3,"
  " error_message=?4, attempts=attempts+?5, response=?6,"
  " completed_at=strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ') WHERE seq=?1",
  /* STMT_RECORD_ABORT: seq ?1 stays pending after ?2 attempts; ?3 says why it stopped */
  "UPDATE \"%w\".\"%w_store\" SET attempts=attempts+?2, error_message=?3 WHERE seq=?1",
  /* STMT_QUEUE_CLEAR */
  "DELETE FROM \"%w\".\"%w_queue\"",
  /* STMT_PURGE: forget what was queued in rolled-back rowid range (?1, ?2] */
  "DELETE FROM \"%w\".\"%w_queue\" WHERE rowid>?1 AND rowid<=?2",
};

/* Created on the first write. seq orders the rows as they were first queued. */
static const char zSchema[] =
  "CREATE TABLE IF NOT EXISTS \"%w\".\"%w_store\"("
  "  seq INTEGER PRIMARY KEY,"
  "  idempotency_key TEXT NOT NULL UNIQUE,"
  "  request TEXT NOT NULL,"
  "  status TEXT NOT NULL CHECK(status IN ('pending','created','failed')),"
  "  id TEXT, http_status INTEGER, location TEXT, error_type TEXT, error_message TEXT,"
  "  response TEXT, attempts INTEGER NOT NULL DEFAULT 0, queued_at TEXT, completed_at TEXT);"
  "CREATE TABLE IF NOT EXISTS \"%w\".\"%w_queue\"("
  "  idempotency_key TEXT NOT NULL UNIQUE, request TEXT NOT NULL, pos INTEGER NOT NULL);";

#define MAX_DISCARD 16     /* rolled-back ranges noted before a purge; more forces one */

struct ApifyStore {
  sqlite3 *db;
  char *zDb;               /* schema name */
  char *zName;             /* table name T */
  int bReady;              /* tables known to exist in this transaction */
  sqlite3_stmt *aStmt[STMT_COUNT];
  int nDiscard;
  sqlite3_int64 aDiscard[MAX_DISCARD][2];
  sqlite3_int64 iLast;     /* rowid of the last row queued in this transaction */
  sqlite3_int64 iSendFrom; /* STMT_SEND_NEXT resumes after this queue rowid */
};

int apifyStoreOpen(sqlite3 *db, const char *zDb, const char *zName, ApifyStore **pp){
  ApifyStore *p = sqlite3_malloc64(sizeof(*p));
  *pp = 0;
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->db = db;
  p->zDb = sqlite3_mprintf("%s", zDb);
  p->zName = sqlite3_mprintf("%s", zName);
  if( p->zDb==0 || p->zName==0 ){
    apifyStoreClose(p);
    return SQLITE_NOMEM;
  }
  *pp = p;
  return SQLITE_OK;
}

void apifyStoreClose(ApifyStore *p){
  int i;
  if( p==0 ) return;
  for(i=0; i<STMT_COUNT; i++) sqlite3_finalize(p->aStmt[i]);
  sqlite3_free(p->zDb);
  sqlite3_free(p->zName);
  sqlite3_free(p);
}

const char *apifyStoreSchema(ApifyStore *p){
  return p->zDb;
}

const char *apifyStoreName(ApifyStore *p){
  return p->zName;
}

int apifyStoreExists(ApifyStore *p, int *pbExists){
  char *zSql = sqlite3_mprintf("SELECT 1 FROM \"%w\".sqlite_schema WHERE type='table' AND name='%q_store'",
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

/* Statement i, prepared on first use and reset for reuse; NULL with *pRc set on failure. */
static sqlite3_stmt *stmtGet(ApifyStore *p, int i, int *pRc){
  if( *pRc!=SQLITE_OK ) return 0;
  if( p->aStmt[i]==0 ){
    const char *zDb = p->zDb, *zT = p->zName;
    char *zSql = sqlite3_mprintf(azStmt[i], zDb, zT, zDb, zT);
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

/* Step a write statement once and reset it; returns its result code. */
static int stmtRun(sqlite3_stmt *pStmt, int rc){
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_step(pStmt);
  return sqlite3_reset(pStmt);
}

/* Create the tables unless this transaction already knows they exist. */
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

static int storeEnsure(ApifyStore *p){
  const char *zDb = p->zDb, *zT = p->zName;
  char *zSql;
  int rc;
  if( p->bReady ) return SQLITE_OK;
  zSql = sqlite3_mprintf(zSchema, zDb, zT, zDb, zT);
  rc = zSql ? sqlite3_exec(p->db, zSql, 0, 0, 0) : SQLITE_NOMEM;
  sqlite3_free(zSql);
  if( rc==SQLITE_OK ) rc = storeIndex(p, "id");
  if( rc==SQLITE_OK ) rc = storeIndex(p, "status");
  if( rc==SQLITE_OK ) p->bReady = 1;
  return rc;
}

/* Delete the rolled-back ranges of the queue. */
static int storePurge(ApifyStore *p){
  int rc = SQLITE_OK;
  while( p->nDiscard>0 && rc==SQLITE_OK ){
    sqlite3_stmt *pStmt = stmtGet(p, STMT_PURGE, &rc);
    p->nDiscard--;
    if( pStmt ){
      sqlite3_bind_int64(pStmt, 1, p->aDiscard[p->nDiscard][0]);
      sqlite3_bind_int64(pStmt, 2, p->aDiscard[p->nDiscard][1]);
      rc = stmtRun(pStmt, rc);
    }
  }
  return rc;
}

sqlite3_int64 apifyStoreMark(ApifyStore *p){
  return p->iLast;
}

void apifyStoreDiscard(ApifyStore *p, sqlite3_int64 iAfter){
  sqlite3_int64 iUpTo = p->iLast;
  if( iUpTo<=iAfter ) return;
  p->iLast = iAfter;
  if( p->nDiscard==MAX_DISCARD ){
    /* Merge into the widest range: queue rowids only grow, so the union is still right. */
    sqlite3_int64 *a = p->aDiscard[MAX_DISCARD-1];
    if( iAfter<a[0] ) a[0] = iAfter;
    if( iUpTo>a[1] ) a[1] = iUpTo;
    return;
  }
  p->aDiscard[p->nDiscard][0] = iAfter;
  p->aDiscard[p->nDiscard][1] = iUpTo;
  p->nDiscard++;
}

void apifyStoreEnd(ApifyStore *p){
  p->bReady = 0;
  p->nDiscard = 0;
  p->iLast = 0;
}

/* Text of column i of pStmt, copied (NULL stays NULL); *pRc becomes SQLITE_NOMEM on failure. */
static char *columnCopy(sqlite3_stmt *pStmt, int i, int *pRc){
  const unsigned char *z = sqlite3_column_text(pStmt, i);
  char *zCopy;
  if( z==0 ) return 0;
  zCopy = sqlite3_mprintf("%s", z);
  if( zCopy==0 ) *pRc = SQLITE_NOMEM;
  return zCopy;
}

int apifyStoreQueue(ApifyStore *p, const char *zKey, const char *zBody, int iPos,
                    char **pzErr){
  sqlite3_stmt *pStmt;
  char *zOld = 0, *zState = 0;
  int iOldPos = 0, rc2;
  int rc = storeEnsure(p);
  if( rc==SQLITE_OK ) rc = storePurge(p);

  /* Known already: queued earlier in this transaction, or stored by an earlier one. */
  pStmt = stmtGet(p, STMT_QUEUE_FIND, &rc);
  if( pStmt ){
    sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_STATIC);
    if( sqlite3_step(pStmt)==SQLITE_ROW ){
      zOld = columnCopy(pStmt, 0, &rc);
      iOldPos = sqlite3_column_int(pStmt, 1);
      zState = sqlite3_mprintf("queued");
      if( zState==0 ) rc = SQLITE_NOMEM;
    }
    rc2 = sqlite3_reset(pStmt);   /* the error of the step, if any */
    if( rc==SQLITE_OK ) rc = rc2;
  }
  if( zOld==0 && (pStmt = stmtGet(p, STMT_STORE_FIND, &rc))!=0 ){
    sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_STATIC);
    if( sqlite3_step(pStmt)==SQLITE_ROW ){
      zOld = columnCopy(pStmt, 0, &rc);
      zState = columnCopy(pStmt, 1, &rc);
    }
    rc2 = sqlite3_reset(pStmt);   /* the error of the step, if any */
    if( rc==SQLITE_OK ) rc = rc2;
  }

  if( rc==SQLITE_OK && zOld && strcmp(zOld, zBody)!=0 ){
    *pzErr = iOldPos
      ? sqlite3_mprintf("idempotencyKey %Q of row %d was already used by row %d for a different "
                        "request (row %d: %.200s; row %d: %.200s)",
                        zKey, iPos, iOldPos, iOldPos, zOld, iPos, zBody)
      : sqlite3_mprintf("idempotencyKey %Q of row %d already belongs to a different %s request "
                        "(stored: %.200s; row %d: %.200s)",
                        zKey, iPos, zState, zOld, iPos, zBody);
    rc = *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
  }else if( rc==SQLITE_OK && (zOld==0 || strcmp(zState, "failed")==0
                           || strcmp(zState, "pending")==0) ){
    /* New, or failed (send again), or left pending by an interrupted run (send now). */
    pStmt = stmtGet(p, STMT_QUEUE_ADD, &rc);
    if( pStmt ){
      sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_STATIC);
      sqlite3_bind_text(pStmt, 2, zBody, -1, SQLITE_STATIC);
      sqlite3_bind_int(pStmt, 3, iPos);
      rc = stmtRun(pStmt, rc);
      if( rc==SQLITE_OK ) p->iLast = sqlite3_last_insert_rowid(p->db);
    }
  }
  /* Otherwise: created already, or queued already with the same request: nothing to do. */
  sqlite3_free(zOld);
  sqlite3_free(zState);
  return rc;
}

int apifyStoreMerge(ApifyStore *p, sqlite3_int64 *pnPending){
  sqlite3_stmt *pStmt;
  int rc = storePurge(p);
  *pnPending = 0;
  /* stmtGet() first, then stmtRun(): as arguments of one call, the order in which they would
  ** read and set rc is unspecified, and an out-of-memory there would pass as success */
  pStmt = stmtGet(p, STMT_MERGE, &rc);
  rc = stmtRun(pStmt, rc);
  pStmt = stmtGet(p, STMT_PENDING, &rc);
  if( pStmt ){
    if( sqlite3_step(pStmt)==SQLITE_ROW ) *pnPending = sqlite3_column_int64(pStmt, 0);
    rc = sqlite3_reset(pStmt);
  }
  p->iSendFrom = 0;
  return rc;
}

int apifyStoreNext(ApifyStore *p, sqlite3_int64 *piSeq, char **pzBody){
  int rc = SQLITE_OK;
  sqlite3_stmt *pStmt = stmtGet(p, STMT_SEND_NEXT, &rc);
  *piSeq = 0;
  *pzBody = 0;
  if( pStmt==0 ) return rc;
  /* Resume after the last queue row handed out: each key once, in queue order. */
  sqlite3_bind_int64(pStmt, 1, p->iSendFrom);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    *piSeq = sqlite3_column_int64(pStmt, 0);
    p->iSendFrom = sqlite3_column_int64(pStmt, 2);
    rc = SQLITE_OK;
    *pzBody = columnCopy(pStmt, 1, &rc);
  }
  if( rc==SQLITE_DONE ) rc = SQLITE_OK;
  if( sqlite3_reset(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = sqlite3_errcode(p->db);
  return rc;
}

int apifyStoreRecord(ApifyStore *p, sqlite3_int64 iSeq, const ApifyCall *pCall,
                     const char *zData, const char *zType, const char *zMsg){
  int rc = SQLITE_OK;
  sqlite3_stmt *pStmt;
  if( zData ){
    pStmt = stmtGet(p, STMT_RECORD_OK, &rc);
    if( pStmt ){
      sqlite3_bind_int(pStmt, 2, pCall->httpStatus);
      sqlite3_bind_text(pStmt, 3, pCall->zLocation, -1, SQLITE_STATIC);
      sqlite3_bind_text(pStmt, 4, zData, -1, SQLITE_STATIC);
      sqlite3_bind_int(pStmt, 5, pCall->nAttempt);
    }
  }else if( pCall->bAborted ){
    pStmt = stmtGet(p, STMT_RECORD_ABORT, &rc);
    if( pStmt ){
      sqlite3_bind_int(pStmt, 2, pCall->nAttempt);
      sqlite3_bind_text(pStmt, 3, zMsg, -1, SQLITE_STATIC);
    }
  }else{
    pStmt = stmtGet(p, STMT_RECORD_FAIL, &rc);
    if( pStmt ){
      if( pCall->httpStatus ) sqlite3_bind_int(pStmt, 2, pCall->httpStatus);
      else sqlite3_bind_null(pStmt, 2);   /* a cached statement keeps its last bindings */
      sqlite3_bind_text(pStmt, 3, zType, -1, SQLITE_STATIC);
      sqlite3_bind_text(pStmt, 4, zMsg, -1, SQLITE_STATIC);
      sqlite3_bind_int(pStmt, 5, pCall->nAttempt);
      sqlite3_bind_text(pStmt, 6, pCall->zReply, -1, SQLITE_STATIC);
    }
  }
  if( pStmt ) sqlite3_bind_int64(pStmt, 1, iSeq);
  return stmtRun(pStmt, rc);
}

int apifyStoreClear(ApifyStore *p){
  int rc = SQLITE_OK;
  sqlite3_stmt *pStmt = stmtGet(p, STMT_QUEUE_CLEAR, &rc);   /* first: see apifyStoreMerge() */
  return stmtRun(pStmt, rc);
}

int apifyStoreDrop(ApifyStore *p){
  char *zSql = sqlite3_mprintf("DROP TABLE IF EXISTS \"%w\".\"%w_store\";"
                               "DROP TABLE IF EXISTS \"%w\".\"%w_queue\";",
                               p->zDb, p->zName, p->zDb, p->zName);
  int rc, i;
  for(i=0; i<STMT_COUNT; i++){
    sqlite3_finalize(p->aStmt[i]);
    p->aStmt[i] = 0;
  }
  rc = zSql ? sqlite3_exec(p->db, zSql, 0, 0, 0) : SQLITE_NOMEM;
  sqlite3_free(zSql);
  return rc;
}

int apifyStoreRename(ApifyStore *p, const char *zNew){
  char *zName = sqlite3_mprintf("%s", zNew);
  char *zSql = sqlite3_mprintf("ALTER TABLE \"%w\".\"%w_store\" RENAME TO \"%w_store\";"
                               "ALTER TABLE \"%w\".\"%w_queue\" RENAME TO \"%w_queue\";",
                               p->zDb, p->zName, zNew, p->zDb, p->zName, zNew);
  int bExists = 0, i;
  int rc = zSql && zName ? apifyStoreExists(p, &bExists) : SQLITE_NOMEM;
  for(i=0; i<STMT_COUNT; i++){
    sqlite3_finalize(p->aStmt[i]);
    p->aStmt[i] = 0;
  }
  if( rc==SQLITE_OK && bExists ) rc = sqlite3_exec(p->db, zSql, 0, 0, 0);
  if( rc==SQLITE_OK ){
    sqlite3_free(p->zName);
    p->zName = zName;      /* ownership moves to the store */
    zName = 0;
    p->bReady = 0;         /* the indexes are renamed on the next write: see storeEnsure() */
  }
  sqlite3_free(zName);
  sqlite3_free(zSql);
  return rc;
}

int apifyStoreShadow(const char *zSuffix){
  return sqlite3_stricmp(zSuffix, "store")==0 || sqlite3_stricmp(zSuffix, "queue")==0;
}
