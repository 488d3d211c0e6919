/* csv_fuzz.c - libFuzzer harness for the CSV reader (core.csv_string) as the encoder's
 * numberInfoList (core.encode / core.encode_body, parts, opts.rejects).
 *
 * The core's C sources are compiled into this binary with ASan, UBSan and coverage
 * (fuzz/fuzz.mk). The case itself is Lua: fuzz/csv_check.lua's C.run(core, bytes) splits
 * the bytes into options and CSV text, reads the text twice, encodes it part by part with
 * encode and encode_body, and checks every part against a reference reader and the table
 * path of the same core (see that file). spec/17-fuzz-regressions_spec.lua runs the same
 * function on the saved inputs. A raise, a false verdict or a sanitizer report aborts.
 * The text is also written to a scratch file for core.csv_file, read in blocks of 64
 * bytes in this build (LF_CSV_BLOCK), so small inputs cross many refills.
 * LAAFFIC_ROOT overrides the source tree's root (for fuzz/csv_check.lua). */
#define FUZZ_NAME "csv_fuzz"
#include "common.h"

#include <unistd.h>

#ifndef FUZZ_ROOT
#define FUZZ_ROOT "."
#endif

int luaopen_laaffic_core(lua_State *L);

static int ref_run, ref_core;
static char scratch[] = "/tmp/laaffic-csv-fuzz-XXXXXX";

static void remove_scratch(void)
{
    unlink(scratch);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *root = getenv("LAAFFIC_ROOT");
    (void)argc;
    (void)argv;
    if (root == NULL)
        root = FUZZ_ROOT;
    new_state();
    luaL_requiref(L, "laaffic.core", luaopen_laaffic_core, 0);
    ref_core = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushfstring(L, "%s/fuzz/csv_check.lua", root);
    if (luaL_dofile(L, lua_tostring(L, -1)) != LUA_OK)
        die("cannot load fuzz/csv_check.lua", lua_tostring(L, -1));
    /* the scratch file csv_file reads: one per process, removed at exit */
    {
        int fd = mkstemp(scratch);
        if (fd < 0)
            die("cannot make a scratch file", scratch);
        close(fd);
        atexit(remove_scratch);
        lua_pushstring(L, scratch);
        lua_setfield(L, -2, "path");
    }
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
        die("the CSV reader breaks the contract", lua_tostring(L, -1));
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}
