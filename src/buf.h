/* buf.h - the growable byte buffer: the request body (body.h), the CSV reader's input and
 * unescape scratch (csv.c) and the HTTP response (http.c) all keep their bytes in one.
 *
 * Plain malloc'd memory with no Lua in it: its owner (a userdata with a __gc) frees it.
 * Each writer chooses its growth: lf_buf_add doubles, lf_buf_grow takes an exact size (the
 * encoder's estimate from the rows so far). */
#ifndef LAAFFIC_BUF_H
#define LAAFFIC_BUF_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct lf_buf {
    char *data;
    size_t len, cap;
} lf_buf;

/* Grows the capacity to at least cap bytes. Returns 0, or -1 when out of memory (the
 * buffer is then as it was). */
static inline int lf_buf_grow(lf_buf *b, size_t cap)
{
    char *p;
    if (cap <= b->cap)
        return 0;
    p = (char *)realloc(b->data, cap);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

/* Room for n more bytes, doubling from `first` bytes. Returns 0 or -1 (out of memory). */
static inline int lf_buf_reserve(lf_buf *b, size_t n, size_t first)
{
    size_t cap;
    if (b->cap - b->len >= n)
        return 0;
    if (b->len + n < b->len)
        return -1;
    cap = b->cap ? b->cap * 2 : first;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    return lf_buf_grow(b, cap);
}

/* Appends n bytes. Returns 0 or -1 (out of memory). */
static inline int lf_buf_add(lf_buf *b, const char *p, size_t n)
{
    if (lf_buf_reserve(b, n, 4096))
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* Frees the bytes (idempotent). */
static inline void lf_buf_free(lf_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

#endif
