/*
 * fuzz_lr.c - the model-file loader (ks_lr_load), through a scratch file;
 * a model that loads is also asked for a score and a class.
 */
#include "fuzz.h"
#include "learn/lr.h"

#include "base/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char text[] = "please refund my order urgently";
    char errstr[512];
    struct ks_lr_model *m;
    double prob;

    fuzz_quiet();
    m = ks_lr_load(fuzz_file(data, size), errstr, sizeof(errstr));
    if (!m) {
        return 0;
    }
    (void)ks_lr_score(m, text, sizeof(text) - 1);
    (void)ks_lr_classify(m, text, sizeof(text) - 1, &prob);
    ks_lr_destroy(m);
    return 0;
}
