/* csv.h - a CSV call list read record by record, for the encoder.
 *
 * A "laaffic.csv" userdata reads a file (in blocks, so memory is one block plus the
 * longest record, not the file) or a Lua string (kept referenced, not copied). Its
 * header row is read when it is opened, which maps columns onto calleeNumber and
 * text1..text10. The encoder (encode.c) pulls records with lf_csv_next and writes them
 * straight into the request body; one reader feeds several tasks in turn when the list
 * is longer than one task may be. */
#ifndef LAAFFIC_CSV_H
#define LAAFFIC_CSV_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>

#include "laaffic.h"

#define LAAFFIC_CSV_MT "laaffic.csv"
#define LF_CSV_NKEYS 11 /* calleeNumber, text1..text10 */

typedef struct lf_csv_field {
    const char *s;
    size_t len;
    size_t off;  /* in the unescape scratch, when quoted with "" inside */
    int in_tmp;
    int quoted;
    long line;   /* where the field starts */
} lf_csv_field;

typedef struct lf_csv {
    /* the source */
    int fd;                  /* -1: a string source, or closed */
    int strref;              /* registry reference of the source string */
    char *name;              /* for messages: the path, or opts.name, or "<string>" */
    char *buf;               /* file: bytes buf[0..len); string: the string itself */
    size_t cap, len, pos;    /* pos: the next byte to parse */
    unsigned long long base; /* stream offset of buf[0] */
    unsigned long long size; /* the source's size in bytes, 0 if unknown (a pipe) */
    int eof, own_buf, closed;
    /* a regular file's identity at open, re-checked by src:check(): a list that changes
     * while it is read would mix two versions or lose rows */
    char *path;                  /* the path it was opened by (NULL: a string, a pipe) */
    unsigned long long id_dev, id_ino, id_size;
    long long id_mtime[2], id_ctime[2]; /* seconds, nanoseconds */
    long line;               /* the line number at pos (from 1) */
    /* the current record */
    lf_csv_field *f;
    size_t nf, fcap;
    char *tmp;
    size_t tlen, tcap;
    long rec_line;
    unsigned long long rec_at; /* stream offset where the current record starts */
    /* columns: map[k] is the 0-based column of key k, or -1 */
    int map[LF_CSV_NKEYS];
    char delim;
    int normalize, dedupe;
    /* numbers seen, for dedupe: "1" followed by the digits, as an integer; 0 = empty */
    uint64_t *set;
    size_t set_cap, set_n;
    /* counters, over the whole source */
    unsigned long records, rows, duplicates, rejected;
    int parts;
    /* the last error */
    char err[200];
    long err_line;
    int err_col;
} lf_csv;

/* Reads the next record into c->f[0..c->nf). Returns 1, 0 at the end, -1 on an error
 * that ends the source (an unterminated quote, a read error, a record too long), or -2
 * on a malformed record that was skipped (text after a closing quote). Errors set
 * c->err, c->err_line and c->err_col. Blank lines are skipped. */
LAAFFIC_INTERNAL int lf_csv_next(lf_csv *c);
/* Gives back the record the last lf_csv_next returned: the next call reads it again. Its
 * start is still in the buffer (a refill keeps the record being read), while a position
 * taken before lf_csv_next may not be: skipped blank lines can be dropped by the refill. */
LAAFFIC_INTERNAL void lf_csv_unread(lf_csv *c);
/* Has this number (6-18 digits, already checked) been seen? With insert, remembers it.
 * Returns 1 seen, 0 not seen, -1 out of memory. */
LAAFFIC_INTERNAL int lf_csv_seen(lf_csv *c, const char *digits, size_t n, int insert);
/* The reader at idx, or NULL if it is not one. */
LAAFFIC_INTERNAL lf_csv *lf_csv_test(lua_State *L, int idx);

#endif
