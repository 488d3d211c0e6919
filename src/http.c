/* http.c - HTTP(S) through libcurl: one easy handle per client, so consecutive requests
 * reuse the connection (HTTP/1.1 keep-alive, or HTTP/2 where the server offers it).
 *
 *   local h = core.http{ connect_timeout = 5, timeout = 30, cafile = ..., ... }
 *   local res, err, kind, sent = h:request("POST", url, headers, body)
 *
 * body is a string or a laaffic.body userdata; a body's bytes go to curl by pointer
 * (CURLOPT_POSTFIELDS), never through a Lua string. The callbacks only append to C
 * buffers owned by the handle userdata, so no Lua error can unwind through libcurl, and
 * a raise anywhere leaves nothing that __gc cannot free.
 *
 * Failures are classified for the retry policy: `kind` says what failed and `sent` says
 * whether any of the request may have reached the server (only `sent == false` failures
 * are safe to retry). Request headers (which carry Sign) never appear in messages. */
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <curl/curl.h>

#include "buffer.h"
#include "compat.h"
#include "laaffic.h"

#define HTTP_MT "laaffic.http"
#define DEFAULT_MAX_RESPONSE (1024 * 1024)

typedef struct cbuf {
    char *data;
    size_t len, cap;
} cbuf;

typedef struct lf_http {
    CURL *easy;
    CURLM *multi;            /* the multi handle it is running in, or NULL */
    struct curl_slist *hdrs; /* the request's headers, freed after each perform */
    struct curl_slist *resolve; /* opts.resolve: "host:port:address" entries */
    cbuf body, head;         /* the response */
    size_t max_response;
    int too_large, oom;
    int reuse;
    char errbuf[CURL_ERROR_SIZE];
} lf_http;

static int cbuf_add(cbuf *b, const char *p, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        char *q;
        while (cap - b->len < n)
            cap *= 2;
        q = (char *)realloc(b->data, cap);
        if (q == NULL)
            return -1;
        b->data = q;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static void cbuf_free(cbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    lf_http *h = (lf_http *)ud;
    size_t len = size * n;
    if (h->body.len + len > h->max_response) {
        h->too_large = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (cbuf_add(&h->body, p, len)) {
        h->oom = 1;
        return 0;
    }
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    lf_http *h = (lf_http *)ud;
    size_t len = size * n;
    /* a new status line (after 100 Continue, or a redirect) starts a new header block */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
        h->head.len = 0;
    if (h->head.len + len > 64 * 1024) {
        h->too_large = 1;
        return 0;
    }
    if (cbuf_add(&h->head, p, len)) {
        h->oom = 1;
        return 0;
    }
    return len;
}

static lf_http *check_http(lua_State *L, int idx)
{
    lf_http *h = (lf_http *)luaL_checkudata(L, idx, HTTP_MT);
    if (h->easy == NULL)
        luaL_error(L, "laaffic.http: the handle is closed");
    return h;
}

/* close and __gc: idempotent */
static int http_close(lua_State *L)
{
    lf_http *h = (lf_http *)luaL_checkudata(L, 1, HTTP_MT);
    if (h->easy && h->multi) {
        curl_multi_remove_handle(h->multi, h->easy);
        h->multi = NULL;
    }
    if (h->easy) {
        curl_easy_cleanup(h->easy);
        h->easy = NULL;
    }
    if (h->hdrs) {
        curl_slist_free_all(h->hdrs);
        h->hdrs = NULL;
    }
    if (h->resolve) {
        curl_slist_free_all(h->resolve);
        h->resolve = NULL;
    }
    cbuf_free(&h->body);
    cbuf_free(&h->head);
    return 0;
}

static double opt_number(lua_State *L, int t, const char *name, double def, double lo, double hi)
{
    double v = def;
    lua_getfield(L, t, name);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "laaffic.http: option %s must be a number", name);
        v = (double)lua_tonumber(L, -1);
        if (!(v >= lo && v <= hi))
            luaL_error(L, "laaffic.http: option %s must be from %f to %f", name, lo, hi);
    }
    lua_pop(L, 1);
    return v;
}

/* Returns the string option, or NULL. The string stays valid while opts is alive: it is
 * used only inside http_new, and curl copies every string option. */
static const char *opt_string(lua_State *L, int t, const char *name)
{
    const char *s = NULL;
    lua_getfield(L, t, name);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "laaffic.http: option %s must be a string", name);
        s = lua_tostring(L, -1);
    }
    lua_pop(L, 1);
    return s;
}

static int opt_bool(lua_State *L, int t, const char *name, int def)
{
    int v = def;
    lua_getfield(L, t, name);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TBOOLEAN)
            luaL_error(L, "laaffic.http: option %s must be a boolean", name);
        v = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

#define SETOPT(h, o, v)                                                                  \
    do {                                                                                 \
        if (curl_easy_setopt((h)->easy, (o), (v)) != CURLE_OK)                           \
            return luaL_error(L, "laaffic.http: libcurl refused option " #o);            \
    } while (0)

/* core.http([opts]) -> handle.
 * opts: connect_timeout (s, default 10), timeout (s, total deadline, default 60),
 * proxy, cafile, capath, user_agent, insecure (default false), http2 (default true),
 * reuse (default true: keep the connection between requests), max_response (bytes),
 * resolve (a list of "host:port:address": connect there for that name, as curl --resolve). */
static int http_new(lua_State *L)
{
    lf_http *h;
    const char *s;
    double ct, to;
    int t = 1;
    if (lua_isnoneornil(L, 1)) {
        lua_newtable(L);
        lua_replace(L, 1);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    h = (lf_http *)lua_newuserdata(L, sizeof *h);
    memset(h, 0, sizeof *h);
    luaL_getmetatable(L, HTTP_MT);
    lua_setmetatable(L, -2);
    h->easy = curl_easy_init();
    if (h->easy == NULL)
        return luaL_error(L, "laaffic.http: curl_easy_init failed");

    ct = opt_number(L, t, "connect_timeout", 10, 0.001, 86400);
    to = opt_number(L, t, "timeout", 60, 0.001, 86400);
    h->max_response = (size_t)opt_number(L, t, "max_response", DEFAULT_MAX_RESPONSE, 1024, 1e9);
    h->reuse = opt_bool(L, t, "reuse", 1);

    SETOPT(h, CURLOPT_NOSIGNAL, 1L);
    SETOPT(h, CURLOPT_PRIVATE, (void *)h);
    SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(ct * 1000));
    SETOPT(h, CURLOPT_TIMEOUT_MS, (long)(to * 1000));
    SETOPT(h, CURLOPT_ERRORBUFFER, h->errbuf);
    SETOPT(h, CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(h, CURLOPT_WRITEDATA, (void *)h);
    SETOPT(h, CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(h, CURLOPT_HEADERDATA, (void *)h);
    /* a POST carrying credentials never follows a redirect */
    SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    SETOPT(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SETOPT(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SETOPT(h, CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(h, CURLOPT_HTTP_VERSION,
           opt_bool(L, t, "http2", 1) ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
    if (opt_bool(L, t, "insecure", 0)) {
        SETOPT(h, CURLOPT_SSL_VERIFYPEER, 0L);
        SETOPT(h, CURLOPT_SSL_VERIFYHOST, 0L);
    } else {
        SETOPT(h, CURLOPT_SSL_VERIFYPEER, 1L);
        SETOPT(h, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    if ((s = opt_string(L, t, "cafile")) != NULL)
        SETOPT(h, CURLOPT_CAINFO, s);
    if ((s = opt_string(L, t, "capath")) != NULL)
        SETOPT(h, CURLOPT_CAPATH, s);
    if ((s = opt_string(L, t, "proxy")) != NULL)
        SETOPT(h, CURLOPT_PROXY, s);
    s = opt_string(L, t, "user_agent");
    SETOPT(h, CURLOPT_USERAGENT, s ? s : "laaffic/" LAAFFIC_VERSION);
    lua_getfield(L, t, "resolve");
    if (!lua_isnil(L, -1)) {
        size_t i, n;
        if (lua_type(L, -1) != LUA_TTABLE)
            return luaL_error(L, "laaffic.http: option resolve must be a list of \"host:port:address\"");
        n = lf_rawlen(L, -1);
        for (i = 1; i <= n; i++) {
            struct curl_slist *l;
            lua_rawgeti(L, -1, (lua_Integer)i);
            if (lua_type(L, -1) != LUA_TSTRING)
                return luaL_error(L, "laaffic.http: option resolve must be a list of \"host:port:address\"");
            l = curl_slist_append(h->resolve, lua_tostring(L, -1));
            if (l == NULL)
                return luaL_error(L, "laaffic.http: out of memory");
            h->resolve = l;
            lua_pop(L, 1);
        }
        SETOPT(h, CURLOPT_RESOLVE, h->resolve);
    }
    lua_pop(L, 1);
    if (!h->reuse) {
        SETOPT(h, CURLOPT_FORBID_REUSE, 1L);
        SETOPT(h, CURLOPT_FRESH_CONNECT, 1L);
    }
    return 1;
}

static const char *kind_of(CURLcode rc, const lf_http *h, int *sent)
{
    curl_off_t pretransfer = 0, uploaded = 0;
    curl_easy_getinfo(h->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
    curl_easy_getinfo(h->easy, CURLINFO_SIZE_UPLOAD_T, &uploaded);
    *sent = 1;
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        *sent = 0;
        return "dns";
    case CURLE_COULDNT_CONNECT:
        *sent = 0;
        return "connect";
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        *sent = 0;
        return "url";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
        /* the server's certificate is not trusted (wrong host, expired, unknown CA): no
         * request byte was written, and trying again will not change the certificate */
        *sent = pretransfer > 0;
        return "certificate";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_USE_SSL_FAILED:
        /* the handshake failed: no request byte was written */
        *sent = pretransfer > 0;
        return "tls";
    case CURLE_OPERATION_TIMEDOUT:
        /* before the request started (connect or handshake), nothing was sent */
        *sent = pretransfer > 0 || uploaded > 0;
        return "timeout";
    case CURLE_WRITE_ERROR:
        if (h->too_large)
            return "too_large";
        if (h->oom)
            return "memory";
        return "transport";
    case CURLE_GOT_NOTHING:
        return "empty";
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return "connection";
    default:
        *sent = pretransfer > 0 || uploaded > 0;
        return "transport";
    }
}

static int has_crlf(const char *s, size_t n)
{
    return memchr(s, '\r', n) != NULL || memchr(s, '\n', n) != NULL || memchr(s, 0, n) != NULL;
}

/* Parses the raw response header block into a table of lower-case name -> value
 * (repeated names joined with ", "). */
static void push_headers(lua_State *L, const cbuf *hb)
{
    size_t i = 0;
    lua_newtable(L);
    while (i < hb->len) {
        const char *line = hb->data + i, *colon, *end;
        size_t llen;
        end = (const char *)memchr(line, '\n', hb->len - i);
        llen = end ? (size_t)(end - line) : hb->len - i;
        i += llen + 1;
        if (llen && line[llen - 1] == '\r')
            llen--;
        colon = (const char *)memchr(line, ':', llen);
        if (colon == NULL || colon == line)
            continue;
        {
            luaL_Buffer B;
            size_t k, nlen = (size_t)(colon - line);
            const char *v = colon + 1, *vend = line + llen;
            while (v < vend && (*v == ' ' || *v == '\t'))
                v++;
            while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
                vend--;
            luaL_buffinit(L, &B);
            for (k = 0; k < nlen; k++) {
                char c = line[k];
                luaL_addchar(&B, (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c);
            }
            luaL_pushresult(&B);
            lua_pushvalue(L, -1);
            lua_rawget(L, -3);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                lua_pushlstring(L, v, (size_t)(vend - v));
            } else {
                lua_pushliteral(L, ", ");
                lua_pushlstring(L, v, (size_t)(vend - v));
                lua_concat(L, 3);
            }
            lua_rawset(L, -3);
        }
    }
}

static void set_time(lua_State *L, CURL *c, CURLINFO info, const char *name)
{
    curl_off_t us = 0;
    curl_easy_getinfo(c, info, &us);
    lua_pushnumber(L, (lua_Number)us / 1e6);
    lua_setfield(L, -2, name);
}

/* Sets the easy handle up for one request from the arguments at base .. base+3: method,
 * url, headers, body. The body's bytes are not copied: the caller keeps the body alive
 * until finish(). */
static void prepare(lua_State *L, lf_http *h, int base)
{
    const char *method = luaL_checkstring(L, base);
    const char *url = luaL_checkstring(L, base + 1);
    const char *data = NULL;
    size_t dlen = 0;
    lf_body *b;

    if (!lua_isnoneornil(L, base + 2))
        luaL_checktype(L, base + 2, LUA_TTABLE);
    if ((b = lf_body_test(L, base + 3)) != NULL) {
        luaL_argcheck(L, b->data != NULL || b->len == 0, base + 3, "the body was closed");
        data = b->data;
        dlen = b->len;
    } else if (!lua_isnoneornil(L, base + 3)) {
        data = luaL_checklstring(L, base + 3, &dlen);
    }
    /* headers: the list lives in the handle, so a raise here cannot leak it */
    if (h->hdrs) {
        curl_slist_free_all(h->hdrs);
        h->hdrs = NULL;
    }
    if (lua_istable(L, base + 2)) {
        lua_pushnil(L);
        while (lua_next(L, base + 2)) {
            size_t nlen, vlen;
            const char *n, *v;
            struct curl_slist *l;
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                luaL_argerror(L, base + 2, "headers must map names to string values");
            n = lua_tolstring(L, -2, &nlen);
            v = lua_tolstring(L, -1, &vlen);
            if (nlen == 0 || has_crlf(n, nlen) || memchr(n, ':', nlen) || has_crlf(v, vlen))
                luaL_argerror(L, base + 2, "a header name or value contains CR, LF, NUL or ':'");
            lua_pushfstring(L, "%s: %s", n, v);
            l = curl_slist_append(h->hdrs, lua_tostring(L, -1));
            if (l == NULL)
                luaL_error(L, "laaffic.http: out of memory");
            h->hdrs = l;
            lua_pop(L, 2);
        }
    }
    /* no Expect: 100-continue round trip for large bodies */
    {
        struct curl_slist *l = curl_slist_append(h->hdrs, "Expect:");
        if (l == NULL)
            luaL_error(L, "laaffic.http: out of memory");
        h->hdrs = l;
    }
    h->body.len = h->head.len = 0;
    h->too_large = h->oom = 0;
    h->errbuf[0] = 0;

    curl_easy_setopt(h->easy, CURLOPT_URL, url);
    curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->hdrs);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h->easy, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h->easy, CURLOPT_CUSTOMREQUEST, NULL);
    } else {
        /* POSTFIELDS points at the caller's bytes: no copy */
        curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)dlen);
        curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, data ? data : "");
        curl_easy_setopt(h->easy, CURLOPT_CUSTOMREQUEST, strcmp(method, "POST") ? method : NULL);
    }
}

/* After a transfer: pushes { status, headers, body, http_version, connects, time } and
 * returns 1, or pushes nil, message, kind, sent and returns 4. */
static int finish(lua_State *L, lf_http *h, CURLcode rc)
{
    long code = 0, connects = 0, version = 0;

    curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(h->hdrs);
    h->hdrs = NULL;

    if (rc != CURLE_OK) {
        int sent;
        const char *kind = kind_of(rc, h, &sent);
        lua_pushnil(L);
        if (h->too_large)
            lua_pushfstring(L, "the response was larger than %d bytes", (int)h->max_response);
        else
            lua_pushfstring(L, "%s (curl %d: %s)", curl_easy_strerror(rc), (int)rc,
                            h->errbuf[0] ? h->errbuf : "no detail");
        lua_pushstring(L, kind);
        lua_pushboolean(L, sent);
        return 4;
    }
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(h->easy, CURLINFO_NUM_CONNECTS, &connects);
    curl_easy_getinfo(h->easy, CURLINFO_HTTP_VERSION, &version);
    lua_createtable(L, 0, 7);
    lua_pushinteger(L, (lua_Integer)code);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, h->body.data ? h->body.data : "", h->body.len);
    lua_setfield(L, -2, "body");
    push_headers(L, &h->head);
    lua_setfield(L, -2, "headers");
    lua_pushstring(L, version == CURL_HTTP_VERSION_2_0 ? "2" :
                      version == CURL_HTTP_VERSION_1_0 ? "1.0" : "1.1");
    lua_setfield(L, -2, "http_version");
    lua_pushinteger(L, (lua_Integer)connects);
    lua_setfield(L, -2, "connects");
    lua_createtable(L, 0, 5);
    set_time(L, h->easy, CURLINFO_CONNECT_TIME_T, "connect");
    set_time(L, h->easy, CURLINFO_APPCONNECT_TIME_T, "tls");
    set_time(L, h->easy, CURLINFO_STARTTRANSFER_TIME_T, "first_byte");
    set_time(L, h->easy, CURLINFO_TOTAL_TIME_T, "total");
    lua_setfield(L, -2, "time");
    /* keep a large response buffer from pinning memory between calls */
    if (h->body.cap > 64 * 1024)
        cbuf_free(&h->body);
    return 1;
}

/* h:request(method, url, headers, body) ->
 *   { status, headers, body, http_version, connects, time = {...} }
 *   | nil, message, kind, sent */
static int http_request(lua_State *L)
{
    lf_http *h = check_http(L, 1);
    if (h->multi)
        return luaL_error(L, "laaffic.http: the handle is busy in a multi");
    prepare(L, h, 2);
    /* the body stays alive on the Lua stack (argument 5) for the whole perform */
    return finish(L, h, curl_easy_perform(h->easy));
}

/* ---------------------------------------------------------------- several at once */

/* A multi runs requests on several handles at once, in the calling thread:
 *
 *   local m = core.multi()
 *   m:add(h1, "POST", url, headers, body1); m:add(h2, ...)
 *   for _, done in ipairs(m:wait(1.0)) do  -- what finished within 1 s (may be none)
 *     -- done.handle, and done.response or done.error, done.kind, done.sent
 *   end
 *
 * The multi keeps each running handle and its body referenced until it finishes. */
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
            if (h && h->easy && h->multi == m->m) {
                curl_multi_remove_handle(m->m, h->easy);
                curl_slist_free_all(h->hdrs);
                h->hdrs = NULL;
            }
            if (h)
                h->multi = NULL;
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
    lua_newtable(L);
    m->anchors = luaL_ref(L, LUA_REGISTRYINDEX);
    m->m = curl_multi_init();
    if (m->m == NULL)
        return luaL_error(L, "laaffic.multi: curl_multi_init failed");
    return 1;
}

/* m:add(h, method, url, headers, body) */
static int multi_add(lua_State *L)
{
    lf_multi *m = check_multi(L);
    lf_http *h;
    CURLMcode mc;
    lua_settop(L, 6);
    h = check_http(L, 2);
    if (h->multi)
        return luaL_error(L, "laaffic.multi: the handle is already running");
    prepare(L, h, 3);
    mc = curl_multi_add_handle(m->m, h->easy);
    if (mc != CURLM_OK) {
        curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, NULL);
        return luaL_error(L, "laaffic.multi: %s", curl_multi_strerror(mc));
    }
    h->multi = m->m;
    m->running++;
    lua_rawgeti(L, LUA_REGISTRYINDEX, m->anchors);
    lua_pushlightuserdata(L, h);
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, 6);
    lua_rawseti(L, -2, 2);
    lua_rawset(L, -3);
    return 0;
}

/* m:wait([timeout]) -> list of { handle =, response = } | { handle =, error =, kind =,
 * sent = }: the transfers that finished, waiting up to timeout seconds (default 1) for
 * at least one. An empty list: none finished in time, or none is running. */
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
    for (;;) {
        int still, left;
        CURLMsg *msg;
        double elapsed;
        curl_multi_perform(m->m, &still);
        while ((msg = curl_multi_info_read(m->m, &left)) != NULL) {
            lf_http *h = NULL;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&h);
            if (h == NULL)
                continue;
            {
                CURLcode rc = msg->data.result; /* msg is invalid after remove_handle */
                int k;
                curl_multi_remove_handle(m->m, h->easy);
                h->multi = NULL;
                m->running--;
                lua_pushlightuserdata(L, h);
                lua_rawget(L, 4);          /* { handle, body }: kept on the stack */
                /* dropped before anything allocates: an allocation can run a finalizer
                 * that adds h again, and the anchor that add makes must stay */
                lua_pushlightuserdata(L, h);
                lua_pushnil(L);
                lua_rawset(L, 4);
                lua_createtable(L, 0, 5);  /* the entry */
                lua_rawgeti(L, -2, 1);
                lua_setfield(L, -2, "handle");
                k = finish(L, h, rc);
                if (k == 1) {
                    lua_setfield(L, -2, "response");
                } else {
                    lua_setfield(L, -5, "sent");
                    lua_setfield(L, -4, "kind");
                    lua_setfield(L, -3, "error");
                    lua_pop(L, 1); /* nil */
                }
                lua_rawseti(L, 3, ++n);
                lua_pop(L, 1); /* { handle, body } */
            }
        }
        if (n > 0 || m->running <= 0)
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

static int http_tostring(lua_State *L)
{
    lf_http *h = (lf_http *)luaL_checkudata(L, 1, HTTP_MT);
    lua_pushfstring(L, "laaffic.http (%s)", h->easy ? "open" : "closed");
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

/* core.curl_version() -> the libcurl version string and its features */
static int l_curl_version(lua_State *L)
{
    curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    lua_pushstring(L, v->version);
    lua_pushboolean(L, (v->features & CURL_VERSION_HTTP2) != 0);
    lua_pushstring(L, v->ssl_version ? v->ssl_version : "");
    return 3;
}

int laaffic_http_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"request", http_request}, {"close", http_close}, {"__gc", http_close},
        {"__tostring", http_tostring}, {NULL, NULL}};
    static const luaL_Reg multi_methods[] = {
        {"add", multi_add}, {"wait", multi_wait}, {"running", multi_running},
        {"close", multi_close}, {"__gc", multi_close}, {NULL, NULL}};
    static const luaL_Reg funcs[] = {
        {"http", http_new}, {"multi", multi_new}, {"curl_version", l_curl_version}, {"sleep", l_sleep},
        {"now", l_now}, {NULL, NULL}};
    /* process-wide and idempotent; libcurl 7.84+ makes it thread-safe */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return luaL_error(L, "laaffic: curl_global_init failed");
    lf_newclass(L, HTTP_MT, methods);
    lua_pop(L, 1);
    lf_newclass(L, MULTI_MT, multi_methods);
    lua_pop(L, 1);
    lf_setfuncs(L, funcs, 0);
    return 0;
}
