/* laaffic.h - what the C files of laaffic.core share. */
#ifndef LAAFFIC_H
#define LAAFFIC_H

#include <lua.h>

#ifndef LAAFFIC_VERSION
#define LAAFFIC_VERSION "0.0.0-dev"
#endif

/* Each concern registers its functions into the module table on top of the stack. */
int laaffic_sign_open(lua_State *L);
int laaffic_encode_open(lua_State *L);

#if defined(__GNUC__)
#define LAAFFIC_EXPORT __attribute__((visibility("default")))
#else
#define LAAFFIC_EXPORT
#endif

#endif
