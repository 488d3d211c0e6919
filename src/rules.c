/* rules.c - the task's fields and their rules, as tables: TOP (the task), RECALL,
 * WINDOW (allowSendTime) and NODE (nodeList). Each entry names a field, the function that
 * checks and writes its value, whether it is required, and its bounds from rules.h.
 * A field missing from every table is passed through as it is (json.c). The rows of
 * numberInfoList have their own writer (rows.c), with the bounds from the same header. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "enc.h"

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

int lf_put_name(enc *e, int idx)
{
    static const field NAME = {"taskName", put_text, 1, LF_NAME_MIN, LF_NAME_MAX, NULL, 0};
    return put_text(e, idx, &NAME);
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
    if (get_integer(e, idx, -LF_INT32_MAX - 1, f->hi, &v) || reserve(e, 24))
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
    if (get_integer(e, idx, -LF_INT32_MAX - 1, LF_INT32_MAX, &v))
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
        static const field digits = {"agentId", put_digits, 1, 1, LF_ID_DIGITS, NULL, 0};
        return put_digits(e, idx, &digits);
    }
    if (lua_type(e->L, idx) != LUA_TNUMBER)
        return fail(e, CODE_PARAM, "must be an agent id (integer or string of digits), got %s",
                    type_name(e->L, idx));
    return put_count(e, idx, f);
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
    {"agentId", put_agent_ref, 1, LF_ID_WARN, LF_INT32_MAX, NULL, 0},
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
    {"recallInterval", put_count, 1, LF_ID_WARN, LF_INT32_MAX, NULL, 0},
    {"recallNum", put_recall_num, 1, LF_ID_WARN, LF_INT32_MAX, NULL, 0},
    {"nodeList", put_nodes, 0, 0, LF_INT32_MAX, NULL, 0}, /* absent: 0 nodes, see put_recall */
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

/* numberInfoList: rows.c (a Lua list) or rows_csv.c (a CSV reader) */
static int put_numbers(enc *e, int idx, const field *f)
{
    (void)f;
    return lf_put_numbers(e, idx);
}

typedef struct rules {
    const field *fields;
    int n;
} rules;

static const field TOP[] = {
    {"appId", put_app_id, 1, 0, 0, NULL, 0},
    {"taskName", put_text, 1, LF_NAME_MIN, LF_NAME_MAX, NULL, 0},
    {"displayNum", put_digits, 0, 0, LF_DISPLAY_MAX, NULL, 0},
    {"maxCalls", put_count, 0, LF_MAXCALLS_WARN, LF_MAXCALLS_MAX, NULL, 0},
    {"maxRingingTime", put_int, 0, LF_RINGING_MIN, LF_RINGING_MAX, NULL, 0},
    {"agentId", put_count, 1, LF_ID_WARN, LF_INT32_MAX, NULL, 0},
    {"enableRecording", put_int, 0, 0, 1, NULL, 0},
    {"sendTime", put_datetime, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}, /* unknown fields go here */
    {"allowSendTime", put_object_list, 0, 0, LF_WINDOWS_MAX, WINDOW, 2},
    {"numberInfoList", put_numbers, 1, 1, LF_MAX_ROWS, NULL, 0},
    {"recallFlow", put_recall, 0, 0, 0, NULL, 0},
};

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

/* Counts the keys of t that no rule of r knows (every key must be a name). */
static int count_unknown(enc *e, int t, const rules *r, size_t *n)
{
    lua_State *L = e->L;
    *n = 0;
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
        *n += unknown_field(r, k, klen);
        lua_pop(L, 1);
    }
    return 0;
}

/* Writes the known field f of the object at t, if it is there, after a comma unless
 * *first. A missing field fails when required (1), is a warning when expected (2). */
static int put_known(enc *e, int t, const field *f, int *first)
{
    lua_State *L = e->L;
    size_t nlen = strlen(f->name);
    lua_pushstring(L, f->name);
    lua_rawget(L, t);
    path_key(e, f->name, nlen);
    if (lua_isnil(L, -1) || (f->required == 1 && is_null(L, -1))) {
        if (f->required == 1)
            return fail(e, CODE_PARAM, "is required");
        if (f->required == 2 && lua_isnil(L, -1) &&
            warn(e, CODE_PARAM, "is missing: the pages do not require it, but a window "
                 "needs both ends"))
            return -1;
    } else {
        if (reserve(e, nlen + 4))
            return -1;
        if (!*first)
            put_lit(e, ",");
        *first = 0;
        put_lit(e, "\"");
        put_raw(e, f->name, nlen);
        put_lit(e, "\":");
        if (is_null(L, -1)) {
            if (put_chars(e, "null", 4))
                return -1;
        } else {
            int r = f->put(e, lua_gettop(L), f);
            if (r) /* -1, or LF_MORE with the value left on the stack */
                return r;
        }
    }
    path_pop(e);
    lua_pop(L, 1);
    return 0;
}

/* A known field; at the top level, with opts.problems, a failure is listed there and the
 * next field goes on (lf_collect). */
static int put_field(enc *e, int t, const field *f, int *first, int top_level)
{
    int top = lua_gettop(e->L), depth = e->depth, nopen = e->nopen, r;
    if (top_level) { /* numberInfoList may go on in a later call (LF_MORE) */
        e->field_top = top;
        e->field_depth = depth;
        e->field_nopen = nopen;
    }
    if ((r = put_known(e, t, f, first)) >= 0)
        return r;
    return top_level ? lf_collect(e, top, depth, nopen) : -1;
}

/* Opens an object: "{", and the keys no rule of fields knows, collected and sorted (they
 * stay on the stack until put_fields has written them). */
static int open_object(enc *e, int t, const rules *r, kref **keys, size_t *nunknown)
{
    *keys = NULL;
    if (!lua_checkstack(e->L, 8))
        return fail(e, CODE_PARAM, "is nested too deeply");
    if (enter(e, t) || count_unknown(e, t, r, nunknown))
        return -1;
    if (*nunknown && (*keys = collect_keys(e, t, *nunknown, unknown_field, r)) == NULL)
        return -1;
    return put_chars(e, "{", 1);
}

/* Writes the known fields from fields[j] on in table order (a NULL name marks where the
 * unknown ones go; by default they go last), then or there the unknown ones. 0, -1, or
 * LF_MORE from numberInfoList. */
static int put_fields(enc *e, int t, const rules *r, int j, int *first, const kref *keys,
                      size_t nunknown)
{
    const field *fields = r->fields;
    int nfields = r->n, unknown_done = 0;
    size_t i;
    for (; j <= nfields; j++) {
        int k;
        if (j == nfields || fields[j].name == NULL) {
            if (unknown_done)
                continue;
            unknown_done = 1;
            for (i = 0; i < nunknown; i++) {
                int top = lua_gettop(e->L), depth = e->depth, nopen = e->nopen;
                if (((!*first && put_chars(e, ",", 1)) || put_member(e, t, &keys[i], 0)) &&
                    (fields != TOP || lf_collect(e, top, depth, nopen)))
                    return -1;
                *first = 0;
            }
            if (nunknown)
                lua_pop(e->L, 2); /* keys */
            continue;
        }
        if (fields == TOP && e->split && strcmp(fields[j].name, "taskName") == 0)
            continue; /* taskName: written last, see lf_put_task_name */
        if ((k = put_field(e, t, &fields[j], first, fields == TOP)) != 0)
            return k;
    }
    return 0;
}

/* Closes an object; the task's: taskName of a split list, and opts.problems' verdict. */
static int close_object(enc *e, int t, const field *fields, int first)
{
    if (fields == TOP && e->split) {
        int top = lua_gettop(e->L), depth = e->depth, nopen = e->nopen;
        if (lf_put_task_name(e, t, first) && lf_collect(e, top, depth, nopen))
            return -1;
    }
    if (fields == TOP && e->nproblems > 0)
        return -1; /* run() answers with opts.problems */
    leave(e);
    return put_chars(e, "}", 1);
}

static int put_object(enc *e, int t, const field *fields, int nfields)
{
    size_t nunknown;
    int first = 1;
    kref *keys;
    rules r;
    r.fields = fields;
    r.n = nfields;
    if (open_object(e, t, &r, &keys, &nunknown) || put_fields(e, t, &r, 0, &first, keys, nunknown))
        return -1;
    return close_object(e, t, fields, first);
}

#define NTOP ((int)(sizeof TOP / sizeof TOP[0]))

/* The field after numberInfoList in TOP: where a task stopped for a slice goes on. */
static int after_numbers(void)
{
    int j = 0;
    while (TOP[j].put != put_numbers)
        j++;
    return j + 1;
}

/* numberInfoList goes on from the row it stopped at: put_known's and put_field's ends. */
static int more_numbers(enc *e)
{
    int r = lf_more_numbers(e);
    if (r == 0) {
        path_pop(e);
        lua_pop(e->L, 1);
    } else if (r < 0) {
        r = lf_collect(e, e->field_top, e->field_depth, e->field_nopen);
    }
    return r;
}

int lf_put_task(enc *e)
{
    int t = e->task, first = 0, r;
    rules top;
    top.fields = TOP;
    top.n = NTOP;
    if (e->stage == ST_NEW) {
        size_t nunknown;
        kref *keys;
        first = 1;
        if (open_object(e, t, &top, &keys, &nunknown))
            return -1;
        r = put_fields(e, t, &top, 0, &first, keys, nunknown);
    } else if ((r = more_numbers(e)) == 0) {
        r = put_fields(e, t, &top, after_numbers(), &first, NULL, 0);
    }
    if (r == LF_MORE)
        e->stage = ST_ROWS;
    return r ? r : close_object(e, t, TOP, first);
}
