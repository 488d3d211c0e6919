/* push_fuzz.c - libFuzzer harness for laaffic.push.parse (pure Lua, on lua-cjson).
 *
 * The parser is Lua code, so the compiler's coverage instrumentation sees none of it.
 * Coverage comes from Lua itself: a line and call hook, set only while parse runs, hashes
 * (chunk name, line) and the previous location into a byte counter of an array placed in
 * the section "__libfuzzer_extra_counters", which libFuzzer reads as extra coverage next
 * to its own (clears before each input, compares after). Each distinct error message
 * (digits left out) counts as coverage too, since cjson's C decoder is not instrumented.
 *
 * For each input, push.parse(body) and push.parse(body, SMALL_OPTS) run under pcall
 * (SMALL_OPTS with a fresh opts.invalid, so the records that cannot be keyed are listed):
 * a raise is an abort(), and so is any result fuzz/push_check.lua finds against the
 * documented promises (field types, raw, unknown fields as sent, limits).
 * LAAFFIC_ROOT overrides the source tree's root (for lua/ and fuzz/push_check.lua), and
 * LAAFFIC_FUZZ_IGNORE="tag,..." steps around known findings (push_check.lua, C.ignore). */
#define FUZZ_NAME "push_fuzz"
#include "common.h"

#ifndef FUZZ_ROOT
#define FUZZ_ROOT "."
#endif


/* ---------------------------------------------------------------- Lua coverage */

#define NCOUNTERS (1u << 16)
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t
    lua_counters[NCOUNTERS];

static uint32_t prev_loc;

/* chunk name -> hash, cached by the name's address (stable while the chunk is loaded) */
static struct {
    const char *p;
    uint32_t h;
} src_cache[64];

static uint32_t src_hash(const char *s)
{
    unsigned slot = (unsigned)(((uintptr_t)s >> 4) & 63u);
    uint32_t h = 2166136261u;
    const char *q;
    if (src_cache[slot].p == s)
        return src_cache[slot].h;
    for (q = s; *q; q++)
        h = (h ^ (uint8_t)*q) * 16777619u;
    src_cache[slot].p = s;
    src_cache[slot].h = h;
    return h;
}

static void bump(uint32_t loc)
{
    uint8_t *c = &lua_counters[(loc ^ prev_loc) & (NCOUNTERS - 1)];
    if (*c != 255)
        (*c)++;
    prev_loc = loc >> 1;
}

static void cov_hook(lua_State *L, lua_Debug *ar)
{
    uint32_t loc;
    if (!lua_getinfo(L, "S", ar) || ar->source == NULL)
        return;
    loc = src_hash(ar->source);
    if (ar->event == LUA_HOOKLINE)
        loc ^= (uint32_t)ar->currentline * 2654435761u;
    else /* a call: which function (where it is defined) */
        loc ^= ((uint32_t)ar->linedefined * 40503u) ^ 0x9e3779b9u;
    bump(loc);
}

static void cov_string(const char *s)
{
    uint32_t h = 0x811c9dc5u;
    int n = 0;
    for (; *s && n < 80; s++, n++)
        if (*s < '0' || *s > '9')
            h = (h ^ (uint8_t)*s) * 16777619u;
    prev_loc = 0;
    bump(h);
}

/* ---------------------------------------------------------------- harness */

static int ref_parse, ref_check, ref_small_opts;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *root = getenv("LAAFFIC_ROOT");
    (void)argc;
    (void)argv;
    if (root == NULL)
        root = FUZZ_ROOT;
    new_state();
    /* package.path = <root>/lua/?.lua;<root>/lua/?/init.lua;<default> */
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;", root, root);
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);

    lua_getglobal(L, "require");
    lua_pushliteral(L, "laaffic.push");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)
        die("cannot require laaffic.push", lua_tostring(L, -1));
    lua_getfield(L, -1, "parse");
    ref_parse = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);

    lua_pushfstring(L, "%s/fuzz/push_check.lua", root);
    if (luaL_dofile(L, lua_tostring(L, -1)) != LUA_OK)
        die("cannot load fuzz/push_check.lua", lua_tostring(L, -1));
    set_ignore(); /* known findings to step around */
    lua_getfield(L, -1, "check");
    ref_check = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);

    /* the second run's options: every limit small, a non-zero offset */
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, 4096);
    lua_setfield(L, -2, "max_bytes");
    lua_pushinteger(L, 3);
    lua_setfield(L, -2, "max_records");
    lua_pushinteger(L, 4);
    lua_setfield(L, -2, "max_depth");
    lua_pushinteger(L, 28800);
    lua_setfield(L, -2, "utc_offset");
    ref_small_opts = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

static void run(int body, int with_opts)
{
    int top = lua_gettop(L), rc;
    if (with_opts) { /* a fresh opts.invalid: the records that cannot be keyed */
        lua_rawgeti(L, LUA_REGISTRYINDEX, ref_small_opts);
        lua_newtable(L);
        lua_setfield(L, -2, "invalid");
        lua_pop(L, 1);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref_parse);
    lua_pushvalue(L, body);
    if (with_opts)
        lua_rawgeti(L, LUA_REGISTRYINDEX, ref_small_opts);
    else
        lua_pushnil(L);
    prev_loc = 0;
    lua_sethook(L, cov_hook, LUA_MASKLINE | LUA_MASKCALL, 0);
    rc = lua_pcall(L, 2, 2, 0);
    lua_sethook(L, NULL, 0, 0);
    if (rc != LUA_OK)
        die("push.parse raised", lua_tostring(L, -1));
    if (lua_isnil(L, -2) && lua_type(L, -1) == LUA_TSTRING)
        cov_string(lua_tostring(L, -1));
    /* check(body, opts, records, err) */
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref_check);
    lua_pushvalue(L, body);
    if (with_opts)
        lua_rawgeti(L, LUA_REGISTRYINDEX, ref_small_opts);
    else
        lua_pushnil(L);
    lua_pushvalue(L, top + 1);
    lua_pushvalue(L, top + 2);
    if (lua_pcall(L, 4, 2, 0) != LUA_OK)
        die("the checker raised (a harness bug)", lua_tostring(L, -1));
    if (!lua_toboolean(L, -2))
        die(with_opts ? "parse(body, small opts)" : "parse(body)", lua_tostring(L, -1));
    lua_settop(L, top);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_settop(L, 0);
    lua_pushlstring(L, (const char *)data, size);
    run(1, 0);
    run(1, 1);
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}
