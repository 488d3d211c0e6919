/* rows_csv.c - numberInfoList from a CSV reader: the next part of the file, at most
 * opts.max_rows rows, each written by the row writer every source shares (rows.c). The
 * reader hands over one row at a time (csv.h: lf_csv_row), with its column map,
 * normalize and dedupe applied; errors are located in the file ("list.csv:12:3: ..."). */
#include <stdio.h>
#include <string.h>

#include "enc.h"

/* Fails with the message located in the file: "list.csv:12:3: calleeNumber: ...". */
static int csv_fail(enc *e, lf_csv *c, long line, int col, int j)
{
    char msg[sizeof e->msg];
    const char *name = c->name;
    memcpy(msg, e->msg, sizeof msg);
    if (j >= 0 && col > 0)
        snprintf(e->msg, sizeof e->msg, "%.200s:%ld:%d: %s: %.300s", name, line, col,
                 lf_row_keys[j], msg);
    else if (j >= 0)
        snprintf(e->msg, sizeof e->msg, "%.200s:%ld: %s: %.300s", name, line, lf_row_keys[j],
                 msg);
    else if (col > 0)
        snprintf(e->msg, sizeof e->msg, "%.200s:%ld:%d: %.300s", name, line, col, msg);
    else
        snprintf(e->msg, sizeof e->msg, "%.200s:%ld: %.300s", name, line, msg);
    e->located = 1;
    e->err_line = line;
    e->err_col = col;
    e->err_field = j >= 0 ? lf_row_keys[j] : NULL;
    return -1;
}

/* A record the reader could not read (r -1: the file ends here; -2: skipped). */
static int bad_record(enc *e, lf_csv *c, int r)
{
    long line;
    int col;
    const char *msg = lf_csv_error(c, &line, &col);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    e->code = CODE_DATA;
    if (r == -1 || !e->rejects)
        return csv_fail(e, c, line, col, -1);
    if (lf_add_reject(e, 0, line, col, "record"))
        return -1;
    lf_csv_rejected(c);
    return 0;
}

/* A row the writer refused: to opts.rejects (0), or the encode fails located. */
static int bad_row(enc *e, lf_csv *c, int depth)
{
    long line;
    int col, j;
    if (e->fatal)
        return -1;
    j = lf_failed_key(e, depth);
    e->depth = depth;
    lf_csv_where(c, j, &line, &col);
    if (!e->rejects)
        return csv_fail(e, c, line, col, j);
    if (lf_add_reject(e, 0, line, col, j >= 0 ? lf_row_keys[j] : "record"))
        return -1;
    lf_csv_rejected(c);
    return 0;
}

#if defined(__GNUC__)
#define lowest_bit(p) __builtin_ctz(p)
#else
static int lowest_bit(unsigned p)
{
    int j = 0;
    while (!(p & 1u)) {
        p >>= 1;
        j++;
    }
    return j;
}
#endif

/* Writes row r after a comma unless it is the part's first; the closing brace too. */
static int put_csv_row(enc *e, const lf_csv_row *r)
{
    slot v[LF_ROW_NKEYS];
    size_t need = 64;
    unsigned p;
    for (p = r->present; p; p &= p - 1) { /* the slots present, lowest first */
        int j = lowest_bit(p);
        v[j].type = LUA_TSTRING;
        v[j].s = r->s[j];
        v[j].len = r->len[j];
        need += lf_string_need(r->len[j]);
    }
    return (e->rows == 0 || put_chars(e, ",", 1) == 0) &&
                   lf_put_slots(e, v, r->present, need) == 0 && put_chars(e, "}", 1) == 0
               ? 0
               : -1;
}

/* Every 1024 rows, extrapolates the part's size from the file's (see lf_grow). */
static void estimate_rows(enc *e, lf_csv *c, unsigned long long from)
{
    unsigned long long size, at;
    double per, left, total;
    if ((e->rows & 1023) != 0)
        return;
    at = lf_csv_at(c, &size);
    if (size == 0)
        return;
    per = (double)(at - from) / (double)e->rows;
    left = per > 0 ? (double)(size > at ? size - at : 0) / per : 0;
    total = (double)e->rows + left;
    e->rows_total = total > (double)e->max_rows ? e->max_rows : (size_t)total;
}

/* The part is over: it needs a row, and a file read to its end is an error of its own. */
static int end_part(enc *e, lf_csv *c)
{
    if (e->rows == 0) {
        if (e->part > 1 && !e->rejected && !e->duplicates)
            return fail(e, CODE_DATA, "%.300s has no rows left: its %d part(s) were all read",
                        c->name, e->part - 1);
        if (lf_no_rows(e)) { /* strict */
            snprintf(e->msg + strlen(e->msg), sizeof e->msg - strlen(e->msg), " in %.300s",
                     c->name);
            return -1;
        }
    }
    e->rows_total = e->rows;
    return put_chars(e, "]", 1);
}

/* The next records of the part while e->budget lasts (LF_MORE: it ran out), then the
 * part's end. After max_rows rows the next valid row is read, found valid, and given back
 * to the reader (e->more = 1), so the part knows whether another follows. */
int lf_more_csv_numbers(enc *e)
{
    lf_csv *c = e->csv;
    lf_csv_row r;
    for (;;) {
        size_t mark = e->b->len, trunc = e->truncated;
        int k, depth = e->depth;
        if (e->budget == 0)
            return LF_MORE;
        e->budget--;
        k = lf_csv_next_row(c, &r);
        e->duplicates += r.duplicates;
        if (k == 0)
            break;
        if (k == -3)
            return fail(e, CODE_DATA, "out of memory remembering numbers for opts.dedupe");
        if (k < 0) {
            if (bad_record(e, c, k))
                return -1;
            continue;
        }
        if (put_csv_row(e, &r) == 0) {
            if (e->rows == e->max_rows) { /* one past the part: give it back */
                e->b->len = mark;
                e->truncated = trunc;
                lf_csv_unread(c);
                e->more = 1;
                break;
            }
            if (lf_csv_row_kept(c, &r) < 0)
                return fail(e, CODE_DATA, "out of memory remembering numbers for opts.dedupe");
            e->rows++;
            estimate_rows(e, c, e->csv_from);
            continue;
        }
        e->b->len = mark;
        e->truncated = trunc;
        if (bad_row(e, c, depth))
            return -1;
    }
    return end_part(e, c);
}

/* Starts the reader's next part and writes its rows as far as e->budget allows. */
int lf_put_csv_numbers(enc *e, lf_csv *c)
{
    unsigned long long size;
    if ((e->part = lf_csv_part(c)) == 0)
        return fail(e, CODE_PARAM, "the CSV source is closed");
    e->csv = c;
    e->csv_from = lf_csv_at(c, &size);
    e->rows = 0;
    e->rows_total = 0;
    e->list_start = e->b->len;
    if (put_chars(e, "[", 1))
        return -1;
    return lf_more_csv_numbers(e);
}
