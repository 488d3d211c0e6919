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
        {"close", body_close},       {"__gc", body_gc},
        {NULL, NULL}};
    lf_newclass(L, LAAFFIC_BODY_MT, methods);
    lua_pop(L, 1);
}
