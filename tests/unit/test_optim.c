/* test_optim.c - two steps of each optimizer on three parameters against
 * values worked out by hand (PyTorch's update rules), and the learning-rate
 * schedules at chosen steps. */
#include "tests.h"

#include <math.h>
#include <string.h>

#include "config.h"
#include "optim.h"

static void assert_near(double got, double want, double rel)
{
    if (!(fabs(got - want) <= rel * fabs(want) + 1e-9))
        fail_msg("got %.9g, want %.9g", got, want);
}

static void assert_all_near(const float *got, const double *want, int n, double rel)
{
    for (int i = 0; i < n; i++)
        assert_near(got[i], want[i], rel);
}

/* Runs two steps (gradients G1 then G2) on w = {1, -2, 0.5}, stored at
 * offset 2 of a 7-element array so the untouched neighbours can be checked. */
static void two_steps(const config *cfg, const float g1[3], const float g2[3], float lr,
                      const double want1[3], const double want2[3])
{
    optimizer opt;
    tr_error err = { 0 };
    assert_ok(optim_create(&opt, cfg, 7, &err), &err);
    float w[7] = { 9, 9, 1.0f, -2.0f, 0.5f, 9, 9 }, g[7] = { 5, 5, 0, 0, 0, 5, 5 };
    memcpy(g + 2, g1, 3 * sizeof(float));
    optim_begin_step(&opt);
    optim_update(&opt, w, g, 2, 3, lr);
    assert_all_near(w + 2, want1, 3, 2e-6);
    memcpy(g + 2, g2, 3 * sizeof(float));
    optim_begin_step(&opt);
    optim_update(&opt, w, g, 2, 3, lr);
    assert_all_near(w + 2, want2, 3, 2e-6);
    assert_int_equal(opt.t, 2);
    const int outside[4] = { 0, 1, 5, 6 };
    for (int k = 0; k < 4; k++) {
        assert_true(w[outside[k]] == 9.0f);
        for (int s = 0; s < opt.nstate; s++)
            assert_true(opt.state[s][outside[k]] == 0.0f);
    }
    optim_free(&opt);
}

static void sgd_momentum_step(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    c.optimizer = OPT_SGD;
    c.momentum = 0.9;
    c.weight_decay = 0.01;
    c.nesterov = 0;
    const float g[3] = { 0.5f, 0.25f, -1.0f };
    /* Step 1: g' = g + 0.01 w = {0.51, 0.23, -0.995} = v; w -= 0.1 v.
     * Step 2: g' = g + 0.01 w1 = {0.50949, 0.22977, -0.994005};
     *         v = 0.9 v + g' = {0.96849, 0.43677, -1.889505}; w -= 0.1 v. */
    const double w1[3] = { 0.949, -2.023, 0.5995 };
    const double w2[3] = { 0.852151, -2.066677, 0.7884505 };
    two_steps(&c, g, g, 0.1f, w1, w2);
    /* Nesterov: w -= lr (g' + mu v).
     * Step 1: v = {0.51, 0.23, -0.995}; w -= 0.1 * 1.9 v.
     * Step 2: g' = {0.509031, 0.229563, -0.9931095}, v = {0.968031, 0.436563, -1.8886095},
     *         g' + 0.9 v = {1.3802589, 0.6224697, -2.69285805}. */
    c.nesterov = 1;
    const double n1[3] = { 0.9031, -2.0437, 0.68905 };
    const double n2[3] = { 0.76507411, -2.10594697, 0.958335805 };
    two_steps(&c, g, g, 0.1f, n1, n2);
}

static void adam_step(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    c.optimizer = OPT_ADAM;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = 1e-8;
    c.weight_decay = 0;
    const float g1[3] = { 0.5f, 0.25f, -1.0f }, g2[3] = { -0.5f, 0.5f, -1.0f };
    /* Step 1: the bias-corrected m and s are g and g^2, so w -= 0.01 sign(g).
     * Step 2: m = {-0.005, 0.0725, -0.19} / 0.19, s = {0.00049975, 0.0003124375, 0.001999} / 0.001999,
     *         w -= 0.01 m / sqrt(s) = 0.01 * {-0.0526316, 0.965182, -1}. */
    const double a1[3] = { 0.99, -2.01, 0.51 };
    const double a2[3] = { 0.990526316, -2.01965182, 0.52 };
    two_steps(&c, g1, g2, 0.01f, a1, a2);
    /* L2 decay enters the gradient: step 1 g' = g + 0.1 w = {0.6, 0.05, -0.95},
     * still a step of 0.01 sign(g'); step 2 from g' = {-0.401, 0.299, -0.949}. */
    c.weight_decay = 0.1;
    const double l1[3] = { 0.99, -2.01, 0.51 };
    const double l2[3] = { 0.988566222, -2.01844417, 0.519999724 };
    two_steps(&c, g1, g2, 0.01f, l1, l2);
    /* AdamW: w -= lr wd w first (0.999 w), then the plain Adam step. */
    c.optimizer = OPT_ADAMW;
    const double d1[3] = { 0.989, -2.008, 0.5095 };
    const double d2[3] = { 0.988537316, -2.01564382, 0.5189905 };
    two_steps(&c, g1, g2, 0.01f, d1, d2);
}

static double lr_at(const config *c, uint64_t step)
{
    return schedule_lr(c, step, 10); /* 10 steps per epoch */
}

static void schedules(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    c.lr = 0.1;
    c.epochs = 4; /* 40 steps */
    c.warmup_epochs = 0;
    c.schedule = SCHED_CONSTANT;
    assert_near(lr_at(&c, 0), 0.1, 1e-12);
    assert_near(lr_at(&c, 17), 0.1, 1e-12);
    assert_near(lr_at(&c, 39), 0.1, 1e-12);

    c.schedule = SCHED_STEP; /* x0.5 every epoch */
    c.gamma = 0.5;
    c.step_epochs = 1;
    assert_near(lr_at(&c, 0), 0.1, 1e-12);
    assert_near(lr_at(&c, 9), 0.1, 1e-12);
    assert_near(lr_at(&c, 10), 0.05, 1e-12);
    assert_near(lr_at(&c, 25), 0.025, 1e-12);
    assert_near(lr_at(&c, 39), 0.0125, 1e-12);
    c.step_epochs = 2;
    assert_near(lr_at(&c, 19), 0.1, 1e-12);
    assert_near(lr_at(&c, 20), 0.05, 1e-12);

    c.schedule = SCHED_COSINE; /* 0.01 + 0.09 * (1 + cos(pi * step / 40)) / 2 */
    c.min_lr = 0.01;
    assert_near(lr_at(&c, 0), 0.1, 1e-12);
    assert_near(lr_at(&c, 10), 0.01 + 0.045 * (1 + sqrt(0.5)), 1e-12);
    assert_near(lr_at(&c, 20), 0.055, 1e-12);
    assert_near(lr_at(&c, 30), 0.01 + 0.045 * (1 - sqrt(0.5)), 1e-12);
    assert_near(lr_at(&c, 40), 0.01, 1e-12);
    assert_near(lr_at(&c, 100), 0.01, 1e-12); /* past the end: stays at min_lr */
    for (uint64_t s = 1; s < 40; s++)
        assert_true(lr_at(&c, s) < lr_at(&c, s - 1));

    /* One epoch of linear warm-up: lr * (step + 1) / 10, then cosine over
     * the remaining 30 steps. */
    c.warmup_epochs = 1;
    assert_near(lr_at(&c, 0), 0.01, 1e-12);
    assert_near(lr_at(&c, 4), 0.05, 1e-12);
    assert_near(lr_at(&c, 9), 0.1, 1e-12);
    assert_near(lr_at(&c, 10), 0.1, 1e-12);
    assert_near(lr_at(&c, 25), 0.055, 1e-12);
    c.schedule = SCHED_CONSTANT;
    assert_near(lr_at(&c, 2), 0.03, 1e-12);
    assert_near(lr_at(&c, 30), 0.1, 1e-12);
    /* Half an epoch of warm-up (5 steps) before a step schedule. */
    c.schedule = SCHED_STEP;
    c.step_epochs = 1;
    c.warmup_epochs = 0.5;
    assert_near(lr_at(&c, 0), 0.02, 1e-12);
    assert_near(lr_at(&c, 2), 0.06, 1e-12);
    assert_near(lr_at(&c, 5), 0.1, 1e-12);
    assert_near(lr_at(&c, 10), 0.05, 1e-12);
    /* Warm-up as long as the run: cosine has nothing left and ends at min_lr. */
    c.schedule = SCHED_COSINE;
    c.warmup_epochs = 4;
    assert_near(lr_at(&c, 39), 0.1, 1e-12);
    assert_near(lr_at(&c, 40), 0.01, 1e-12);
}

/* Segments: each steps at the rate times its scale, a parameter in no
 * segment stays, and a step cut into other ranges gives the same bytes. */
static void segment_scales(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    c.optimizer = OPT_SGD;
    c.weight_decay = 0;
    optimizer a, b;
    tr_error err = { 0 };
    assert_ok(optim_create(&a, &c, 10, &err), &err);
    assert_ok(optim_create(&b, &c, 10, &err), &err);
    for (optimizer *o = &a; o; o = o == &a ? &b : NULL) {
        assert_ok(optim_add_segment(o, 1, 3, 1.0f, &err), &err);
        assert_ok(optim_add_segment(o, 4, 4, 0.5f, &err), &err);
    }
    assert_int_equal(optim_add_segment(&a, 8, 3, 1.0f, &err), -1);
    assert_non_null(strstr(err.msg, "outside"));
    float wa[10], wb[10], g[10];
    for (int i = 0; i < 10; i++) {
        wa[i] = wb[i] = (float)i;
        g[i] = 1.0f + 0.25f * (float)i;
    }
    optim_begin_step(&a);
    optim_begin_step(&b);
    optim_update_range(&a, wa, g, 0, 10, 0.1f);
    optim_update_range(&b, wb, g, 0, 3, 0.1f);
    optim_update_range(&b, wb, g, 3, 5, 0.1f);
    optim_update_range(&b, wb, g, 5, 10, 0.1f);
    assert_memory_equal(wa, wb, sizeof wa);
    /* SGD's first step: w -= lr * scale * g. */
    assert_true(wa[0] == 0.0f && wa[8] == 8.0f && wa[9] == 9.0f);
    assert_near(wa[2], 2.0 - 0.1 * 1.5, 1e-6);
    assert_near(wa[5], 5.0 - 0.05 * 2.25, 1e-6);
    optim_free(&a);
    optim_free(&b);
}

/* train.c cuts the step into chunks by thread count (4096 or 512
 * parameters): every optimizer must give the same bytes for any cut, over
 * several steps, with weight decay, momentum and Adam's moments in play. */
static void any_cut_same_bytes(void **state)
{
    (void)state;
    enum { N = 2000, STEPS = 3 };
    static const size_t cuts[] = { 0, 3, 512, 517, 1024, 1536, N };
    static float wa[N], wb[N], g[N];
    for (int kind = 0; kind < 4; kind++) {
        config c;
        config_defaults(&c);
        c.optimizer = kind == 2 ? OPT_ADAM : kind == 3 ? OPT_ADAMW : OPT_SGD;
        c.nesterov = kind == 1;
        optimizer a, b;
        tr_error err = { 0 };
        assert_ok(optim_create(&a, &c, N, &err), &err);
        assert_ok(optim_create(&b, &c, N, &err), &err);
        assert_ok(optim_add_segment(&a, 0, N, 1.0f, &err), &err);
        assert_ok(optim_add_segment(&b, 0, N, 1.0f, &err), &err);
        for (int i = 0; i < N; i++)
            wa[i] = wb[i] = 0.01f * (float)((i * 37) % 101) - 0.5f;
        for (int step = 0; step < STEPS; step++) {
            for (int i = 0; i < N; i++)
                g[i] = 0.003f * (float)((i * 53 + step * 11) % 97) - 0.14f;
            optim_begin_step(&a);
            optim_begin_step(&b);
            optim_update_range(&a, wa, g, 0, N, 0.05f);
            for (size_t k = 0; k + 1 < sizeof cuts / sizeof cuts[0]; k++)
                optim_update_range(&b, wb, g, cuts[k], cuts[k + 1], 0.05f);
        }
        if (memcmp(wa, wb, sizeof wa) != 0)
            fail_msg("optimizer kind %d: a cut step gives other bytes", kind);
        optim_free(&a);
        optim_free(&b);
    }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(sgd_momentum_step),
    cmocka_unit_test(adam_step),
    cmocka_unit_test(schedules),
    cmocka_unit_test(segment_scales),
    cmocka_unit_test(any_cut_same_bytes),
};
TEST_GROUP(optim_group, tests);
