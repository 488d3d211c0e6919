/* rules.h - every bound of a task's fields, stated once.
 *
 * The field tables (rules.c), the row writer shared by Lua tables, CSV rows and the LuaJIT
 * walker (rows.c), the CSV reader's dedupe (csv.c) and core.MAX_ROWS read these; no other
 * C file states a bound. fuzz/builder.lua keeps its own copy on purpose: it is the
 * fuzzers' independent oracle, which must not share the encoder's mistakes.
 *
 * A *_WARN bound is ours, not the vendor's pages': a value below it is written as given,
 * with a warning (an error with opts.strict). */
#ifndef LAAFFIC_RULES_H
#define LAAFFIC_RULES_H

#include "laaffic.h"

#define LF_MAX_ROWS 200000      /* numberInfoList entries in one task */
#define LF_CALLEE_MIN 6         /* calleeNumber: digits, country code + number */
#define LF_CALLEE_MAX 18
#define LF_TEXT_MAX 30          /* text1..text10: characters */
#define LF_NAME_MIN 2           /* taskName: characters */
#define LF_NAME_MAX 64
#define LF_DISPLAY_MAX 20       /* displayNum: 0 to 20 digits */
#define LF_MAXCALLS_WARN 1      /* maxCalls */
#define LF_MAXCALLS_MAX 999
#define LF_RINGING_MIN 10       /* maxRingingTime: seconds */
#define LF_RINGING_MAX 120
#define LF_WINDOWS_MAX 3        /* allowSendTime: windows */
#define LF_ID_WARN 1            /* agentId, a node's agentId, recallInterval, recallNum */
#define LF_ID_DIGITS 10         /* an agentId given as a string of digits */
#define LF_INT32_MAX 2147483647 /* an Integer of the pages */
#define LF_PART_SUFFIX "-part-%d" /* taskName of part N of a split list */

/* The row keys in slot order, as the row writer, the CSV column map and the LuaJIT walker
 * number them: calleeNumber is slot 0, textK is slot K. */
enum { LF_ROW_CALLEE = 0, LF_ROW_NKEYS = 11 };
LAAFFIC_INTERNAL extern const char *const lf_row_keys[LF_ROW_NKEYS];

/* Is s[0..n) a calleeNumber: LF_CALLEE_MIN to LF_CALLEE_MAX ASCII digits? */
static inline int lf_callee_ok(const char *s, size_t n)
{
    size_t i;
    if (n < LF_CALLEE_MIN || n > LF_CALLEE_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)(s[i] - '0') > 9)
            return 0;
    return 1;
}

/* How a list of n rows is split into tasks of at most max rows: the number of parts
 * (1 for an empty list), and part k's rows first..last (1-based; 0 when there is no
 * part k). core.parts and the encoder's opts.part both ask this. */
static inline size_t lf_parts(size_t n, size_t max)
{
    return n <= max ? 1 : (n + max - 1) / max;
}

static inline int lf_part_rows(size_t n, size_t max, size_t k, size_t *first, size_t *last)
{
    if (k == 0 || n == 0 || (k - 1) >= (n + max - 1) / max)
        return 0;
    *first = (k - 1) * max + 1;
    *last = n - *first + 1 > max ? *first + max - 1 : n;
    return 1;
}

#endif
