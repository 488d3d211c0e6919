/* rows.c - numberInfoList: its rows from a Lua list, the row writer every source shares
 * (Lua tables here, CSV records in rows_csv.c, the LuaJIT walker in rows_jit.c), the
 * rejects list (opts.rejects), and the parts of a split list (opts.part) with their names.
 *
 * Hot path: one lua_next pass over each row, matching keys by the address of the interned
 * key string, values kept as pointers into the row's own strings; then the row is written
 * in canonical order with validation and escaping fused. No Lua value is allocated per
 * row. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "compat.h"
#include "enc.h"

enum { R_CALLEE = LF_ROW_CALLEE, R_NKEYS = LF_ROW_NKEYS };

const char *const lf_row_keys[LF_ROW_NKEYS] = {
    "calleeNumber", "text1", "text2", "text3", "text4", "text5",
    "text6",        "text7", "text8", "text9", "text10"};

static const unsigned char ROW_KLEN[R_NKEYS] = {12, 5, 5, 5, 5, 5, 5, 5, 5, 5, 6};

/* Row key names as they appear in the output, comma, quotes and colon included, padded
 * to 16 bytes so each is copied with one fixed-size move (the row reserve covers it). */
static const char ROW_OUT[R_NKEYS][16] = {
    "{\"calleeNumber\"", ",\"text1\":",  ",\"text2\":", ",\"text3\":",
    ",\"text4\":",       ",\"text5\":",  ",\"text6\":", ",\"text7\":",
    ",\"text8\":",       ",\"text9\":",  ",\"text10\":"};

/* Identifies a row key: the interned key strings of this encode share their address with
 * the row's keys, so the common case is a pointer compare. */
static int row_key(const char *const *interned, const char *k, size_t klen)
{
    int j;
    for (j = 0; j < R_NKEYS; j++)
        if (k == interned[j])
            return j;
    for (j = 0; j < R_NKEYS; j++)
        if (ROW_KLEN[j] == klen && memcmp(lf_row_keys[j], k, klen) == 0)
            return j;
    return -1;
}

static int row_fail(enc *e, int j, int code, const char *fmt, const char *arg)
{
    path_key(e, lf_row_keys[j], ROW_KLEN[j]);
    return fail(e, code, fmt, arg);
}

/* calleeNumber's rule, worded once for a value of the wrong type and a wrong string */
static int callee_fail(enc *e, int code, const char *what, const char *got)
{
    path_key(e, lf_row_keys[R_CALLEE], ROW_KLEN[R_CALLEE]);
    return fail(e, code, "must be %s%d to %d digits (country code + number), got %s", what,
                LF_CALLEE_MIN, LF_CALLEE_MAX, got);
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
        if (v->len <= LF_TEXT_MAX) {
            unsigned char *o = (unsigned char *)e->b->data + e->b->len + 1;
            for (i = 0; i < v->len; i++) {
                if (lf_cls[s[i]])
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
        if (put_string(e, v->s, v->len, LF_TEXT_MAX, &chars, &cut))
            return -1;
        if (cut) {
            if (!e->truncate)
                return fail(e, CODE_DATA, "must be at most %d characters, got more (%lu bytes)",
                            LF_TEXT_MAX, (unsigned long)v->len);
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

/* Writes a row from its slots: {"calleeNumber":"...","text1":"..." with no closing brace
 * (a table row may add unknown fields). `present` has bit j set for each slot j. */
int lf_put_slots(enc *e, const slot *v, unsigned present, size_t need)
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
    /* calleeNumber: digits, which need no escaping */
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
        for (i = 0; i < len && i < LF_CALLEE_MAX; i++) {
            if ((unsigned char)(cn[i] - '0') > 9)
                break;
            o[i] = cn[i];
        }
        if (i < len || len < LF_CALLEE_MIN) {
            show(shown, sizeof shown, cn, len);
            return callee_fail(e, CODE_DATA, "", shown);
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
            path_key(e, lf_row_keys[j], ROW_KLEN[j]);
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
            need += lf_string_need(v[j].len);
        } else if (j == R_CALLEE) {
            const char *tn = type_name(L, -1);
            lua_pop(L, 2);
            return callee_fail(e, CODE_PARAM, "a string of ", tn);
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
    if (lf_put_slots(e, v, present, need))
        return -1;
    if (unknown && put_row_unknown(e, row, interned))
        return -1;
    return put_chars(e, "}", 1);
}


/* The row key a failed row named (the path's last key), or -1 (no field: out of memory,
 * or a fault of the row as a whole). */
int lf_failed_key(const enc *e, int depth)
{
    int j;
    if (e->depth <= depth || e->path[e->depth - 1].key == NULL)
        return -1;
    for (j = 0; j < R_NKEYS; j++)
        if (e->path[e->depth - 1].key == lf_row_keys[j])
            return j;
    return -1;
}

/* Appends { index | line, column, field, message, code } to opts.rejects, or fails when
 * there are more than opts.max_rejects. field NULL: the encoder's path (a table row). */
int lf_add_reject(enc *e, lua_Integer index, long line, int col, const char *fname)
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
        lf_path_push(L, e);
    lua_setfield(L, -2, "field");
    lua_pushstring(L, e->msg);
    lua_setfield(L, -2, "message");
    lua_pushinteger(L, e->code);
    lua_setfield(L, -2, "code");
    lua_rawseti(L, e->rejects, (lua_Integer)(lf_rawlen(L, e->rejects) + 1));
    e->rejected++;
    return 0;
}

/* A list without a row to send: the pages give numberInfoList a maximum only, so this is
 * a warning (an error with strict), also when every row was rejected or a duplicate. */
int lf_no_rows(enc *e)
{
    if (e->rejected || e->duplicates)
        return warn(e, CODE_DATA, "is empty: no valid entries (%lu rejected, %lu duplicates)",
                    (unsigned long)e->rejected, (unsigned long)e->duplicates);
    return warn(e, CODE_DATA, "is empty: no number to call");
}

/* The rows of the list (n entries) this task writes: all of them, or part e->part. */
static int list_rows(enc *e, size_t n, size_t *first, size_t *last)
{
    size_t max = e->max_rows;
    if (e->part) {
        if (!lf_part_rows(n, max, (size_t)e->part, first, last))
            return fail(e, CODE_DATA, "has %lu entries, so there is no part %d (of %lu entries "
                        "each)", (unsigned long)n, e->part, (unsigned long)max);
        e->more = *last < n;
        return 0;
    }
    if (n > max)
        return fail(e, CODE_DATA,
                    "must have 1 to %lu entries, got %lu: split the list into several "
                    "tasks (client:create_tasks does)",
                    (unsigned long)max, (unsigned long)n);
    *first = 1;
    *last = n;
    return 0;
}

/* Writes row i of the list at idx, after a comma unless it is the first. A row that fails
 * goes to opts.rejects (0) when there is one, else fails. */
static int put_list_row(enc *e, int idx, size_t i, int base, const char *const *interned)
{
    lua_State *L = e->L;
    size_t mark = e->b->len, trunc = e->truncated;
    int depth = e->depth, nopen = e->nopen;
    lua_rawgeti(L, idx, (lua_Integer)i);
    path_index(e, (lua_Integer)i);
    if ((e->rows > 0 && put_chars(e, ",", 1)) || put_row(e, lua_gettop(L), interned)) {
        if (!e->rejects || e->fatal)
            return -1;
        e->b->len = mark;
        e->truncated = trunc;
        if (lf_add_reject(e, (lua_Integer)i, 0, 0, NULL))
            return -1;
        e->depth = depth;
        e->nopen = nopen;
        lua_settop(L, base + R_NKEYS);
        return 0;
    }
    path_pop(e);
    lua_pop(L, 1);
    e->rows++;
    return 0;
}

/* After a walk that wrote fewer than WALK_MIN rows, the next WALK_PAUSE rows go through
 * put_row before the walker is tried again. */
enum { WALK_MIN = 8, WALK_PAUSE = 64 };

void lf_push_row_keys(enc *e)
{
    int j;
    e->keys_base = lua_gettop(e->L);
    for (j = 0; j < R_NKEYS; j++) {
        lua_pushstring(e->L, lf_row_keys[j]);
        e->interned[j] = lua_tostring(e->L, -1);
    }
}

/* The rows of the list at idx from e->row_i on, while e->budget lasts (LF_MORE: it ran
 * out), then the list's end. */
static int list_more(enc *e, int idx)
{
    size_t i = e->row_i, last = e->row_last;
    while (i <= last) {
        if (e->budget == 0) {
            e->row_i = i;
            return LF_MORE;
        }
        if (e->walker && i >= e->walk_from) { /* the plain rows from i on, on LuaJIT */
            size_t from = i, stop = last - i < e->budget ? last : i + e->budget - 1;
            i = lf_walk_rows(e, idx, i, stop);
            e->budget -= i - from;
            if (i > stop) /* the list or the slice is done */
                continue;
            /* a list of rows that are seldom plain: not a walker call per row */
            if (i - from < WALK_MIN)
                e->walk_from = i + WALK_PAUSE;
        }
        e->budget--;
        if (put_list_row(e, idx, i, e->keys_base, e->interned))
            return -1;
        i++;
    }
    lua_settop(e->L, e->keys_base);
    if (e->rows == 0 && lf_no_rows(e))
        return -1;
    e->rows_total = e->rows;
    return put_chars(e, "]", 1);
}

int lf_more_numbers(enc *e)
{
    if (e->csv)
        return lf_more_csv_numbers(e);
    return list_more(e, e->field_top + 1);
}

/* numberInfoList from a Lua list (or a CSV reader: rows_csv.c). */
int lf_put_numbers(enc *e, int idx)
{
    size_t n, first = 1, last = 0;
    lf_csv *c = lf_csv_test(e->L, idx);

    if (c != NULL)
        return lf_put_csv_numbers(e, c);
    if (list_len(e, idx, "objects with a calleeNumber", &n) || list_rows(e, n, &first, &last))
        return -1;
    if (n == 0)
        return put_chars(e, "[]", 2) ? -1 : lf_no_rows(e);
    /* intern the row keys once a call; they stay on the stack, so their addresses hold */
    if (!lua_checkstack(e->L, R_NKEYS + 8))
        return fail(e, CODE_PARAM, "is nested too deeply");
    lf_push_row_keys(e);
    e->rows_total = last - first + 1;
    e->rows = 0;
    e->list_start = e->b->len;
    if (put_chars(e, "[", 1))
        return -1;
    e->walker = lf_have_walker(e->L);
    e->walk_from = 0;
    e->row_i = first;
    e->row_last = last;
    return list_more(e, idx);
}

/* taskName of a part: the name as given when the whole list is one task, else the name
 * with "-part-N" added. Deterministic, so a re-run after a crash makes the same names and
 * the API's unique-name rule (-41) refuses the parts that were already created. */
int lf_put_task_name(enc *e, int t, int first)
{
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
        int sl = snprintf(suffix, sizeof suffix, LF_PART_SUFFIX, e->part);
        s = lua_tolstring(L, -1, &len);
        for (i = 0; i < len; i++)
            chars += ((unsigned char)s[i] & 0xC0) != 0x80;
        /* the name as given obeys the rule too: a split list must not make a 1-character
         * name valid that a one-part list refuses */
        if (chars < LF_NAME_MIN)
            return fail(e, CODE_DATA, "must be %d to %d characters long, got %lu", LF_NAME_MIN,
                        LF_NAME_MAX, (unsigned long)chars);
        if (chars + (size_t)sl > LF_NAME_MAX)
            return fail(e, CODE_DATA,
                        "is %lu characters, and the list is split into tasks named "
                        "\"<taskName>%s\" and so on, at most %d characters: shorten it to %d",
                        (unsigned long)chars, suffix, LF_NAME_MAX, LF_NAME_MAX - sl);
        lua_pushstring(L, suffix);
        lua_concat(L, 2);
    }
    if (reserve(e, 16))
        return -1;
    if (!first)
        put_lit(e, ",");
    put_lit(e, "\"taskName\":");
    if (lf_put_name(e, lua_gettop(L)))
        return -1;
    s = lua_tolstring(L, -1, &len);
    if (len < sizeof e->task_name)
        memcpy(e->task_name, s, len + 1);
    path_pop(e);
    lua_pop(L, 1);
    return 0;
}
