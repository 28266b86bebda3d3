/* main.c - runs every group of unit tests (with KERNELS_ONLY, the kernel
 * tests alone); exits non-zero if any failed.
 * CMOCKA_MESSAGE_OUTPUT=TAP gives the TAP lines that tests/run.sh counts;
 * UNIT_FILTER=PATTERN (cmocka's wildcards) runs only the matching tests;
 * UNIT_VERBOSE=1 prints the worst error of every gradient check. */
#include <stdlib.h>

#include "tests.h"

int main(void)
{
    const char *filter = getenv("UNIT_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
#ifdef KERNELS_ONLY /* the builds for other CPUs (Makefile: build/kernels-*) */
    const test_group *groups[] = { &kernel_group };
#else
    const test_group *groups[] = {
        &grad_group, &kernel_group, &idx_group, &config_group,
        &checkpoint_group, &optim_group, &data_group, &provenance_group, &image_group, &tree_group,
        &cli_group, &files_group, &runlog_group, &sched_group,
    };
#endif
    int failed = 0;
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        failed += _cmocka_run_group_tests(groups[i]->name, groups[i]->tests, groups[i]->count, NULL, NULL);
    return failed ? 1 : 0;
}
