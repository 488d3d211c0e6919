/* encode_fuzz.c - libFuzzer harness for laaffic.core.encode / encode_body.
 *
 * The core's C sources are compiled into this binary with ASan, UBSan and coverage
 * instrumentation (fuzz/fuzz.mk); Lua 5.4 and lua-cjson are the system's, uninstrumented.
 * One Lua state lives for the whole run. For each input:
 *
 *   1. fuzz/builder.lua turns the bytes into task, opts, opts_bad (the same builder
 *      spec/17-fuzz-regressions_spec.lua uses for the saved inputs);
 *   2. core.encode(task, opts) and core.encode_body(task, opts) are called under pcall;
 *   3. with malformed opts both must raise; otherwise neither may raise, and each gives
 *      either nil, message (string), field (string or nil), code (-21 or -22), or JSON
 *      that cjson.decode reads (and builder.check_success finds faithful to the task);
 *   4. both calls must agree: the same error, or tostring(body) == json and #body == #json.
 *
 * Any broken promise is an abort() with the reason on stderr (libFuzzer saves the input).
 * The environment variable LAAFFIC_FUZZ_BUILDER overrides the builder's path, and
 * LAAFFIC_FUZZ_IGNORE="tag,..." steps around known findings (builder.lua, B.ignore). */
#define FUZZ_NAME "encode_fuzz"
#include "common.h"

#ifndef FUZZ_DIR
#define FUZZ_DIR "fuzz"
#endif

int luaopen_laaffic_core(lua_State *L);

static int ref_builder, ref_core;

static void push_field(int ref, const char *name)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *builder = getenv("LAAFFIC_FUZZ_BUILDER");
    (void)argc;
    (void)argv;
    if (builder == NULL)
        builder = FUZZ_DIR "/builder.lua";
    new_state();
    /* the instrumented core, as package.loaded["laaffic.core"] */
    luaL_requiref(L, "laaffic.core", luaopen_laaffic_core, 0);
    ref_core = luaL_ref(L, LUA_REGISTRYINDEX);
    if (luaL_dofile(L, builder) != LUA_OK)
        die("cannot load the builder", lua_tostring(L, -1));
    if (!lua_istable(L, -1))
        die("the builder did not return a table", builder);
    set_ignore(); /* known findings to step around */
    ref_builder = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* Calls a checker B.name(args at idx..idx+n-1); dies with its reason if it says false. */
static void check_with(const char *name, int idx, int n, const char *what)
{
    int i;
    push_field(ref_builder, name);
    for (i = 0; i < n; i++)
        lua_pushvalue(L, idx + i);
    if (lua_pcall(L, n, 2, 0) != LUA_OK)
        die("the checker raised (a harness bug)", lua_tostring(L, -1));
    if (!lua_toboolean(L, -2)) {
        char buf[1200];
        snprintf(buf, sizeof buf, "%s: %s", what, lua_tostring(L, -1));
        die("the output breaks the contract", buf);
    }
    lua_pop(L, 2);
}

/* The results of one encode call, left on the stack from `base`. Returns 1 on success
 * (base: json or body, base+1: info) or 0 on failure (base: nil, +1 msg, +2 field, +3 code). */
static int classify(int base, int nres, const char *fn)
{
    if (nres >= 1 && lua_isnil(L, base)) {
        int isnum = 0;
        lua_Integer code;
        if (nres != 4)
            die(fn, "a failure must return exactly nil, message, field, code");
        if (lua_type(L, base + 1) != LUA_TSTRING)
            die(fn, "the failure message is not a string");
        if (!lua_isnil(L, base + 2) && lua_type(L, base + 2) != LUA_TSTRING)
            die(fn, "the failure field is neither a string nor nil");
        code = lua_tointegerx(L, base + 3, &isnum);
        if (!isnum || (code != -21 && code != -22))
            die(fn, "the failure code is not -21 or -22");
        check_with("check_failure", base + 1, 3, fn);
        return 0;
    }
    if (nres != 2 || lua_type(L, base + 1) != LUA_TTABLE)
        die(fn, "a success must return exactly a result and an info table");
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int opts_bad, base, nres, ok_s, ok_b;
    size_t jlen, blen;
    const char *json, *btext;

    lua_settop(L, 0);
    push_field(ref_builder, "build");
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 3, 0) != LUA_OK)
        die("the builder raised (a harness bug)", lua_tostring(L, -1));
    /* 1 task, 2 opts, 3 opts_bad; 4 and 5: a copy of opts for each call (its own
     * opts.rejects list) */
    opts_bad = lua_toboolean(L, 3);
    push_field(ref_builder, "call_opts");
    lua_pushvalue(L, 2);
    lua_call(L, 1, 1);
    push_field(ref_builder, "call_opts");
    lua_pushvalue(L, 2);
    lua_call(L, 1, 1);

    /* core.encode(task, opts) -> results from 4 */
    base = lua_gettop(L) + 1;
    push_field(ref_core, "encode");
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 4);
    if (lua_pcall(L, 2, LUA_MULTRET, 0) != LUA_OK) {
        if (opts_bad) {
            const char *m = lua_tostring(L, -1);
            if (m == NULL || strstr(m, "opts") == NULL)
                die("encode raised for malformed opts without naming them", m);
            /* encode_body reads opts the same way */
            lua_settop(L, 5);
            push_field(ref_core, "encode_body");
            lua_pushvalue(L, 1);
            lua_pushvalue(L, 5);
            if (lua_pcall(L, 2, LUA_MULTRET, 0) == LUA_OK)
                die("encode_body accepted malformed opts", NULL);
            goto done;
        }
        die("encode raised", lua_tostring(L, -1));
    }
    if (opts_bad)
        die("encode accepted malformed opts", NULL);
    nres = lua_gettop(L) - base + 1;
    ok_s = classify(base, nres, "encode");
    if (ok_s) {
        if (lua_type(L, base) != LUA_TSTRING)
            die("encode", "the result is not a string");
        /* check_success: strict UTF-8, a strict cjson decodes it (what it reads the
         * default cjson.decode reads too, so that decode is not repeated here: on a
         * 10 MB part it cost a tenth of a second), the same fields and rows, the rules,
         * the rejects (rows are tried one by one through the same core) */
        lua_pushvalue(L, 1);
        lua_pushvalue(L, 4);
        lua_pushvalue(L, base);
        lua_pushvalue(L, base + 1);
        lua_rawgeti(L, LUA_REGISTRYINDEX, ref_core);
        check_with("check_success", lua_gettop(L) - 4, 5, "encode");
        lua_pop(L, 5);
    }

    /* core.encode_body(task, opts) -> results from base2 */
    {
        int base2 = lua_gettop(L) + 1, nres2;
        push_field(ref_core, "encode_body");
        lua_pushvalue(L, 1);
        lua_pushvalue(L, 5);
        if (lua_pcall(L, 2, LUA_MULTRET, 0) != LUA_OK)
            die("encode_body raised", lua_tostring(L, -1));
        nres2 = lua_gettop(L) - base2 + 1;
        ok_b = classify(base2, nres2, "encode_body");
        if (ok_b != ok_s)
            die("encode and encode_body disagree on success", NULL);
        if (!ok_s) {
            int i;
            for (i = 1; i <= 3; i++)
                if (!lua_rawequal(L, base + i, base2 + i))
                    die("encode and encode_body fail differently",
                        lua_tostring(L, base2 + 1));
            goto done;
        }
        if (lua_type(L, base2) != LUA_TUSERDATA)
            die("encode_body", "the result is not a userdata");
        /* #body == #json, tostring(body) == json */
        json = lua_tolstring(L, base, &jlen);
        blen = (size_t)luaL_len(L, base2);
        if (blen != jlen)
            die("#body differs from #encode(...)", NULL);
        luaL_tolstring(L, base2, &blen);
        btext = lua_tostring(L, -1);
        if (blen != jlen || memcmp(btext, json, jlen) != 0)
            die("tostring(body) differs from encode(...)", NULL);
        lua_pop(L, 1);
        lua_getfield(L, base2 + 1, "bytes");
        if (lua_tointeger(L, -1) != (lua_Integer)jlen)
            die("encode_body: info.bytes differs from #body", NULL);
        lua_pop(L, 1);
        lua_pushvalue(L, 4);
        lua_pushvalue(L, 5);
        check_with("same_rejects", lua_gettop(L) - 1, 2, "encode_body");
        lua_pop(L, 2);
        /* close, then the body is empty; closing twice is harmless */
        lua_getfield(L, base2, "close");
        lua_pushvalue(L, base2);
        if (lua_pcall(L, 1, 0, 0) != LUA_OK)
            die("body:close raised", lua_tostring(L, -1));
        lua_getfield(L, base2, "close");
        lua_pushvalue(L, base2);
        if (lua_pcall(L, 1, 0, 0) != LUA_OK)
            die("body:close raised the second time", lua_tostring(L, -1));
        if (luaL_len(L, base2) != 0)
            die("#body is not 0 after close", NULL);
    }

done:
    lua_settop(L, 0);
    /* a full collection: bodies are freed by __gc now, so a leak shows as a leak */
    lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}
