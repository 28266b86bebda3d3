/* test_runlog.c: the metrics CSV and the step log, written and read by
 * runlog.c: the exact bytes the trainer has always written, a round trip,
 * and the rows a resume keeps. */
#include <stdlib.h>
#include <string.h>

#include "runlog.h"
#include "tests.h"

/* PATH holds exactly WANT. */
static void assert_file_is(const char *path, const char *want)
{
    size_t len;
    char *text = (char *)read_file(path, &len);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(text, want, len);
    free(text);
}

static void test_metrics_round_trip(void **state)
{
    const char *dir = *state, *path = path_in(dir, "m.csv");
    tr_error err = { 0 };
    runlog_writer w;
    assert_ok(runlog_start_metrics(&w, path, 0, 0, &err), &err);
    const double row[M_NCOL] = { [M_EPOCH] = 3,         [M_TRAIN_LOSS] = 0.25,  [M_TRAIN_ACC] = 0.9,
                                 [M_VAL_ACC] = -1,      [M_TEST_ACC] = 0.95,    [M_LR] = 0.0263535123,
                                 [M_RATE] = 10509.46,   [M_SECS] = 0.1714,      [M_TEST_LOSS] = 0.5,
                                 [M_VAL_LOSS] = -1 };
    runlog_add_epoch(&w, row);
    assert_ok(runlog_publish(&w, &err), &err);
    runlog_free(&w);
    assert_file_is(path, "epoch,train_loss,train_acc,val_acc,test_acc,lr,samples_per_s,seconds,test_loss,val_loss\n"
                         "3,0.250000,0.900000,-1.000000,0.950000,0.0263535,10509.5,0.171,0.500000,-1.000000\n");
    metrics m;
    assert_ok(read_metrics(path, &m, &err), &err);
    assert_int_equal(m.n, 1);
    for (int c = 0; c < M_NCOL; c++)
        assert_true(m.has[c]);
    assert_true(m.col[M_EPOCH][0] == 3 && m.col[M_TEST_ACC][0] == 0.95 && m.col[M_VAL_ACC][0] == -1);
    metrics_free(&m);
}

static void test_steps_resume(void **state)
{
    const char *dir = *state, *path = path_in(dir, "m.steps.csv");
    char steps[256];
    runlog_steps_path(path_in(dir, "m.csv"), steps, sizeof steps);
    assert_string_equal(steps, path);
    runlog_steps_path("", steps, sizeof steps);
    assert_string_equal(steps, "");
    tr_error err = { 0 };
    runlog_writer w;
    assert_ok(runlog_start_steps(&w, path, 0, 0, &err), &err);
    for (uint64_t s = 1; s <= 5; s++)
        runlog_add_step(&w, s, 1, 2.5 / (double)s, 0.05f);
    assert_ok(runlog_publish(&w, &err), &err);
    runlog_free(&w);
    /* a resume from step 3 keeps steps 1-3 and adds its own */
    assert_ok(runlog_start_steps(&w, path, 3, 1, &err), &err);
    runlog_add_step(&w, 4, 1, 9.0, 0.05f);
    assert_ok(runlog_publish(&w, &err), &err);
    runlog_free(&w);
    assert_file_is(path, "step,epoch,loss,lr\n1,1,2.500000,0.05\n2,1,1.250000,0.05\n3,1,0.833333,0.05\n"
                         "4,1,9.000000,0.05\n");
    step_log sl;
    assert_ok(read_steps(path, &sl, &err), &err);
    assert_int_equal(sl.n, 4);
    assert_true(sl.has_lr && sl.loss[3] == 9.0);
    steps_free(&sl);
    /* no path: nothing written, nothing fails */
    assert_ok(runlog_start_metrics(&w, "", 0, 0, &err), &err);
    runlog_add_epoch(&w, (const double[M_NCOL]){ 0 });
    assert_ok(runlog_publish(&w, &err), &err);
    runlog_free(&w);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_metrics_round_trip, tmpdir_setup, tmpdir_teardown),
    cmocka_unit_test_setup_teardown(test_steps_resume, tmpdir_setup, tmpdir_teardown),
};
TEST_GROUP(runlog_group, tests);
