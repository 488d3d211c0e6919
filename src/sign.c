/* sign.c - the request signature: md5(apiKey .. apiSecret .. timestamp) as 32 lowercase
 * hex digits, through OpenSSL's EVP interface.
 *
 * Nothing here keeps the secret: key, secret and timestamp are fed to one EVP digest
 * context in turn (never concatenated), which EVP_MD_CTX_free wipes; the digest and its
 * hex are wiped before returning. */
#include <string.h>
#include <stdio.h>
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/crypto.h>

#include "laaffic.h"
#include "compat.h"

/* Pushes the OpenSSL error queue's reason (or `what`) and clears the queue. */
static int push_ssl_error(lua_State *L, const char *what)
{
    unsigned long e = ERR_get_error();
    char reason[256];
    if (e != 0) {
        ERR_error_string_n(e, reason, sizeof reason);
        ERR_clear_error();
        lua_pushfstring(L, "%s: %s", what, reason);
    } else {
        lua_pushstring(L, what);
    }
    return 1;
}

/* The timestamp: a non-negative integer, or a string of 1-20 decimal digits. */
static const char *check_timestamp(lua_State *L, int idx, char *tmp, size_t tmpsz, size_t *len)
{
    if (lua_type(L, idx) == LUA_TNUMBER) {
        long long v;
        if (lf_isinteger(L, idx)) {
            lua_Integer i = lua_tointeger(L, idx);
            luaL_argcheck(L, i >= 0, idx, "timestamp must be a non-negative integer number of seconds");
            v = (long long)i;
        } else {
            lua_Number n = lua_tonumber(L, idx);
            luaL_argcheck(L, n >= 0 && n < 9.2e18 && n == (lua_Number)(long long)n, idx,
                          "timestamp must be a non-negative integer number of seconds");
            v = (long long)n;
        }
        *len = (size_t)snprintf(tmp, tmpsz, "%lld", v);
        return tmp;
    }
    if (lua_type(L, idx) == LUA_TSTRING) {
        size_t i;
        const char *s = lua_tolstring(L, idx, len);
        luaL_argcheck(L, *len > 0 && *len <= 20, idx, "timestamp must be 1 to 20 digits");
        for (i = 0; i < *len; i++)
            luaL_argcheck(L, s[i] >= '0' && s[i] <= '9', idx, "timestamp must be digits only");
        return s;
    }
    luaL_argerror(L, idx, "timestamp must be an integer or a string of digits");
    return NULL;
}

/* core.sign(key, secret, timestamp) -> 32 lowercase hex digits.
 * Misuse (wrong types) raises; an OpenSSL failure returns nil, err. */
static int l_sign(lua_State *L)
{
    static const char hex[] = "0123456789abcdef";
    size_t klen, slen, tlen;
    char tsbuf[32];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;
    char out[2 * EVP_MAX_MD_SIZE];
    const char *key, *secret;
    luaL_checktype(L, 1, LUA_TSTRING); /* no silent number-to-string conversion */
    luaL_checktype(L, 2, LUA_TSTRING);
    key = lua_tolstring(L, 1, &klen);
    secret = lua_tolstring(L, 2, &slen);
    const char *ts;
    EVP_MD_CTX *ctx;
    int ok;

    ts = check_timestamp(L, 3, tsbuf, sizeof tsbuf, &tlen);
    /* No Lua call below this line can raise until the context is freed. */
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        lua_pushnil(L);
        return 1 + push_ssl_error(L, "sign: EVP_MD_CTX_new failed");
    }
    ok = EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
         EVP_DigestUpdate(ctx, key, klen) == 1 &&
         EVP_DigestUpdate(ctx, secret, slen) == 1 &&
         EVP_DigestUpdate(ctx, ts, tlen) == 1 &&
         EVP_DigestFinal_ex(ctx, md, &mdlen) == 1;
    EVP_MD_CTX_free(ctx); /* frees and wipes the digest state */
    if (!ok) {
        lua_pushnil(L);
        return 1 + push_ssl_error(L, "sign: MD5 digest failed");
    }
    for (i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    lua_pushlstring(L, out, 2 * (size_t)mdlen);
    OPENSSL_cleanse(md, sizeof md);
    OPENSSL_cleanse(out, sizeof out);
    return 1;
}

int laaffic_sign_open(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"sign", l_sign}, {NULL, NULL}};
    lf_setfuncs(L, funcs, 0);
    return 0;
}
