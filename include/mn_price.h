/* mn_price: what a request cost, in integer micro-USD.
 *
 * Prices come from `ManiacPrice <provider/model glob> input=… output=…
 * [cached-input=…] [cache-write=…]` lines (USD per million tokens, at most six
 * decimals) and from `ManiacPriceFile` files in LiteLLM's
 * model_prices_and_context_window.json format (USD per token).  Lookup for the
 * `provider/model` that served a request: the first ManiacPrice glob that
 * matches, else the files in order, each tried with the key
 * "provider/model" and then "model" (the upstream model name; LiteLLM's
 * `litellm_provider` is not compared, our provider names are the admin's).
 *
 * Internally a price is pico-USD per token (= micro-USD per 1M tokens), so
 * every price line is held exactly; a cost is the sum of tokens x price over
 * the four kinds of token, divided by 10^6 and rounded up to the next whole
 * micro-USD (a request is never charged less than it cost).  Pure: APR and
 * Jansson only. */
#ifndef MN_PRICE_H
#define MN_PRICE_H

#include <stdint.h>
#include <apr_pools.h>
#include "mn_wire.h"

typedef struct mn_price {
    int64_t input;           /* pico-USD per prompt token not read from/written to a cache */
    int64_t output;          /* per completion token (reasoning included) */
    int64_t cached_input;    /* per cached prompt token (defaults to input) */
    int64_t cache_write;     /* per cache-write prompt token (defaults to input) */
} mn_price;

typedef struct mn_price_table mn_price_table;

mn_price_table *mn_price_table_create(apr_pool_t *p);

/* One ManiacPrice line (argv[0] is the glob).  NULL, or what is wrong. */
const char *mn_price_add_line(mn_price_table *t, int argc, const char *const *argv);

/* A LiteLLM price table, as text (what names the source in messages) or as
 * a file.  Entries without input_cost_per_token and output_cost_per_token
 * (LiteLLM's "sample_spec", image or audio models) are skipped.  NULL, or
 * what is wrong. */
const char *mn_price_add_litellm(mn_price_table *t, const char *text, size_t len,
                                 const char *what);
const char *mn_price_add_litellm_file(mn_price_table *t, const char *path);

/* The price of provider/model, or NULL when none is known. */
const mn_price *mn_price_find(const mn_price_table *t, const char *provider, const char *model);

/* Micro-USD for usage at price p (saturates at INT64_MAX). */
int64_t mn_price_cost(const mn_price *p, const mn_usage *u);

/* Tokens of each kind at price p, for a reservation before usage is known. */
int64_t mn_price_estimate(const mn_price *p, int64_t prompt_tokens, int64_t completion_tokens);

/* USD with six decimals ("0.000123", "12.500000"): the maniac-cost note. */
const char *mn_price_format_usd(apr_pool_t *p, int64_t micro_usd);

/* A decimal amount with at most `decimals` fractional digits, scaled by
 * 10^decimals ("0.15", 6 -> 150000).  0, or -1 when malformed or too large. */
int mn_price_parse_decimal(const char *s, int decimals, int64_t *out);

#endif
