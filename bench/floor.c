/* floor.c - the benchmark's yardstick, not part of laaffic.
 *
 * walk(list) visits every row of a numberInfoList the way any C encoder must through the
 * public Lua API (lua_next over each row, lua_type and lua_tolstring on each key and
 * value, one read of each string's bytes) and writes nothing. No encoder built on the
 * public API can be faster than this, so the benchmark prints it next to laaffic and
 * cjson. */
#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 502
#define lua_rawlen lua_objlen
#endif

int luaopen_floor(lua_State *L);

static int walk(lua_State *L)
{
    size_t n = lua_rawlen(L, 1), i, sum = 0;
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, (int)i);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            size_t l, k;
            if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
                const char *s;
                (void)lua_tolstring(L, -2, &l);
                s = lua_tolstring(L, -1, &l);
                for (k = 0; k < l; k++)
                    sum += (unsigned char)s[k];
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pushnumber(L, (lua_Number)sum);
    return 1;
}

int luaopen_floor(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, walk);
    lua_setfield(L, -2, "walk");
    return 1;
}
