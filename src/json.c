/* json.c - the JSON writer: strings checked as UTF-8 and escaped through a byte-class
 * table, integers and shortest round-trip floats, and any Lua value for the fields laaffic
 * passes through as they are (objects with their keys sorted, so a body is the same from
 * run to run). It writes into the encoder's body (enc.h); errors travel back as -1. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "enc.h"

#define MAX_PASS_TABLES 1000000 /* tables in unknown fields, in all */

/* A short, printable rendering of a string value for error messages: its first 24
 * bytes in quotes, others as \xHH. SHOWN_SIZE holds the longest. */
void show(char *out, size_t outsz, const char *s, size_t len)
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

const char *type_name(lua_State *L, int idx)
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

#define LF_ESTIMATE_MAX (64.0 * 1024 * 1024) /* the most extrapolated at once */

int lf_grow(enc *e, size_t need)
{
    lf_buf *b = e->b;
    size_t want = b->len + need, cap;
    if (want < b->len && (e->fatal = 1))
        return fail(e, CODE_DATA, "the request body would be too large");
    cap = b->cap ? b->cap + b->cap / 2 : 4096;
    /* Inside numberInfoList, extrapolate from the rows so far, so a 200k-row list is
     * allocated about once (a realloc of a large heap block copies it: twice the body at
     * the peak) and the final slack stays small. At most twice what is written or
     * LF_ESTIMATE_MAX, whichever is more: one huge row must not be assumed for every row
     * after it (a 20 MB field in row 100 of 200,000 asked for 20 GB). */
    if (e->rows >= 64 && e->rows < e->rows_total) {
        double per = (double)(b->len - e->list_start) / (double)e->rows;
        double est = (double)b->len + per * (double)(e->rows_total - e->rows) * 1.05 + 4096.0;
        double most = 2.0 * (double)b->len + 4096.0;
        if (most < LF_ESTIMATE_MAX)
            most = LF_ESTIMATE_MAX;
        if (est > most)
            est = most;
        if (est < (double)((size_t)-1 / 2))
            cap = est > (double)want ? (size_t)est : b->cap + b->cap / 4;
    }
    if (cap < want)
        cap = want;
    if (lf_buf_grow(b, cap) != 0 && (e->fatal = 1))
        return fail(e, CODE_DATA, "out of memory building a %lu-byte request body",
                    (unsigned long)cap);
    return 0;
}


/* ---------------------------------------------------------------- strings */

/* Byte classes: 0 plain ASCII, 1 ASCII that needs an escape, 2..4 lead byte of a 2..4
 * byte sequence, 5 never valid as a lead byte. */
unsigned char lf_cls[256];

void lf_json_init(void)
{
    int c;
    for (c = 0; c < 256; c++) {
        if (c < 0x20 || c == '"' || c == '\\')
            lf_cls[c] = 1;
        else if (c < 0x80)
            lf_cls[c] = 0;
        else if (c >= 0xC2 && c <= 0xDF)
            lf_cls[c] = 2;
        else if (c >= 0xE0 && c <= 0xEF)
            lf_cls[c] = 3;
        else if (c >= 0xF0 && c <= 0xF4)
            lf_cls[c] = 4;
        else
            lf_cls[c] = 5;
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
int put_string(enc *e, const char *str, size_t len, size_t maxchars, size_t *chars,
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
        int k = lf_cls[c];
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
            while (j < until && lf_cls[s[j]] == 0 && (!maxchars || n + (j - i) < maxchars))
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

void put_integer(enc *e, long long v)
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
int get_integer(enc *e, int idx, lua_Integer lo, lua_Integer hi, lua_Integer *out)
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

/* A table as array or object. Arrays: keys exactly 1..n. Objects: string keys, written
 * sorted so the body is the same from run to run. */
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

/* Notes that table t is being written; fails if it already is (it contains itself). */
int enter(enc *e, int t)
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

/* Pushes the string keys of the table at t that `keep` accepts (every key when NULL):
 * a table holding them, which keeps them alive while they are written whatever changes t,
 * then an array of n krefs over them, sorted. n is what a first pass counted; both are
 * allocated before the walk, so no finalizer runs during it, but one may have run at the
 * allocations: a table that now has other keys fails. Returns the array, or NULL. */
kref *collect_keys(enc *e, int t, size_t n, key_test keep, const void *ctx)
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

/* Writes one member "key":value of the table at t, the key given by its bytes (a key of
 * that table, so its bytes stay alive). */
int put_member(enc *e, int t, const kref *k, int depth)
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

int put_value(enc *e, int idx, int depth)
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


/* Checks that t is a proper sequence 1..n and returns n. */
int list_len(enc *e, int t, const char *what, size_t *n)
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
