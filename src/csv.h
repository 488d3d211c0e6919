/* csv.h - a CSV call list read record by record, for the encoder.
 *
 * A "laaffic.csv" userdata reads a file (in blocks, so memory is one block plus the
 * longest record, not the file) or a Lua string (kept referenced, not copied). Its
 * header row is read when it is opened, which maps columns onto calleeNumber and
 * text1..text10. The encoder (rows_csv.c) pulls rows with lf_csv_row and writes them
 * straight into the request body; one reader feeds several tasks in turn when the list
 * is longer than one task may be. */
#ifndef LAAFFIC_CSV_H
#define LAAFFIC_CSV_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>

#include "buf.h"
#include "rules.h"
#include "laaffic.h"

#define LAAFFIC_CSV_MT "laaffic.csv"
#define LF_CSV_NKEYS LF_ROW_NKEYS /* calleeNumber, text1..text10 (rules.h) */
#define LF_CSV_MAX_COLUMNS 4096

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
    lf_buf in;               /* file: the bytes read; string: the string itself (not owned) */
    size_t pos;              /* the next byte of in to parse */
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
    lf_buf tmp;              /* fields unescaped ("" inside quotes) */
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

/* Keeps in[keep..len) of the input and reads a block after it: 1 read, 0 at the end,
 * -1 on an error (c->err). */
LAAFFIC_INTERNAL int lf_csv_fill(lf_csv *c, size_t keep);
/* Reads the next record into c->f[0..c->nf). Returns 1, 0 at the end, -1 on an error
 * that ends the source (an unterminated quote, a read error, a record too long), or -2
 * on a malformed record that was skipped (text after a closing quote). Errors set
 * c->err, c->err_line and c->err_col. Blank lines are skipped. */
LAAFFIC_INTERNAL int lf_csv_next(lf_csv *c);
/* Gives back the record the last lf_csv_next returned: the next call reads it again. Its
 * start is still in the buffer (a refill keeps the record being read), while a position
 * taken before lf_csv_next may not be: skipped blank lines can be dropped by the refill. */
LAAFFIC_INTERNAL void lf_csv_unread(lf_csv *c);
/* One record as a row for the encoder: slot j (rules.h: calleeNumber, text1..text10) is
 * s[j], len[j] when bit j of present is set. Its strings live until the next read. */
typedef struct lf_csv_row {
    const char *s[LF_CSV_NKEYS];
    size_t len[LF_CSV_NKEYS];
    unsigned present;
    unsigned long duplicates; /* rows skipped before it as duplicates (opts.dedupe) */
    char num[32];             /* calleeNumber after opts.normalize */
} lf_csv_row;

/* Reads the next row (csv_row.c), with opts.normalize applied and duplicates skipped
 * (opts.dedupe). Returns as lf_csv_next does, or -3 out of memory for the dedupe. */
LAAFFIC_INTERNAL int lf_csv_next_row(lf_csv *c, lf_csv_row *r);
/* The encoder wrote row r: it counts, and its number is now seen. 0, or -1 (memory). */
LAAFFIC_INTERNAL int lf_csv_row_kept(lf_csv *c, const lf_csv_row *r);
/* Where slot j of the current row is (its line, its 1-based column or 0); j -1: the row. */
LAAFFIC_INTERNAL void lf_csv_where(const lf_csv *c, int j, long *line, int *col);
/* The error of the last read: message, line, column. */
LAAFFIC_INTERNAL const char *lf_csv_error(const lf_csv *c, long *line, int *col);
/* Starts the next part (a task's worth of rows): its number from 1, or 0 when closed. */
LAAFFIC_INTERNAL int lf_csv_part(lf_csv *c);
/* A row was rejected (opts.rejects). */
LAAFFIC_INTERNAL void lf_csv_rejected(lf_csv *c);
/* The stream offset reached; *size the source's size (0: unknown). */
LAAFFIC_INTERNAL unsigned long long lf_csv_at(const lf_csv *c, unsigned long long *size);

/* The reader at idx, or NULL if it is not one. */
LAAFFIC_INTERNAL lf_csv *lf_csv_test(lua_State *L, int idx);

#endif
