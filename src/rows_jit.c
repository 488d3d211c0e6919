/* rows_jit.c - the LuaJIT row walker's bridge.
 *
 * On LuaJIT, walking a 200k-row list through lua_next costs more than all the rest of
 * the encode (bench/floor.c measures it), while compiled Lua code reads the same tables
 * several times faster. So there the rows are walked by the Lua module laaffic.jit_rows,
 * which hands each plain row (every key calleeNumber or text1..text10, every value a
 * string, or a number for a text) to jit_row below through the FFI. jit_row validates and
 * writes it with the same lf_put_slots as every other path. Any other row, and any row
 * jit_row refuses, goes back to rows.c's put_row: every error message, reject and
 * pass-through field comes from the one C path, and jit_row leaves no trace of a row it
 * refuses. jit_row touches no Lua state (the FFI call forbids it): only the encoder state
 * and its buffer. The one call into Lua is lf_walk_rows. */
#include <stddef.h>

#include "compat.h"
#include "enc.h"

/* The FFI interface, declared here once: the walker gets its text (ROWS_CDEF) and declares
 * it to the FFI, so the two sides cannot disagree on the layout. */
#define ROWS_API_DECL                                                                  \
    typedef struct laaffic_rows_api {                                                  \
        int (*row)(void *e, unsigned present, unsigned numbers, const char *const *s, \
                   const size_t *len, const double *num);                            \
    } laaffic_rows_api;
ROWS_API_DECL
#define CDEF_TEXT(...) #__VA_ARGS__
#define CDEF_OF(...) CDEF_TEXT(__VA_ARGS__)
static const char ROWS_CDEF[] = CDEF_OF(ROWS_API_DECL);

/* Writes one row, with its leading comma and closing brace: field j is present when bit j
 * of `present` is set, a number (num[j]) when bit j of `numbers` is also set, else a
 * string (s[j], len[j]). 0, or -1 with the encoder as it was before the call. */
static int jit_row(void *ep, unsigned present, unsigned numbers, const char *const *s,
                   const size_t *len, const double *num)
{
    enc *e = (enc *)ep;
    slot v[LF_ROW_NKEYS];
    size_t need = 64, mark = e->b->len, trunc = e->truncated;
    int j, depth = e->depth, fatal = e->fatal;

    /* a number calleeNumber is an error put_row words */
    if (e->walk_left == 0 || (numbers & 1u) || (numbers & ~present))
        return -1;
    for (j = 0; j < LF_ROW_NKEYS; j++) {
        if ((numbers >> j) & 1u) {
            v[j].type = LUA_TNUMBER;
            v[j].isint = 0; /* LuaJIT: doubles only, as lf_isinteger says */
            v[j].n = (lua_Number)num[j];
            need += 64;
        } else if ((present >> j) & 1u) {
            v[j].type = LUA_TSTRING;
            v[j].s = s[j];
            v[j].len = len[j];
            need += lf_string_need(len[j]);
        }
    }
    if ((e->rows == 0 || put_chars(e, ",", 1) == 0) && lf_put_slots(e, v, present, need) == 0 &&
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

static const laaffic_rows_api ROWS_API = {jit_row};

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
size_t lf_walk_rows(enc *e, int idx, size_t i, size_t last)
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
    lua_pushlstring(L, ROWS_CDEF, sizeof ROWS_CDEF - 1);
    e->walk_left = last - i + 1;
    e->walked = 0;
    (void)lua_pcall(L, 6, 0, 0); /* an error's message is dropped: the rows go on in C */
    lua_settop(L, top);
    e->walk_left = 0;
    return i + e->walked;
}

int lf_have_walker(lua_State *L)
{
    if (!push_walker(L))
        return 0;
    lua_pop(L, 1);
    return 1;
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


int lf_jit_rows_open(lua_State *L)
{
    lua_pushcfunction(L, l_jit_rows);
    lua_setfield(L, -2, "jit_rows");
    return 0;
}
