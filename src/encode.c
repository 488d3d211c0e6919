/* encode.c - core.encode and core.encode_body: validate a task table and write the
 * request JSON in one pass; also the options, the info table, and the errors and
 * warnings with the field path they name. The encoder's other files are listed in enc.h;
 * the rules are data (rules.c, bounds in rules.h), used by the client and by the sandbox
 * (which decodes a request with cjson and runs it through this same encoder). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "enc.h"

#define MAX_WARNINGS 100 /* kept in info.warnings; more are counted, not kept */

int lf_fail(enc *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->code = code;
    return -1;
}

/* Appends { field = <the current path>, message, code } to the list at stack index list. */
static void add_finding(enc *e, int list, size_t n, const char *msg, int code)
{
    lua_State *L = e->L;
    lua_createtable(L, 0, 3);
    lf_path_push(L, e);
    lua_setfield(L, -2, "field");
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "message");
    lua_pushinteger(L, code);
    lua_setfield(L, -2, "code");
    lua_rawseti(L, list, (lua_Integer)n);
}

/* A rule laaffic infers but the vendor's pages do not state: the request is written as
 * given and { field, message, code } goes to info.warnings; with opts.strict it fails like
 * a stated rule. Returns 0, or -1 (strict). */
int lf_warn(enc *e, int code, const char *fmt, ...)
{
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
    if (e->warnings && e->nwarnings++ < MAX_WARNINGS)
        add_finding(e, e->warnings, e->nwarnings, msg, code);
    return 0;
}

/* Writes the field path ("numberInfoList[3].calleeNumber") into a luaL_Buffer. Keys are
 * cut at 64 bytes and bytes outside printable ASCII are shown as \xHH. */
void lf_path_push(lua_State *L, const enc *e)
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
    e->max_rows = LF_MAX_ROWS;
    if (lua_isnoneornil(L, idx))
        return;
    luaL_checktype(L, idx, LUA_TTABLE);
    e->max_rows = (size_t)opt_int(L, idx, "max_rows", LF_MAX_ROWS, 1, LF_MAX_ROWS);
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
    raw_field(L, idx, "problems");
    if (!lua_isnil(L, -1))
        luaL_argcheck(L, lua_type(L, -1) == LUA_TTABLE, idx,
                      "opts.problems must be a table (every bad field is appended to it)");
    lua_pop(L, 1);
}

int lf_collect(enc *e, int top, int depth, int nopen)
{
    if (!e->problems || e->fatal || e->located)
        return -1;
    /* before the settop: the path's keys may live above top */
    add_finding(e, e->problems, ++e->nproblems, e->msg, e->code);
    lua_settop(e->L, top);
    e->depth = depth;
    e->nopen = nopen;
    return 0;
}

/* The encode failed: frees the body and pushes nil, message, field, code [, where];
 * returns their count. */
static int push_failure(lua_State *L, enc *e)
{
    lf_body_free(e->body);
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
    if (e->nproblems > 0 && !e->fatal) { /* opts.problems: answer with the first */
        lua_rawgeti(L, e->problems, 1);  /* nil, entry */
        lua_getfield(L, -1, "field");
        lua_getfield(L, -2, "code");
        lua_getfield(L, -3, "message");  /* nil, entry, field, code, message */
        lua_pushfstring(L, "%s: %s", lua_tostring(L, -3), lua_tostring(L, -1));
        lua_replace(L, -5);              /* nil, text, field, code, message */
        lua_pop(L, 1);
        return 4;
    }
    lf_path_push(L, e);
    lua_pushfstring(L, "%s: %s", lua_tostring(L, -1), e->msg);
    lua_insert(L, -2);
    lua_pushinteger(L, e->code);
    return 4;
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

/* ---------------------------------------------------------------- the encoder object
 *
 * core.encoder(task [, opts]) keeps an encode that goes on over several calls: each
 * enc:step(n) writes up to n more rows of numberInfoList and returns true, or, once done,
 * what core.encode_body returns. The state is the userdata itself; the Lua values a step
 * needs again live in its uservalue, and every step puts them back on its stack in the
 * same places (the frame below), so stack indexes kept in the state hold in every call.
 * core.encode_body and core.encode are an encoder and one step of every row. */

#define LAAFFIC_ENCODER_MT "laaffic.encoder"

/* the uservalue's slots; U_TASK..U_PROBLEMS are at FRAME_U + slot in every step */
enum { U_TASK = 1, U_BODY, U_REJECTS, U_WARNINGS, U_PROBLEMS, U_LIST };
#define FRAME_U 2                   /* 1: the encoder, 2: its uservalue */
#define FRAME_TOP (FRAME_U + U_PROBLEMS)
#define FRAME_BODY (FRAME_U + U_BODY)

/* Checks the arguments (task, opts) at 1, 2, as every entry point does, and pushes the
 * encoder's state at 3 and its body at 4. May raise: bad arguments, memory. */
static enc *enc_new(lua_State *L)
{
    enc *e;
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    e = (enc *)lua_newuserdata(L, sizeof *e);
    memset(e, 0, sizeof *e);
    read_opts(L, 2, e);
    e->body = lf_body_new(L);
    e->b = &e->body->buf;
    return e;
}

/* Points the state at this call's frame (FRAME_TOP) and puts back what the last step left
 * above it, if it stopped inside numberInfoList (enc.h: LF_MORE). */
static void enter_frame(lua_State *L, enc *e)
{
    e->L = L;
    e->task = FRAME_U + U_TASK;
    e->rejects = lua_istable(L, FRAME_U + U_REJECTS) ? FRAME_U + U_REJECTS : 0;
    e->warnings = FRAME_U + U_WARNINGS;
    e->problems = lua_istable(L, FRAME_U + U_PROBLEMS) ? FRAME_U + U_PROBLEMS : 0;
    if (e->stage == ST_ROWS) {
        if (e->field_top != FRAME_TOP)
            luaL_error(L, "laaffic.encoder: internal error: the frame moved");
        lua_rawgeti(L, FRAME_U, U_LIST);
        if (!e->csv)
            lf_push_row_keys(e);
    }
}

/* Writes up to n more rows (all of them: (size_t)-1) in the frame entered. Returns 1 with
 * true pushed while rows remain; else 0 (done: the body is at FRAME_BODY, info to push)
 * or the failure's results, pushed. */
static int step(lua_State *L, enc *e, size_t n)
{
    int r;
    if (e->stage == ST_NEW) {
        /* the list comes from a CSV source, or is one part of a longer list: taskName is
         * written last, once we know whether another part follows */
        raw_field(L, e->task, "numberInfoList");
        e->split = e->part > 0 || lf_csv_test(L, -1) != NULL;
        lua_pop(L, 1);
    }
    e->busy = 1;
    e->budget = n;
    r = lf_put_task(e);
    e->busy = 0;
    if (r == LF_MORE) {
        lua_pushvalue(L, e->field_top + 1);
        lua_rawseti(L, FRAME_U, U_LIST);
        lua_pushboolean(L, 1);
        return 1;
    }
    e->stage = ST_DONE;
    lua_settop(L, FRAME_TOP);
    return r ? push_failure(L, e) : 0;
}

/* Pushes body, info after the last step; the body gives its slack back. */
static int push_body(lua_State *L, enc *e)
{
    if (e->b->cap > e->b->len) {
        char *p = (char *)realloc(e->b->data, e->b->len ? e->b->len : 1);
        if (p) {
            e->b->data = p;
            e->b->cap = e->b->len ? e->b->len : 1;
        }
    }
    lua_pushvalue(L, FRAME_BODY);
    push_info(L, e);
    return 2;
}

/* core.encoder(task [, opts]) -> encoder; the arguments as core.encode_body's. What its
 * steps need again goes into its uservalue, at the frame's slots. */
static int l_encoder(lua_State *L)
{
    enc_new(L);
    lua_createtable(L, U_LIST, 0); /* 5 */
    lua_pushvalue(L, 1);
    lua_rawseti(L, 5, U_TASK);
    lua_pushvalue(L, 4);
    lua_rawseti(L, 5, U_BODY);
    if (lua_istable(L, 2)) {
        raw_field(L, 2, "rejects");
        lua_rawseti(L, 5, U_REJECTS);
        raw_field(L, 2, "problems");
        lua_rawseti(L, 5, U_PROBLEMS);
    }
    lua_newtable(L);
    lua_rawseti(L, 5, U_WARNINGS);
    lf_setuservalue(L, 3);
    luaL_getmetatable(L, LAAFFIC_ENCODER_MT); /* its __gc frees a body never handed out */
    lua_setmetatable(L, 3);
    lua_settop(L, 3);
    return 1;
}

/* enc:step(n) -> true | body, info | nil, message, field, code [, where] */
static int l_step(lua_State *L)
{
    enc *e = (enc *)luaL_checkudata(L, 1, LAAFFIC_ENCODER_MT);
    lua_Number n = luaL_checknumber(L, 2);
    int k, r;
    luaL_argcheck(L, n >= 1 && n == floor(n), 2, "must be a row count of at least 1");
    if (e->busy)
        luaL_error(L, "laaffic.encoder: a step is running (from a finalizer?) or an earlier one "
                      "raised an error: this encode cannot go on");
    if (e->stage == ST_DONE)
        luaL_error(L, "laaffic.encoder: step after the end (the encode has returned its result)");
    lua_settop(L, 1);
    luaL_checkstack(L, FRAME_TOP + LF_ROW_NKEYS + LUA_MINSTACK, "laaffic.encoder");
    /* busy from here: entering the frame pushes strings, so the GC may run a finalizer
     * that steps this encoder; that step must not run inside this one */
    e->busy = 1;
    lf_getuservalue(L, 1);
    for (k = U_TASK; k <= U_PROBLEMS; k++)
        lua_rawgeti(L, FRAME_U, k);
    enter_frame(L, e);
    r = step(L, e, n < 4e18 ? (size_t)n : (size_t)-1);
    return r ? r : push_body(L, e);
}

/* __gc: an encode dropped before its end frees its body now (nobody else has it) */
static int l_encoder_gc(lua_State *L)
{
    enc *e = (enc *)luaL_checkudata(L, 1, LAAFFIC_ENCODER_MT);
    if (e->stage != ST_DONE) {
        lf_body *b;
        lf_getuservalue(L, 1);
        if (lua_istable(L, -1)) {
            lua_rawgeti(L, -1, U_BODY);
            if ((b = lf_body_test(L, -1)) != NULL)
                lf_body_free(b);
        }
        e->stage = ST_DONE;
    }
    return 0;
}

/* An encoder's state for the arguments at 1, 2 and one step of every row. Its frame is
 * built from the arguments: no uservalue, no metatable (nothing outlives this call). */
static enc *encode_all(lua_State *L, int *r)
{
    enc *e = enc_new(L); /* 1 task, 2 opts, 3 state, 4 body */
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 3);
    lua_replace(L, 1);   /* 1 state, 2 opts, 3 state, 4 body, 5 task */
    lua_replace(L, 3);   /* 1 state, 2 opts, 3 task, 4 body */
    if (lua_istable(L, 2)) {
        raw_field(L, 2, "rejects");
        lua_newtable(L);
        raw_field(L, 2, "problems");
    } else {
        lua_pushnil(L);
        lua_newtable(L);
        lua_pushnil(L);
    }
    lua_pushnil(L);
    lua_replace(L, FRAME_U); /* ... 5 rejects, 6 warnings, 7 problems */
    enter_frame(L, e);
    *r = step(L, e, (size_t)-1);
    return e;
}

/* core.encode(task [, opts]) -> json, info | nil, message, field, code */
static int l_encode(lua_State *L)
{
    int r;
    enc *e = encode_all(L, &r);
    if (r)
        return r;
    lua_pushlstring(L, e->b->data, e->b->len);
    push_info(L, e);
    lf_body_free(e->body); /* now, not at the next GC cycle */
    return 2;
}

/* core.encode_body(task [, opts]) -> body, info | nil, message, field, code */
static int l_encode_body(lua_State *L)
{
    int r;
    enc *e = encode_all(L, &r);
    return r ? r : push_body(L, e);
}

/* core.parts(n [, max_rows]) -> the number of tasks a list of n rows is sent as (each at
 * most max_rows rows, default MAX_ROWS; 1 for an empty list): the split the encoder's
 * opts.part and create_tasks follow, for reports that count parts ahead. */
static int l_parts(lua_State *L)
{
    lua_Number n = luaL_checknumber(L, 1);
    lua_Integer max = luaL_optinteger(L, 2, LF_MAX_ROWS);
    luaL_argcheck(L, n >= 0 && n == floor(n) && n < 9.0e15, 1, "must be a row count");
    luaL_argcheck(L, max >= 1 && max <= LF_MAX_ROWS, 2, "max_rows must be from 1 to MAX_ROWS");
    lua_pushinteger(L, (lua_Integer)lf_parts((size_t)n, (size_t)max));
    return 1;
}

int laaffic_encode_open(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"encode", l_encode}, {"encode_body", l_encode_body}, {"parts", l_parts},
        {"encoder", l_encoder}, {NULL, NULL}};
    static const luaL_Reg methods[] = {{"step", l_step}, {"__gc", l_encoder_gc}, {NULL, NULL}};
    lf_newclass(L, LAAFFIC_ENCODER_MT, methods);
    lua_pop(L, 1);
    lf_json_init();
    lf_jit_rows_open(L);
    lf_body_open(L);
    lf_setfuncs(L, funcs, 0);
    lua_pushinteger(L, LF_MAX_ROWS);
    lua_setfield(L, -2, "LF_MAX_ROWS");
    lua_pushinteger(L, LF_TEXT_MAX);
    lua_setfield(L, -2, "LF_TEXT_MAX");
    return 0;
}
