/* multi.c - core.multi: requests on several handles at once, in the calling thread:
 *
 *   local m = core.multi()
 *   m:add(h1, "POST", url, headers, body1); m:add(h2, ...)
 *   for _, done in ipairs(m:wait(1.0)) do  -- what finished within 1 s (may be none)
 *     -- done.handle, and done.response or done.error, done.kind, done.sent
 *   end
 *
 * The multi keeps each running handle and its body referenced until it finishes. */
#include <stdlib.h>
#include <time.h>

#include "compat.h"
#include "http.h"

#define MULTI_MT "laaffic.multi"

typedef struct lf_multi {
    CURLM *m;
    int anchors; /* registry ref: lightuserdata(h) -> { handle, body } */
    int running;  /* handles added and not yet reported */
} lf_multi;

static lf_multi *check_multi(lua_State *L)
{
    lf_multi *m = (lf_multi *)luaL_checkudata(L, 1, MULTI_MT);
    if (m->m == NULL)
        luaL_error(L, "laaffic.multi: it is closed");
    return m;
}

/* The transfer of h no longer sends its body. */
static void release_body(lf_http *h)
{
    if (h->sending) {
        lf_body_release(h->sending);
        h->sending = NULL;
    }
}

/* Drops the multi's entry for h (the table of entries at idx); allocates nothing. */
static void drop_entry(lua_State *L, int idx, lf_http *h)
{
    lua_pushlightuserdata(L, h);
    lua_pushnil(L);
    lua_rawset(L, idx);
}

/* Takes h out of the multi it runs in, before its report: out of curl, out of the
 * running count and the entries, its body released. Allocates nothing, so it is safe
 * from __gc and from a finalizer that runs during m:wait. */
void lf_http_detach(lua_State *L, lf_http *h)
{
    lf_multi *m = h->multi;
    h->multi = NULL;
    release_body(h);
    if (m == NULL || m->m == NULL)
        return;
    if (h->easy)
        curl_multi_remove_handle(m->m, h->easy);
    m->running--;
    lua_rawgeti(L, LUA_REGISTRYINDEX, m->anchors);
    if (lua_istable(L, -1))
        drop_entry(L, lua_gettop(L), h);
    lua_pop(L, 1);
}

static int multi_close(lua_State *L)
{
    lf_multi *m = (lf_multi *)luaL_checkudata(L, 1, MULTI_MT);
    if (m->m == NULL)
        return 0;
    /* take every handle still running out of it */
    lua_rawgeti(L, LUA_REGISTRYINDEX, m->anchors);
    if (lua_istable(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lf_http *h = (lf_http *)lua_touserdata(L, -2);
            if (h && h->multi == m) {
                if (h->easy)
                    curl_multi_remove_handle(m->m, h->easy);
                curl_slist_free_all(h->hdrs);
                h->hdrs = NULL;
                release_body(h);
                h->multi = NULL;
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    luaL_unref(L, LUA_REGISTRYINDEX, m->anchors);
    m->anchors = LUA_NOREF;
    curl_multi_cleanup(m->m);
    m->m = NULL;
    m->running = 0;
    return 0;
}

static int multi_new(lua_State *L)
{
    lf_multi *m = (lf_multi *)lua_newuserdata(L, sizeof *m);
    memset(m, 0, sizeof *m);
    m->anchors = LUA_NOREF;
    luaL_getmetatable(L, MULTI_MT);
    lua_setmetatable(L, -2);
    /* curl first: if it fails, no registry reference is left behind */
    m->m = curl_multi_init();
    if (m->m == NULL)
        return luaL_error(L, "laaffic.multi: curl_multi_init failed");
    lua_newtable(L);
    m->anchors = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

/* m:add(h, method, url, headers, body) */
static int multi_add(lua_State *L)
{
    lf_multi *m = check_multi(L);
    lf_http *h;
    lf_body *b;
    CURLMcode mc;
    lua_settop(L, 6);
    h = lf_http_check(L, 2);
    if (h->multi)
        return luaL_error(L, "laaffic.multi: the handle is already running");
    b = lf_http_prepare(L, h, 3);
    if (h->multi || m->m == NULL) /* changed by a finalizer during prepare's checks */
        return luaL_error(L, "laaffic.multi: the handle or the multi changed while adding");
    /* the body is busy from here: a finalizer run by the allocations below may close it */
    if (b != NULL) {
        b->busy++;
        h->sending = b;
    }
    /* the entry keeps the handle and the body alive until the transfer is reported */
    lua_rawgeti(L, LUA_REGISTRYINDEX, m->anchors); /* 7 */
    lua_pushlightuserdata(L, h);
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, 6);
    lua_rawseti(L, -2, 2);
    lua_rawset(L, 7);
    /* from here on nothing allocates in Lua */
    mc = (h->easy && m->m) ? curl_multi_add_handle(m->m, h->easy) : CURLM_BAD_EASY_HANDLE;
    if (mc != CURLM_OK) {
        if (h->easy) {
            curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, NULL);
            curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, NULL);
        }
        release_body(h);
        drop_entry(L, 7, h);
        return luaL_error(L, "laaffic.multi: %s", curl_multi_strerror(mc));
    }
    h->multi = m;
    m->running++;
    return 0;
}

/* Reports the finished transfer of h (its result rc) as an entry appended to the result
 * table at index 3; the entries table is at 4. */
static void report(lua_State *L, lf_multi *m, lf_http *h, CURLcode rc, int n)
{
    int k;
    curl_multi_remove_handle(m->m, h->easy);
    h->multi = NULL;
    release_body(h);
    m->running--;
    lua_pushlightuserdata(L, h);
    lua_rawget(L, 4);          /* { handle, body }: kept on the stack */
    /* dropped before anything allocates: an allocation can run a finalizer that adds h
     * again, and the anchor that add makes must stay */
    drop_entry(L, 4, h);
    lua_createtable(L, 0, 5);  /* the entry */
    lua_rawgeti(L, -2, 1);
    lua_setfield(L, -2, "handle");
    k = lf_http_finish(L, h, rc);
    if (k == 1) {
        lua_setfield(L, -2, "response");
    } else {
        lua_setfield(L, -5, "sent");
        lua_setfield(L, -4, "kind");
        lua_setfield(L, -3, "error");
        lua_pop(L, 1); /* nil */
    }
    lua_rawseti(L, 3, n);
    lua_pop(L, 1); /* { handle, body } */
}

/* m:wait([timeout]) -> list of { handle =, response = } | { handle =, error =, kind =,
 * sent = }: the transfers that finished, waiting up to timeout seconds (default 1) for
 * at least one. An empty list: none finished in time, or none is running. Finalizers run
 * by report() may close handles or the multi itself: each turn starts from curl's state. */
static int multi_wait(lua_State *L)
{
    lf_multi *m = check_multi(L);
    lua_Number timeout = luaL_optnumber(L, 2, 1.0);
    struct timespec t0, t;
    int n = 0;
    luaL_argcheck(L, timeout >= 0 && timeout <= 86400, 2, "timeout must be 0 to 86400 seconds");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    lua_settop(L, 2);
    lua_newtable(L); /* 3: the result */
    lua_rawgeti(L, LUA_REGISTRYINDEX, m->anchors); /* 4 */
    while (m->m != NULL) {
        int still, left;
        CURLMsg *msg;
        double elapsed;
        curl_multi_perform(m->m, &still);
        while (m->m != NULL && (msg = curl_multi_info_read(m->m, &left)) != NULL) {
            lf_http *h = NULL;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&h);
            if (h == NULL || h->multi != m)
                continue;
            report(L, m, h, msg->data.result, ++n); /* msg is invalid after this */
        }
        if (n > 0 || m->running <= 0 || m->m == NULL)
            break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        elapsed = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
        if (elapsed >= timeout)
            break;
        {
            double ms = (timeout - elapsed) * 1000;
            curl_multi_poll(m->m, NULL, 0, ms > 1000 ? 1000 : (int)ms + 1, NULL);
        }
    }
    lua_pushvalue(L, 3);
    return 1;
}

static int multi_running(lua_State *L)
{
    lf_multi *m = check_multi(L);
    lua_pushinteger(L, m->running);
    return 1;
}

int lf_multi_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"add", multi_add}, {"wait", multi_wait}, {"running", multi_running},
        {"close", multi_close}, {"__gc", multi_close}, {NULL, NULL}};
    lf_newclass(L, MULTI_MT, methods);
    lua_pop(L, 1);
    lua_pushcfunction(L, multi_new);
    lua_setfield(L, -2, "multi");
    return 0;
}
