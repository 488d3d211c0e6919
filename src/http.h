/* http.h - the libcurl easy handle userdata ("laaffic.http", http.c) and what the multi
 * (multi.c) shares with it: a multi prepares and finishes a request with the handle's own
 * functions, so both paths read a response the same way. */
#ifndef LAAFFIC_HTTP_H
#define LAAFFIC_HTTP_H

#include <stddef.h>
#include <curl/curl.h>
#include <lua.h>

#include "body.h"
#include "buf.h"
#include "laaffic.h"

#define HTTP_MT "laaffic.http"

struct lf_multi;

typedef struct lf_http {
    CURL *easy;
    struct lf_multi *multi;  /* the multi it is running in, or NULL */
    lf_body *sending;        /* the body that multi transfer sends (held busy), or NULL */
    struct curl_slist *hdrs; /* the request's headers, freed after each perform */
    struct curl_slist *resolve; /* opts.resolve: "host:port:address" entries */
    lf_buf body, head;         /* the response */
    size_t max_response;
    int too_large, oom;
    int reuse;
    char errbuf[CURL_ERROR_SIZE];
} lf_http;

/* The handle at idx, open. */
LAAFFIC_INTERNAL lf_http *lf_http_check(lua_State *L, int idx);
/* Sets up a request from the arguments at base+1..base+4 (method, url, headers, body);
 * returns the body userdata it sends, or NULL for a string or no body. */
LAAFFIC_INTERNAL lf_body *lf_http_prepare(lua_State *L, lf_http *h, int base);
/* Pushes the response, or nil, message, kind, sent, for a transfer that ended with rc. */
LAAFFIC_INTERNAL int lf_http_finish(lua_State *L, lf_http *h, CURLcode rc);
/* Takes h out of the multi it runs in (multi.c). */
LAAFFIC_INTERNAL void lf_http_detach(lua_State *L, lf_http *h);
/* Registers core.multi and its metatable (multi.c). */
LAAFFIC_INTERNAL int lf_multi_open(lua_State *L);

#endif
