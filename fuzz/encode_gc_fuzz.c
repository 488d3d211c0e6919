/* encode_gc_fuzz.c - the encode harness's finalizer mode: __gc metamethods that add keys,
 * drop strings and rows, set trap metatables or encode again run while core.encode and
 * core.encode_body walk the task (fuzz/encode_gc.lua says how they are timed).
 *
 * The core's C sources are compiled in with ASan, UBSan and coverage (fuzz/fuzz.mk). The
 * case itself is Lua: G.run(core, bytes), the same function spec/17 runs on the inputs
 * kept in fuzz/regressions/encode_gc/. A false verdict, a raise out of G.run, a sanitizer
 * report or a leak aborts. */
#define FUZZ_NAME "encode_gc_fuzz"
#include "common.h"

#ifndef FUZZ_DIR
#define FUZZ_DIR "fuzz"
#endif

int luaopen_laaffic_core(lua_State *L);

static int ref_run, ref_core;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    new_state();
    luaL_requiref(L, "laaffic.core", luaopen_laaffic_core, 0);
    ref_core = luaL_ref(L, LUA_REGISTRYINDEX);
    if (luaL_dofile(L, FUZZ_DIR "/encode_gc.lua") != LUA_OK)
        die("cannot load fuzz/encode_gc.lua", lua_tostring(L, -1));
    lua_getfield(L, -1, "run");
    ref_run = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref_run);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref_core);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 2, 2, 0) != LUA_OK)
        die("the case raised", lua_tostring(L, -1));
    if (!lua_toboolean(L, -2))
        die("the encoder breaks the contract under finalizers", lua_tostring(L, -1));
    lua_settop(L, 0);
    return 0;
}
