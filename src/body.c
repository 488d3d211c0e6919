/* body.c - the "laaffic.body" userdata: encoded request bytes that stay in C.
 *
 * A body can be handed to the transport without ever becoming a Lua string; tostring()
 * makes the string when the caller wants one. */
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "compat.h"

lf_body *lf_body_new(lua_State *L)
{
    lf_body *b = (lf_body *)lua_newuserdata(L, sizeof *b);
    b->buf.data = NULL;
    b->buf.len = b->buf.cap = 0;
    b->busy = b->closed = 0;
    luaL_getmetatable(L, LAAFFIC_BODY_MT);
    lua_setmetatable(L, -2);
    return b;
}

void lf_body_free(lf_body *b)
{
    lf_buf_free(&b->buf);
}

void lf_body_release(lf_body *b)
{
    if (b->busy > 0 && --b->busy == 0 && b->closed)
        lf_body_free(b);
}

lf_body *lf_body_test(lua_State *L, int idx)
{
    lf_body *b = (lf_body *)lua_touserdata(L, idx);
    if (b == NULL || !lua_getmetatable(L, idx))
        return NULL;
    luaL_getmetatable(L, LAAFFIC_BODY_MT);
    if (!lua_rawequal(L, -1, -2))
        b = NULL;
    lua_pop(L, 2);
    return b;
}

lf_body *lf_body_check(lua_State *L, int idx)
{
    return (lf_body *)luaL_checkudata(L, idx, LAAFFIC_BODY_MT);
}

/* body:tostring() / tostring(body): the JSON text as a Lua string (a copy). */
static int body_tostring(lua_State *L)
{
    lf_body *b = lf_body_check(L, 1);
    lua_pushlstring(L, b->buf.data && !b->closed ? b->buf.data : "", b->closed ? 0 : b->buf.len);
    return 1;
}

/* #body / body:len(): its size in bytes. */
static int body_len(lua_State *L)
{
    lf_body *b = lf_body_check(L, 1);
    lua_pushinteger(L, b->closed ? 0 : (lua_Integer)b->buf.len);
    return 1;
}

/* Is n a whole number? From 2^52 up every double is one (infinities too). */
static int is_whole(lua_Number n)
{
    if (n != n)
        return 0;
    if (n >= 4503599627370496.0 || n <= -4503599627370496.0)
        return 1;
    return (lua_Number)(long long)n == n;
}

/* Argument arg of body:sub as a position, string.sub's way, in 1..len + 1 (is_end = 0)
 * or 0..len (is_end = 1): negative counts from the end, out-of-range clamps. Read as a
 * number, not luaL_checkinteger, so a huge j (math.huge, 2^70) clamps in Lua 5.4 and in
 * LuaJIT alike instead of raising or overflowing a cast. */
static size_t body_pos(lua_State *L, int arg, const char *name, size_t len, int is_end)
{
    lua_Number n, l = (lua_Number)len, top = is_end ? l : l + 1;
    if (!lua_isnumber(L, arg))
        return (size_t)luaL_argerror(L, arg, lua_pushfstring(L, "%s: an integer expected, got %s",
                                                             name, luaL_typename(L, arg)));
    n = lua_tonumber(L, arg);
    if (!is_whole(n))
        return (size_t)luaL_argerror(L, arg, lua_pushfstring(L, "%s: an integer expected, got %s",
                                                             name, lua_tostring(L, arg)));
    if (n < 0)
        n = n < -l ? (is_end ? 0 : 1) : l + n + 1;
    else if (n == 0)
        n = is_end ? 0 : 1;
    return (size_t)(n > top ? top : n);
}

/* body:sub(i [, j]): bytes i to j as a Lua string, as string.sub (j defaults to -1): a
 * piece of a big body without a copy of the whole. A closed body raises. */
static int body_sub(lua_State *L)
{
    lf_body *b = lf_body_check(L, 1);
    size_t i, j;
    luaL_argcheck(L, !b->closed, 1, "the body was closed");
    i = body_pos(L, 2, "i", b->buf.len, 0);
    j = lua_isnoneornil(L, 3) ? b->buf.len : body_pos(L, 3, "j", b->buf.len, 1);
    if (i > j)
        lua_pushliteral(L, "");
    else
        lua_pushlstring(L, b->buf.data + i - 1, j - i + 1);
    return 1;
}

/* body:close(): the body is empty afterwards; its bytes are freed now, or when the
 * last transfer sending them ends (see body.h). */
static int body_close(lua_State *L)
{
    lf_body *b = lf_body_check(L, 1);
    b->closed = 1;
    if (b->busy == 0)
        lf_body_free(b);
    return 0;
}

/* __gc: nothing can be sending a body that is collected */
static int body_gc(lua_State *L)
{
    lf_body *b = lf_body_check(L, 1);
    b->closed = 1;
    lf_body_free(b);
    return 0;
}

void lf_body_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"tostring", body_tostring}, {"__tostring", body_tostring},
        {"len", body_len},           {"__len", body_len},
        {"sub", body_sub},
        {"close", body_close},       {"__gc", body_gc},
        {NULL, NULL}};
    lf_newclass(L, LAAFFIC_BODY_MT, methods);
    lua_pop(L, 1);
}
