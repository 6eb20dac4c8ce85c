/*
 * modelsim.c - kascade-modelsim: an OpenAI-compatible chat server that
 * stands in for paid model APIs in tests, the demo and benchmarks. It
 * answers deterministically, adds latency and injects faults on request
 * (see bench/modelsim/README.md).
 *
 * main() reads top to bottom: flags, signals, server, wait for SIGTERM or
 * SIGINT, stop. The signal handler only sets a flag; the main loop checks
 * it every 100 ms.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sys/resource.h>

#include <getopt.h>

#include "base/log.h"
#include "base/util.h"
#include "sim_conf.h"
#include "sim_http.h"
#include "sim_replay.h"

#include "base/banned.h"

#define TAG "modelsim"

#define DEFAULT_MODEL     "kascade-sim"
#define DEFAULT_MAX_BODY  (4 * 1024 * 1024)
#define DEFAULT_HANG_MS   60000
#define DEFAULT_MAX_CONNS 4096
#define DEFAULT_HUGE      (100LL * 1024 * 1024)
#define MAX_HUGE          (1LL << 40)
#define MAX_DELAY_MS      SIM_MAX_DELAY_MS
#define MAX_BODY_CAP      (1024LL * 1024 * 1024)

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static const char usage_text[] =
    "usage: kascade-modelsim --port N [options]\n"
    "  --port N            port to listen on (0: pick a free one)\n"
    "  --host ADDR         numeric address to bind (default 127.0.0.1)\n"
    "  --model NAME        model named in replies when the request has none\n"
    "                      (default " DEFAULT_MODEL ")\n"
    "  --latency-ms MS     delay before each chat reply (default 0)\n"
    "  --jitter-ms MS      extra uniform delay in [0, MS] (default 0)\n"
    "  --latency-dist D    fixed, uniform or lognormal around the median\n"
    "                      --latency-ms (default fixed)\n"
    "  --latency-p99-ms MS 99th percentile of the latency (default 2x the\n"
    "                      median for uniform, 4x for lognormal)\n"
    "  --fail SPEC         inject faults: kind:prob[,kind:prob...], kinds\n"
    "                      429 500 503 hang malformed reset timeout\n"
    "                      truncated huge rst\n"
    "  --fail-first N      the first N chat requests get a 500\n"
    "  --fault-schedule S  faults by window: FROM-TO:KIND[,...], request\n"
    "                      numbers from 0 or seconds (10s-20s), KIND also ok\n"
    "  --hang-ms MS        how long 'hang' holds a connection, and how\n"
    "                      late 'timeout' answers (default 60000)\n"
    "  --huge-bytes N      size of a 'huge' body (default 104857600)\n"
    "  --seed N            seed of the fault and jitter draws (default 1)\n"
    "  --logprobs          include logprobs even when not asked for\n"
    "  --confidence X      answer {\"answer\": ..., \"confidence\": X},\n"
    "                      X in [0,1]\n"
    "  --confidence-dist LO:HI  per-prompt confidence in [LO,HI] (a hash\n"
    "                      of the prompt), in JSON answers and logprobs\n"
    "  --escalate-below X  answer {\"escalate\": true} when the confidence\n"
    "                      is below X\n"
    "  --replay FILE.csv   answer with recorded responses (prompt column)\n"
    "  --replay-model COL  which model's responses (COL_response or COL)\n"
    "  --max-body BYTES    largest request body (default 4194304)\n"
    "  --max-connections N concurrent connections (default 4096)\n"
    "  --log-level LEVEL   error, warn, info or debug (default info)\n";

enum opt_id {
    OPT_PORT = 256,
    OPT_HOST,
    OPT_MODEL,
    OPT_LATENCY,
    OPT_JITTER,
    OPT_FAIL,
    OPT_FAIL_FIRST,
    OPT_HANG,
    OPT_SEED,
    OPT_LOGPROBS,
    OPT_CONFIDENCE,
    OPT_MAX_BODY,
    OPT_MAX_CONNS,
    OPT_LOG_LEVEL,
    OPT_LATENCY_DIST,
    OPT_LATENCY_P99,
    OPT_FAULT_SCHEDULE,
    OPT_CONFIDENCE_DIST,
    OPT_ESCALATE_BELOW,
    OPT_REPLAY,
    OPT_REPLAY_MODEL,
    OPT_HUGE_BYTES,
    OPT_HELP,
};

static const struct option long_opts[] = {
    {"port", required_argument, NULL, OPT_PORT},
    {"host", required_argument, NULL, OPT_HOST},
    {"model", required_argument, NULL, OPT_MODEL},
    {"latency-ms", required_argument, NULL, OPT_LATENCY},
    {"jitter-ms", required_argument, NULL, OPT_JITTER},
    {"fail", required_argument, NULL, OPT_FAIL},
    {"fail-first", required_argument, NULL, OPT_FAIL_FIRST},
    {"hang-ms", required_argument, NULL, OPT_HANG},
    {"seed", required_argument, NULL, OPT_SEED},
    {"logprobs", no_argument, NULL, OPT_LOGPROBS},
    {"confidence", required_argument, NULL, OPT_CONFIDENCE},
    {"max-body", required_argument, NULL, OPT_MAX_BODY},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNS},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"latency-dist", required_argument, NULL, OPT_LATENCY_DIST},
    {"latency-p99-ms", required_argument, NULL, OPT_LATENCY_P99},
    {"fault-schedule", required_argument, NULL, OPT_FAULT_SCHEDULE},
    {"confidence-dist", required_argument, NULL, OPT_CONFIDENCE_DIST},
    {"escalate-below", required_argument, NULL, OPT_ESCALATE_BELOW},
    {"replay", required_argument, NULL, OPT_REPLAY},
    {"replay-model", required_argument, NULL, OPT_REPLAY_MODEL},
    {"huge-bytes", required_argument, NULL, OPT_HUGE_BYTES},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static int parse_int(const char *name,
                     const char *s,
                     int64_t min,
                     int64_t max,
                     int64_t *out,
                     char *err,
                     size_t err_size)
{
    if (ks_parse_int64(s, min, max, out) != 0) {
        snprintf(err, err_size, "--%s '%s' is not an integer in [%lld, %lld]",
                 name, s, (long long)min, (long long)max);
        return -1;
    }
    return 0;
}

static int parse_confidence(struct sim_config *cfg,
                            const char *s,
                            char *err,
                            size_t err_size)
{
    double v;

    if (ks_parse_double(s, &v) != 0 || !(v >= 0.0 && v <= 1.0)) {
        snprintf(err, err_size, "--confidence '%s' is not a number in [0,1]",
                 s);
        return -1;
    }
    cfg->answer.has_confidence = true;
    cfg->answer.confidence = v;
    return 0;
}

static int parse_escalate_below(struct sim_config *cfg,
                                const char *s,
                                char *err,
                                size_t err_size)
{
    double v;

    if (ks_parse_double(s, &v) != 0 || !(v >= 0.0 && v <= 1.0)) {
        snprintf(err, err_size, "--escalate-below '%s' is not in [0,1]", s);
        return -1;
    }
    cfg->answer.escalate_below = v;
    return 0;
}

/* The options added with the latency distributions, the fault schedule,
 * per-prompt confidence and replay; 0, or -1 with a reason in err. */
static int apply_opt_more(
    struct sim_config *cfg, int id, const char *arg, char *err, size_t err_size)
{
    switch (id) {
    case OPT_LATENCY_DIST:
        if (sim_latency_dist_parse(arg, &cfg->latency_dist) != 0) {
            snprintf(err, err_size,
                     "--latency-dist '%s': use fixed, uniform or lognormal",
                     arg);
            return -1;
        }
        return 0;
    case OPT_LATENCY_P99:
        return parse_int("latency-p99-ms", arg, 1, MAX_DELAY_MS,
                         &cfg->latency_p99_ms, err, err_size);
    case OPT_FAULT_SCHEDULE:
        return sim_schedule_parse(&cfg->schedule, arg, err, err_size);
    case OPT_CONFIDENCE_DIST:
        cfg->answer.has_conf_range = true;
        return sim_conf_range_parse(arg, &cfg->answer.conf_lo,
                                    &cfg->answer.conf_hi, err, err_size);
    case OPT_ESCALATE_BELOW:
        return parse_escalate_below(cfg, arg, err, err_size);
    case OPT_REPLAY:
        cfg->replay_path = arg;
        return 0;
    case OPT_REPLAY_MODEL:
        cfg->replay_model = arg;
        return 0;
    case OPT_HUGE_BYTES:
        return parse_int("huge-bytes", arg, 1, MAX_HUGE, &cfg->huge_bytes, err,
                         err_size);
    default:
        snprintf(err, err_size, "unknown option");
        return -1;
    }
}

/* Checks the flags against each other; 0, or -1 with a reason in err. */
static int check_args(const struct sim_config *cfg, char *err, size_t err_size)
{
    const struct sim_latency lat = {cfg->latency_dist, cfg->latency_ms,
                                    cfg->latency_p99_ms};

    if (sim_latency_check(&lat, err, err_size) != 0) {
        return -1;
    }
    if (cfg->answer.has_confidence && cfg->answer.has_conf_range) {
        snprintf(err, err_size,
                 "--confidence and --confidence-dist exclude each other");
        return -1;
    }
    if (cfg->answer.escalate_below > 0.0 && !cfg->answer.has_confidence &&
        !cfg->answer.has_conf_range) {
        snprintf(err, err_size,
                 "--escalate-below needs --confidence or --confidence-dist");
        return -1;
    }
    if ((cfg->replay_path == NULL) != (cfg->replay_model == NULL)) {
        snprintf(err, err_size, "--replay and --replay-model go together");
        return -1;
    }
    return 0;
}

/* Applies one option; 0, or -1 with a reason in err. */
static int apply_opt(
    struct sim_config *cfg, int id, const char *arg, char *err, size_t err_size)
{
    int64_t v = 0;
    int rc = 0;

    switch (id) {
    case OPT_PORT:
        rc = parse_int("port", arg, 0, 65535, &v, err, err_size);
        cfg->port = (uint16_t)v;
        return rc;
    case OPT_HOST:
        cfg->host = arg;
        return 0;
    case OPT_MODEL:
        cfg->answer.model = arg;
        return 0;
    case OPT_LATENCY:
        return parse_int("latency-ms", arg, 0, MAX_DELAY_MS, &cfg->latency_ms,
                         err, err_size);
    case OPT_JITTER:
        return parse_int("jitter-ms", arg, 0, MAX_DELAY_MS, &cfg->jitter_ms,
                         err, err_size);
    case OPT_HANG:
        return parse_int("hang-ms", arg, 0, MAX_DELAY_MS, &cfg->hang_ms, err,
                         err_size);
    case OPT_FAIL:
        return sim_fault_spec_parse(&cfg->fault, arg, err, err_size);
    case OPT_FAIL_FIRST:
        return parse_int("fail-first", arg, 0, INT64_MAX,
                         &cfg->fault.fail_first, err, err_size);
    case OPT_SEED:
        rc = parse_int("seed", arg, 0, INT64_MAX, &v, err, err_size);
        cfg->fault.seed = (uint64_t)v;
        return rc;
    case OPT_LOGPROBS:
        cfg->answer.logprobs = true;
        return 0;
    case OPT_CONFIDENCE:
        return parse_confidence(cfg, arg, err, err_size);
    case OPT_MAX_BODY:
        return parse_int("max-body", arg, 1, MAX_BODY_CAP, &cfg->max_body, err,
                         err_size);
    case OPT_MAX_CONNS:
        rc = parse_int("max-connections", arg, 1, 65536, &v, err, err_size);
        cfg->max_connections = (unsigned int)v;
        return rc;
    case OPT_LOG_LEVEL:
        if (ks_log_set_level(arg) != 0) {
            snprintf(err, err_size,
                     "--log-level '%s': use error, warn, info or debug", arg);
            return -1;
        }
        return 0;
    default:
        return apply_opt_more(cfg, id, arg, err, err_size);
    }
}

static void config_defaults(struct sim_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->host = "127.0.0.1";
    cfg->hang_ms = DEFAULT_HANG_MS;
    cfg->huge_bytes = DEFAULT_HUGE;
    cfg->max_body = DEFAULT_MAX_BODY;
    cfg->max_connections = DEFAULT_MAX_CONNS;
    cfg->answer.model = DEFAULT_MODEL;
    cfg->fault.seed = 1;
}

/* Returns 0 to run, 1 after --help, -1 on a usage error (reported). */
static int parse_args(int argc, char **argv, struct sim_config *cfg)
{
    char err[256];
    bool have_port = false;
    int id;

    config_defaults(cfg);
    while ((id = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        if (id == OPT_HELP) {
            fputs(usage_text, stdout);
            return 1;
        }
        if (id == '?' || apply_opt(cfg, id, optarg, err, sizeof(err)) != 0) {
            if (id != '?') {
                fprintf(stderr, "kascade-modelsim: %s\n", err);
            }
            fputs(usage_text, stderr);
            return -1;
        }
        have_port = have_port || id == OPT_PORT;
    }
    if (optind < argc || !have_port) {
        fprintf(stderr, "kascade-modelsim: %s\n",
                optind < argc ? "unexpected argument" : "--port is required");
        fputs(usage_text, stderr);
        return -1;
    }
    if (check_args(cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "kascade-modelsim: %s\n", err);
        fputs(usage_text, stderr);
        return -1;
    }
    return 0;
}

static int install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop_signal;
    if (sigaction(SIGTERM, &sa, NULL) != 0 ||
        sigaction(SIGINT, &sa, NULL) != 0) {
        return -1;
    }
    /* A client hanging up mid-reply must not kill the server. */
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}

/* One descriptor per connection: lift the soft limit to the hard one. */
static void raise_fd_limit(unsigned int want)
{
    struct rlimit rl;
    char ebuf[128];

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) {
        return;
    }
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        ks_log_warn(TAG, "cannot raise the descriptor limit for %u conns: %s",
                    want, ks_strerror(errno, ebuf, sizeof(ebuf)));
    }
}

static void wait_for_stop(void)
{
    const struct timespec nap = {0, 100 * 1000000L};

    while (!stop_requested) {
        nanosleep(&nap, NULL);
    }
}

int main(int argc, char **argv)
{
    struct sim_config cfg;
    struct sim_replay *replay = NULL;
    struct sim_server *srv;
    char err[256];
    int rc = parse_args(argc, argv, &cfg);

    if (rc != 0) {
        return rc > 0 ? 0 : 2;
    }
    if (install_signals() != 0) {
        ks_log_error(TAG, "cannot install signal handlers");
        return 1;
    }
    raise_fd_limit(cfg.max_connections);
    if (cfg.replay_path != NULL) {
        replay = sim_replay_load(cfg.replay_path, cfg.replay_model, err,
                                 sizeof(err));
        if (replay == NULL) {
            ks_log_error(TAG, "%s", err);
            return 2;
        }
        ks_log_info(TAG, "replay: %zu prompts, answers from column %s",
                    sim_replay_size(replay), sim_replay_column(replay));
        cfg.answer.replay = replay;
    }
    srv = sim_server_new(&cfg, err, sizeof(err));
    if (srv == NULL) {
        ks_log_error(TAG, "%s", err);
        sim_replay_destroy(replay);
        return 1;
    }
    ks_log_info(TAG, "model %s, latency %lld+%lld ms, max body %lld bytes",
                cfg.answer.model, (long long)cfg.latency_ms,
                (long long)cfg.jitter_ms, (long long)cfg.max_body);
    printf(strchr(cfg.host, ':') ? "listening on http://[%s]:%u\n"
                                 : "listening on http://%s:%u\n",
           cfg.host, (unsigned)sim_server_port(srv));
    fflush(stdout);
    wait_for_stop();
    ks_log_info(TAG, "stopping");
    sim_server_destroy(srv);
    sim_replay_destroy(replay);
    return 0;
}
