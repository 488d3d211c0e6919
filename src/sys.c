/* sys.c - what the Lua layer asks of the system: a file's identity and permission bits
 * (core.file_id) and whether a descriptor is a terminal (core.isatty), which spare the
 * command-line tool its shell-outs; a monotonic clock and a sleep (core.now, core.sleep)
 * for the retry backoff outside nginx. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "laaffic.h"

void lf_push_file_id(lua_State *L, unsigned long long dev, unsigned long long ino)
{
    char s[48];
    snprintf(s, sizeof s, "%llu:%llu", dev, ino);
    lua_pushstring(L, s);
}

/* core.file_id(path) -> "dev:ino", mode | nil, message: the identity of the file a path
 * names (links followed), so that two spellings of one file compare equal, and its
 * permission bits (an integer, e.g. 384 for 0600) */
static int l_file_id(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if (stat(path, &st) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, strerror(errno));
        return 2;
    }
    lf_push_file_id(L, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
    return 2;
}

/* core.isatty(fd) -> whether file descriptor fd (0, 1, 2...) is a terminal */
static int l_isatty(lua_State *L)
{
    lua_Integer fd = luaL_checkinteger(L, 1);
    luaL_argcheck(L, fd >= 0 && fd <= 1000000, 1, "must be a file descriptor");
    lua_pushboolean(L, isatty((int)fd) == 1);
    return 1;
}

/* core.sleep(seconds): blocks the calling thread (the retry backoff outside nginx; inside
 * nginx the Lua layer uses ngx.sleep instead). */
static int l_sleep(lua_State *L)
{
    lua_Number sec = luaL_checknumber(L, 1);
    struct timespec ts;
    luaL_argcheck(L, sec >= 0 && sec <= 3600, 1, "seconds must be from 0 to 3600");
    ts.tv_sec = (time_t)sec;
    ts.tv_nsec = (long)((sec - (lua_Number)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0)
        ;
    return 0;
}

/* core.now() -> seconds from a monotonic clock, for durations. */
static int l_now(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

int laaffic_sys_open(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"file_id", l_file_id}, {"isatty", l_isatty},
                                     {"sleep", l_sleep}, {"now", l_now}, {NULL, NULL}};
    lf_setfuncs(L, funcs, 0);
    return 0;
}
