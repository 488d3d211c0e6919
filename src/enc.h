/* enc.h - the encoder's state and what its files share (private to the encoder).
 *
 *   encode.c    options, entry points (core.encoder's steps too), info, errors and
 *               warnings with their field path
 *   json.c      the JSON writer: strings (UTF-8 checked), numbers, any Lua value
 *   rules.c     the task's fields and their rules (bounds in rules.h), the object writer
 *   rows.c      numberInfoList rows from a Lua list, the row writer, rejects, part names
 *   rows_csv.c  numberInfoList rows from a CSV reader
 *   rows_jit.c  the LuaJIT row walker's bridge (laaffic.jit_rows)
 *
 * Memory: every byte goes into a "laaffic.body" userdata created first, so a Lua error
 * (out of memory inside the Lua API) leaves nothing that the GC cannot free. Validation
 * errors never raise: they travel back up the C call chain as -1 with the message kept in
 * the encoder state, and only at the top are they pushed as `nil, message, field, code`. */
#ifndef LAAFFIC_ENC_H
#define LAAFFIC_ENC_H

#include <stddef.h>
#include <string.h>
#include <lua.h>

#include "body.h"
#include "csv.h"
#include "laaffic.h"
#include "rules.h"

#define MAX_DEPTH 64
#define CODE_PARAM (-22) /* missing, wrong type, nodeList length */
#define CODE_DATA (-21)  /* value outside its rule */

typedef struct pathseg {
    const char *key; /* NULL: an index */
    size_t klen;
    lua_Integer index;
} pathseg;

typedef struct enc {
    lua_State *L;
    lf_body *body; /* the userdata that owns b */
    lf_buf *b;     /* the bytes written */
    /* options */
    unsigned require_texts; /* bit k set: textk required */
    int truncate;
    /* progress, for the capacity estimate */
    size_t rows, rows_total, list_start;
    size_t truncated;
    size_t walk_left, walked; /* rows the LuaJIT walker may still write / has written */
    /* splitting a list into parts (opts.part, or a CSV source) */
    size_t max_rows;
    int split, part, more;
    lf_csv *csv;
    /* opts.rejects: bad rows go into this list (stack index) instead of failing */
    int rejects;
    size_t max_rejects, rejected, duplicates;
    int located; /* e->msg already says file:line:column: field: */
    int fatal;   /* out of memory: no row is to blame, rejects do not apply */
    /* opts.strict: a warning (a rule the vendor's pages do not state) is an error */
    int strict;
    int warnings; /* stack index of the list of warnings, 0 before run() */
    size_t nwarnings;
    /* opts.problems: every bad top-level field is listed (stack index), not just the first */
    int problems;
    size_t nproblems;
    long err_line;
    int err_col;
    const char *err_field;
    char task_name[320];   /* the name written, when split */
    /* the tables being written, outermost first: a table met again is a cycle */
    const void *open[MAX_DEPTH + 16];
    int nopen;
    size_t tables; /* tables written as they are (fields laaffic does not know) */
    /* cross-field state for recallFlow */
    lua_Integer recall_type, recall_num;
    size_t node_count;
    int have_type, have_num, have_nodes, have_intents;
    size_t intent_count;
    /* the encode in steps (core.encoder): where it stands between two calls */
    int stage;      /* ST_NEW, ST_ROWS (stopped inside numberInfoList), ST_DONE */
    int busy;       /* a step is running; still set after a step that raised */
    size_t budget;  /* rows (list entries, CSV records) this step may still read */
    int task;       /* stack index of the task table in this call */
    int field_top, field_depth, field_nopen; /* as before the top-level field being written */
    /* numberInfoList from a Lua list: the rows left, and the row keys interned on the stack
     * (keys_base + 1 ..): their addresses hold for this call only */
    size_t row_i, row_last, walk_from;
    int keys_base, walker;
    const char *interned[LF_ROW_NKEYS];
    unsigned long long csv_from; /* where the CSV part began, for the capacity estimate */
    /* error */
    int code;
    char msg[640];
    pathseg path[MAX_DEPTH + 16];
    int depth;
} enc;

/* ---- errors and warnings (encode.c) */

/* Keeps the message and code; returns -1. */
LAAFFIC_INTERNAL int lf_fail(enc *e, int code, const char *fmt, ...);
/* A rule the vendor's pages do not state: 0 and a warning, or -1 (opts.strict). */
LAAFFIC_INTERNAL int lf_warn(enc *e, int code, const char *fmt, ...);
/* Pushes the field path, e.g. "numberInfoList[3].calleeNumber". */
LAAFFIC_INTERNAL void lf_path_push(lua_State *L, const enc *e);
/* After a top-level field failed: lists it in opts.problems and puts the encoder back as
 * it was before the field (stack top, depth, open tables); 0, or -1 without opts.problems
 * (or for a failure no field is to blame for). */
LAAFFIC_INTERNAL int lf_collect(enc *e, int top, int depth, int nopen);

/* Inside the encoder's files the helpers keep their short names; the symbols carry the
 * lf_ prefix, since the fuzz harnesses link these objects statically beside libc (which
 * has a warn of its own). */
#define fail lf_fail
#define warn lf_warn

static inline void path_key(enc *e, const char *k, size_t len)
{
    pathseg *p = &e->path[e->depth++];
    p->key = k;
    p->klen = len;
    p->index = 0;
}

static inline void path_index(enc *e, lua_Integer i)
{
    pathseg *p = &e->path[e->depth++];
    p->key = NULL;
    p->klen = 0;
    p->index = i;
}

#define path_pop(e) ((e)->depth--)

/* t[name] without metamethods: a table with an __index that raises must not make the
 * encoder raise */
static inline void raw_field(lua_State *L, int t, const char *name)
{
    lua_pushstring(L, name);
    lua_rawget(L, t);
}

static inline int is_null(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}

/* ---- the JSON writer (json.c) */

/* Byte classes: 0 plain ASCII, 1 ASCII that needs an escape, 2..4 lead byte of a 2..4
 * byte sequence, 5 never valid as a lead byte. */
LAAFFIC_INTERNAL extern unsigned char lf_cls[256];
LAAFFIC_INTERNAL void lf_json_init(void);

/* Grows the body for n more bytes (the slow path of reserve). 0, or -1 (fatal). */
LAAFFIC_INTERNAL int lf_grow(enc *e, size_t need);

#define reserve(e, n) (((e)->b->cap - (e)->b->len >= (size_t)(n)) ? 0 : lf_grow((e), (n)))

static inline void put_raw(enc *e, const char *s, size_t n)
{
    memcpy(e->b->data + e->b->len, s, n);
    e->b->len += n;
}

#define put_lit(e, s) put_raw((e), (s), sizeof(s) - 1)

static inline int put_chars(enc *e, const char *s, size_t n)
{
    if (reserve(e, n))
        return -1;
    put_raw(e, s, n);
    return 0;
}

/* Writes s as a JSON string, at most maxchars characters (0: all); see json.c. */
LAAFFIC_INTERNAL int lf_put_string(enc *e, const char *s, size_t len, size_t maxchars,
                                   size_t *chars, int *cut);
/* Writes an integer; the caller reserved 24 bytes. */
LAAFFIC_INTERNAL void lf_put_integer(enc *e, long long v);
/* Writes any Lua value as JSON (a field laaffic passes through as it is). */
LAAFFIC_INTERNAL int lf_put_value(enc *e, int idx, int depth);
/* An integer-valued field from lo to hi. */
LAAFFIC_INTERNAL int lf_get_integer(enc *e, int idx, lua_Integer lo, lua_Integer hi,
                                    lua_Integer *out);
/* Checks that t is a proper sequence 1..n and returns n. */
LAAFFIC_INTERNAL int lf_list_len(enc *e, int t, const char *what, size_t *n);
/* "number", "NaN", "null"...: the type of a value as messages name it. */
LAAFFIC_INTERNAL const char *lf_type_name(lua_State *L, int idx);
/* A short quoted rendering of a string for messages; out holds SHOWN_SIZE bytes. */
#define SHOWN_SIZE (24 * 4 + 8)
LAAFFIC_INTERNAL void lf_show(char *out, size_t outsz, const char *s, size_t len);
/* Notes that table t is being written; fails if it already is (a cycle). */
LAAFFIC_INTERNAL int lf_enter(enc *e, int t);
#define leave(e) ((e)->nopen--)

/* The keys of a table, collected and sorted (see json.c). */
typedef struct kref {
    const char *s;
    size_t len;
} kref;
typedef int (*key_test)(const void *ctx, const char *k, size_t len);
LAAFFIC_INTERNAL kref *lf_collect_keys(enc *e, int t, size_t n, key_test keep, const void *ctx);
/* Writes "key":value of the table at t. */
LAAFFIC_INTERNAL int lf_put_member(enc *e, int t, const kref *k, int depth);

#define put_string lf_put_string
#define put_integer lf_put_integer
#define put_value lf_put_value
#define get_integer lf_get_integer
#define list_len lf_list_len
#define type_name lf_type_name
#define show lf_show
#define enter lf_enter
#define collect_keys lf_collect_keys
#define put_member lf_put_member

/* ---- the task's fields (rules.c) and its rows (rows.c, rows_csv.c, rows_jit.c) */

/* e->stage */
enum { ST_NEW, ST_ROWS, ST_DONE };
/* What the writers below return besides 0 and -1: e->budget ran out inside
 * numberInfoList, rows remain. The stack then holds the list value at e->field_top + 1
 * and, for a Lua list, the interned row keys above it (lf_push_row_keys): the next call
 * puts them back so and goes on where this one stopped. */
#define LF_MORE 1

/* Writes the task table at e->task as the request object: from the start (ST_NEW), or
 * from the row it stopped at (ST_ROWS). 0, -1, or LF_MORE. */
LAAFFIC_INTERNAL int lf_put_task(enc *e);
/* numberInfoList: a Lua list (or one part of it), or a CSV reader; starts it and writes
 * rows as far as e->budget allows. 0, -1, or LF_MORE. */
LAAFFIC_INTERNAL int lf_put_numbers(enc *e, int idx);
LAAFFIC_INTERNAL int lf_put_csv_numbers(enc *e, lf_csv *c);
/* Goes on with the rows of the list at e->field_top + 1 (a CSV reader: e->csv). */
LAAFFIC_INTERNAL int lf_more_numbers(enc *e);
LAAFFIC_INTERNAL int lf_more_csv_numbers(enc *e);
/* Pushes the row keys and notes their addresses (e->interned, e->keys_base). */
LAAFFIC_INTERNAL void lf_push_row_keys(enc *e);
/* Writes ,"taskName": (no comma when first) for a split list, the name of its part. */
LAAFFIC_INTERNAL int lf_put_task_name(enc *e, int t, int first);
/* Writes the value at idx as a taskName, by taskName's rule (rules.c). */
LAAFFIC_INTERNAL int lf_put_name(enc *e, int idx);

/* One row's values by slot (rules.h: calleeNumber, text1..text10). */
typedef struct slot {
    const char *s;
    size_t len;
    int type; /* LUA_TSTRING, LUA_TNUMBER, or LUA_TLIGHTUSERDATA for null */
    int isint;
    lua_Number n;
    lua_Integer i;
} slot;

/* Output bytes to reserve for a string slot of len bytes. */
static inline size_t lf_string_need(size_t len)
{
    return (len > 4 * LF_TEXT_MAX ? 4 * LF_TEXT_MAX : len) * 6 + 24;
}

/* Writes a row from its slots, without its closing brace. */
LAAFFIC_INTERNAL int lf_put_slots(enc *e, const slot *v, unsigned present, size_t need);
/* The row key a failed row named, or -1. */
LAAFFIC_INTERNAL int lf_failed_key(const enc *e, int depth);
/* Appends the failed row to opts.rejects; -1 past opts.max_rejects. */
LAAFFIC_INTERNAL int lf_add_reject(enc *e, lua_Integer index, long line, int col,
                                   const char *fname);
/* The error of a list left with no rows. */
LAAFFIC_INTERNAL int lf_no_rows(enc *e);

/* The LuaJIT walker writes rows i..last of the list at idx; returns the first it did not
 * write (i when there is no walker). */
LAAFFIC_INTERNAL int lf_have_walker(lua_State *L);
LAAFFIC_INTERNAL size_t lf_walk_rows(enc *e, int idx, size_t i, size_t last);
LAAFFIC_INTERNAL int lf_jit_rows_open(lua_State *L);

#endif
