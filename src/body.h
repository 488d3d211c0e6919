/* body.h - the request body: a growable byte buffer (buf.h) owned by a Lua userdata.
 *
 * The userdata (metatable "laaffic.body") is created before any byte is allocated, so a
 * Lua error anywhere during an encode leaves at worst an unreferenced userdata whose
 * __gc frees the bytes. close is idempotent; a body that transfers are sending (busy)
 * is closed at once for Lua (empty, refused by h:request and m:add) but its bytes are
 * freed when the last of them ends (lf_body_release). __gc frees at once: a busy body
 * is referenced by its multi, so it is collected only with it, when nothing sends. */
#ifndef LAAFFIC_BODY_H
#define LAAFFIC_BODY_H

#include <stddef.h>
#include <lua.h>

#include "buf.h"
#include "laaffic.h"

#define LAAFFIC_BODY_MT "laaffic.body"

typedef struct lf_body {
    lf_buf buf; /* the JSON bytes */
    int busy;   /* transfers in a multi that send these bytes */
    int closed; /* body:close() was called */
} lf_body;

/* Pushes a new empty body userdata. May raise (memory error) only before it owns bytes. */
LAAFFIC_INTERNAL lf_body *lf_body_new(lua_State *L);
/* Frees the bytes (idempotent). */
LAAFFIC_INTERNAL void lf_body_free(lf_body *b);
/* A transfer stopped sending b: frees the bytes if it was the last and b was closed. */
LAAFFIC_INTERNAL void lf_body_release(lf_body *b);
/* Checks that argument `idx` is a body. */
LAAFFIC_INTERNAL lf_body *lf_body_check(lua_State *L, int idx);
/* Returns the body at idx, or NULL if it is not a body. */
LAAFFIC_INTERNAL lf_body *lf_body_test(lua_State *L, int idx);
/* Registers the metatable. */
LAAFFIC_INTERNAL void lf_body_open(lua_State *L);

#endif
