/*
 * route_fixture.c - the routing fixture directory and file reading of the
 * router's test programs (see route_fixture.h).
 */
#include "route_fixture.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#include "base/banned.h"

char fixture_dir[1024];

void find_fixture_dir(void)
{
    const char *dir = getenv("KASCADE_FIXTURES");

    if (dir && *dir) {
        snprintf(fixture_dir, sizeof(fixture_dir), "%s/routing", dir);
    } else {
        const char *file = __FILE__;
        const char *slash = strrchr(file, '/');
        int dirlen = slash ? (int)(slash - file) + 1 : 0;

        snprintf(fixture_dir, sizeof(fixture_dir), "%.*s../fixtures/routing",
                 dirlen, file);
    }
}

char *read_text(const char *path)
{
    FILE *fp = fopen(path, "rb");
    struct ks_buf buf;
    char chunk[4096];
    size_t n;

    if (!fp) {
        return NULL;
    }
    ks_buf_init(&buf);
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        ks_buf_append(&buf, chunk, n);
    }
    fclose(fp);
    return ks_buf_take(&buf);
}
