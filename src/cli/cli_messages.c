/* Chat options shared by commands: thinking modes and conversation files. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"

int cli_parse_think(const char *v, kvl_think *out) {
    static const struct {
        const char *name;
        kvl_think t;
    } modes[] = {{"default", KVL_THINK_DEFAULT}, {"on", KVL_THINK_ON},     {"off", KVL_THINK_OFF},
                 {"slow", KVL_THINK_SLOW},       {"fast", KVL_THINK_FAST}};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (!strcmp(v, modes[i].name)) {
            *out = modes[i].t;
            return 0;
        }
    return -1;
}

/* The conversation file: a JSON list of {role, content} strings. Returns the count or -1 (message printed). */
int cli_read_messages(const char *path, const char *cmd, cJSON **json, kvl_chat_msg **out) {
    size_t len;
    char *s = cli_read_file(path, &len);
    if (!s) return -1;
    cJSON *j = cJSON_ParseWithLength(s, len);
    free(s);
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) == 0) {
        cJSON_Delete(j);
        cli_error(cmd, "%s: expected a non-empty JSON list of {\"role\", \"content\"}", path);
        return -1;
    }
    int n = cJSON_GetArraySize(j), i = 0;
    kvl_chat_msg *m = calloc((size_t)n, sizeof *m);
    const cJSON *x;
    cJSON_ArrayForEach(x, j) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(x, "role"), *c = cJSON_GetObjectItemCaseSensitive(x, "content");
        if (!m || !cJSON_IsString(r) || !cJSON_IsString(c)) {
            free(m);
            cJSON_Delete(j);
            cli_error(cmd, "%s: message %d needs string \"role\" and \"content\"", path, i);
            return -1;
        }
        m[i].role = r->valuestring;
        m[i].content = c->valuestring;
        i++;
    }
    *json = j;
    *out = m;
    return n;
}

