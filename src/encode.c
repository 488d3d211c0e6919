/* encode.c - validate a task table and write the request JSON in one pass.
 *
 * The rules live in the field tables below (TOP, RECALL, WINDOW, NODE, ROW_KEYS): one
 * place, used by the client and by the sandbox (which decodes a request with cjson and
 * runs it through this same encoder).
 *
 * Memory: every byte goes into a "laaffic.body" userdata created first, so a Lua error
 * (out of memory inside the Lua API) leaves nothing that the GC cannot free. Validation
 * errors never raise: they travel back up the C call chain as -1 with the message kept in
 * the encoder state, and only at the top are they pushed as `nil, message, field, code`.
 *
 * Hot path (numberInfoList rows): one lua_next pass over each row, matching keys by the
 * address of the interned key string, values kept as pointers into the row's own strings;
 * then the row is written in canonical order with validation and escaping fused. No Lua
 * value is allocated per row. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buffer.h"
#include "compat.h"
#include "csv.h"
#include "laaffic.h"

#define MAX_ROWS 200000
#define MAX_TEXT_CHARS 30
#define MAX_DEPTH 64
#define MAX_PASS_TABLES 1000000 /* tables in unknown fields, in all */
#define INT32_MAXV 2147483647.0

#define CODE_PARAM (-22) /* missing, wrong type, nodeList length */
#define CODE_DATA (-21)  /* value outside its rule */

/* ---------------------------------------------------------------- encoder state */

typedef struct pathseg {
    const char *key; /* NULL: an index */
    size_t klen;
    lua_Integer index;
} pathseg;

typedef struct enc {
    lua_State *L;
    lf_body *b;
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
    unsigned long long csv_from; /* the CSV offset where this part started */
    /* opts.rejects: bad rows go into this list (stack index) instead of failing */
    int rejects;
    size_t max_rejects, rejected, duplicates;
    int located; /* e->msg already says file:line:column: field: */
    int fatal;   /* out of memory: no row is to blame, rejects do not apply */
    /* opts.strict: a warning (a rule the vendor's pages do not state) is an error */
    int strict;
    int warnings; /* stack index of the list of warnings, 0 before run() */
    size_t nwarnings;
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
    /* error */
    int code;
    char msg[640];
    pathseg path[MAX_DEPTH + 16];
    int depth;
} enc;

static int fail(enc *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->code = code;
    return -1;
}

static void path_key(enc *e, const char *k, size_t len)
{
    pathseg *p = &e->path[e->depth++];
    p->key = k;
    p->klen = len;
    p->index = 0;
}

static void path_index(enc *e, lua_Integer i)
{
    pathseg *p = &e->path[e->depth++];
    p->key = NULL;
    p->klen = 0;
    p->index = i;
}

#define path_pop(e) ((e)->depth--)

static void path_push(lua_State *L, const enc *e);

#define MAX_WARNINGS 100 /* kept in info.warnings; more are counted, not kept */

/* A rule laaffic infers but the vendor's pages do not state: the request is written as
 * given and { field, message, code } goes to info.warnings; with opts.strict it fails like
 * a stated rule. Returns 0, or -1 (strict). */
static int warn(enc *e, int code, const char *fmt, ...)
{
    lua_State *L = e->L;
    char msg[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (e->strict) {
        memcpy(e->msg, msg, sizeof msg);
        e->code = code;
        return -1;
    }
    if (!e->warnings || e->nwarnings++ >= MAX_WARNINGS)
        return 0;
    lua_createtable(L, 0, 3);
    path_push(L, e);
    lua_setfield(L, -2, "field");
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "message");
    lua_pushinteger(L, code);
    lua_setfield(L, -2, "code");
    lua_rawseti(L, e->warnings, (lua_Integer)e->nwarnings);
    return 0;
}

/* Writes the field path ("numberInfoList[3].calleeNumber") into a luaL_Buffer. Keys are
 * cut at 64 bytes and bytes outside printable ASCII are shown as \xHH. */
static void path_push(lua_State *L, const enc *e)
{
    luaL_Buffer B;
    int i;
    luaL_buffinit(L, &B);
    if (e->depth == 0)
        luaL_addstring(&B, "task");
    for (i = 0; i < e->depth; i++) {
        const pathseg *p = &e->path[i];
        if (e->depth > 16 && i == 8) { /* a deep (cyclic?) path: its two ends are enough */
            luaL_addstring(&B, "...");
            i = e->depth - 5;
            continue;
        }
        if (p->key) {
            size_t j, n = p->klen > 64 ? 64 : p->klen;
            if (i > 0)
                luaL_addchar(&B, '.');
            for (j = 0; j < n; j++) {
                char esc[4];
                luaL_addlstring(&B, esc, (size_t)lf_show_byte(esc, (unsigned char)p->key[j], 0));
            }
            if (n < p->klen)
                luaL_addstring(&B, "...");
        } else {
            char tmp[32];
            snprintf(tmp, sizeof tmp, "[%lld]", (long long)p->index);
            luaL_addstring(&B, tmp);
        }
    }
    luaL_pushresult(&B);
}

/* A short, printable rendering of a string value for error messages: its first 24
 * bytes in quotes, others as \xHH. SHOWN_SIZE holds the longest. */
#define SHOWN_SIZE (24 * 4 + 8)
static void show(char *out, size_t outsz, const char *s, size_t len)
{
    size_t i, o = 0, max = 24;
    out[o++] = '"';
    for (i = 0; i < len && i < max && o + 4 + 5 <= outsz; i++)
        o += (size_t)lf_show_byte(out + o, (unsigned char)s[i], 1);
    if (i < len && o + 5 < outsz) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = 0;
}

static const char *type_name(lua_State *L, int idx)
{
    int t = lua_type(L, idx);
    if (t == LUA_TNUMBER) {
        lua_Number n = lua_tonumber(L, idx);
        if (n != n)
            return "NaN";
        if (n == HUGE_VAL || n == -HUGE_VAL)
            return "infinity";
        return "number";
    }
    if (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL)
        return "null";
    return lua_typename(L, t);
}

/* ---------------------------------------------------------------- output buffer */

static int grow(enc *e, size_t need)
{
    lf_body *b = e->b;
    size_t want = b->len + need, cap;
    if (want < b->len && (e->fatal = 1))
        return fail(e, CODE_DATA, "the request body would be too large");
    cap = b->cap ? b->cap + b->cap / 2 : 4096;
    /* Inside numberInfoList, extrapolate from the rows so far, so a 200k-row list is
     * reallocated a few times in all and the final slack stays small. At most twice what
     * is written: one huge row must not be assumed for every row after it (a 20 MB field
     * in row 100 of 200,000 asked for 20 GB). */
    if (e->rows >= 64 && e->rows < e->rows_total) {
        double per = (double)(b->len - e->list_start) / (double)e->rows;
        double est = (double)b->len + per * (double)(e->rows_total - e->rows) * 1.05 + 4096.0;
        double most = 2.0 * (double)b->len + 4096.0;
        if (est > most)
            est = most;
        if (est < (double)((size_t)-1 / 2))
            cap = est > (double)want ? (size_t)est : b->cap + b->cap / 4;
    }
    if (cap < want)
        cap = want;
    if (lf_body_grow(b, cap) != 0 && (e->fatal = 1))
        return fail(e, CODE_DATA, "out of memory building a %lu-byte request body",
                    (unsigned long)cap);
    return 0;
}

#define reserve(e, n) (((e)->b->cap - (e)->b->len >= (size_t)(n)) ? 0 : grow((e), (n)))

static void put_raw(enc *e, const char *s, size_t n)
{
    memcpy(e->b->data + e->b->len, s, n);
    e->b->len += n;
}

#define put_lit(e, s) put_raw((e), (s), sizeof(s) - 1)

static int put_chars(enc *e, const char *s, size_t n)
{
    if (reserve(e, n))
        return -1;
    put_raw(e, s, n);
    return 0;
}

/* ---------------------------------------------------------------- strings */

/* Byte classes: 0 plain ASCII, 1 ASCII that needs an escape, 2..4 lead byte of a 2..4
 * byte sequence, 5 never valid as a lead byte. */
static unsigned char cls[256];

static void cls_init(void)
{
    int c;
    for (c = 0; c < 256; c++) {
        if (c < 0x20 || c == '"' || c == '\\')
            cls[c] = 1;
        else if (c < 0x80)
            cls[c] = 0;
        else if (c >= 0xC2 && c <= 0xDF)
            cls[c] = 2;
        else if (c >= 0xE0 && c <= 0xEF)
            cls[c] = 3;
        else if (c >= 0xF0 && c <= 0xF4)
            cls[c] = 4;
        else
            cls[c] = 5;
    }
}

/* Length of the valid UTF-8 sequence at s[i] (lead byte class k), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t i, size_t len, int k)
{
    unsigned char c = s[i], c1;
    size_t n = (size_t)k;
    if (k == 5 || i + n > len)
        return 0;
    c1 = s[i + 1];
    switch (c) {
    case 0xE0: if (c1 < 0xA0 || c1 > 0xBF) return 0; break;
    case 0xED: if (c1 < 0x80 || c1 > 0x9F) return 0; break;
    case 0xF0: if (c1 < 0x90 || c1 > 0xBF) return 0; break;
    case 0xF4: if (c1 < 0x80 || c1 > 0x8F) return 0; break;
    default: if ((c1 & 0xC0) != 0x80) return 0;
    }
    if (n >= 3 && (s[i + 2] & 0xC0) != 0x80)
        return 0;
    if (n == 4 && (s[i + 3] & 0xC0) != 0x80)
        return 0;
    return n;
}

static void put_escape(enc *e, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char *o = e->b->data + e->b->len;
    o[0] = '\\';
    switch (c) {
    case '"': o[1] = '"'; e->b->len += 2; return;
    case '\\': o[1] = '\\'; e->b->len += 2; return;
    case '\b': o[1] = 'b'; e->b->len += 2; return;
    case '\f': o[1] = 'f'; e->b->len += 2; return;
    case '\n': o[1] = 'n'; e->b->len += 2; return;
    case '\r': o[1] = 'r'; e->b->len += 2; return;
    case '\t': o[1] = 't'; e->b->len += 2; return;
    default:
        memcpy(o + 1, "u00", 3);
        o[4] = hex[c >> 4];
        o[5] = hex[c & 15];
        e->b->len += 6;
    }
}

/* Writes s as a JSON string (quotes included), validating UTF-8. At most maxchars
 * characters are written (0: no limit), and reading stops there too: what is not sent
 * is not checked (a 16 KiB text of which 30 characters are kept costs 30 characters).
 * *chars gets the number of characters written; *cut is set when bytes were left out. */
static int put_string(enc *e, const char *str, size_t len, size_t maxchars, size_t *chars,
                      int *cut)
{
    /* Space is reserved a window at a time (6 output bytes per input byte at worst), so a
     * long string costs about its own size, not six times it. */
    enum { WINDOW = 4096 };
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, n = 0, until = 0;
    if (reserve(e, 1))
        return -1;
    e->b->data[e->b->len++] = '"';
    while (i < len) {
        unsigned char c = s[i];
        int k = cls[c];
        if (maxchars && n == maxchars)
            break;
        if (i >= until) {
            size_t w = len - i < WINDOW ? len - i : WINDOW;
            if (reserve(e, w * 6 + 8))
                return -1;
            until = i + w;
        }
        if (k == 0) {
            /* a run of plain ASCII, within the reserved window */
            size_t j = i + 1;
            while (j < until && cls[s[j]] == 0 && (!maxchars || n + (j - i) < maxchars))
                j++;
            put_raw(e, str + i, j - i);
            n += j - i;
            i = j;
        } else if (k == 1) {
            put_escape(e, c);
            n++;
            i++;
        } else {
            size_t q = utf8_seq(s, i, len, k);
            if (q == 0)
                goto bad;
            put_raw(e, str + i, q);
            n++;
            i += q;
        }
    }
    if (reserve(e, 1))
        return -1;
    e->b->data[e->b->len++] = '"';
    *cut = i < len;
    *chars = n;
    return 0;
bad:
    return fail(e, CODE_DATA, "invalid UTF-8 at byte %lu", (unsigned long)i + 1);
}

/* ---------------------------------------------------------------- numbers */

static void put_integer(enc *e, long long v)
{
    char tmp[24], *p = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    put_raw(e, p, (size_t)(tmp + sizeof tmp - p));
}

/* An integer-valued field: Lua integer, or a float with no fraction. */
static int get_integer(enc *e, int idx, lua_Integer lo, lua_Integer hi, lua_Integer *out)
{
    lua_State *L = e->L;
    lua_Number n;
    if (lua_type(L, idx) != LUA_TNUMBER)
        return fail(e, CODE_PARAM, "must be an integer, got %s", type_name(L, idx));
    if (lf_isinteger(L, idx)) {
        lua_Integer v = lua_tointeger(L, idx);
        if (v < lo || v > hi)
            return fail(e, CODE_DATA, "must be an integer from %lld to %lld, got %lld",
                        (long long)lo, (long long)hi, (long long)v);
        *out = v;
        return 0;
    }
    n = lua_tonumber(L, idx);
    if (n != n || n == HUGE_VAL || n == -HUGE_VAL)
        return fail(e, CODE_DATA, "must be an integer, got %s", type_name(L, idx));
    if (n != floor(n))
        return fail(e, CODE_DATA, "must be an integer, got %.17g", (double)n);
    if (n < (lua_Number)lo || n > (lua_Number)hi)
        return fail(e, CODE_DATA, "must be an integer from %lld to %lld, got %.17g",
                    (long long)lo, (long long)hi, (double)n);
    *out = (lua_Integer)n;
    return 0;
}

/* Shortest %.Ng that reads back as the same double. */
static int put_float(enc *e, double d)
{
    char tmp[40];
    int n, prec;
    if (d != d || d == HUGE_VAL || d == -HUGE_VAL)
        return fail(e, CODE_DATA, "%s cannot be represented in JSON",
                    d != d ? "NaN" : "infinity");
    if (d == floor(d) && fabs(d) < 9.2e18) {
        if (reserve(e, 24))
            return -1;
        put_integer(e, (long long)d);
        return 0;
    }
    for (prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    return put_chars(e, tmp, (size_t)n);
}

/* ---------------------------------------------------------------- generic values */

static int put_value(enc *e, int idx, int depth);

/* A table as array or object. Arrays: keys exactly 1..n. Objects: string keys, written
 * sorted so the body is the same from run to run. */
typedef struct kref {
    const char *s;
    size_t len;
} kref;

static int kref_cmp(const void *a, const void *b)
{
    const kref *x = (const kref *)a, *y = (const kref *)b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static int json_type_hint(lua_State *L, int t)
{
    int array = 0;
    if (lua_getmetatable(L, t)) {
        lua_pushliteral(L, "__jsontype");
        lua_rawget(L, -2);
        if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "array") == 0)
            array = 1;
        lua_pop(L, 2);
    }
    return array;
}

/* The first missing index of the table at t in 1..n (n + 1 if none is missing). */
static size_t first_hole(lua_State *L, int t, size_t n)
{
    size_t i;
    for (i = 1; i <= n; i++) {
        int missing;
        lua_rawgeti(L, t, (lua_Integer)i);
        missing = lua_isnil(L, -1);
        lua_pop(L, 1);
        if (missing)
            break;
    }
    return i;
}

static int check_key(enc *e, int kidx, int *is_int, lua_Integer *ival)
{
    lua_State *L = e->L;
    int kt = lua_type(L, kidx);
    *is_int = 0;
    if (kt == LUA_TSTRING)
        return 0;
    if (kt == LUA_TNUMBER) {
        lua_Number n = lua_tonumber(L, kidx);
        if (n >= 1 && n == floor(n) && n < 9.0e15) {
            *is_int = 1;
            *ival = (lua_Integer)n;
            return 0;
        }
        return fail(e, CODE_PARAM, "has a key %.17g that is neither a name nor a list index",
                    (double)n);
    }
    return fail(e, CODE_PARAM, "has a %s key; JSON keys are names or list indexes",
                type_name(L, kidx));
}

/* Writes one member "key":value of the table at t, the key given by its bytes (a key of
 * that table, so its bytes stay alive). */
/* Notes that table t is being written; fails if it already is (it contains itself). */
static int enter(enc *e, int t)
{
    const void *p = lua_topointer(e->L, t);
    int i;
    for (i = 0; i < e->nopen; i++)
        if (e->open[i] == p)
            return fail(e, CODE_PARAM, "contains itself (a reference cycle)");
    if (e->nopen == (int)(sizeof e->open / sizeof e->open[0]))
        return fail(e, CODE_PARAM, "is nested more than %d levels deep", MAX_DEPTH);
    e->open[e->nopen++] = p;
    return 0;
}

#define leave(e) ((e)->nopen--)

/* The known-field test of collect_keys: 1 keeps the key. */
typedef int (*key_test)(const void *ctx, const char *k, size_t len);

/* Pushes the string keys of the table at t that `keep` accepts (every key when NULL):
 * a table holding them, which keeps them alive while they are written whatever changes t,
 * then an array of n krefs over them, sorted. n is what a first pass counted; both are
 * allocated before the walk, so no finalizer runs during it, but one may have run at the
 * allocations: a table that now has other keys fails. Returns the array, or NULL. */
static kref *collect_keys(enc *e, int t, size_t n, key_test keep, const void *ctx)
{
    lua_State *L = e->L;
    size_t i = 0;
    kref *keys;
    lua_createtable(L, n > 0x7fffffff ? 0x7fffffff : (int)n, 0);
    keys = (kref *)lua_newuserdata(L, (n ? n : 1) * sizeof *keys);
    lua_pushnil(L);
    while (lua_next(L, t)) {
        size_t klen;
        const char *k;
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 2);
            i = n + 1;
            break;
        }
        k = lua_tolstring(L, -2, &klen);
        lua_pop(L, 1);
        if (keep && !keep(ctx, k, klen))
            continue;
        if (i == n) {
            lua_pop(L, 1);
            i++;
            break;
        }
        keys[i].s = k;
        keys[i].len = klen;
        lua_pushvalue(L, -1);
        lua_rawseti(L, -4, (lua_Integer)++i); /* the array part is sized: no allocation */
    }
    if (i != n) {
        fail(e, CODE_PARAM, "changed while it was encoded (by a finalizer?)");
        return NULL;
    }
    qsort(keys, n, sizeof *keys, kref_cmp);
    return keys;
}

static int put_member(enc *e, int t, const kref *k, int depth)
{
    lua_State *L = e->L;
    size_t nc;
    int cut;
    path_key(e, k->s, k->len);
    if (put_string(e, k->s, k->len, 0, &nc, &cut) || put_chars(e, ":", 1))
        return -1;
    lua_pushlstring(L, k->s, k->len);
    lua_rawget(L, t);
    if (put_value(e, lua_gettop(L), depth))
        return -1;
    lua_pop(L, 1);
    path_pop(e);
    return 0;
}

static int put_table(enc *e, int t, int depth)
{
    lua_State *L = e->L;
    size_t nstr = 0, nint = 0, i;
    lua_Integer maxi = 0;
    kref *keys;
    int is_int;
    lua_Integer iv;

    if (depth > MAX_DEPTH)
        return fail(e, CODE_PARAM, "is nested more than %d levels deep", MAX_DEPTH);
    if (!lua_checkstack(L, 8))
        return fail(e, CODE_PARAM, "is nested too deeply");
    /* a table shared many times over can make an output far larger than its input */
    if (++e->tables > MAX_PASS_TABLES)
        return fail(e, CODE_PARAM, "makes the fields laaffic passes through as they are hold "
                    "more than %d tables (a table shared many times over?)", MAX_PASS_TABLES);
    if (enter(e, t))
        return -1;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (check_key(e, -2, &is_int, &iv)) {
            lua_pop(L, 2);
            return -1;
        }
        if (is_int) {
            nint++;
            if (iv > maxi)
                maxi = iv;
        } else {
            nstr++;
        }
        lua_pop(L, 1);
    }
    if (nint && nstr)
        return fail(e, CODE_PARAM, "mixes list entries and named fields");
    if (nint || (nstr == 0 && json_type_hint(L, t))) {
        if ((size_t)maxi != nint)
            return fail(e, CODE_PARAM, "is a list with a hole at index %lu",
                        (unsigned long)first_hole(L, t, nint));
        if (put_chars(e, "[", 1))
            return -1;
        for (i = 1; i <= nint; i++) {
            if (i > 1 && put_chars(e, ",", 1))
                return -1;
            lua_rawgeti(L, t, (lua_Integer)i);
            path_index(e, (lua_Integer)i);
            if (put_value(e, lua_gettop(L), depth))
                return -1;
            path_pop(e);
            lua_pop(L, 1);
        }
        leave(e);
        return put_chars(e, "]", 1);
    }
    /* object: collect, sort, write */
    if ((keys = collect_keys(e, t, nstr, NULL, NULL)) == NULL)
        return -1;
    if (put_chars(e, "{", 1))
        return -1;
    for (i = 0; i < nstr; i++) {
        if ((i > 0 && put_chars(e, ",", 1)) || put_member(e, t, &keys[i], depth))
            return -1;
    }
    lua_pop(L, 2); /* keys */
    leave(e);
    return put_chars(e, "}", 1);
}

static int put_value(enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    size_t len, nc;
    int cut;
    const char *s;
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        return lua_toboolean(L, idx) ? put_chars(e, "true", 4) : put_chars(e, "false", 5);
    case LUA_TNUMBER:
        if (lf_isinteger(L, idx)) {
            if (reserve(e, 24))
                return -1;
            put_integer(e, (long long)lua_tointeger(L, idx));
            return 0;
        }
        return put_float(e, (double)lua_tonumber(L, idx));
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        return put_string(e, s, len, 0, &nc, &cut);
    case LUA_TTABLE:
        return put_table(e, idx, depth + 1);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL)
            return put_chars(e, "null", 4);
        /* fall through */
    default:
        return fail(e, CODE_PARAM, "a %s cannot be encoded as JSON", type_name(L, idx));
    }
}

/* ---------------------------------------------------------------- field rules */

struct field;
typedef int (*putter)(enc *e, int idx, const struct field *f);

typedef struct field {
    const char *name;
    putter put;
    int required;
    lua_Integer lo, hi;              /* bounds: digits, characters, integer range, entries */
    const struct field *sub;         /* object fields of list entries */
    int nsub;
} field;

static int is_null(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}

static int put_digits(enc *e, int idx, const field *f)
{
    lua_State *L = e->L;
    size_t len, i;
    const char *s;
    char shown[SHOWN_SIZE];
    if (lua_type(L, idx) != LUA_TSTRING)
        return fail(e, CODE_PARAM, "must be a string of %lld to %lld digits, got %s",
                    (long long)f->lo, (long long)f->hi, type_name(L, idx));
    s = lua_tolstring(L, idx, &len);
    for (i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            break;
    if (i < len || len < (size_t)f->lo || len > (size_t)f->hi) {
        show(shown, sizeof shown, s, len);
        return fail(e, CODE_DATA, "must be %lld to %lld digits%s, got %s", (long long)f->lo,
                    (long long)f->hi, f->lo >= 6 ? " (country code + number)" : "", shown);
    }
    if (reserve(e, len + 2))
        return -1;
    put_lit(e, "\"");
    put_raw(e, s, len);
    put_lit(e, "\"");
    return 0;
}

/* A string of lo..hi UTF-8 characters. */
static int put_text(enc *e, int idx, const field *f)
{
    lua_State *L = e->L;
    size_t len, chars;
    int cut;
    const char *s;
    if (lua_type(L, idx) != LUA_TSTRING)
        return fail(e, CODE_PARAM, "must be a string, got %s", type_name(L, idx));
    s = lua_tolstring(L, idx, &len);
    if (put_string(e, s, len, 0, &chars, &cut))
        return -1;
    if ((lua_Integer)chars < f->lo || (lua_Integer)chars > f->hi) {
        if (f->lo == f->hi || f->hi > 1000000)
            return fail(e, CODE_DATA, "must not be empty");
        return fail(e, CODE_DATA, "must be %lld to %lld characters long, got %lu",
                    (long long)f->lo, (long long)f->hi, (unsigned long)chars);
    }
    return 0;
}

/* appId: the pages say only "Yes, String"; an empty one is likely a mistake. */
static int put_app_id(enc *e, int idx, const field *f)
{
    size_t chars;
    int cut;
    const char *s;
    size_t len;
    (void)f;
    if (lua_type(e->L, idx) != LUA_TSTRING)
        return fail(e, CODE_PARAM, "must be a string, got %s", type_name(e->L, idx));
    s = lua_tolstring(e->L, idx, &len);
    if (put_string(e, s, len, 0, &chars, &cut))
        return -1;
    return chars == 0 ? warn(e, CODE_DATA, "is empty (the application ID from the console)") : 0;
}

static int put_int(enc *e, int idx, const field *f)
{
    lua_Integer v;
    if (get_integer(e, idx, f->lo, f->hi, &v) || reserve(e, 24))
        return -1;
    put_integer(e, (long long)v);
    return 0;
}

/* An Integer (32 bits, as the pages' type) whose lower bound f->lo is ours: the pages
 * state none (maxCalls gives only "Max 999"), so a value below it is a warning. */
static int put_count(enc *e, int idx, const field *f)
{
    lua_Integer v;
    if (get_integer(e, idx, -2147483647 - 1, f->hi, &v) || reserve(e, 24))
        return -1;
    put_integer(e, (long long)v);
    if (v < f->lo)
        return warn(e, CODE_DATA, "is %lld: the pages state no minimum, but below %lld is "
                    "likely a mistake", (long long)v, (long long)f->lo);
    return 0;
}

static int put_recall_type(enc *e, int idx, const field *f)
{
    lua_Integer v;
    (void)f;
    if (get_integer(e, idx, -2147483647 - 1, 2147483647, &v))
        return -1;
    if (v != 0 && v != 1 && v != 3)
        return fail(e, CODE_DATA,
                    "must be 0 (resend all), 1 (resend failed) or 3 (recall by intent), got %lld",
                    (long long)v);
    e->recall_type = v;
    e->have_type = 1;
    if (reserve(e, 24))
        return -1;
    put_integer(e, (long long)v);
    return 0;
}

static int put_recall_num(enc *e, int idx, const field *f)
{
    if (put_count(e, idx, f))
        return -1;
    e->recall_num = (lua_Integer)lua_tonumber(e->L, idx);
    e->have_num = 1;
    return 0;
}

static int in_range(const char *s, int a, int b, int lo, int hi)
{
    int v = 0, i;
    for (i = a; i < b; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v >= lo && v <= hi;
}

static int leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* "YYYY-MM-DD<sep>HH:MM:SS", a real calendar date and time. */
static int is_datetime(const char *s, size_t len, char sep)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m;
    if (!(len == 19 && s[4] == '-' && s[7] == '-' && s[10] == sep && s[13] == ':' &&
          s[16] == ':' && in_range(s, 0, 4, 1, 9999) && in_range(s, 5, 7, 1, 12) &&
          in_range(s, 11, 13, 0, 23) && in_range(s, 14, 16, 0, 59) && in_range(s, 17, 19, 0, 59)))
        return 0;
    y = atoi(s);
    m = (s[5] - '0') * 10 + (s[6] - '0');
    return in_range(s, 8, 10, 1, mdays[m - 1] + (m == 2 && leap(y)));
}

/* sendTime: the pages give the type (LocalDateTime: a JSON string), null for "call now",
 * and one example, "2026-04-01 00:00:00". Another shape (the ISO "T", a date that does not
 * exist) is not forbidden by them: written as given, with a warning. */
static int put_datetime(enc *e, int idx, const field *f)
{
    lua_State *L = e->L;
    size_t len, nc;
    int cut;
    const char *s;
    char shown[SHOWN_SIZE];
    (void)f;
    if (is_null(L, idx))
        return put_chars(e, "null", 4);
    if (lua_type(L, idx) != LUA_TSTRING)
        return fail(e, CODE_PARAM, "must be a string \"YYYY-MM-DD HH:MM:SS\", got %s",
                    type_name(L, idx));
    s = lua_tolstring(L, idx, &len);
    if (put_string(e, s, len, 0, &nc, &cut))
        return -1;
    if (is_datetime(s, len, ' '))
        return 0;
    show(shown, sizeof shown, s, len);
    if (is_datetime(s, len, 'T'))
        return warn(e, CODE_DATA, "is %s: the pages' example is \"2026-04-01 00:00:00\" (a "
                    "space, not \"T\")", shown);
    return warn(e, CODE_DATA, "is %s: the pages' example is a real date and time "
                "\"YYYY-MM-DD HH:MM:SS\"", shown);
}

/* "HH:MM" from 00:00 to 23:59. */
static int put_hhmm(enc *e, int idx, const field *f)
{
    lua_State *L = e->L;
    size_t len;
    const char *s;
    char shown[SHOWN_SIZE];
    (void)f;
    if (lua_type(L, idx) != LUA_TSTRING)
        return fail(e, CODE_PARAM, "must be a time \"HH:MM\", got %s", type_name(L, idx));
    s = lua_tolstring(L, idx, &len);
    if (len == 5 && s[2] == ':' && in_range(s, 0, 2, 0, 23) && in_range(s, 3, 5, 0, 59)) {
        if (reserve(e, 7))
            return -1;
        put_lit(e, "\"");
        put_raw(e, s, 5);
        put_lit(e, "\"");
        return 0;
    }
    show(shown, sizeof shown, s, len);
    return fail(e, CODE_DATA, "must be a time \"HH:MM\" from 00:00 to 23:59, got %s", shown);
}

/* A node's agentId: the table says Integer, the vendor's examples send "41". Both are
 * accepted and written as given. */
static int put_agent_ref(enc *e, int idx, const field *f)
{
    if (lua_type(e->L, idx) == LUA_TSTRING) {
        static const field digits = {"agentId", put_digits, 1, 1, 10, NULL, 0};
        return put_digits(e, idx, &digits);
    }
    if (lua_type(e->L, idx) != LUA_TNUMBER)
        return fail(e, CODE_PARAM, "must be an agent id (integer or string of digits), got %s",
                    type_name(e->L, idx));
    return put_count(e, idx, f);
}

/* Checks that t is a proper sequence 1..n and returns n. */
static int list_len(enc *e, int t, const char *what, size_t *n)
{
    lua_State *L = e->L;
    size_t len, count = 0;
    if (lua_type(L, t) != LUA_TTABLE)
        return fail(e, CODE_PARAM, "must be a list of %s, got %s", what, type_name(L, t));
    len = lf_rawlen(L, t);
    lua_pushnil(L);
    while (lua_next(L, t)) {
        int ok = lua_type(L, -2) == LUA_TNUMBER;
        if (ok) {
            lua_Number k = lua_tonumber(L, -2);
            ok = k >= 1 && k <= (lua_Number)len && k == floor(k);
        }
        if (!ok) {
            const char *tn = type_name(L, -2);
            lua_pop(L, 2);
            if (len == 0 && count == 0)
                return fail(e, CODE_PARAM, "must be a list of %s, got a table with a %s key",
                            what, tn);
            return fail(e, CODE_PARAM,
                        "must be a list of %s; it also has a %s key that is not a list index",
                        what, tn);
        }
        count++;
        lua_pop(L, 1);
    }
    if (count != len) /* a border with holes below it */
        return fail(e, CODE_PARAM, "must be a list of %s; entry %lu is missing (a hole)", what,
                    (unsigned long)first_hole(L, t, len));
    *n = len;
    return 0;
}

static int put_object(enc *e, int t, const field *fields, int nfields);

/* A list of objects described by f->sub, with lo..hi entries. */
static int put_object_list(enc *e, int idx, const field *f)
{
    lua_State *L = e->L;
    size_t n, i;
    if (list_len(e, idx, "objects", &n))
        return -1;
    if ((lua_Integer)n < f->lo || (lua_Integer)n > f->hi) {
        if (f->lo == 0)
            return fail(e, CODE_DATA, "must have at most %lld entries, got %lu",
                        (long long)f->hi, (unsigned long)n);
        return fail(e, CODE_DATA, "must have %lld to %lld entries, got %lu", (long long)f->lo,
                    (long long)f->hi, (unsigned long)n);
    }
    if (put_chars(e, "[", 1))
        return -1;
    for (i = 1; i <= n; i++) {
        if (i > 1 && put_chars(e, ",", 1))
            return -1;
        lua_rawgeti(L, idx, (lua_Integer)i);
        path_index(e, (lua_Integer)i);
        if (lua_type(L, -1) != LUA_TTABLE)
            return fail(e, CODE_PARAM, "must be an object, got %s", type_name(L, -1));
        if (put_object(e, lua_gettop(L), f->sub, f->nsub))
            return -1;
        path_pop(e);
        lua_pop(L, 1);
    }
    return put_chars(e, "]", 1);
}

static const field NODE[] = {
    {"agentId", put_agent_ref, 1, 1, 2147483647, NULL, 0},
};

static int put_nodes(enc *e, int idx, const field *f)
{
    field list = *f;
    size_t n;
    list.sub = NODE;
    list.nsub = 1;
    if (put_object_list(e, idx, &list))
        return -1;
    n = lf_rawlen(e->L, idx);
    e->node_count = n;
    e->have_nodes = 1;
    return 0;
}

/* recallIntent: a list of intent codes, each a non-empty string. */
static int put_intents(enc *e, int idx, const field *f)
{
    lua_State *L = e->L;
    size_t n, i, len, nc;
    int cut;
    (void)f;
    if (list_len(e, idx, "intent codes (strings such as \"99999\")", &n))
        return -1;
    if (put_chars(e, "[", 1))
        return -1;
    for (i = 1; i <= n; i++) {
        const char *s;
        lua_rawgeti(L, idx, (lua_Integer)i);
        path_index(e, (lua_Integer)i);
        if (lua_type(L, -1) != LUA_TSTRING)
            return fail(e, CODE_PARAM, "must be an intent code string such as \"99999\", got %s",
                        type_name(L, -1));
        s = lua_tolstring(L, -1, &len);
        if ((i > 1 && put_chars(e, ",", 1)) || put_string(e, s, len, 0, &nc, &cut))
            return -1;
        if (len == 0 && warn(e, CODE_DATA, "is empty (an intent code such as \"99999\")"))
            return -1;
        path_pop(e);
        lua_pop(L, 1);
    }
    e->intent_count = n;
    e->have_intents = 1;
    return put_chars(e, "]", 1);
}

/* required 2: the pages say "No", but a window without it is likely a mistake (a warning) */
static const field WINDOW[] = {
    {"strTime", put_hhmm, 2, 0, 0, NULL, 0},
    {"endTime", put_hhmm, 2, 0, 0, NULL, 0},
};

static const field RECALL[] = {
    {"recallType", put_recall_type, 1, 0, 0, NULL, 0},
    {"recallInterval", put_count, 1, 1, 2147483647, NULL, 0},
    {"recallNum", put_recall_num, 1, 1, 2147483647, NULL, 0},
    {"nodeList", put_nodes, 0, 0, 2147483647, NULL, 0}, /* absent: 0 nodes, see put_recall */
    {"recallIntent", put_intents, 0, 0, 0, NULL, 0},
};

static int put_recall(enc *e, int idx, const field *f)
{
    (void)f;
    if (lua_type(e->L, idx) != LUA_TTABLE)
        return fail(e, CODE_PARAM, "must be an object (see laaffic.recall), got %s",
                    type_name(e->L, idx));
    e->have_type = e->have_num = e->have_nodes = e->have_intents = 0;
    e->node_count = 0;
    lua_pushnil(e->L);
    if (!lua_next(e->L, idx)) /* {}: page B says "leave it empty to disable recall" */
        return put_chars(e, "{}", 2) ? -1 :
               warn(e, CODE_PARAM, "is empty: leave recallFlow out (or null) to disable recall; "
                    "whether the server reads {} so is not stated");
    lua_pop(e->L, 2);
    if (put_object(e, idx, RECALL, (int)(sizeof RECALL / sizeof RECALL[0])))
        return -1;
    if (e->node_count != (size_t)e->recall_num) {
        path_key(e, "nodeList", 8);
        return fail(e, CODE_PARAM,
                    "has %lu node(s) but recallNum is %lld: give one node per recall round",
                    (unsigned long)e->node_count, (long long)e->recall_num);
    }
    if (e->recall_type == 3 && (!e->have_intents || e->intent_count == 0)) {
        int r;
        path_key(e, "recallIntent", 12);
        r = warn(e, e->have_intents ? CODE_DATA : CODE_PARAM,
                 "lists no intent code although recallType is 3 (recall by intent): the pages "
                 "do not require it, but the recall may then never happen");
        if (r)
            return r; /* strict: the error names recallIntent */
        path_pop(e);
    }
    return 0;
}

static int put_numbers(enc *e, int idx, const field *f);
static int put_task_name(enc *e, int t, int first);

static const field TOP[] = {
    {"appId", put_app_id, 1, 0, 0, NULL, 0},
    {"taskName", put_text, 1, 2, 64, NULL, 0},
    {"displayNum", put_digits, 0, 0, 20, NULL, 0},
    {"maxCalls", put_count, 0, 1, 999, NULL, 0},
    {"maxRingingTime", put_int, 0, 10, 120, NULL, 0},
    {"agentId", put_count, 1, 1, 2147483647, NULL, 0},
    {"enableRecording", put_int, 0, 0, 1, NULL, 0},
    {"sendTime", put_datetime, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}, /* unknown fields go here */
    {"allowSendTime", put_object_list, 0, 0, 3, WINDOW, 2},
    {"numberInfoList", put_numbers, 1, 1, MAX_ROWS, NULL, 0},
    {"recallFlow", put_recall, 0, 0, 0, NULL, 0},
};

typedef struct rules {
    const field *fields;
    int n;
} rules;

/* A key_test: is k a name no rule of the object knows? */
static int unknown_field(const void *ctx, const char *k, size_t klen)
{
    const rules *r = (const rules *)ctx;
    int j;
    for (j = 0; j < r->n; j++)
        if (r->fields[j].name && strlen(r->fields[j].name) == klen &&
            memcmp(r->fields[j].name, k, klen) == 0)
            return 0;
    return 1;
}

/* Writes an object: the known fields in table order (a NULL name marks where the unknown
 * ones go; by default they go last), then or there the unknown ones sorted by name. */
static int put_object(enc *e, int t, const field *fields, int nfields)
{
    lua_State *L = e->L;
    size_t nunknown = 0, i;
    int j, first = 1, unknown_done = 0;
    kref *keys = NULL;
    rules r;

    r.fields = fields;
    r.n = nfields;
    if (!lua_checkstack(L, 8))
        return fail(e, CODE_PARAM, "is nested too deeply");
    if (enter(e, t))
        return -1;
    /* every key a name; count the ones no rule knows */
    lua_pushnil(L);
    while (lua_next(L, t)) {
        size_t klen;
        const char *k;
        if (lua_type(L, -2) != LUA_TSTRING) {
            const char *tn = type_name(L, -2);
            lua_pop(L, 2);
            return fail(e, CODE_PARAM, "must be an object with named fields, got a %s key", tn);
        }
        k = lua_tolstring(L, -2, &klen);
        nunknown += unknown_field(&r, k, klen);
        lua_pop(L, 1);
    }
    if (nunknown) {
        if ((keys = collect_keys(e, t, nunknown, unknown_field, &r)) == NULL)
            return -1;
    }
    if (put_chars(e, "{", 1))
        return -1;
    for (j = 0; j <= nfields; j++) {
        if (j == nfields || fields[j].name == NULL) {
            if (unknown_done)
                continue;
            unknown_done = 1;
            for (i = 0; i < nunknown; i++) {
                if ((!first && put_chars(e, ",", 1)) || put_member(e, t, &keys[i], 0))
                    return -1;
                first = 0;
            }
            continue;
        }
        if (fields == TOP && e->split && strcmp(fields[j].name, "taskName") == 0)
            continue; /* taskName: written last, see put_task_name */
        lua_pushstring(L, fields[j].name);
        lua_rawget(L, t);
        path_key(e, fields[j].name, strlen(fields[j].name));
        if (lua_isnil(L, -1) || (fields[j].required == 1 && is_null(L, -1))) {
            if (fields[j].required == 1)
                return fail(e, CODE_PARAM, "is required");
            if (fields[j].required == 2 && lua_isnil(L, -1) &&
                warn(e, CODE_PARAM, "is missing: the pages do not require it, but a window "
                     "needs both ends"))
                return -1;
        } else {
            size_t nlen = strlen(fields[j].name);
            if (reserve(e, nlen + 4))
                return -1;
            if (!first)
                put_lit(e, ",");
            first = 0;
            put_lit(e, "\"");
            put_raw(e, fields[j].name, nlen);
            put_lit(e, "\":");
            if (is_null(L, -1)) {
                if (put_chars(e, "null", 4))
                    return -1;
            } else if (fields[j].put(e, lua_gettop(L), &fields[j])) {
                return -1;
            }
        }
        path_pop(e);
        lua_pop(L, 1);
    }
    if (nunknown)
        lua_pop(L, 2); /* keys */
    if (fields == TOP && e->split && put_task_name(e, t, first))
        return -1;
    leave(e);
    return put_chars(e, "}", 1);
}

/* taskName of a part: the name as given when the whole list is one task, else the name
 * with "-part-N" added. Deterministic, so a re-run after a crash makes the same names and
 * the API's unique-name rule (-41) refuses the parts that were already created. */
static int put_task_name(enc *e, int t, int first)
{
    static const field NAME = {"taskName", put_text, 1, 2, 64, NULL, 0};
    lua_State *L = e->L;
    size_t len;
    const char *s;
    lua_pushliteral(L, "taskName");
    lua_rawget(L, t);
    path_key(e, "taskName", 8);
    if (lua_isnil(L, -1) || is_null(L, -1))
        return fail(e, CODE_PARAM, "is required");
    if (lua_type(L, -1) == LUA_TSTRING && (e->part > 1 || e->more)) {
        size_t i, chars = 0;
        char suffix[32];
        int sl = snprintf(suffix, sizeof suffix, "-part-%d", e->part);
        s = lua_tolstring(L, -1, &len);
        for (i = 0; i < len; i++)
            chars += ((unsigned char)s[i] & 0xC0) != 0x80;
        /* the name as given obeys the rule too: a split list must not make a 1-character
         * name valid that a one-part list refuses */
        if (chars < (size_t)NAME.lo)
            return fail(e, CODE_DATA, "must be %lld to %lld characters long, got %lu",
                        (long long)NAME.lo, (long long)NAME.hi, (unsigned long)chars);
        if (chars + (size_t)sl > (size_t)NAME.hi)
            return fail(e, CODE_DATA,
                        "is %lu characters, and the list is split into tasks named "
                        "\"<taskName>%s\" and so on, at most %d characters: shorten it to %d",
                        (unsigned long)chars, suffix, (int)NAME.hi, (int)NAME.hi - sl);
        lua_pushstring(L, suffix);
        lua_concat(L, 2);
    }
    if (reserve(e, 16))
        return -1;
    if (!first)
        put_lit(e, ",");
    put_lit(e, "\"taskName\":");
    if (put_text(e, lua_gettop(L), &NAME))
        return -1;
    s = lua_tolstring(L, -1, &len);
    if (len < sizeof e->task_name)
        memcpy(e->task_name, s, len + 1);
    path_pop(e);
    lua_pop(L, 1);
    return 0;
}

/* ---------------------------------------------------------------- numberInfoList rows */

enum { R_CALLEE = 0, R_TEXT1 = 1, R_NKEYS = 11 };

static const char *const ROW_KEYS[R_NKEYS] = {
    "calleeNumber", "text1", "text2", "text3", "text4", "text5",
    "text6",        "text7", "text8", "text9", "text10"};

static const unsigned char ROW_KLEN[R_NKEYS] = {12, 5, 5, 5, 5, 5, 5, 5, 5, 5, 6};

/* Row key names as they appear in the output, comma, quotes and colon included, padded
 * to 16 bytes so each is copied with one fixed-size move (the row reserve covers it). */
static const char ROW_OUT[R_NKEYS][16] = {
    "{\"calleeNumber\"", ",\"text1\":",  ",\"text2\":", ",\"text3\":",
    ",\"text4\":",       ",\"text5\":",  ",\"text6\":", ",\"text7\":",
    ",\"text8\":",       ",\"text9\":",  ",\"text10\":"};

typedef struct slot {
    const char *s;
    size_t len;
    int type; /* LUA_TSTRING, LUA_TNUMBER, or LUA_TLIGHTUSERDATA for null */
    int isint;
    lua_Number n;
    lua_Integer i;
} slot;

/* Identifies a row key: the interned key strings of this encode share their address with
 * the row's keys, so the common case is a pointer compare. */
static int row_key(const char *const *interned, const char *k, size_t klen)
{
    int j;
    for (j = 0; j < R_NKEYS; j++)
        if (k == interned[j])
            return j;
    for (j = 0; j < R_NKEYS; j++)
        if (ROW_KLEN[j] == klen && memcmp(ROW_KEYS[j], k, klen) == 0)
            return j;
    return -1;
}

static int row_fail(enc *e, int j, int code, const char *fmt, const char *arg)
{
    path_key(e, ROW_KEYS[j], ROW_KLEN[j]);
    return fail(e, code, fmt, arg);
}

/* Writes a text value: a string cut to 30 characters, or a number as its decimal text.
 * Past the 30th character nothing is read: a longer text is cut (or refused) whatever
 * its tail holds, since the tail is never sent. */
static int put_text_slot(enc *e, const slot *v)
{
    size_t chars, i;
    int cut;
    if (v->type == LUA_TSTRING) {
        const unsigned char *s = (const unsigned char *)v->s;
        /* fast path: short plain ASCII needs no escape, no UTF-8 check, no cut */
        if (v->len <= MAX_TEXT_CHARS) {
            unsigned char *o = (unsigned char *)e->b->data + e->b->len + 1;
            for (i = 0; i < v->len; i++) {
                if (cls[s[i]])
                    break;
                o[i] = s[i];
            }
            if (i == v->len) { /* the row reserve covers the quotes */
                o[-1] = '"';
                o[i] = '"';
                e->b->len += i + 2;
                return 0;
            }
        }
        if (put_string(e, v->s, v->len, MAX_TEXT_CHARS, &chars, &cut))
            return -1;
        if (cut) {
            if (!e->truncate)
                return fail(e, CODE_DATA, "must be at most %d characters, got more (%lu bytes)",
                            MAX_TEXT_CHARS, (unsigned long)v->len);
            e->truncated++;
        }
        return 0;
    }
    if (v->type == LUA_TLIGHTUSERDATA)
        return put_chars(e, "null", 4);
    {
        char tmp[48];
        int n;
        if (v->isint) {
            n = snprintf(tmp, sizeof tmp, "\"%lld\"", (long long)v->i);
        } else {
            double d = (double)v->n;
            if (d != d || d == HUGE_VAL || d == -HUGE_VAL)
                return fail(e, CODE_DATA, "must be a string, got %s",
                            d != d ? "NaN" : "infinity");
            if (d == floor(d) && fabs(d) < 1e15)
                n = snprintf(tmp, sizeof tmp, "\"%lld\"", (long long)d);
            else
                n = snprintf(tmp, sizeof tmp, "\"%.14g\"", d);
        }
        return put_chars(e, tmp, (size_t)n);
    }
}

/* A key_test: is k a name other than calleeNumber and text1..text10? */
static int unknown_row_key(const void *interned, const char *k, size_t klen)
{
    return row_key((const char *const *)interned, k, klen) < 0;
}

/* Passes a row's unknown fields through, sorted by name. Rare, so not tuned. */
static int put_row_unknown(enc *e, int row, const char *const *interned)
{
    lua_State *L = e->L;
    size_t n = 0, i;
    kref *keys;
    lua_pushnil(L);
    while (lua_next(L, row)) {
        size_t klen;
        const char *k;
        if (lua_type(L, -2) != LUA_TSTRING) { /* put_row's pass saw only names */
            lua_pop(L, 2);
            return fail(e, CODE_PARAM, "changed while it was encoded (by a finalizer?)");
        }
        k = lua_tolstring(L, -2, &klen);
        n += row_key(interned, k, klen) < 0;
        lua_pop(L, 1);
    }
    if ((keys = collect_keys(e, row, n, unknown_row_key, interned)) == NULL)
        return -1;
    for (i = 0; i < n; i++) {
        if (put_chars(e, ",", 1) || put_member(e, row, &keys[i], 0))
            return -1;
    }
    lua_pop(L, 2);
    return 0;
}

/* Output bytes to reserve for a string slot (the reserve covers short strings whole; a
 * long one reserves its own windows in put_string). */
static size_t string_need(size_t len)
{
    return (len > 4 * MAX_TEXT_CHARS ? 4 * MAX_TEXT_CHARS : len) * 6 + 24;
}

/* Writes a row from its slots: {"calleeNumber":"...","text1":"..." with no closing brace
 * (a table row may add unknown fields). `present` has bit j set for each slot j. */
static int put_slots(enc *e, const slot *v, unsigned present, size_t need)
{
    unsigned missing;
    int j;
    size_t i, len;
    const char *cn;
    char shown[SHOWN_SIZE];

    if (!(present & 1u))
        return row_fail(e, R_CALLEE, CODE_PARAM, "is required%s", "");
    missing = e->require_texts & ~present;
    if (missing) {
        for (j = 1; !((missing >> j) & 1u); j++)
            ;
        return row_fail(e, j, CODE_PARAM,
                        "is required (opts.require_texts: the agent's template uses it)%s", "");
    }
    /* calleeNumber: 6 to 18 digits, which need no escaping */
    if (reserve(e, need))
        return -1;
    cn = v[R_CALLEE].s;
    len = v[R_CALLEE].len;
    {
        char *o = e->b->data + e->b->len;
        memcpy(o, ROW_OUT[R_CALLEE], 16);
        o[15] = ':';
        o[16] = '"';
        o += 17;
        for (i = 0; i < len && i < 18; i++) {
            if ((unsigned char)(cn[i] - '0') > 9)
                break;
            o[i] = cn[i];
        }
        if (i < len || len < 6) {
            show(shown, sizeof shown, cn, len);
            return row_fail(e, R_CALLEE, CODE_DATA,
                            "must be 6 to 18 digits (country code + number), got %s", shown);
        }
        o[len] = '"';
        e->b->len += 17 + len + 1;
    }
    for (j = 1; j < R_NKEYS; j++) {
        if (!((present >> j) & 1u))
            continue;
        if (((e->require_texts >> j) & 1u) && v[j].type == LUA_TLIGHTUSERDATA)
            return row_fail(e, j, CODE_PARAM,
                            "is required (opts.require_texts: the agent's template uses it), got null%s",
                            "");
        if (((e->require_texts >> j) & 1u) && v[j].type == LUA_TSTRING && v[j].len == 0)
            return row_fail(e, j, CODE_DATA,
                            "must not be empty (opts.require_texts: the agent's template uses it)%s",
                            "");
        memcpy(e->b->data + e->b->len, ROW_OUT[j], 16);
        e->b->len += ROW_KLEN[j] + 4u;
        if (put_text_slot(e, &v[j])) {
            path_key(e, ROW_KEYS[j], ROW_KLEN[j]);
            return -1;
        }
    }
    return 0;
}

/* One numberInfoList entry from a table. The caller has pushed the row's index on the
 * path. */
static int put_row(enc *e, int row, const char *const *interned)
{
    lua_State *L = e->L;
    slot v[R_NKEYS];
    unsigned present = 0;
    int j, unknown = 0;
    size_t need = 64;

    if (lua_type(L, row) != LUA_TTABLE)
        return fail(e, CODE_PARAM, "must be an object with a calleeNumber, got %s",
                    type_name(L, row));
    /* one pass: pick out the known fields */
    lua_pushnil(L);
    while (lua_next(L, row)) {
        size_t klen;
        const char *k;
        int vt;
        if (lua_type(L, -2) != LUA_TSTRING) {
            const char *tn = type_name(L, -2);
            lua_pop(L, 2);
            return fail(e, CODE_PARAM, "must be an object with named fields, got a %s key", tn);
        }
        k = lua_tolstring(L, -2, &klen);
        j = row_key(interned, k, klen);
        if (j < 0) {
            unknown = 1;
            lua_pop(L, 1);
            continue;
        }
        vt = lua_type(L, -1);
        v[j].type = vt;
        if (vt == LUA_TSTRING) {
            v[j].s = lua_tolstring(L, -1, &v[j].len);
            need += string_need(v[j].len);
        } else if (j == R_CALLEE) {
            const char *tn = type_name(L, -1);
            lua_pop(L, 2);
            return row_fail(e, j, CODE_PARAM,
                            "must be a string of 6 to 18 digits (country code + number), got %s",
                            tn);
        } else if (vt == LUA_TNUMBER) {
            v[j].isint = lf_isinteger(L, -1);
            if (v[j].isint)
                v[j].i = lua_tointeger(L, -1);
            v[j].n = lua_tonumber(L, -1);
            need += 64;
        } else if (is_null(L, -1)) {
            v[j].type = LUA_TLIGHTUSERDATA;
            need += 24;
        } else {
            const char *tn = type_name(L, -1);
            lua_pop(L, 2);
            return row_fail(e, j, CODE_PARAM, "must be a string, got %s", tn);
        }
        present |= 1u << j;
        lua_pop(L, 1);
    }
    if (put_slots(e, v, present, need))
        return -1;
    if (unknown && put_row_unknown(e, row, interned))
        return -1;
    return put_chars(e, "}", 1);
}

/* ---------------------------------------------------------------- LuaJIT row walker
 *
 * On LuaJIT, walking a 200k-row list through lua_next costs more than all the rest of
 * the encode (bench/floor.c measures it), while compiled Lua code reads the same tables
 * several times faster. So there the rows are walked by the Lua module laaffic.jit_rows,
 * which hands each plain row (every key calleeNumber or text1..text10, every value a
 * string, or a number for a text) to jit_row below through the FFI. jit_row validates and writes it with the
 * same put_slots as every other path. Any other row, and any row jit_row refuses, goes
 * back to put_row: every error message, reject and pass-through field comes from the
 * one C path, and jit_row leaves no trace of a row it refuses. jit_row touches no Lua
 * state (the FFI call forbids it): only the encoder state and its buffer. */

typedef struct lf_rows_api {
    int (*row)(void *e, unsigned present, unsigned numbers, const char *const *s,
               const size_t *len, const double *num);
} lf_rows_api;

/* Writes one row, with its leading comma and closing brace: field j is present when bit j
 * of `present` is set, a number (num[j]) when bit j of `numbers` is also set, else a
 * string (s[j], len[j]). 0, or -1 with the encoder as it was before the call. */
static int jit_row(void *ep, unsigned present, unsigned numbers, const char *const *s,
                   const size_t *len, const double *num)
{
    enc *e = (enc *)ep;
    slot v[R_NKEYS];
    size_t need = 64, mark = e->b->len, trunc = e->truncated;
    int j, depth = e->depth, fatal = e->fatal;

    /* a number calleeNumber is an error put_row words */
    if (e->walk_left == 0 || (numbers & 1u) || (numbers & ~present))
        return -1;
    for (j = 0; j < R_NKEYS; j++) {
        if ((numbers >> j) & 1u) {
            v[j].type = LUA_TNUMBER;
            v[j].isint = 0; /* LuaJIT: doubles only, as lf_isinteger says */
            v[j].n = (lua_Number)num[j];
            need += 64;
        } else if ((present >> j) & 1u) {
            v[j].type = LUA_TSTRING;
            v[j].s = s[j];
            v[j].len = len[j];
            need += string_need(len[j]);
        }
    }
    if ((e->rows == 0 || put_chars(e, ",", 1) == 0) && put_slots(e, v, present, need) == 0 &&
        put_chars(e, "}", 1) == 0) {
        e->rows++;
        e->walk_left--;
        e->walked++;
        return 0;
    }
    e->b->len = mark;
    e->truncated = trunc;
    e->depth = depth;
    e->fatal = fatal;
    return -1;
}

static const lf_rows_api ROWS_API = {jit_row};

/* After a walk that wrote fewer than WALK_MIN rows, the next WALK_PAUSE rows go through
 * put_row before the walker is tried again. */
enum { WALK_MIN = 8, WALK_PAUSE = 64 };

/* registry[&WALKER_KEY]: the walker function; false when there is none or it is off */
static const char WALKER_KEY = 'w';

/* Pushes the walker, loading laaffic.jit_rows the first time (LuaJIT only: the module
 * returns nil elsewhere); returns 0 and pushes nothing when there is none. */
static int push_walker(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&WALKER_KEY);
    lua_rawget(L, LUA_REGISTRYINDEX);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushlightuserdata(L, (void *)&WALKER_KEY);
        lua_getglobal(L, "require");
        lua_pushliteral(L, "laaffic.jit_rows");
        if (lua_pcall(L, 1, 1, 0) != 0 || lua_type(L, -1) != LUA_TFUNCTION) {
            lua_pop(L, 1);
            lua_pushboolean(L, 0);
        }
        lua_pushvalue(L, -1);
        lua_insert(L, -3);
        lua_rawset(L, LUA_REGISTRYINDEX);
    }
    if (lua_type(L, -1) == LUA_TFUNCTION)
        return 1;
    lua_pop(L, 1);
    return 0;
}

/* Lets the walker write rows i..last of the list at idx; returns the first row it did not
 * write (last + 1 when it wrote them all, i when there is no walker). The walker writes
 * rows in order from i and stops at the first it cannot, so the count jit_row kept says
 * where to go on, whatever the walker returns or raises. */
static size_t walk_rows(enc *e, int idx, size_t i, size_t last)
{
    lua_State *L = e->L;
    int top = lua_gettop(L);
    if (!lua_checkstack(L, 8) || !push_walker(L))
        return i;
    lua_pushvalue(L, idx);
    lua_pushnumber(L, (lua_Number)i);
    lua_pushnumber(L, (lua_Number)last);
    lua_pushlightuserdata(L, e);
    lua_pushlightuserdata(L, (void *)&ROWS_API);
    e->walk_left = last - i + 1;
    e->walked = 0;
    (void)lua_pcall(L, 5, 0, 0); /* an error's message is dropped: the rows go on in C */
    lua_settop(L, top);
    e->walk_left = 0;
    return i + e->walked;
}

/* core.jit_rows([on]) -> whether rows are walked by laaffic.jit_rows (LuaJIT). With an
 * argument, switches it on or off first (for comparisons; on by default). */
static int l_jit_rows(lua_State *L)
{
    if (!lua_isnoneornil(L, 1)) {
        lua_pushlightuserdata(L, (void *)&WALKER_KEY);
        if (lua_toboolean(L, 1))
            lua_pushnil(L); /* found again by the next push_walker */
        else
            lua_pushboolean(L, 0);
        lua_rawset(L, LUA_REGISTRYINDEX);
    }
    if (push_walker(L)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    } else {
        lua_pushboolean(L, 0);
    }
    return 1;
}

/* The row key a failed row named (the path's last key), or -1 (no field: out of memory,
 * or a fault of the row as a whole). */
static int failed_key(const enc *e, int depth)
{
    int j;
    if (e->depth <= depth || e->path[e->depth - 1].key == NULL)
        return -1;
    for (j = 0; j < R_NKEYS; j++)
        if (e->path[e->depth - 1].key == ROW_KEYS[j])
            return j;
    return -1;
}

/* Appends { index | line, column, field, message, code } to opts.rejects, or fails when
 * there are more than opts.max_rejects. field NULL: the encoder's path (a table row). */
static int add_reject(enc *e, lua_Integer index, long line, int col, const char *fname)
{
    lua_State *L = e->L;
    if (e->rejected >= e->max_rejects) {
        char last[sizeof e->msg];
        memcpy(last, e->msg, sizeof last);
        e->fatal = 1;
        return fail(e, CODE_DATA, "more than %lu rows were rejected (opts.max_rejects); the "
                    "last: %.400s", (unsigned long)e->max_rejects, last);
    }
    if (!lua_checkstack(L, 4) && (e->fatal = 1))
        return fail(e, CODE_PARAM, "is nested too deeply");
    lua_createtable(L, 0, 5);
    if (index > 0) {
        lua_pushinteger(L, index);
        lua_setfield(L, -2, "index");
    }
    if (line > 0) {
        lua_pushinteger(L, (lua_Integer)line);
        lua_setfield(L, -2, "line");
    }
    if (col > 0) {
        lua_pushinteger(L, (lua_Integer)col);
        lua_setfield(L, -2, "column");
    }
    if (fname)
        lua_pushstring(L, fname);
    else
        path_push(L, e);
    lua_setfield(L, -2, "field");
    lua_pushstring(L, e->msg);
    lua_setfield(L, -2, "message");
    lua_pushinteger(L, e->code);
    lua_setfield(L, -2, "code");
    lua_rawseti(L, e->rejects, (lua_Integer)(lf_rawlen(L, e->rejects) + 1));
    e->rejected++;
    return 0;
}

static int no_rows(enc *e)
{
    if (e->rejected || e->duplicates)
        return fail(e, CODE_DATA, "has no valid entries (%lu rejected, %lu duplicates)",
                    (unsigned long)e->rejected, (unsigned long)e->duplicates);
    return fail(e, CODE_DATA, "must have 1 to %d entries, got 0", MAX_ROWS);
}

static int put_csv_numbers(enc *e, lf_csv *c);

static int put_numbers(enc *e, int idx, const field *f)
{
    lua_State *L = e->L;
    const char *interned[R_NKEYS];
    size_t n, i, first = 1, last, max = e->max_rows, walk_from = 0;
    int j, base, walker;
    lf_csv *c = lf_csv_test(L, idx);

    (void)f;
    if (c != NULL)
        return put_csv_numbers(e, c);
    if (list_len(e, idx, "objects with a calleeNumber", &n))
        return -1;
    if (e->part) {
        first = (size_t)(e->part - 1) * max + 1;
        if (n == 0 || first > n)
            return fail(e, CODE_DATA, "has %lu entries, so there is no part %d (of %lu entries "
                        "each)", (unsigned long)n, e->part, (unsigned long)max);
        last = n - first + 1 > max ? first + max - 1 : n;
        e->more = last < n;
    } else {
        if (n > max)
            return fail(e, CODE_DATA,
                        "must have 1 to %lu entries, got %lu: split the list into several "
                        "tasks (client:create_tasks does)",
                        (unsigned long)max, (unsigned long)n);
        if (n == 0) /* the pages give a maximum only */
            return put_chars(e, "[]", 2) ? -1 : warn(e, CODE_DATA, "is empty: no number to call");
        last = n;
    }
    /* intern the row keys once; they stay on the stack, so their addresses stay valid */
    if (!lua_checkstack(L, R_NKEYS + 8))
        return fail(e, CODE_PARAM, "is nested too deeply");
    base = lua_gettop(L);
    for (j = 0; j < R_NKEYS; j++) {
        lua_pushstring(L, ROW_KEYS[j]);
        interned[j] = lua_tostring(L, -1);
    }
    e->rows_total = last - first + 1;
    e->rows = 0;
    e->list_start = e->b->len;
    if (put_chars(e, "[", 1))
        return -1;
    walker = push_walker(L);
    if (walker)
        lua_pop(L, 1);
    for (i = first; i <= last; i++) {
        size_t mark, trunc;
        int depth, nopen;
        if (walker && i >= walk_from) { /* the plain rows from i on, on LuaJIT */
            size_t from = i;
            i = walk_rows(e, idx, i, last);
            if (i > last)
                break;
            /* a list of rows that are seldom plain: not a walker call per row */
            if (i - from < WALK_MIN)
                walk_from = i + WALK_PAUSE;
        }
        mark = e->b->len;
        trunc = e->truncated;
        depth = e->depth;
        nopen = e->nopen;
        lua_rawgeti(L, idx, (lua_Integer)i);
        path_index(e, (lua_Integer)i);
        if ((e->rows > 0 && put_chars(e, ",", 1)) || put_row(e, lua_gettop(L), interned)) {
            if (!e->rejects || e->fatal)
                return -1;
            e->b->len = mark;
            e->truncated = trunc;
            if (add_reject(e, (lua_Integer)i, 0, 0, NULL))
                return -1;
            e->depth = depth;
            e->nopen = nopen;
            lua_settop(L, base + R_NKEYS);
            continue;
        }
        path_pop(e);
        lua_pop(L, 1);
        e->rows++;
    }
    lua_settop(L, base);
    if (e->rows == 0)
        return no_rows(e);
    e->rows_total = e->rows;
    return put_chars(e, "]", 1);
}

/* ---------------------------------------------------------------- numberInfoList from CSV */

/* Fails with the message located in the file: "list.csv:12:3: calleeNumber: ...". */
static int csv_fail(enc *e, lf_csv *c, long line, int col, int j)
{
    char msg[sizeof e->msg];
    memcpy(msg, e->msg, sizeof msg);
    if (j >= 0 && col > 0)
        snprintf(e->msg, sizeof e->msg, "%.200s:%ld:%d: %s: %.300s", c->name, line, col, ROW_KEYS[j],
                 msg);
    else if (j >= 0)
        snprintf(e->msg, sizeof e->msg, "%.200s:%ld: %s: %.300s", c->name, line, ROW_KEYS[j], msg);
    else if (col > 0)
        snprintf(e->msg, sizeof e->msg, "%.200s:%ld:%d: %.300s", c->name, line, col, msg);
    else
        snprintf(e->msg, sizeof e->msg, "%.200s:%ld: %.300s", c->name, line, msg);
    e->located = 1;
    e->err_line = line;
    e->err_col = col;
    e->err_field = j >= 0 ? ROW_KEYS[j] : NULL;
    return -1;
}

/* Strips spaces, tabs, '+' and '-' from a number into out (at most outsz bytes). */
static size_t normalize_number(const char *s, size_t n, char *out, size_t outsz)
{
    size_t i, o = 0;
    for (i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == ' ' || ch == '\t' || ch == '+' || ch == '-')
            continue;
        if (o == outsz)
            return (size_t)-1;
        out[o++] = ch;
    }
    return o;
}

static int all_digits(const char *s, size_t n)
{
    size_t i;
    if (n < 6 || n > 18)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)(s[i] - '0') > 9)
            return 0;
    return 1;
}

/* numberInfoList from a CSV reader: the next part of it, at most max_rows rows. After
 * max_rows rows the next valid row is read, found valid, and given back to the reader
 * (e->more = 1), so the part knows whether another follows. */
static int put_csv_numbers(enc *e, lf_csv *c)
{
    slot v[R_NKEYS];
    char num[32];
    size_t max = e->max_rows;
    unsigned long long from = c->base + c->pos;

    if (c->closed)
        return fail(e, CODE_PARAM, "the CSV source is closed");
    c->parts++;
    e->part = c->parts;
    e->csv = c;
    e->csv_from = from;
    e->rows = 0;
    e->rows_total = 0;
    e->list_start = e->b->len;
    memset(v, 0, sizeof v);
    if (put_chars(e, "[", 1))
        return -1;
    for (;;) {
        size_t mark = e->b->len, trunc = e->truncated, need = 64;
        unsigned present = 0;
        int r, j, depth = e->depth;

        r = lf_csv_next(c);
        if (r == 0)
            break;
        if (r < 0) {
            snprintf(e->msg, sizeof e->msg, "%s", c->err);
            e->code = CODE_DATA;
            if (r == -1 || !e->rejects)
                return csv_fail(e, c, c->err_line, c->err_col, -1);
            if (add_reject(e, 0, c->err_line, c->err_col, "record"))
                return -1;
            c->rejected++;
            continue;
        }
        for (j = 0; j < R_NKEYS; j++) {
            int col = c->map[j];
            const lf_csv_field *fd;
            if (col < 0 || col >= (int)c->nf)
                continue;
            fd = &c->f[col];
            if (fd->len == 0 && (j > 0 || !fd->quoted))
                continue; /* an empty cell is a missing value */
            v[j].type = LUA_TSTRING;
            v[j].s = fd->s ? fd->s : "";
            v[j].len = fd->len;
            need += (fd->len > 4 * MAX_TEXT_CHARS ? 4 * MAX_TEXT_CHARS : fd->len) * 6 + 24;
            present |= 1u << j;
        }
        if ((present & 1u) && c->normalize) {
            size_t n = normalize_number(v[0].s, v[0].len, num, sizeof num);
            if (n != (size_t)-1) {
                v[0].s = num;
                v[0].len = n;
            }
        }
        if ((present & 1u) && c->dedupe && all_digits(v[0].s, v[0].len)) {
            int seen = lf_csv_seen(c, v[0].s, v[0].len, 0);
            if (seen < 0)
                return fail(e, CODE_DATA, "out of memory remembering numbers for opts.dedupe");
            if (seen) {
                c->duplicates++;
                e->duplicates++;
                continue;
            }
        }
        if ((e->rows == 0 || put_chars(e, ",", 1) == 0) && put_slots(e, v, present, need) == 0 &&
            put_chars(e, "}", 1) == 0) {
            if (e->rows == max) { /* one past the part: give it back */
                e->b->len = mark;
                e->truncated = trunc;
                lf_csv_unread(c);
                e->more = 1;
                break;
            }
            if (c->dedupe && lf_csv_seen(c, v[0].s, v[0].len, 1) < 0)
                return fail(e, CODE_DATA, "out of memory remembering numbers for opts.dedupe");
            e->rows++;
            c->rows++;
            if ((e->rows & 1023) == 0 && c->size) {
                /* extrapolate the part's size for the buffer (see grow) */
                unsigned long long at = c->base + c->pos;
                double per = (double)(at - from) / (double)e->rows;
                double left = per > 0 ? (double)(c->size > at ? c->size - at : 0) / per : 0;
                double total = (double)e->rows + left;
                e->rows_total = total > (double)max ? max : (size_t)total;
            }
            continue;
        }
        /* the row failed */
        if (e->fatal)
            return -1;
        j = failed_key(e, depth);
        e->depth = depth;
        {
            int col = j >= 0 ? c->map[j] : -1;
            long line = col >= 0 && col < (int)c->nf ? c->f[col].line : c->rec_line;
            e->b->len = mark;
            e->truncated = trunc;
            if (!e->rejects)
                return csv_fail(e, c, line, col + 1, j);
            if (add_reject(e, 0, line, col + 1, j >= 0 ? ROW_KEYS[j] : "record"))
                return -1;
            c->rejected++;
        }
    }
    if (e->rows == 0) {
        if (c->parts > 1 && !e->rejected && !e->duplicates)
            return fail(e, CODE_DATA, "%.300s has no rows left: its %d part(s) were all read",
                        c->name, c->parts - 1);
        no_rows(e);
        snprintf(e->msg + strlen(e->msg), sizeof e->msg - strlen(e->msg), " in %.300s", c->name);
        return -1;
    }
    e->rows_total = e->rows;
    return put_chars(e, "]", 1);
}

/* ---------------------------------------------------------------- entry points */

/* t[name] without metamethods: a task or options table with an __index that raises
 * must not make the encoder raise */
static void raw_field(lua_State *L, int t, const char *name)
{
    lua_pushstring(L, name);
    lua_rawget(L, t);
}

static lua_Integer opt_int(lua_State *L, int idx, const char *name, lua_Integer def,
                           lua_Integer lo, lua_Integer hi)
{
    lua_Integer v = def;
    raw_field(L, idx, name);
    if (!lua_isnil(L, -1)) {
        lua_Number n = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || n != floor(n) || n < (lua_Number)lo ||
            n > (lua_Number)hi)
            luaL_argerror(L, idx, lua_pushfstring(L, "opts.%s must be an integer from %d to %d",
                                                  name, (int)lo, (int)hi));
        v = (lua_Integer)n;
    }
    lua_pop(L, 1);
    return v;
}

static void read_opts(lua_State *L, int idx, enc *e)
{
    e->require_texts = 0;
    e->truncate = 1;
    e->max_rows = MAX_ROWS;
    if (lua_isnoneornil(L, idx))
        return;
    luaL_checktype(L, idx, LUA_TTABLE);
    e->max_rows = (size_t)opt_int(L, idx, "max_rows", MAX_ROWS, 1, MAX_ROWS);
    e->part = (int)opt_int(L, idx, "part", 0, 1, 1000000);
    e->max_rejects = (size_t)opt_int(L, idx, "max_rejects", 1000, 0, 100000000);
    raw_field(L, idx, "require_texts");
    if (!lua_isnil(L, -1)) {
        size_t n, i;
        luaL_argcheck(L, lua_type(L, -1) == LUA_TTABLE, idx,
                      "opts.require_texts must be a list of text numbers 1 to 10");
        n = lf_rawlen(L, -1);
        for (i = 1; i <= n; i++) {
            lua_Number k;
            lua_rawgeti(L, -1, (lua_Integer)i);
            k = lua_tonumber(L, -1);
            luaL_argcheck(L, lua_type(L, -1) == LUA_TNUMBER && k >= 1 && k <= 10 && k == floor(k),
                          idx, "opts.require_texts must be a list of text numbers 1 to 10");
            e->require_texts |= 1u << (int)k;
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    raw_field(L, idx, "truncate");
    if (!lua_isnil(L, -1)) {
        luaL_argcheck(L, lua_type(L, -1) == LUA_TBOOLEAN, idx, "opts.truncate must be a boolean");
        e->truncate = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    raw_field(L, idx, "strict");
    if (!lua_isnil(L, -1)) {
        luaL_argcheck(L, lua_type(L, -1) == LUA_TBOOLEAN, idx, "opts.strict must be a boolean");
        e->strict = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    raw_field(L, idx, "rejects");
    if (!lua_isnil(L, -1))
        luaL_argcheck(L, lua_type(L, -1) == LUA_TTABLE, idx,
                      "opts.rejects must be a table (bad rows are appended to it)");
    lua_pop(L, 1);
}

/* Runs the encode with the body userdata at `bodyidx`. Returns 0, or pushes
 * nil, message, field, code and returns 4. */
static int run(lua_State *L, enc *e, int bodyidx)
{
    int top;
    (void)bodyidx;
    /* opts.rejects, at a fixed stack slot for the whole encode */
    if (lua_istable(L, 2))
        raw_field(L, 2, "rejects");
    else
        lua_pushnil(L);
    e->rejects = lua_istable(L, -1) ? lua_gettop(L) : 0;
    lua_newtable(L);
    e->warnings = lua_gettop(L);
    /* the list comes from a CSV source, or is one part of a longer list: taskName is
     * written last, once we know whether another part follows */
    raw_field(L, 1, "numberInfoList");
    e->split = e->part > 0 || lf_csv_test(L, -1) != NULL;
    lua_pop(L, 1);
    top = lua_gettop(L);
    if (put_object(e, 1, TOP, (int)(sizeof TOP / sizeof TOP[0]))) {
        lf_body_free(e->b);
        lua_settop(L, top);
        lua_pushnil(L);
        if (e->located) {
            lua_pushstring(L, e->msg);
            if (e->err_field)
                lua_pushstring(L, e->err_field);
            else
                lua_pushnil(L);
            lua_pushinteger(L, e->code);
            lua_createtable(L, 0, 3);
            lua_pushstring(L, e->csv->name);
            lua_setfield(L, -2, "file");
            lua_pushinteger(L, (lua_Integer)e->err_line);
            lua_setfield(L, -2, "line");
            if (e->err_col > 0) {
                lua_pushinteger(L, (lua_Integer)e->err_col);
                lua_setfield(L, -2, "column");
            }
            return 5;
        }
        path_push(L, e);
        lua_pushfstring(L, "%s: %s", lua_tostring(L, -1), e->msg);
        lua_insert(L, -2);
        lua_pushinteger(L, e->code);
        return 4;
    }
    lua_settop(L, top);
    return 0;
}

static void push_info(lua_State *L, const enc *e)
{
    lua_createtable(L, 0, 10);
    lua_pushvalue(L, e->warnings);
    lua_setfield(L, -2, "warnings");
    lua_pushinteger(L, (lua_Integer)e->rows_total);
    lua_setfield(L, -2, "rows");
    lua_pushinteger(L, (lua_Integer)e->truncated);
    lua_setfield(L, -2, "truncated");
    lua_pushinteger(L, (lua_Integer)e->b->len);
    lua_setfield(L, -2, "bytes");
    if (e->rejects || e->csv) {
        lua_pushinteger(L, (lua_Integer)e->rejected);
        lua_setfield(L, -2, "rejected");
    }
    if (e->split) {
        lua_pushinteger(L, (lua_Integer)e->part);
        lua_setfield(L, -2, "part");
        lua_pushboolean(L, e->more);
        lua_setfield(L, -2, "more");
    }
    if (e->task_name[0]) {
        lua_pushstring(L, e->task_name);
        lua_setfield(L, -2, "task_name");
    }
    if (e->csv) {
        lua_pushinteger(L, (lua_Integer)e->duplicates);
        lua_setfield(L, -2, "duplicates");
        lua_pushinteger(L, (lua_Integer)e->csv->line);
        lua_setfield(L, -2, "line");
    }
}

static enc *enc_new(lua_State *L)
{
    enc *e;
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    e = (enc *)lua_newuserdata(L, sizeof *e); /* 3: state, GC-owned */
    memset(e, 0, sizeof *e);
    e->L = L;
    read_opts(L, 2, e);
    e->b = lf_body_new(L); /* 4: body */
    return e;
}

/* core.encode(task [, opts]) -> json, info | nil, message, field, code */
static int l_encode(lua_State *L)
{
    enc *e = enc_new(L);
    int r = run(L, e, 4);
    if (r)
        return r;
    lua_pushlstring(L, e->b->data, e->b->len);
    push_info(L, e);
    lf_body_free(e->b); /* now, not at the next GC cycle */
    return 2;
}

/* core.encode_body(task [, opts]) -> body, info | nil, message, field, code */
static int l_encode_body(lua_State *L)
{
    enc *e = enc_new(L);
    int r = run(L, e, 4);
    if (r)
        return r;
    if (e->b->cap > e->b->len) { /* give the slack back */
        char *p = (char *)realloc(e->b->data, e->b->len ? e->b->len : 1);
        if (p) {
            e->b->data = p;
            e->b->cap = e->b->len ? e->b->len : 1;
        }
    }
    lua_pushvalue(L, 4);
    push_info(L, e);
    return 2;
}

int laaffic_encode_open(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"encode", l_encode}, {"encode_body", l_encode_body}, {"jit_rows", l_jit_rows},
        {NULL, NULL}};
    cls_init();
    lf_body_open(L);
    lf_setfuncs(L, funcs, 0);
    lua_pushinteger(L, MAX_ROWS);
    lua_setfield(L, -2, "MAX_ROWS");
    lua_pushinteger(L, MAX_TEXT_CHARS);
    lua_setfield(L, -2, "MAX_TEXT_CHARS");
    return 0;
}
