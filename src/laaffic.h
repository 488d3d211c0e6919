/* laaffic.h - what the C files of laaffic.core share. */
#ifndef LAAFFIC_H
#define LAAFFIC_H

#include <lua.h>

#ifndef LAAFFIC_VERSION
#define LAAFFIC_VERSION "0.0.0-dev"
#endif

/* Only luaopen_laaffic_core is exported, whatever flags the builder (make, luarocks) uses. */
#if defined(__GNUC__)
#define LAAFFIC_EXPORT __attribute__((visibility("default")))
#define LAAFFIC_INTERNAL __attribute__((visibility("hidden")))
#else
#define LAAFFIC_EXPORT
#define LAAFFIC_INTERNAL
#endif

/* Each concern registers its functions into the module table on top of the stack. */
LAAFFIC_INTERNAL int laaffic_sign_open(lua_State *L);
LAAFFIC_INTERNAL int laaffic_encode_open(lua_State *L);
LAAFFIC_INTERNAL int laaffic_http_open(lua_State *L);
LAAFFIC_INTERNAL int laaffic_csv_open(lua_State *L);

#endif
