/* csv_source.c - the "laaffic.csv" userdata behind core.csv_file and core.csv_string:
 * opening a file or a string, its options, the header row mapped onto calleeNumber and
 * text1..text10, and info, check and close. The records are parsed by csv.c.
 *
 *   local src = core.csv_file("list.csv", { columns = { calleeNumber = "phone" } })
 *   local body, info = core.encode_body{ taskName = "x", agentId = 1, appId = "a",
 *                                        numberInfoList = src } */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>

#include "compat.h"
#include "csv.h"
#include "rules.h"

#define KEYS lf_row_keys /* rules.h */

lf_csv *lf_csv_test(lua_State *L, int idx)
{
    lf_csv *c = (lf_csv *)lua_touserdata(L, idx);
    if (c == NULL || !lua_getmetatable(L, idx))
        return NULL;
    luaL_getmetatable(L, LAAFFIC_CSV_MT);
    if (!lua_rawequal(L, -1, -2))
        c = NULL;
    lua_pop(L, 2);
    return c;
}

static int csv_close(lua_State *L)
{
    lf_csv *c = (lf_csv *)luaL_checkudata(L, 1, LAAFFIC_CSV_MT);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (c->own_buf)
        lf_buf_free(&c->in);
    c->in.data = NULL;
    c->in.len = c->in.cap = c->pos = 0;
    if (c->strref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, c->strref);
        c->strref = LUA_NOREF;
    }
    free(c->f);
    c->f = NULL;
    c->nf = c->fcap = 0;
    lf_buf_free(&c->tmp);
    free(c->set);
    c->set = NULL;
    c->set_n = c->set_cap = 0;
    free(c->path);
    c->path = NULL;
    c->closed = 1;
    return 0;
}

/* __gc: close, and free the name, which messages about a closed reader still use (an
 * encode that a finalizer closed its reader under names it) */
static int csv_gc(lua_State *L)
{
    lf_csv *c = (lf_csv *)luaL_checkudata(L, 1, LAAFFIC_CSV_MT);
    csv_close(L);
    free(c->name);
    c->name = NULL;
    return 0;
}

static lf_csv *check_csv(lua_State *L)
{
    lf_csv *c = (lf_csv *)luaL_checkudata(L, 1, LAAFFIC_CSV_MT);
    if (c->closed)
        luaL_error(L, "laaffic.csv: the source is closed");
    return c;
}

static int csv_tostring(lua_State *L)
{
    lf_csv *c = (lf_csv *)luaL_checkudata(L, 1, LAAFFIC_CSV_MT);
    if (c->closed)
        lua_pushliteral(L, "laaffic.csv (closed)");
    else
        lua_pushfstring(L, "laaffic.csv (%s, line %d)", c->name, (int)c->line);
    return 1;
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static void remember_id(lf_csv *c, const struct stat *st)
{
    c->id_dev = (unsigned long long)st->st_dev;
    c->id_ino = (unsigned long long)st->st_ino;
    c->id_size = (unsigned long long)st->st_size;
    c->id_mtime[0] = (long long)st->st_mtim.tv_sec;
    c->id_mtime[1] = (long long)st->st_mtim.tv_nsec;
    c->id_ctime[0] = (long long)st->st_ctim.tv_sec;
    c->id_ctime[1] = (long long)st->st_ctim.tv_nsec;
}

/* src:check() -> true | nil, why: is the file still the one opened, unchanged? (A
 * string or a pipe always is.) Its path gives the identity (renamed over, removed), its
 * descriptor size and times (a truncation, an append, a rewrite of the same size). */
static int csv_check(lua_State *L)
{
    lf_csv *c = (lf_csv *)luaL_checkudata(L, 1, LAAFFIC_CSV_MT);
    struct stat st;
    const char *why = NULL;
    char tmp[120];
    if (c->closed || c->path == NULL || c->fd < 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (stat(c->path, &st) != 0) {
        snprintf(tmp, sizeof tmp, "its path no longer names it: %s", strerror(errno));
        why = tmp;
    } else if ((unsigned long long)st.st_dev != c->id_dev ||
               (unsigned long long)st.st_ino != c->id_ino) {
        why = "it was replaced: its path now names another file";
    } else if (fstat(c->fd, &st) != 0) {
        snprintf(tmp, sizeof tmp, "cannot check it: %s", strerror(errno));
        why = tmp;
    } else if ((unsigned long long)st.st_size != c->id_size) {
        snprintf(tmp, sizeof tmp, "its size changed from %llu to %llu bytes", c->id_size,
                 (unsigned long long)st.st_size);
        why = tmp;
    } else if ((long long)st.st_mtim.tv_sec != c->id_mtime[0] ||
               (long long)st.st_mtim.tv_nsec != c->id_mtime[1] ||
               (long long)st.st_ctim.tv_sec != c->id_ctime[0] ||
               (long long)st.st_ctim.tv_nsec != c->id_ctime[1]) {
        why = "it was modified (its size is the same, its modification time is not)";
    }
    if (why == NULL) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
}

/* src:info() -> { name, size, bytes, line, records, rows, duplicates, rejected, parts,
 *                 done, columns = { calleeNumber = 1, text1 = 2, ... } } */
static int csv_info(lua_State *L)
{
    lf_csv *c = check_csv(L);
    int k;
    lua_createtable(L, 0, 11);
    lua_pushstring(L, c->name);
    lua_setfield(L, -2, "name");
    set_int(L, "size", (lua_Integer)c->size);
    set_int(L, "bytes", (lua_Integer)(c->base + c->pos));
    set_int(L, "line", (lua_Integer)c->line);
    set_int(L, "records", (lua_Integer)c->records);
    set_int(L, "rows", (lua_Integer)c->rows);
    set_int(L, "duplicates", (lua_Integer)c->duplicates);
    set_int(L, "rejected", (lua_Integer)c->rejected);
    set_int(L, "parts", (lua_Integer)c->parts);
    lua_pushboolean(L, (c->fd < 0 || c->eof) && c->pos >= c->in.len);
    lua_setfield(L, -2, "done");
    if (c->path) {
        char s[160];
        lf_push_file_id(L, c->id_dev, c->id_ino);
        lua_setfield(L, -2, "file_id");
        snprintf(s, sizeof s, "%llu:%llu:%llu:%lld.%09lld:%lld.%09lld", c->id_dev, c->id_ino,
                 c->id_size, c->id_mtime[0], c->id_mtime[1], c->id_ctime[0], c->id_ctime[1]);
        lua_pushstring(L, s);
        lua_setfield(L, -2, "identity");
    }
    lua_createtable(L, 0, LF_CSV_NKEYS);
    for (k = 0; k < LF_CSV_NKEYS; k++) {
        if (c->map[k] >= 0) {
            lua_pushinteger(L, c->map[k] + 1);
            lua_setfield(L, -2, KEYS[k]);
        }
    }
    lua_setfield(L, -2, "columns");
    return 1;
}

static int key_index(const char *k, size_t n)
{
    int j;
    for (j = 0; j < LF_CSV_NKEYS; j++)
        if (strlen(KEYS[j]) == n && memcmp(KEYS[j], k, n) == 0)
            return j;
    return -1;
}

/* the header cell, trimmed of spaces and tabs */
static void trimmed(const lf_csv_field *f, const char **s, size_t *n)
{
    const char *p = f->s ? f->s : "";
    size_t len = f->len;
    while (len && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    *s = p;
    *n = len;
}

static int ieq(const char *a, size_t an, const char *b)
{
    size_t i, bn = strlen(b);
    if (an != bn)
        return 0;
    for (i = 0; i < an; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (char)(y + 32);
        if (x != y)
            return 0;
    }
    return 1;
}

/* Pushes nil, "name:line: message", "invalid", line for a header or format error (the
 * reader is argument 1, and is closed); returns 4. */
static int open_fail(lua_State *L, lf_csv *c, long line, const char *msg)
{
    lua_pushnil(L);
    if (line > 0)
        lua_pushfstring(L, "%s:%d: %s", c->name, (int)line, msg);
    else
        lua_pushfstring(L, "%s: %s", c->name, msg);
    lua_pushstring(L, c->fd >= 0 && c->err[0] && strncmp(c->err, "read error", 10) == 0 ?
                      "io" : "invalid");
    lua_pushinteger(L, (lua_Integer)line);
    csv_close(L);
    return 4;
}

/* nil, "name: strerror", "io", 0 when the file cannot be opened */
static int io_fail(lua_State *L, lf_csv *c, const char *why)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", c->name, why);
    lua_pushliteral(L, "io");
    lua_pushinteger(L, 0);
    csv_close(L);
    return 4;
}

/* What the options say about columns. The mapped header names are strings that
 * read_opts leaves on the Lua stack, so they stay alive whatever changes the table. */
typedef struct colmap {
    const char *name[LF_CSV_NKEYS];
    size_t len[LF_CSV_NKEYS];
    int col[LF_CSV_NKEYS]; /* > 0: a column number; -1: false (ignored); 0: by name */
    int header, any;
} colmap;

/* opts[k] without metamethods (the encoder's rule: options are the table's own fields) */
static int raw_opt(lua_State *L, int o, const char *k)
{
    lua_pushstring(L, k);
    lua_rawget(L, o);
    return lua_type(L, -1);
}

static int opt_flag(lua_State *L, int o, const char *k, int def)
{
    int t = raw_opt(L, o, k), v = def;
    if (t != LUA_TNIL) {
        if (t != LUA_TBOOLEAN)
            luaL_argerror(L, 2, lua_pushfstring(L, "opts.%s must be a boolean", k));
        v = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

/* Reads opts.columns (the table at the top) into m; leaves its values on the stack. */
static void read_columns(lua_State *L, colmap *m)
{
    int cols = lua_gettop(L), k;
    luaL_argcheck(L, lua_type(L, cols) == LUA_TTABLE, 2,
                  "opts.columns must map calleeNumber/text1..text10 to a header name or column number");
    lua_pushnil(L);
    while (lua_next(L, cols)) {
        size_t kn;
        const char *kk;
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_argerror(L, 2, "opts.columns keys must be calleeNumber or text1..text10");
        kk = lua_tolstring(L, -2, &kn);
        if (key_index(kk, kn) < 0)
            luaL_argerror(L, 2, lua_pushfstring(L,
                "opts.columns: unknown field '%s' (calleeNumber, text1..text10)", kk));
        lua_pop(L, 1);
    }
    for (k = 0; k < LF_CSV_NKEYS; k++) {
        int t = raw_opt(L, cols, KEYS[k]); /* stays on the stack */
        if (t == LUA_TNIL)
            continue;
        m->any = 1;
        if (t == LUA_TNUMBER) {
            lua_Number n = lua_tonumber(L, -1);
            luaL_argcheck(L, n >= 1 && n <= LF_CSV_MAX_COLUMNS && n == (lua_Number)(int)n, 2,
                          "opts.columns: a column number must be an integer from 1");
            m->col[k] = (int)n;
        } else if (t == LUA_TSTRING) {
            if (!m->header)
                luaL_argerror(L, 2, "opts.columns: without a header row, map columns by number");
            m->name[k] = lua_tolstring(L, -1, &m->len[k]);
        } else if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
            m->col[k] = -1; /* false: ignore this column */
        } else {
            luaL_argerror(L, 2, "opts.columns values must be a header name, a column number, or false");
        }
    }
}

/* Reads the options (a table at o, or none) into c and m, before the source is opened:
 * a misuse raises while the reader owns nothing but its name. */
static void read_opts(lua_State *L, lf_csv *c, int o, colmap *m)
{
    memset(m, 0, sizeof *m);
    m->header = 1;
    c->delim = ',';
    if (!lua_istable(L, o))
        return;
    luaL_checkstack(L, LF_CSV_NKEYS + 8, "laaffic.csv: options");
    if (raw_opt(L, o, "delimiter") != LUA_TNIL) {
        size_t n = 0;
        const char *d = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : "";
        luaL_argcheck(L, n == 1 && d[0] != '"' && d[0] != '\r' && d[0] != '\n', 2,
                      "opts.delimiter must be one character other than a quote or a line break");
        c->delim = d[0];
    }
    lua_pop(L, 1);
    m->header = opt_flag(L, o, "header", 1);
    c->normalize = opt_flag(L, o, "normalize", 0);
    c->dedupe = opt_flag(L, o, "dedupe", 0);
    if (raw_opt(L, o, "columns") != LUA_TNIL)
        read_columns(L, m); /* the table and its values stay on the stack */
}

/* Reads the header (if any) and maps the columns. The reader is at stack index `ud`.
 * Returns 1 with the reader on top, or 4 (nil, message, kind, line). */
/* The open failed for want of a calleeNumber column: its message names the columns the
 * header has, so the user sees what to map. */
static int no_callee_column(lua_State *L, lf_csv *c)
{
    luaL_Buffer B;
    int col;
    luaL_buffinit(L, &B);
    luaL_addstring(&B, "the header row has no calleeNumber column (it has: ");
    for (col = 0; col < (int)c->nf && col < 12; col++) {
        const char *s;
        size_t n, j;
        trimmed(&c->f[col], &s, &n);
        if (col)
            luaL_addstring(&B, ", ");
        luaL_addchar(&B, '"');
        for (j = 0; j < n && j < 40; j++) {
            char esc[4];
            luaL_addlstring(&B, esc, (size_t)lf_show_byte(esc, (unsigned char)s[j], 1));
        }
        luaL_addchar(&B, '"');
    }
    if (col < (int)c->nf)
        luaL_addstring(&B, ", ...");
    luaL_addstring(&B, "); map one with opts.columns = { calleeNumber = \"<name>\" }");
    luaL_pushresult(&B);
    return open_fail(L, c, c->rec_line, lua_tostring(L, -1));
}

/* Reads the header row and maps its columns onto the keys. Returns 0, or what open_fail
 * returned. */
static int read_header(lua_State *L, lf_csv *c, const colmap *m)
{
    int k, col, r = lf_csv_next(c);
    if (r < 0)
        return open_fail(L, c, c->err_line, c->err);
    if (r == 0)
        return open_fail(L, c, 0, "the file is empty: it needs a header row naming calleeNumber");
    c->records = 0;
    for (k = 0; k < LF_CSV_NKEYS; k++) {
        if (m->col[k] > 0) {
            c->map[k] = m->col[k] - 1;
            continue;
        }
        if (m->col[k] < 0)
            continue;
        for (col = 0; col < (int)c->nf; col++) {
            const char *s;
            size_t n;
            trimmed(&c->f[col], &s, &n);
            if (m->name[k] ? (n == m->len[k] && memcmp(s, m->name[k], n) == 0)
                           : ieq(s, n, KEYS[k])) {
                if (c->map[k] >= 0) {
                    char msg[160];
                    snprintf(msg, sizeof msg, "columns %d and %d are both %s", c->map[k] + 1,
                             col + 1, KEYS[k]);
                    return open_fail(L, c, c->rec_line, msg);
                }
                c->map[k] = col;
            }
        }
        if (m->name[k] && c->map[k] < 0) {
            lua_pushfstring(L, "opts.columns maps %s to \"%s\", but the header row has no such column",
                            KEYS[k], m->name[k]);
            return open_fail(L, c, c->rec_line, lua_tostring(L, -1));
        }
    }
    return c->map[0] < 0 ? no_callee_column(L, c) : 0;
}

static int start(lua_State *L, lf_csv *c, int ud, const colmap *m)
{
    int k;
    const unsigned char *u;
    for (k = 0; k < LF_CSV_NKEYS; k++)
        c->map[k] = -1;
    /* before the header is read: it is the option that is wrong, not the file */
    if (m->col[0] < 0)
        return open_fail(L, c, 0, "opts.columns.calleeNumber must not be false");
    if (!m->header && m->any && m->col[0] == 0)
        return open_fail(L, c, 0, "opts.columns maps other columns but not calleeNumber "
                                  "(without a header row, give its column number)");

    /* skip a byte order mark */
    if (c->fd >= 0 && lf_csv_fill(c, 0) < 0)
        return open_fail(L, c, 0, c->err);
    u = (const unsigned char *)c->in.data;
    if (c->in.len >= 2 && (u[0] == 0xFF || u[0] == 0xFE) && (u[1] == 0xFE || u[1] == 0xFF))
        return open_fail(L, c, 1, "the file is UTF-16: save it as UTF-8");
    if (c->in.len >= 3 && memcmp(c->in.data, "\xEF\xBB\xBF", 3) == 0)
        c->pos = 3;

    if (!m->header) {
        for (k = 0; k < LF_CSV_NKEYS; k++)
            c->map[k] = m->col[k] > 0 ? m->col[k] - 1 : (m->col[k] < 0 || m->any) ? -1 : k;
    } else if ((k = read_header(L, c, m)) != 0) {
        return k;
    }
    lua_pushvalue(L, ud);
    return 1;
}

/* Pushes a new reader named by the string at the top of the stack, in its place. */
static lf_csv *new_reader(lua_State *L)
{
    lf_csv *c = (lf_csv *)lua_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->strref = LUA_NOREF;
    c->line = 1;
    luaL_getmetatable(L, LAAFFIC_CSV_MT);
    lua_setmetatable(L, -2);
    /* the name is still on the stack below: the allocations above may run the collector */
    c->name = strdup(lua_tostring(L, -2));
    if (c->name == NULL)
        luaL_error(L, "laaffic.csv: out of memory");
    lua_replace(L, -2);
    return c;
}

/* Pushes opts.name (read raw), or the value at stack index def. */
static void push_name(lua_State *L, int o, int def)
{
    if (lua_istable(L, o) && raw_opt(L, o, "name") != LUA_TNIL) {
        luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 2, "opts.name must be a string");
        return;
    }
    if (lua_istable(L, o))
        lua_pop(L, 1);
    lua_pushvalue(L, def);
}

/* core.csv_file(path [, opts]) -> reader | nil, message, kind ("io" or "invalid"), line */
static int l_csv_file(lua_State *L)
{
    lf_csv *c;
    colmap m;
    struct stat st;
    int fd;
    luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    push_name(L, 2, 1);
    c = new_reader(L); /* 3 */
    c->own_buf = 1;
    read_opts(L, c, 2, &m); /* may raise: nothing is open yet */
    do
        fd = open(lua_tostring(L, 1), O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        c->path = strdup(lua_tostring(L, 1)); /* check() stats the path again */
    lua_pushvalue(L, 3);
    lua_replace(L, 1); /* the fail functions close argument 1 */
    if (fd < 0)
        return io_fail(L, c, strerror(errno));
    c->fd = fd;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
        return io_fail(L, c, "is a directory");
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        if (c->path == NULL)
            return io_fail(L, c, "out of memory");
        c->size = (unsigned long long)st.st_size;
        remember_id(c, &st);
    }
    return start(L, c, 3, &m);
}

/* core.csv_string(s [, opts]) -> reader | nil, message, "invalid", line */
static int l_csv_string(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    lf_csv *c;
    colmap m;
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lua_pushliteral(L, "<string>");
    push_name(L, 2, 3);
    lua_remove(L, 3);
    c = new_reader(L); /* 3 */
    read_opts(L, c, 2, &m);
    lua_pushvalue(L, 1);
    c->strref = luaL_ref(L, LUA_REGISTRYINDEX);
    c->in.data = (char *)s;
    c->in.len = c->in.cap = n;
    c->size = n;
    c->eof = 1;
    lua_pushvalue(L, 3);
    lua_replace(L, 1);
    return start(L, c, 3, &m);
}

/* core.is_csv(v) -> true if v is a CSV reader (open or closed) */
static int l_is_csv(lua_State *L)
{
    lua_pushboolean(L, lf_csv_test(L, 1) != NULL);
    return 1;
}

int laaffic_csv_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"close", csv_close}, {"__gc", csv_gc}, {"info", csv_info}, {"check", csv_check},
        {"__tostring", csv_tostring}, {NULL, NULL}};
    static const luaL_Reg funcs[] = {
        {"csv_file", l_csv_file}, {"csv_string", l_csv_string}, {"is_csv", l_is_csv},
        {NULL, NULL}};
    lf_newclass(L, LAAFFIC_CSV_MT, methods);
    lua_pop(L, 1);
    lf_setfuncs(L, funcs, 0);
    return 0;
}
