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
#include <curl/curl.h>

#include "compat.h"
#include "http.h"

#define DEFAULT_MAX_RESPONSE (1024 * 1024)

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    lf_http *h = (lf_http *)ud;
    size_t len = size * n;
    if (h->body.len + len > h->max_response) {
        h->too_large = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (lf_buf_add(&h->body, p, len)) {
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
    if (lf_buf_add(&h->head, p, len)) {
        h->oom = 1;
        return 0;
    }
    return len;
}

lf_http *lf_http_check(lua_State *L, int idx)
{
    lf_http *h = (lf_http *)luaL_checkudata(L, idx, HTTP_MT);
    if (h->easy == NULL)
        luaL_error(L, "laaffic.http: the handle is closed");
    return h;
}


/* close and __gc: idempotent. A handle running in a multi leaves it first. */
static int http_close(lua_State *L)
{
    lf_http *h = (lf_http *)luaL_checkudata(L, 1, HTTP_MT);
    if (h->multi)
        lf_http_detach(L, h);
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
    lf_buf_free(&h->body);
    lf_buf_free(&h->head);
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

static int has_crlf(const char *s, size_t n);

/* Returns the string option, or NULL. The string stays valid while opts is alive: it is
 * used only inside http_new, and curl copies every string option. curl reads it up to a
 * NUL, so one inside is refused; so are CR and LF where the value goes into a header
 * line (`line`). */
static const char *opt_string(lua_State *L, int t, const char *name, int line)
{
    const char *s = NULL;
    size_t n;
    lua_getfield(L, t, name);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "laaffic.http: option %s must be a string", name);
        s = lua_tolstring(L, -1, &n);
        if (line ? has_crlf(s, n) : memchr(s, 0, n) != NULL)
            luaL_error(L, "laaffic.http: option %s contains %s", name,
                       line ? "CR, LF or NUL" : "NUL");
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

/* opts.resolve: a list of "host:port:address" entries (curl's --resolve). */
static int set_resolve(lua_State *L, lf_http *h, int t)
{
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
    return 0;
}

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
    if ((s = opt_string(L, t, "cafile", 0)) != NULL)
        SETOPT(h, CURLOPT_CAINFO, s);
    if ((s = opt_string(L, t, "capath", 0)) != NULL)
        SETOPT(h, CURLOPT_CAPATH, s);
    if ((s = opt_string(L, t, "proxy", 0)) != NULL)
        SETOPT(h, CURLOPT_PROXY, s);
    s = opt_string(L, t, "user_agent", 1);
    SETOPT(h, CURLOPT_USERAGENT, s ? s : "laaffic/" LAAFFIC_VERSION);
    set_resolve(L, h, t);
    if (!h->reuse) {
        SETOPT(h, CURLOPT_FORBID_REUSE, 1L);
        SETOPT(h, CURLOPT_FRESH_CONNECT, 1L);
    }
    return 1;
}

/* Whether any byte of the request may have left: what libcurl observed, never the error
 * code alone (a non-HTTP answer after the whole body gives CURLE_UNSUPPORTED_PROTOCOL).
 * libcurl stamps the pretransfer time as it starts writing the request, and counts the
 * header (REQUEST_SIZE) and body (SIZE_UPLOAD) bytes it wrote; all three stay 0 when DNS,
 * connect or the TLS handshake failed, or the URL was refused, before any of it. */
static int observed_sent(const lf_http *h)
{
    curl_off_t pretransfer = 0, uploaded = 0;
    long request_size = 0;
    curl_easy_getinfo(h->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
    curl_easy_getinfo(h->easy, CURLINFO_SIZE_UPLOAD_T, &uploaded);
    curl_easy_getinfo(h->easy, CURLINFO_REQUEST_SIZE, &request_size);
    return pretransfer > 0 || uploaded > 0 || request_size > 0;
}

/* The kind of a failure, from its code; *sent from what was observed (observed_sent). */
static const char *kind_of(CURLcode rc, const lf_http *h, int *sent)
{
    *sent = observed_sent(h);
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return "dns";
    case CURLE_COULDNT_CONNECT:
        return "connect";
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        /* before the request: a URL libcurl refuses; after it: an answer that is not
         * HTTP ("Received HTTP/0.9") */
        return *sent ? "connection" : "url";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
        /* the server's certificate is not trusted (wrong host, expired, unknown CA):
         * trying again will not change the certificate */
        return "certificate";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_USE_SSL_FAILED:
        return "tls";
    case CURLE_OPERATION_TIMEDOUT:
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
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return "connection";
    default:
        return "transport";
    }
}

static int has_crlf(const char *s, size_t n)
{
    return memchr(s, '\r', n) != NULL || memchr(s, '\n', n) != NULL || memchr(s, 0, n) != NULL;
}

/* An RFC 9110 token (a method, a header name): one or more of ALPHA DIGIT and
 * !#$%&'*+-.^_`|~ ; nothing that could end the request line or a header early. */
static int is_token(const char *s, size_t n)
{
    size_t i;
    if (n == 0)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL)))
            return 0;
    }
    return 1;
}

/* Parses the raw response header block (the Lua string at idx: a copy, so a finalizer
 * that reuses or closes the handle while this allocates cannot move it) into a table of
 * lower-case name -> value (repeated names joined with ", "). */
static void push_headers(lua_State *L, int idx)
{
    size_t i = 0, hlen;
    const char *hdata = lua_tolstring(L, idx, &hlen);
    lua_newtable(L);
    while (i < hlen) {
        const char *line = hdata + i, *colon, *end;
        size_t llen;
        end = (const char *)memchr(line, '\n', hlen - i);
        llen = end ? (size_t)(end - line) : hlen - i;
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

/* Sets the easy handle up for one request from the arguments at base .. base+3: method,
 * url, headers, body. Every check and conversion that may allocate (and so run a
 * finalizer, which may close h or the body) comes first; the rest allocates nothing in
 * Lua. The body's bytes are not copied: the caller keeps the body alive until finish().
 * Returns the body userdata, or NULL for a string body. */
lf_body *lf_http_prepare(lua_State *L, lf_http *h, int base)
{
    size_t mlen, ulen, dlen = 0;
    const char *method = luaL_checklstring(L, base, &mlen);
    const char *url = luaL_checklstring(L, base + 1, &ulen);
    const char *data = NULL;
    lf_body *b;

    luaL_argcheck(L, is_token(method, mlen), base, "the method must be an HTTP token");
    luaL_argcheck(L, !has_crlf(url, ulen), base + 1, "the URL contains CR, LF or NUL");
    if (!lua_isnoneornil(L, base + 2))
        luaL_checktype(L, base + 2, LUA_TTABLE);
    if ((b = lf_body_test(L, base + 3)) == NULL && !lua_isnoneornil(L, base + 3))
        data = luaL_checklstring(L, base + 3, &dlen);
    if (h->easy == NULL)
        luaL_error(L, "laaffic.http: the handle is closed");
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
            char *line;
            struct curl_slist *l;
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                luaL_argerror(L, base + 2, "headers must map names to string values");
            n = lua_tolstring(L, -2, &nlen);
            v = lua_tolstring(L, -1, &vlen);
            if (!is_token(n, nlen) || has_crlf(v, vlen))
                luaL_argerror(L, base + 2, "a header name must be a token (no ':', space, CR, LF or NUL), a value must have no CR, LF or NUL");
            /* "name: value" in C: no Lua allocation between the checks and the send */
            line = (char *)malloc(nlen + vlen + 3);
            if (line == NULL)
                luaL_error(L, "laaffic.http: out of memory");
            memcpy(line, n, nlen);
            memcpy(line + nlen, ": ", 2);
            memcpy(line + nlen + 2, v, vlen + 1);
            l = curl_slist_append(h->hdrs, line);
            free(line);
            if (l == NULL)
                luaL_error(L, "laaffic.http: out of memory");
            h->hdrs = l;
            lua_pop(L, 1);
        }
    }
    /* no Expect: 100-continue round trip for large bodies */
    {
        struct curl_slist *l = curl_slist_append(h->hdrs, "Expect:");
        if (l == NULL)
            luaL_error(L, "laaffic.http: out of memory");
        h->hdrs = l;
    }
    if (b != NULL) {
        luaL_argcheck(L, !b->closed, base + 3, "the body was closed");
        data = b->buf.data;
        dlen = b->buf.len;
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
    return b;
}

static void set_time(lua_State *L, curl_off_t us, const char *name)
{
    lua_pushnumber(L, (lua_Number)us / 1e6);
    lua_setfield(L, -2, name);
}

/* After a transfer: pushes { status, headers, body, http_version, connects, time } and
 * returns 1, or pushes nil, message, kind, sent and returns 4. Everything is read from
 * the handle before the first Lua allocation, or copied by it: a finalizer run by one
 * may reuse or close the handle. */
int lf_http_finish(lua_State *L, lf_http *h, CURLcode rc)
{
    long code = 0, connects = 0, version = 0;
    curl_off_t t[4] = {0, 0, 0, 0};

    curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(h->hdrs);
    h->hdrs = NULL;

    if (rc != CURLE_OK) {
        int sent, too_large = h->too_large;
        const char *kind = kind_of(rc, h, &sent);
        /* what a failed transfer received is not needed: free a large buffer now */
        if (h->body.cap > 64 * 1024)
            lf_buf_free(&h->body);
        lua_pushnil(L);
        if (too_large)
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
    curl_easy_getinfo(h->easy, CURLINFO_CONNECT_TIME_T, &t[0]);
    curl_easy_getinfo(h->easy, CURLINFO_APPCONNECT_TIME_T, &t[1]);
    curl_easy_getinfo(h->easy, CURLINFO_STARTTRANSFER_TIME_T, &t[2]);
    curl_easy_getinfo(h->easy, CURLINFO_TOTAL_TIME_T, &t[3]);
    lua_createtable(L, 0, 7);
    lua_pushinteger(L, (lua_Integer)code);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, h->body.data ? h->body.data : "", h->body.len);
    lua_setfield(L, -2, "body");
    lua_pushlstring(L, h->head.data ? h->head.data : "", h->head.len);
    push_headers(L, lua_gettop(L));
    lua_setfield(L, -3, "headers");
    lua_pop(L, 1); /* the raw header block */
    lua_pushstring(L, version == CURL_HTTP_VERSION_2_0 ? "2" :
                      version == CURL_HTTP_VERSION_1_0 ? "1.0" : "1.1");
    lua_setfield(L, -2, "http_version");
    lua_pushinteger(L, (lua_Integer)connects);
    lua_setfield(L, -2, "connects");
    lua_createtable(L, 0, 5);
    set_time(L, t[0], "connect");
    set_time(L, t[1], "tls");
    set_time(L, t[2], "first_byte");
    set_time(L, t[3], "total");
    lua_setfield(L, -2, "time");
    /* keep a large response buffer from pinning memory between calls */
    if (h->body.cap > 64 * 1024)
        lf_buf_free(&h->body);
    return 1;
}

/* h:request(method, url, headers, body) ->
 *   { status, headers, body, http_version, connects, time = {...} }
 *   | nil, message, kind, sent */
static int http_request(lua_State *L)
{
    lf_http *h = lf_http_check(L, 1);
    if (h->multi)
        return luaL_error(L, "laaffic.http: the handle is busy in a multi");
    lf_http_prepare(L, h, 2);
    if (h->multi) /* a finalizer run by prepare's checks added it to a multi */
        return luaL_error(L, "laaffic.http: the handle is busy in a multi");
    /* the body stays alive on the Lua stack (argument 5) for the whole perform, and no
     * Lua code runs until it ends */
    return lf_http_finish(L, h, curl_easy_perform(h->easy));
}

static int http_tostring(lua_State *L)
{
    lf_http *h = (lf_http *)luaL_checkudata(L, 1, HTTP_MT);
    lua_pushfstring(L, "laaffic.http (%s)", h->easy ? "open" : "closed");
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
    static const luaL_Reg funcs[] = {
        {"http", http_new}, {"curl_version", l_curl_version}, {NULL, NULL}};
    /* process-wide and idempotent; libcurl 7.84+ makes it thread-safe */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return luaL_error(L, "laaffic: curl_global_init failed");
    lf_newclass(L, HTTP_MT, methods);
    lua_pop(L, 1);
    lf_setfuncs(L, funcs, 0);
    return lf_multi_open(L);
}
