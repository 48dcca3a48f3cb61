/*
** unit.h: a tiny unit-test harness for the C pieces of apify-sqlite. Header only; include it in
** exactly one file per test program.
**
**   CHECK(cond)              cond is true
**   CHECK_EQ_INT(got, want)  two integers are equal
**   CHECK_STR(got, want)     two strings are equal (NULL equals only NULL)
**   return unitSummary();    prints "N passed, N failed" on its own line; non-zero on a failure
**
** A failing check prints file:line, the expression and, for the comparisons, both values, then
** the test goes on: one run shows every failure.
*/
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>
#include <string.h>

static int unitPassed = 0;
static int unitFailed = 0;

/* Count one check; on a failure print where it is and what it checked. */
static inline int unitCheck(int bOk, const char *zFile, int iLine, const char *zExpr){
  if( bOk ){
    unitPassed++;
  }else{
    unitFailed++;
    fprintf(stderr, "%s:%d: CHECK(%s) failed\n", zFile, iLine, zExpr);
  }
  return bOk;
}

static inline int unitCheckInt(long long iGot, long long iWant,
                               const char *zFile, int iLine, const char *zExpr){
  int bOk = iGot==iWant;
  if( bOk ){
    unitPassed++;
  }else{
    unitFailed++;
    fprintf(stderr, "%s:%d: CHECK_EQ_INT(%s)\n  got:  %lld\n  want: %lld\n",
            zFile, iLine, zExpr, iGot, iWant);
  }
  return bOk;
}

static inline int unitCheckStr(const char *zGot, const char *zWant,
                               const char *zFile, int iLine, const char *zExpr){
  int bOk = (zGot==0 || zWant==0) ? zGot==zWant : strcmp(zGot, zWant)==0;
  if( bOk ){
    unitPassed++;
  }else{
    unitFailed++;
    fprintf(stderr, "%s:%d: CHECK_STR(%s)\n  got:  %s%s%s\n  want: %s%s%s\n", zFile, iLine, zExpr,
            zGot ? "\"" : "", zGot ? zGot : "NULL", zGot ? "\"" : "",
            zWant ? "\"" : "", zWant ? zWant : "NULL", zWant ? "\"" : "");
  }
  return bOk;
}

/* Print the totals; the exit status of the test program. */
static inline int unitSummary(void){
  printf("%d passed, %d failed\n", unitPassed, unitFailed);
  return unitFailed!=0;
}

#define CHECK(c)             unitCheck(!!(c), __FILE__, __LINE__, #c)
#define CHECK_EQ_INT(g, w)   unitCheckInt((long long)(g), (long long)(w), __FILE__, __LINE__, \
                                          #g ", " #w)
#define CHECK_STR(g, w)      unitCheckStr((g), (w), __FILE__, __LINE__, #g ", " #w)

#endif /* UNIT_H */
