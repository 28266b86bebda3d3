/* session.h - a trained model made ready to run: load the model file,
 * apply the data.* overrides of --set, load the test set it names and check
 * its image size, build the per-thread workspaces. eval, predict, report,
 * export and info each take the parts they need, in this order. */
#ifndef TRAINER_SESSION_H
#define TRAINER_SESSION_H

#include "config.h"
#include "error.h"
#include "idx.h"
#include "network.h"
#include "provenance.h"

typedef struct {
    config cfg;   /* the model's config, with the overrides applied */
    network net;
    dataset test; /* after session_load_test */
    net_workspace *ws; /* after session_workspaces: nthreads of them */
    int nthreads;
    int loaded, has_test;
} model_session;

/* Loads MODEL (and its provenance into PROV, unless NULL), then applies the
 * NSETS "data.KEY=VALUE" overrides in SETS; any other key is refused before
 * one is applied, since only the data can change under trained weights. */
int session_open(model_session *s, const char *model, const char *const *sets, int nsets, provenance *prov,
                 tr_error *err);

/* Loads the test set the config names and checks that its images have the
 * model's size. HINT (may be NULL) is added to a refusal of the files. */
int session_load_test(model_session *s, const char *hint, tr_error *err);

/* One workspace per thread for NTHREADS threads. */
int session_workspaces(model_session *s, int nthreads, tr_error *err);

/* Frees what was made; a zeroed session is fine too. */
void session_close(model_session *s);

#endif
