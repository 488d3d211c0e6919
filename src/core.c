/* core.c - luaopen_laaffic_core: builds the module table from each concern's opener. */
#include "laaffic.h"
#include "compat.h"

LAAFFIC_EXPORT int luaopen_laaffic_core(lua_State *L);

int luaopen_laaffic_core(lua_State *L)
{
    lua_newtable(L);
    lua_pushliteral(L, LAAFFIC_VERSION);
    lua_setfield(L, -2, "_VERSION");
    laaffic_sign_open(L);
    laaffic_encode_open(L);
    laaffic_http_open(L);
    laaffic_csv_open(L);
    laaffic_sys_open(L);
    return 1;
}
