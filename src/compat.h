/* compat.h - the few Lua C API differences between Lua 5.4 and LuaJIT (5.1 API).
 *
 * Private to laaffic.core: every shim is static and prefixed, never exported under
 * Lua's own names (the lua-cjson / luasocket habit). */
#ifndef LAAFFIC_COMPAT_H
#define LAAFFIC_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM >= 502
#define lf_rawlen(L, i) lua_rawlen((L), (i))
#define lf_absindex(L, i) lua_absindex((L), (i))
#else
#define lf_rawlen(L, i) lua_objlen((L), (i))
#define lf_absindex(L, i)                                                         \
    (((i) > 0 || (i) <= LUA_REGISTRYINDEX) ? (i) : lua_gettop(L) + (i) + 1)
#endif

/* A userdata's one Lua value (a table): its uservalue on 5.2+, its environment on 5.1. */
#if LUA_VERSION_NUM >= 502
#define lf_setuservalue(L, i) ((void)lua_setuservalue((L), (i)))
#define lf_getuservalue(L, i) ((void)lua_getuservalue((L), (i)))
#else
#define lf_setuservalue(L, i) ((void)lua_setfenv((L), (i)))
#define lf_getuservalue(L, i) lua_getfenv((L), (i))
#endif

/* lua_isinteger exists from 5.3 on; LuaJIT has only doubles. */
#if LUA_VERSION_NUM >= 503
#define lf_isinteger(L, i) lua_isinteger((L), (i))
#else
#define lf_isinteger(L, i) 0
#endif

/* luaL_setfuncs is in 5.2+ and in OpenResty's LuaJIT 2.1 headers, but not in every
 * LuaJIT build: keep our own. */
static inline void lf_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
    luaL_checkstack(L, nup, "too many upvalues");
    for (; l->name != NULL; l++) {
        int i;
        for (i = 0; i < nup; i++)
            lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}

/* luaL_newmetatable + __index = itself, then set functions. Leaves the metatable. */
static inline void lf_newclass(lua_State *L, const char *tname, const luaL_Reg *methods)
{
    luaL_newmetatable(L, tname);
    lf_setfuncs(L, methods, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
}

#endif
