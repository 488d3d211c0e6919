/* csv.c - the CSV reader: records parsed from a file read in blocks, or from a string
 * (the Lua object around it is csv_source.c; a record as an encoder row, csv_row.c).
 *
 * RFC 4180: fields separated by a delimiter (default ','), records by CRLF or LF (a lone
 * CR too); a field in double quotes may hold delimiters, line breaks and doubled quotes.
 * A UTF-8 byte order mark at the start is skipped; a UTF-16 one is an error. Text after a
 * closing quote makes the record malformed (reported, skipped); a quote that never
 * closes ends the file with an error. A quote inside an unquoted field is kept as it is.
 *
 * Files are read in blocks into a buffer that holds the current record; compaction
 * drops what was parsed, so memory is the block size plus the longest record. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csv.h"

/* The read block. The fuzz build makes it small (fuzz/fuzz.mk) so that its inputs of a
 * few KiB cross refills the way a real file crosses 256 KiB ones. */
#ifndef LF_CSV_BLOCK
#define LF_CSV_BLOCK (256 * 1024)
#endif
#define BLOCK LF_CSV_BLOCK
#define MAX_RECORD (16 * 1024 * 1024)


static int set_err(lf_csv *c, long line, int col, const char *msg)
{
    snprintf(c->err, sizeof c->err, "%s", msg);
    c->err_line = line;
    c->err_col = col;
    return -1;
}

/* ---------------------------------------------------------------- reading */

/* Keeps buf[keep..len), reads more after it. Returns 1 read something, 0 at the end of
 * the file, -1 on an error. */
int lf_csv_fill(lf_csv *c, size_t keep)
{
    ssize_t n;
    if (c->fd < 0 || c->eof)
        return 0;
    if (keep > 0) {
        memmove(c->in.data, c->in.data + keep, c->in.len - keep);
        c->in.len -= keep;
        c->pos -= keep;
        c->base += keep;
    }
    if (c->in.cap - c->in.len < BLOCK / 4) {
        size_t cap = c->in.cap ? c->in.cap * 2 : BLOCK;
        if (c->in.len >= MAX_RECORD)
            return set_err(c, c->line, 0,
                           "a record longer than 16 MiB (is a quote left open?)");
        if (lf_buf_grow(&c->in, cap))
            return set_err(c, c->line, 0, "out of memory reading the file");
    }
    do
        n = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "read error: %s", strerror(errno));
        return set_err(c, c->line, 0, msg);
    }
    if (n == 0) {
        c->eof = 1;
        return 0;
    }
    c->in.len += (size_t)n;
    return 1;
}

static int tmp_add(lf_csv *c, const char *p, size_t n)
{
    return lf_buf_add(&c->tmp, p, n);
}

static lf_csv_field *add_field(lf_csv *c)
{
    if (c->nf == c->fcap) {
        size_t cap = c->fcap ? c->fcap * 2 : 16;
        lf_csv_field *f;
        if (c->nf >= LF_CSV_MAX_COLUMNS)
            return NULL;
        f = (lf_csv_field *)realloc(c->f, cap * sizeof *f);
        if (f == NULL)
            return NULL;
        c->f = f;
        c->fcap = cap;
    }
    memset(&c->f[c->nf], 0, sizeof c->f[0]);
    return &c->f[c->nf++];
}

static size_t count_nl(const char *p, size_t n)
{
    size_t k = 0;
    const char *end = p + n;
    while ((p = (const char *)memchr(p, '\n', (size_t)(end - p))) != NULL) {
        k++;
        p++;
    }
    return k;
}

enum { P_DONE = 1, P_MORE = 0, P_FATAL = -1, P_BAD = -2, P_END = 2 };

/* A quoted field, from just after its opening quote (*ip) to just after its closing one;
 * "" inside is unescaped into the scratch. Returns P_DONE, P_MORE, P_FATAL, or P_BAD for
 * text after the closing quote (the rest of that line is skipped). */
static int parse_quoted(lf_csv *c, lf_csv_field *f, int eof, size_t *ip, long *linep)
{
    const char *b = c->in.data;
    size_t i = *ip, len = c->in.len, seg = i;
    long line = *linep, qline = line;
    f->quoted = 1;
    for (;;) {
        const char *q = (const char *)memchr(b + i, '"', len - i);
        if (q == NULL) {
            if (!eof)
                return P_MORE;
            return set_err(c, qline, (int)c->nf,
                           "a quoted field is never closed (its quote opens here)");
        }
        line += (long)count_nl(b + i, (size_t)(q - (b + i)));
        i = (size_t)(q - b);
        if (i + 1 == len && !eof)
            return P_MORE; /* "" or " then the end? */
        if (i + 1 < len && b[i + 1] == '"') {
            if (!f->in_tmp) {
                f->in_tmp = 1;
                f->off = c->tmp.len;
            }
            if (tmp_add(c, b + seg, i + 1 - seg))
                return set_err(c, line, (int)c->nf, "out of memory");
            i += 2;
            seg = i;
            continue;
        }
        /* the closing quote */
        if (f->in_tmp) {
            if (tmp_add(c, b + seg, i - seg))
                return set_err(c, line, (int)c->nf, "out of memory");
            f->len = c->tmp.len - f->off;
        } else {
            f->s = b + seg;
            f->len = i - seg;
        }
        i++;
        break;
    }
    if (i < len && b[i] != c->delim && b[i] != '\r' && b[i] != '\n') {
        /* malformed: skip to the end of the line */
        int col = (int)c->nf;
        const char *nl = (const char *)memchr(b + i, '\n', len - i);
        if (nl == NULL && !eof)
            return P_MORE;
        c->pos = nl ? (size_t)(nl - b) + 1 : len;
        c->line = line + 1;
        set_err(c, line, col,
                "text after a closing quote (a quote inside a quoted field is "
                "written twice: \"\")");
        return P_BAD;
    }
    *ip = i;
    *linep = line;
    return P_DONE;
}

/* Parses one record starting at c->pos. P_MORE: the buffer ended inside it (read more
 * and parse again from the same start). */
static int parse(lf_csv *c)
{
    const char *b = c->in.data;
    size_t i = c->pos, len = c->in.len;
    long line = c->line;
    const char d = c->delim;
    int eof = c->fd < 0 || c->eof;

    c->nf = 0;
    c->tmp.len = 0;
    c->rec_line = line;
    c->rec_at = c->base + i;
    if (i == len)
        return eof ? P_END : P_MORE;
    for (;;) {
        lf_csv_field *f = add_field(c);
        if (f == NULL)
            return set_err(c, line, (int)c->nf,
                           c->nf >= LF_CSV_MAX_COLUMNS ? "more than 4096 columns" : "out of memory");
        f->line = line;
        if (i < len && b[i] == '"') {
            int r;
            i++;
            if ((r = parse_quoted(c, f, eof, &i, &line)) != P_DONE)
                return r;
        } else {
            size_t j = i;
            while (j < len && b[j] != d && b[j] != '\n' && b[j] != '\r')
                j++;
            if (j == len && !eof)
                return P_MORE;
            f->s = b + i;
            f->len = j - i;
            i = j;
        }
        /* after a field: a delimiter, a line break, or the end */
        if (i == len)
            break; /* eof here, or the loops above asked for more */
        if (b[i] == d) {
            i++;
            continue;
        }
        if (b[i] == '\r') {
            if (i + 1 == len && !eof)
                return P_MORE;
            i += (i + 1 < len && b[i + 1] == '\n') ? 2 : 1;
        } else {
            i++;
        }
        line++;
        break;
    }
    /* resolve the fields kept in the scratch (it may have moved while growing) */
    {
        size_t k;
        for (k = 0; k < c->nf; k++)
            if (c->f[k].in_tmp)
                c->f[k].s = c->tmp.data + c->f[k].off;
    }
    c->pos = i;
    c->line = line;
    return P_DONE;
}

int lf_csv_next(lf_csv *c)
{
    if (c->closed)
        return set_err(c, c->line, 0, "the CSV source is closed");
    for (;;) {
        int r = parse(c);
        if (r == P_MORE) {
            int f = lf_csv_fill(c, c->pos);
            if (f < 0)
                return -1;
            continue; /* parse again: at eof it decides */
        }
        if (r == P_END)
            return 0;
        if (r != P_DONE)
            return r;
        /* a blank line */
        if (c->nf == 1 && c->f[0].len == 0 && !c->f[0].quoted)
            continue;
        c->records++;
        return 1;
    }
}

void lf_csv_unread(lf_csv *c)
{
    c->pos = (size_t)(c->rec_at - c->base);
    c->line = c->rec_line;
    c->records--;
}

