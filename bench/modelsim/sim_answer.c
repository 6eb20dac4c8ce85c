/*
 * sim_answer.c - reads an OpenAI chat request and writes the simulator's
 * deterministic chat.completion.
 *
 * Invariants: everything a request can make us walk is capped before or
 * while we walk it (nesting depth before parsing, messages and content
 * parts while reading); the reply depends only on the request, the options
 * and seq (plus the wall clock in "created"); strings borrowed from the
 * parsed request live until its cJSON tree is deleted at the end of
 * sim_answer_chat.
 */
#include "sim_answer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pthread.h>

#include <cjson/cJSON.h>

#include "base/util.h"
#include "sim_conf.h"
#include "sim_replay.h"
#include "sim_text.h"

#include "base/banned.h"

/* max_tokens beyond this is a typo; it also keeps max_tokens * 4 small. */
#define MAX_TOKENS_CAP 1000000000LL

struct chat_req {
    cJSON *root;
    const char *model;      /* borrowed from root or the options */
    const cJSON *answer_to; /* content of the last user message */
    size_t prompt_bytes;    /* all message text */
    bool classify;          /* some message asks to classify */
    long long max_tokens;   /* 0: no limit */
    bool logprobs;
    bool json_mode; /* response_format asks for JSON */
    int n;          /* choices asked for ("n"), 1..SIM_MAX_CHOICES */
};

/* The most choices one request may ask for. */
#define SIM_MAX_CHOICES 16

/* cJSON's parser records its last error in a global, so parses take turns;
 * they are short next to the simulated latency. */
static pthread_mutex_t parse_lock = PTHREAD_MUTEX_INITIALIZER;

char *sim_answer_error(const char *message, const char *type, const char *code)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(root, "error");
    char *text = NULL;

    if (err == NULL) {
        goto out;
    }
    cJSON_AddStringToObject(err, "message", message);
    cJSON_AddStringToObject(err, "type", type);
    cJSON_AddNullToObject(err, "param");
    if (code != NULL) {
        cJSON_AddStringToObject(err, "code", code);
    } else {
        cJSON_AddNullToObject(err, "code");
    }
    text = cJSON_PrintUnformatted(root);
out:
    cJSON_Delete(root);
    return text;
}

/* Returns true when no array or object in s nests deeper than max. */
static bool nesting_within(const char *s, size_t len, int max)
{
    bool in_str = false, esc = false;
    int depth = 0;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (in_str) {
            if (esc) {
                esc = false;
            } else if (c == '\\') {
                esc = true;
            } else if (c == '"') {
                in_str = false;
            }
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max) {
                return false;
            }
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return true;
}

static int parse_body(const char *body,
                      size_t len,
                      struct chat_req *req,
                      char *err,
                      size_t err_size)
{
    if (!nesting_within(body, len, SIM_ANSWER_MAX_DEPTH)) {
        snprintf(err, err_size, "request JSON nests deeper than %d levels",
                 SIM_ANSWER_MAX_DEPTH);
        return -1;
    }
    pthread_mutex_lock(&parse_lock);
    req->root = cJSON_ParseWithLength(body, len);
    pthread_mutex_unlock(&parse_lock);
    if (req->root == NULL) {
        snprintf(err, err_size, "request body is not valid JSON");
        return -1;
    }
    if (!cJSON_IsObject(req->root)) {
        snprintf(err, err_size, "request body is not a JSON object");
        return -1;
    }
    return 0;
}

/* Returns the text of one content part, or NULL for non-text parts. */
static const char *part_text(const cJSON *part)
{
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");

    return cJSON_IsString(text) ? text->valuestring : NULL;
}

/* Counts one text into the prompt and looks for the word "classify". */
static void scan_text(struct chat_req *req, const char *text)
{
    req->prompt_bytes += strlen(text);
    if (!req->classify && strcasestr(text, "classify") != NULL) {
        req->classify = true;
    }
}

static int scan_content(struct chat_req *req,
                        const cJSON *content,
                        int idx,
                        char *err,
                        size_t err_size)
{
    const cJSON *part;

    if (content == NULL || cJSON_IsNull(content)) {
        return 0; /* an assistant turn with tool calls only */
    }
    if (cJSON_IsString(content)) {
        scan_text(req, content->valuestring);
        return 0;
    }
    if (!cJSON_IsArray(content)) {
        snprintf(err, err_size,
                 "messages[%d].content must be a string, parts or null", idx);
        return -1;
    }
    if (cJSON_GetArraySize(content) > SIM_ANSWER_MAX_PARTS) {
        snprintf(err, err_size, "messages[%d] has more than %d content parts",
                 idx, SIM_ANSWER_MAX_PARTS);
        return -1;
    }
    cJSON_ArrayForEach(part, content) {
        if (!cJSON_IsObject(part)) {
            snprintf(err, err_size,
                     "messages[%d].content parts must be objects", idx);
            return -1;
        }
        if (part_text(part) != NULL) {
            scan_text(req, part_text(part));
        }
    }
    return 0;
}

static int read_messages(struct chat_req *req, char *err, size_t err_size)
{
    const cJSON *messages, *msg, *last = NULL;
    int idx = 0;

    messages = cJSON_GetObjectItemCaseSensitive(req->root, "messages");
    if (!cJSON_IsArray(messages) || cJSON_GetArraySize(messages) == 0) {
        snprintf(err, err_size, "'messages' must be a non-empty array");
        return -1;
    }
    if (cJSON_GetArraySize(messages) > SIM_ANSWER_MAX_MESSAGES) {
        snprintf(err, err_size, "more than %d messages",
                 SIM_ANSWER_MAX_MESSAGES);
        return -1;
    }
    cJSON_ArrayForEach(msg, messages) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");

        if (!cJSON_IsObject(msg) || !cJSON_IsString(role)) {
            snprintf(err, err_size, "messages[%d] needs a string 'role'", idx);
            return -1;
        }
        if (scan_content(req, content, idx, err, err_size) != 0) {
            return -1;
        }
        if (strcmp(role->valuestring, "user") == 0) {
            req->answer_to = content;
        }
        last = content;
        idx++;
    }
    if (req->answer_to == NULL) {
        req->answer_to = last; /* no user turn: answer whatever came last */
    }
    return 0;
}

static int read_max_tokens(struct chat_req *req, char *err, size_t err_size)
{
    static const char *const names[] = {"max_completion_tokens", "max_tokens"};

    for (size_t i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(req->root, names[i]);

        if (v == NULL || cJSON_IsNull(v)) {
            continue;
        }
        if (!cJSON_IsNumber(v) || v->valuedouble < 1 ||
            v->valuedouble > (double)MAX_TOKENS_CAP) {
            snprintf(err, err_size, "'%s' must be a number in [1, %lld]",
                     names[i], MAX_TOKENS_CAP);
            return -1;
        }
        req->max_tokens = (long long)v->valuedouble;
        return 0;
    }
    return 0;
}

/* "n": how many choices (each the same answer: the simulator has one). */
static int read_n(struct chat_req *req, char *err, size_t err_size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req->root, "n");

    req->n = 1;
    if (v == NULL || cJSON_IsNull(v)) {
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 ||
        v->valuedouble > SIM_MAX_CHOICES ||
        v->valuedouble != (double)(int)v->valuedouble) {
        snprintf(err, err_size, "'n' must be an integer in 1..%d",
                 SIM_MAX_CHOICES);
        return -1;
    }
    req->n = (int)v->valuedouble;
    return 0;
}

static int read_options(struct chat_req *req,
                        const struct sim_answer_opts *opts,
                        char *err,
                        size_t err_size)
{
    const cJSON *model, *fmt, *type;

    model = cJSON_GetObjectItemCaseSensitive(req->root, "model");
    if (model != NULL && !cJSON_IsString(model) && !cJSON_IsNull(model)) {
        snprintf(err, err_size, "'model' must be a string");
        return -1;
    }
    req->model = cJSON_IsString(model) && model->valuestring[0] != '\0'
                     ? model->valuestring
                     : opts->model;
    req->logprobs =
        opts->logprobs ||
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req->root, "logprobs"));
    fmt = cJSON_GetObjectItemCaseSensitive(req->root, "response_format");
    type = cJSON_GetObjectItemCaseSensitive(fmt, "type");
    if (cJSON_IsString(type) &&
        (strcmp(type->valuestring, "json_object") == 0 ||
         strcmp(type->valuestring, "json_schema") == 0)) {
        req->json_mode = true;
    }
    return read_n(req, err, err_size) || read_max_tokens(req, err, err_size);
}

/* Sets *text to the last user turn's text: borrowed for a plain string,
 * else its text parts joined into *owned (caller frees). */
static enum ks_err answer_text(const struct chat_req *req,
                               char **owned,
                               const char **text)
{
    const cJSON *part;
    size_t total = 0, o = 0;
    char *buf;

    *owned = NULL;
    *text = "";
    if (cJSON_IsString(req->answer_to)) {
        *text = req->answer_to->valuestring;
        return KS_OK;
    }
    if (!cJSON_IsArray(req->answer_to)) {
        return KS_OK;
    }
    cJSON_ArrayForEach(part, req->answer_to) {
        total += part_text(part) ? strlen(part_text(part)) + 1 : 0;
    }
    buf = malloc(total + 1); /* bounded by --max-body */
    if (buf == NULL) {
        return KS_ERR_NOMEM;
    }
    cJSON_ArrayForEach(part, req->answer_to) {
        const char *t = part_text(part);

        if (t != NULL) {
            size_t n = strlen(t);

            if (o > 0) {
                buf[o++] = '\n';
            }
            memcpy(buf + o, t, n);
            o += n;
        }
    }
    buf[o] = '\0';
    *owned = buf;
    *text = buf;
    return KS_OK;
}

/* Wraps answer as {"answer": ..., "confidence": X}, X being conf when it
 * is >= 0; NULL on OOM. */
static char *wrap_json(const char *answer,
                       const struct sim_answer_opts *opts,
                       double conf)
{
    cJSON *obj = cJSON_CreateObject();
    char *text;

    if (conf < 0.0 && opts->has_confidence) {
        conf = opts->confidence;
    } else if (conf < 0.0) {
        /* JSON asked for, no --confidence: a stable value in [0.55, 0.99]. */
        uint64_t h = sim_fnv1a(SIM_FNV_OFFSET, answer, strlen(answer));

        conf = 0.55 + (double)(h % 45) / 100.0;
    }
    cJSON_AddStringToObject(obj, "answer", answer);
    cJSON_AddNumberToObject(obj, "confidence", conf);
    text = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    return text;
}

/* The answer before any JSON wrapping: recorded (--replay), a marked
 * fallback for a prompt the recording lacks, or the simulated one. */
static char *base_answer(const struct chat_req *req,
                         const struct sim_answer_opts *opts,
                         const char *input,
                         struct sim_answer_info *info)
{
    size_t len = strlen(input);
    bool label = req->classify || len <= SIM_TEXT_LABEL_MAX;
    const char *recorded;
    struct ks_buf buf;
    char *sim;

    if (opts->replay == NULL) {
        return sim_text_answer(input, len, label);
    }
    recorded = sim_replay_find(opts->replay, input, len);
    if (recorded != NULL) {
        info->replay_hit = true;
        return ks_xstrdup(recorded);
    }
    info->replay_miss = true;
    sim = sim_text_answer(input, len, label);
    ks_buf_init(&buf);
    ks_buf_printf(&buf, "%s%s", SIM_REPLAY_MISS_PREFIX, sim);
    free(sim);
    return ks_buf_take(&buf);
}

/* {"escalate": true, "confidence": conf}; NULL on OOM. */
static char *escalate_json(double conf)
{
    cJSON *obj = cJSON_CreateObject();
    char *text;

    cJSON_AddBoolToObject(obj, "escalate", 1);
    cJSON_AddNumberToObject(obj, "confidence", conf);
    text = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    return text;
}

/* Builds the assistant's content; sets *cut when max_tokens shortened it
 * and *lp_conf to the confidence the token logprobs must carry (< 0: the
 * default per-token values). */
static enum ks_err build_content(const struct chat_req *req,
                                 const struct sim_answer_opts *opts,
                                 char **content,
                                 bool *cut,
                                 double *lp_conf,
                                 struct sim_answer_info *info)
{
    char *owned, *answer, *text;
    const char *input;
    size_t len, keep;
    double conf = -1.0;
    enum ks_err err = answer_text(req, &owned, &input);

    if (err != KS_OK) {
        return err;
    }
    if (opts->has_conf_range) {
        conf = sim_conf_of_prompt(opts->conf_lo, opts->conf_hi, input,
                                  strlen(input));
    } else if (opts->has_confidence) {
        conf = opts->confidence;
    }
    *lp_conf = opts->has_conf_range ? conf : -1.0;
    if (opts->replay != NULL && !opts->has_conf_range &&
        sim_replay_confidence(opts->replay, input, strlen(input)) >= 0.0) {
        /* A recorded confidence travels in the logprobs. */
        *lp_conf = sim_replay_confidence(opts->replay, input, strlen(input));
    }
    answer = base_answer(req, opts, input, info);
    free(owned);
    text = answer;
    if (conf >= 0.0 && conf < opts->escalate_below) {
        info->escalated = true;
        text = escalate_json(conf);
        *lp_conf = conf;
        free(answer);
    } else if (opts->has_confidence || req->json_mode) {
        text = wrap_json(answer, opts, conf);
        free(answer);
    }
    if (text == NULL) {
        return KS_ERR_NOMEM;
    }
    /* A length cut applies to what the model "wrote", wrapper included. */
    len = strlen(text);
    keep = len;
    if (req->max_tokens > 0) {
        keep = sim_text_utf8_prefix(text, len, (size_t)req->max_tokens * 4);
    }
    text[keep] = '\0';
    *cut = keep < len;
    *content = text;
    return KS_OK;
}

/* lp: the token's logprob; NAN for the default per-token value. */
static cJSON *logprob_entry(const char *tok, size_t n, size_t index, double lp)
{
    cJSON *entry = cJSON_CreateObject();
    cJSON *bytes;
    char buf[16];

    n = n < sizeof(buf) - 1 ? n : sizeof(buf) - 1; /* tokens are <= 7 */
    memcpy(buf, tok, n);
    buf[n] = '\0';
    cJSON_AddStringToObject(entry, "token", buf);
    cJSON_AddNumberToObject(entry, "logprob",
                            isnan(lp) ? sim_text_logprob(tok, n, index) : lp);
    bytes = cJSON_AddArrayToObject(entry, "bytes");
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(bytes, cJSON_CreateNumber((unsigned char)tok[i]));
    }
    cJSON_AddArrayToObject(entry, "top_logprobs");
    return entry;
}

/* Adds choice.logprobs = {"content": [one entry per ~4-byte token]}. With
 * conf >= 0 every token's logprob is ln(conf), so their mean gives conf
 * back (0 is taken as 0.001: a logprob must be finite). */
static void add_logprobs(cJSON *choice, const char *content, double conf)
{
    cJSON *lp = cJSON_AddObjectToObject(choice, "logprobs");
    cJSON *list = cJSON_AddArrayToObject(lp, "content");
    size_t len = strlen(content), off = 0, index = 0;
    double each = conf >= 0.0 ? log(conf > 0.001 ? conf : 0.001) : NAN;

    while (off < len) {
        size_t n = sim_text_token_len(content + off, len - off);

        cJSON_AddItemToArray(list,
                             logprob_entry(content + off, n, index++, each));
        off += n;
    }
    cJSON_AddNullToObject(lp, "refusal");
}

static void add_usage(cJSON *root,
                      const struct chat_req *req,
                      const char *content)
{
    cJSON *usage = cJSON_AddObjectToObject(root, "usage");
    long long prompt = sim_text_tokens(req->prompt_bytes);
    long long completion = sim_text_tokens(strlen(content)) * req->n;

    cJSON_AddNumberToObject(usage, "prompt_tokens", (double)prompt);
    cJSON_AddNumberToObject(usage, "completion_tokens", (double)completion);
    cJSON_AddNumberToObject(usage, "total_tokens",
                            (double)(prompt + completion));
}

/* choices[i]: the answer, with its logprobs when asked for. */
static int add_choice(cJSON *choices,
                      int i,
                      const struct chat_req *req,
                      const char *content,
                      bool cut,
                      double lp_conf)
{
    cJSON *choice = cJSON_CreateObject();
    cJSON *msg;

    if (!cJSON_AddItemToArray(choices, choice)) {
        cJSON_Delete(choice);
        return -1;
    }
    cJSON_AddNumberToObject(choice, "index", i);
    msg = cJSON_AddObjectToObject(choice, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    cJSON_AddStringToObject(msg, "content", content);
    if (req->logprobs) {
        add_logprobs(choice, content, lp_conf);
    } else {
        cJSON_AddNullToObject(choice, "logprobs");
    }
    cJSON_AddStringToObject(choice, "finish_reason", cut ? "length" : "stop");
    return 0;
}

static char *render_completion(const struct chat_req *req,
                               uint64_t seq,
                               const char *content,
                               bool cut,
                               double lp_conf)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *choices;
    char id[48];
    char *text;

    snprintf(id, sizeof(id), "chatcmpl-sim-%llu", (unsigned long long)seq);
    cJSON_AddStringToObject(root, "id", id);
    cJSON_AddStringToObject(root, "object", "chat.completion");
    cJSON_AddNumberToObject(root, "created", (double)time(NULL));
    cJSON_AddStringToObject(root, "model", req->model);
    choices = cJSON_AddArrayToObject(root, "choices");
    for (int i = 0; i < req->n; i++) {
        if (add_choice(choices, i, req, content, cut, lp_conf) != 0) {
            cJSON_Delete(root);
            return NULL;
        }
    }
    add_usage(root, req, content);
    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

enum ks_err sim_answer_chat(const char *body,
                            size_t len,
                            const struct sim_answer_opts *opts,
                            uint64_t seq,
                            char **out,
                            struct sim_answer_info *info)
{
    struct chat_req req = {0};
    struct sim_answer_info scratch;
    char err[256];
    char *content = NULL;
    bool cut = false;
    double lp_conf = -1.0;
    enum ks_err rc;

    *out = NULL;
    info = info != NULL ? info : &scratch;
    memset(info, 0, sizeof(*info));
    if (parse_body(body, len, &req, err, sizeof(err)) != 0 ||
        read_messages(&req, err, sizeof(err)) != 0 ||
        read_options(&req, opts, err, sizeof(err)) != 0) {
        *out = sim_answer_error(err, "invalid_request_error", NULL);
        rc = *out != NULL ? KS_ERR_INVALID : KS_ERR_NOMEM;
        goto out_free_root;
    }
    rc = build_content(&req, opts, &content, &cut, &lp_conf, info);
    if (rc != KS_OK) {
        goto out_free_root;
    }
    *out = render_completion(&req, seq, content, cut, lp_conf);
    rc = *out != NULL ? KS_OK : KS_ERR_NOMEM;
    info->prompt_tokens = sim_text_tokens(req.prompt_bytes);
    info->completion_tokens = sim_text_tokens(strlen(content)) * req.n;
    ks_strlcpy(info->model, req.model, sizeof(info->model));
    free(content);
out_free_root:
    cJSON_Delete(req.root);
    return rc;
}
