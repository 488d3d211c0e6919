/* csv_row.c - a CSV record as the encoder takes it: one row of slots (rules.h), with the
 * reader's options applied here (the column map, opts.normalize, opts.dedupe), and the
 * counters the reader keeps over the whole source (rows, duplicates, rejected, parts). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "rules.h"

/* ---------------------------------------------------------------- dedupe */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static int seen(lf_csv *c, const char *digits, size_t n, int insert)
{
    uint64_t key = 1;
    size_t i, mask;
    for (i = 0; i < n; i++)
        key = key * 10 + (uint64_t)(digits[i] - '0');
    if (c->set_n * 2 >= c->set_cap) {
        size_t cap = c->set_cap ? c->set_cap * 2 : 4096, k;
        uint64_t *s = (uint64_t *)calloc(cap, sizeof *s);
        if (s == NULL)
            return -1;
        for (k = 0; k < c->set_cap; k++) {
            uint64_t v = c->set[k];
            if (v) {
                size_t h = (size_t)mix(v) & (cap - 1);
                while (s[h])
                    h = (h + 1) & (cap - 1);
                s[h] = v;
            }
        }
        free(c->set);
        c->set = s;
        c->set_cap = cap;
    }
    mask = c->set_cap - 1;
    for (i = (size_t)mix(key) & mask; c->set[i]; i = (i + 1) & mask)
        if (c->set[i] == key)
            return 1;
    if (insert) {
        c->set[i] = key;
        c->set_n++;
    }
    return 0;
}

/* ---------------------------------------------------------------- rows */

/* Strips spaces, tabs, '+' and '-' from a number into out (at most outsz bytes). */
static size_t normalize_number(const char *s, size_t n, char *out, size_t outsz)
{
    size_t i, o = 0;
    for (i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == ' ' || ch == '\t' || ch == '+' || ch == '-')
            continue;
        if (o == outsz)
            return (size_t)-1;
        out[o++] = ch;
    }
    return o;
}

/* Fills r from the record just read. An empty cell is a missing value, but a quoted
 * empty calleeNumber is there (and refused by the encoder). */
static void fill_row(lf_csv *c, lf_csv_row *r)
{
    int j;
    r->present = 0;
    for (j = 0; j < LF_ROW_NKEYS; j++) {
        int col = c->map[j];
        const lf_csv_field *fd;
        if (col < 0 || col >= (int)c->nf)
            continue;
        fd = &c->f[col];
        if (fd->len == 0 && (j > 0 || !fd->quoted))
            continue;
        r->s[j] = fd->s ? fd->s : "";
        r->len[j] = fd->len;
        r->present |= 1u << j;
    }
    if ((r->present & 1u) && c->normalize) {
        size_t n = normalize_number(r->s[0], r->len[0], r->num, sizeof r->num);
        if (n != (size_t)-1) {
            r->s[0] = r->num;
            r->len[0] = n;
        }
    }
}

int lf_csv_next_row(lf_csv *c, lf_csv_row *r)
{
    r->duplicates = 0;
    for (;;) {
        int k = lf_csv_next(c);
        if (k <= 0)
            return k;
        fill_row(c, r);
        if ((r->present & 1u) && c->dedupe && lf_callee_ok(r->s[0], r->len[0])) {
            int dup = seen(c, r->s[0], r->len[0], 0);
            if (dup < 0)
                return -3;
            if (dup) {
                c->duplicates++;
                r->duplicates++;
                continue;
            }
        }
        return 1;
    }
}

int lf_csv_row_kept(lf_csv *c, const lf_csv_row *r)
{
    if (c->dedupe && seen(c, r->s[0], r->len[0], 1) < 0)
        return -1;
    c->rows++;
    return 0;
}

void lf_csv_where(const lf_csv *c, int j, long *line, int *col)
{
    int k = j >= 0 ? c->map[j] : -1;
    *line = k >= 0 && k < (int)c->nf ? c->f[k].line : c->rec_line;
    *col = k + 1;
}

const char *lf_csv_error(const lf_csv *c, long *line, int *col)
{
    *line = c->err_line;
    *col = c->err_col;
    return c->err;
}

int lf_csv_part(lf_csv *c)
{
    return c->closed ? 0 : ++c->parts;
}

void lf_csv_rejected(lf_csv *c)
{
    c->rejected++;
}

unsigned long long lf_csv_at(const lf_csv *c, unsigned long long *size)
{
    *size = c->size;
    return c->base + c->pos;
}
