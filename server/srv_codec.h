/* srv_codec.h: the KServe v2 inference request and response codecs: JSON tensors and
 * Triton's binary tensor data extension (a JSON header of Inference-Header-Content-Length
 * bytes followed by raw tensor data; BYTES elements as 4-byte little-endian length +
 * bytes). Reads untrusted bytes: every problem becomes a 400 with a message naming it. */
#ifndef SRV_CODEC_H
#define SRV_CODEC_H

#include <stdbool.h>
#include <stddef.h>

#include "srv_buf.h"
#include "srv_model_config.h"
#include "srv_request.h"

/* Decodes body[0..len) into r (created for cfg's input/output counts). header_len is the
 * Inference-Header-Content-Length value, or -1 when the header is absent (all JSON).
 * Returns false with r->status / r->error set on bad input. */
bool srv_request_decode(const srv_model_config *cfg, const char *body, size_t len,
                        long long header_len, srv_request *r);

/* Encodes r's selected outputs. *header_len receives the JSON header's length when binary
 * data follows it, else 0. Returns a new buffer (caller frees) or NULL when out of memory. */
char *srv_response_encode(const srv_model_config *cfg, const char *version, const srv_request *r,
                          size_t *len, size_t *header_len);

/* Rewrites the non-standard JSON tokens NaN, Infinity, -Infinity (outside strings) into
 * marker strings the numeric decoder accepts. Returns a new NUL-terminated copy when any
 * was found (caller frees; its length in *out_len if non-NULL), else NULL. */
char *srv_json_rewrite_nonfinite(const char *text, size_t len, size_t *out_len);
/* Parses len bytes of JSON that may contain NaN, Infinity and -Infinity (as KServe clients
 * send them). Returns a new reference, or NULL with err set. */
json_t *srv_json_load_lenient(const char *text, size_t len, json_error_t *err);

/* {"error": msg} as a new string (caller frees). */
char *srv_error_json(const char *msg);

#endif
