/* http_fuzz.c - lifecycle harness for the core's HTTP objects: core.http handles,
 * core.multi, bodies from core.encode_body, driven in random sequences (add, request,
 * wait, close of bodies, handles and multis, dropped references, forced collections,
 * finalizers that act during a wait) against a server on 127.0.0.1 that this binary
 * runs in a thread of its own.
 *
 * The core's C sources are compiled in with ASan, UBSan and coverage (fuzz/fuzz.mk);
 * libcurl is the system's. The sequence is Lua: fuzz/http_check.lua's H.run(core, bytes,
 * port), which checks the shapes of the results and the multi's bookkeeping. The server
 * checks the requests: a header line named X-Injected (which only CR/LF smuggled in a
 * method or user agent can produce) is a broken promise. Loopback only; every socket has
 * a receive timeout, so a connection curl forgets cannot keep a thread forever.
 *
 * Paths the server knows (the rest is 200 with a small JSON body):
 *   /500 a 500; /big a 4 KiB body (over a max_response of 1024); /empty closes without
 *   answering; /slow answers after 20 ms; /close answers with Connection: close. */
#define _GNU_SOURCE /* strcasestr */
#define FUZZ_NAME "http_fuzz"
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef FUZZ_DIR
#define FUZZ_DIR "fuzz"
#endif

int luaopen_laaffic_core(lua_State *L);

static int ref_run, ref_core, port;
static volatile int injected; /* a request carried an X-Injected header line */

/* ---------------------------------------------------------------- the server */

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads one request (headers, then Content-Length bytes) into buf; returns the header
 * length, 0 at a clean end, -1 on an error. *clen gets the body's length. */
static long read_request(int fd, char *buf, size_t cap, size_t *have, size_t *clen)
{
    char *end;
    for (;;) {
        ssize_t k;
        buf[*have] = 0;
        if ((end = strstr(buf, "\r\n\r\n")) != NULL)
            break;
        if (*have + 1 >= cap)
            return -1;
        k = recv(fd, buf + *have, cap - 1 - *have, 0);
        if (k <= 0)
            return *have == 0 && k == 0 ? 0 : -1;
        *have += (size_t)k;
    }
    {
        long hlen = (long)(end - buf) + 4;
        const char *cl = strcasestr(buf, "\r\ncontent-length:");
        *clen = cl && cl < end ? (size_t)strtoul(cl + 17, NULL, 10) : 0;
        return hlen;
    }
}

/* A header line named X-Injected anywhere in the header block. */
static int has_injected(const char *buf, long hlen)
{
    const char *p = buf;
    while ((p = strstr(p, "\r\n")) != NULL && p < buf + hlen) {
        p += 2;
        if (strncasecmp(p, "x-injected", 10) == 0)
            return 1;
    }
    return 0;
}

static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    static char big[4096];
    char *buf = (char *)malloc(1 << 20);
    size_t have = 0;
    memset(big, 'x', sizeof big);
    while (buf) {
        size_t clen = 0, total;
        long hlen = read_request(fd, buf, 1 << 20, &have, &clen);
        char head[256], path[64] = "/";
        const char *body = "{\"code\":0}";
        size_t blen = strlen(body);
        int status = 200, close_after = 0;
        if (hlen <= 0)
            break;
        if (has_injected(buf, hlen))
            injected = 1;
        sscanf(buf, "%*s %63s", path);
        /* the body: drop it (it may arrive after the headers) */
        total = (size_t)hlen + clen;
        while (have < total) {
            char sink[65536];
            size_t want = total - have < sizeof sink ? total - have : sizeof sink;
            ssize_t k = recv(fd, sink, want, 0);
            if (k <= 0)
                goto out;
            have += (size_t)k;
        }
        memmove(buf, buf + total, have - total);
        have -= total;
        if (strstr(path, "/empty"))
            break;
        if (strstr(path, "/slow")) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (strstr(path, "/500"))
            status = 500;
        if (strstr(path, "/big")) {
            body = big;
            blen = sizeof big;
        }
        close_after = strstr(path, "/close") != NULL;
        snprintf(head, sizeof head,
                 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %lu\r\n%s\r\n",
                 status, (unsigned long)blen, close_after ? "Connection: close\r\n" : "");
        if (send_all(fd, head, strlen(head)) || send_all(fd, body, blen) || close_after)
            break;
    }
out:
    free(buf);
    close(fd);
    return NULL;
}

static void *accept_loop(void *arg)
{
    int ls = (int)(intptr_t)arg;
    for (;;) {
        pthread_t t;
        struct timeval tv = {5, 0};
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
                continue;
            return NULL;
        }
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (pthread_create(&t, NULL, serve, (void *)(intptr_t)fd) != 0) {
            close(fd);
            continue;
        }
        pthread_detach(t);
    }
}

static void start_server(void)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    pthread_t t;
    int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0);
    if (ls < 0)
        die("socket", strerror(errno));
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 64) ||
        getsockname(ls, (struct sockaddr *)&a, &alen))
        die("cannot listen on 127.0.0.1", strerror(errno));
    port = ntohs(a.sin_port);
    if (pthread_create(&t, NULL, accept_loop, (void *)(intptr_t)ls) != 0)
        die("pthread_create", NULL);
    pthread_detach(t);
}

/* ---------------------------------------------------------------- the harness */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    start_server();
    new_state();
    luaL_requiref(L, "laaffic.core", luaopen_laaffic_core, 0);
    ref_core = luaL_ref(L, LUA_REGISTRYINDEX);
    if (luaL_dofile(L, FUZZ_DIR "/http_check.lua") != LUA_OK)
        die("cannot load fuzz/http_check.lua", lua_tostring(L, -1));
    lua_getfield(L, -1, "run");
    ref_run = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    injected = 0;
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref_run);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref_core);
    lua_pushlstring(L, (const char *)data, size);
    lua_pushinteger(L, port);
    if (lua_pcall(L, 3, 2, 0) != LUA_OK)
        die("the sequence raised", lua_tostring(L, -1));
    if (!lua_toboolean(L, -2))
        die("the HTTP objects break a promise", lua_tostring(L, -1));
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT, 0);
    if (injected)
        die("a header line was injected through the method or the user agent", NULL);
    return 0;
}
