/*
** fault.h: a counting allocator that can fail, for the unit programs' allocation-failure tests.
**
**   faultInstall();           before sqlite3_initialize(): every SQLite allocation comes here
**   faultArm(N, bAfter);      the N-th allocation from now fails (and every later one too,
**                             with bAfter); faultArm(0, 0) fails none
**   nFaults, nLive            failures injected since arming; blocks not yet freed
**   faultStackPrint();        where the first failure of the last run was injected
*/
#ifndef FAULT_H
#define FAULT_H
#include <execinfo.h>
#include <stdio.h>

static sqlite3_mem_methods memBase;
static int nAllocCall, iFailAt, bFailAfter, nFaults;
static long long nLive;
static void *aFaultStack[32];      /* where the first failure of a run was injected */
static int nFaultStack;

static int faultNow(void){
  nAllocCall++;
  if( iFailAt>0 && (nAllocCall==iFailAt || (bFailAfter && nAllocCall>iFailAt)) ){
    if( nFaults++==0 ) nFaultStack = backtrace(aFaultStack, 32);
    return 1;
  }
  return 0;
}

/* Print where the first failure of the last run was injected (resolve the +0x offsets with
** addr2line -f -e THE_PROGRAM). */
static inline void faultStackPrint(void){
  fprintf(stderr, "  the failed allocation:\n");
  fflush(stderr);
  backtrace_symbols_fd(aFaultStack, nFaultStack, 2);
}
static void *memMalloc(int n){
  void *p = faultNow() ? 0 : memBase.xMalloc(n);
  if( p ) nLive++;
  return p;
}
static void memFree(void *p){
  if( p ) nLive--;
  memBase.xFree(p);
}
static void *memRealloc(void *p, int n){
  return faultNow() ? 0 : memBase.xRealloc(p, n);
}
static int memSize(void *p){ return memBase.xSize(p); }
static int memRoundup(int n){ return memBase.xRoundup(n); }
static int memInit(void *p){ return memBase.xInit(p); }
static void memShutdown(void *p){ memBase.xShutdown(p); }

static void faultArm(int iAt, int bAfter){
  nAllocCall = 0;
  nFaults = 0;
  iFailAt = iAt;
  bFailAfter = bAfter;
}

/* Route SQLite's allocations through the counting allocator, lookaside off so that every one
** of them is seen. Call before sqlite3_initialize(). */
static void faultInstall(void){
  static const sqlite3_mem_methods memFaulty = {
    memMalloc, memFree, memRealloc, memSize, memRoundup, memInit, memShutdown, 0
  };
  sqlite3_config(SQLITE_CONFIG_GETMALLOC, &memBase);
  sqlite3_config(SQLITE_CONFIG_MALLOC, &memFaulty);
  sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0);
}

#endif /* FAULT_H */
