/* session.c - a trained model made ready to run (session.h). */
#include <string.h>

#include "checkpoint.h"
#include "session.h"

int session_open(model_session *s, const char *model, const char *const *sets, int nsets, provenance *prov,
                 tr_error *err)
{
    memset(s, 0, sizeof *s);
    if (checkpoint_load_prov(model, &s->cfg, &s->net, NULL, NULL, prov, err) != 0)
        return -1;
    s->loaded = 1;
    for (int i = 0; i < nsets; i++)
        if (strncmp(sets[i], "data.", 5) != 0)
            return tr_fail(err, TR_EINPUT, "--set %s: only data.* keys apply to a trained model", sets[i]);
    for (int i = 0; i < nsets; i++)
        if (config_set(&s->cfg, sets[i], err) != 0)
            return -1;
    return 0;
}

int session_load_test(model_session *s, const char *hint, tr_error *err)
{
    const config *c = &s->cfg;
    if (dataset_load(&s->test, c->test_images, c->test_labels, (unsigned)c->classes, (size_t)c->test_limit,
                     err) != 0) {
        size_t n = strlen(err->msg);
        if (hint && err->code == TR_EINPUT && n + strlen(hint) < sizeof err->msg)
            memcpy(err->msg + n, hint, strlen(hint) + 1);
        return -1;
    }
    s->has_test = 1;
    if (s->test.rows != (uint32_t)c->input_size || s->test.cols != (uint32_t)c->input_size)
        return tr_fail(err, TR_EINPUT, "%s: images are %ux%u but the model takes %dx%d", c->test_images,
                       s->test.rows, s->test.cols, c->input_size, c->input_size);
    return 0;
}

int session_workspaces(model_session *s, int nthreads, tr_error *err)
{
    if (!(s->ws = net_workspaces_create(&s->net, nthreads, err)))
        return -1;
    s->nthreads = nthreads;
    return 0;
}

void session_close(model_session *s)
{
    net_workspaces_free(s->ws, s->nthreads);
    s->ws = NULL;
    if (s->has_test)
        dataset_free(&s->test);
    if (s->loaded)
        net_free(&s->net);
    s->has_test = s->loaded = 0;
}
