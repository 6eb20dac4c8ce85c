/*
 * parts.c - Result.confidence_parts (docs/design.md section 4): with
 * confidence_source "combined", the value each signal gave on its own, as
 * a JSON object {"logprob": 0.91, "verifier": 0.42} or the protobuf map
 * confidence_parts. Sources are the closed set of single signals (not
 * "combined"); values are in [0,1]; at most KS_CONF_PARTS_MAX; a source
 * given twice is refused. The protobuf half is in pb.c's style but here,
 * so the two formats refuse the same things through codec_parts_check.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "wire/codec_internal.h"
#include "wire/jparse.h"

#include "base/banned.h"

static bool is_part_source(const char *s)
{
    static const char *const ok[] = {"logprob",  "self_report", "schema",
                                     "verifier", "agreement",   "classifier",
                                     NULL};

    for (int i = 0; ok[i]; i++) {
        if (strcmp(s, ok[i]) == 0) {
            return true;
        }
    }
    return false;
}

enum ks_err codec_parts_check(const struct ks_result *result,
                              struct ks_codec_error *cerr)
{
    const struct ks_conf_part *p = result->confidence_parts;
    size_t n = result->n_confidence_parts;
    enum ks_err err =
        codec_check_count("confidence_parts", n, KS_CONF_PARTS_MAX, cerr);

    for (size_t i = 0; err == KS_OK && i < n; i++) {
        if (!is_part_source(p[i].source)) {
            return codec_invalid(cerr, "confidence_parts",
                                 "'%.40s' is not a confidence source",
                                 p[i].source);
        }
        if (!isfinite(p[i].value) || p[i].value < 0 || p[i].value > 1) {
            return codec_invalid(cerr, "confidence_parts",
                                 "%s must be a number from 0 to 1",
                                 p[i].source);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(p[j].source, p[i].source) == 0) {
                return codec_invalid(cerr, "confidence_parts", "%s given twice",
                                     p[i].source);
            }
        }
    }
    return err;
}

enum ks_err codec_parts_json_decode(const struct jdoc *doc,
                                    const struct jnode *item,
                                    struct ks_result *result,
                                    struct ks_codec_error *cerr)
{
    size_t n;
    enum ks_err err;

    if (!item || item->type == JT_NULL) {
        return KS_OK;
    }
    if (item->type != JT_OBJECT) {
        return codec_invalid(cerr, "confidence_parts",
                             "must be an object of source: number");
    }
    n = item->u.kids.count;
    err = codec_check_count("confidence_parts", n, KS_CONF_PARTS_MAX, cerr);
    if (err != KS_OK) {
        return err;
    }
    result->confidence_parts = ks_xcalloc(n + 1, sizeof(struct ks_conf_part));
    JNODE_FOREACH(doc, it, item)
    {
        struct ks_conf_part *p =
            &result->confidence_parts[result->n_confidence_parts++];

        p->source = ks_xstrdup(jnode_key(doc, it));
        if (it->type != JT_NUMBER) {
            return codec_invalid(cerr, "confidence_parts",
                                 "%.40s must be a number from 0 to 1",
                                 jnode_key(doc, it));
        }
        p->value = it->u.num;
    }
    return codec_parts_check(result, cerr);
}

bool codec_parts_json_encode(cJSON *root, const struct ks_result *result)
{
    cJSON *obj;

    if (result->n_confidence_parts == 0) {
        return true;
    }
    obj = cJSON_AddObjectToObject(root, "confidence_parts");
    for (size_t i = 0; obj && i < result->n_confidence_parts; i++) {
        const struct ks_conf_part *p = &result->confidence_parts[i];

        if (!cJSON_AddNumberToObject(obj, p->source, p->value)) {
            return false;
        }
    }
    return obj != NULL;
}

void codec_parts_free(struct ks_result *result)
{
    for (size_t i = 0; i < result->n_confidence_parts; i++) {
        free(result->confidence_parts[i].source);
    }
    free(result->confidence_parts);
    result->confidence_parts = NULL;
    result->n_confidence_parts = 0;
}
