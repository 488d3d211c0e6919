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

/* Writes byte c as error messages show it: printable ASCII as itself, any other byte as
 * \xHH (a UTF-8 byte order mark reads \xEF\xBB\xBF, not ???). With quoted, '"' and '\\'
 * are escaped too. out needs 4 bytes; returns how many were written. */
static inline int lf_show_byte(char *out, unsigned char c, int quoted)
{
    static const char hex[] = "0123456789ABCDEF";
    if (c >= 0x20 && c < 0x7f && !(quoted && (c == '"' || c == '\\'))) {
        out[0] = (char)c;
        return 1;
    }
    out[0] = '\\';
    out[1] = 'x';
    out[2] = hex[c >> 4];
    out[3] = hex[c & 15];
    return 4;
}

/* Pushes "dev:ino", the identity core.file_id and src:info().file_id compare (sys.c). */
LAAFFIC_INTERNAL void lf_push_file_id(lua_State *L, unsigned long long dev,
                                      unsigned long long ino);

/* Each concern registers its functions into the module table on top of the stack. */
LAAFFIC_INTERNAL int laaffic_sign_open(lua_State *L);
LAAFFIC_INTERNAL int laaffic_encode_open(lua_State *L);
LAAFFIC_INTERNAL int laaffic_http_open(lua_State *L);
LAAFFIC_INTERNAL int laaffic_csv_open(lua_State *L);
LAAFFIC_INTERNAL int laaffic_sys_open(lua_State *L);

#endif
