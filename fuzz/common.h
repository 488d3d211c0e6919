/* common.h - what the three libFuzzer harnesses share: their Lua state, how they die,
 * and the LAAFFIC_FUZZ_IGNORE list. Each harness defines FUZZ_NAME before including it. */
#ifndef LAAFFIC_FUZZ_COMMON_H
#define LAAFFIC_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;

/* A broken promise: the reason on stderr, then abort() (libFuzzer keeps the input). */
static inline void die(const char *what, const char *detail)
{
    fprintf(stderr, "\n" FUZZ_NAME ": BROKEN PROMISE: %s%s%s\n", what, detail ? ": " : "",
            detail ? detail : "");
    fflush(stderr);
    abort();
}

/* The one Lua state of the run, with the standard libraries. */
static inline void new_state(void)
{
    L = luaL_newstate();
    if (L == NULL)
        die("luaL_newstate failed", NULL);
    luaL_openlibs(L);
}

/* LAAFFIC_FUZZ_IGNORE="tag,...": sets t.ignore[tag] = true in the checker table on top
 * of the stack, for each known finding a long campaign may step around. */
static inline void set_ignore(void)
{
    const char *p = getenv("LAAFFIC_FUZZ_IGNORE");
    if (p == NULL)
        return;
    lua_getfield(L, -1, "ignore");
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n > 0) {
            lua_pushlstring(L, p, n);
            lua_pushboolean(L, 1);
            lua_rawset(L, -3);
        }
        p += n + (p[n] == ',');
    }
    lua_pop(L, 1);
}

#endif
