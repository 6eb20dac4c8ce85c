/*
 * store_key.c - the store's pure helpers (store.h): unique ids, key parts
 * encoded so that no name can collide with another key, and a Redis URL
 * without its password for logs. Split from store.c; no connection.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sys/random.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "redis/store.h"

#include "base/banned.h"

void ks_store_unique_id(char *id, size_t size)
{
    static _Atomic uint64_t counter;
    static _Atomic uint32_t salt;
    char host[64] = "host";
    uint32_t s = salt;

    if (s == 0) {
        if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
            s = (uint32_t)ks_mono_ms() ^ (uint32_t)ks_wall_ms();
        }
        s |= 1;   /* never 0 again */
        salt = s; /* racing threads each pick one; either is fine */
    }
    if (gethostname(host, sizeof(host)) != 0) {
        ks_strlcpy(host, "host", sizeof(host));
    }
    host[sizeof(host) - 1] = '\0';
    snprintf(id, size, "%.12s-%ld-%08" PRIx32 "-%" PRIx64, host, (long)getpid(),
             s, ++counter);
}

int ks_store_key_part(const char *s, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';

        if (n + (plain ? 1 : 3) >= size) {
            if (size > 0) {
                out[0] = '\0';
            }
            return -1;
        }
        if (plain) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    if (size == 0) {
        return -1;
    }
    out[n] = '\0';
    return (int)n;
}

void ks_store_url_shown(const char *url, char *buf, size_t size)
{
    const char *host = strstr(url, "://");
    const char *at = host ? strchr(host, '@') : NULL;

    if (at) {
        snprintf(buf, size, "%.*s%s", (int)(host + 3 - url), url, at + 1);
    } else {
        snprintf(buf, size, "%s", url);
    }
}
