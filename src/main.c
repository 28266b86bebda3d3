/* main.c - parses the command line (cli_parse.c) and hands it to cli.c. */
#include <stdio.h>

#include "cli.h"
#include "dist.h"
#include "error.h"

static int run_command(int argc, char **argv);

int main(int argc, char **argv)
{
    cli_start();
    if (dist_init(&argc, &argv) != 0)
        return cli_error(TR_ERUNTIME, "MPI failed to start");
    /* Under mpirun every rank runs the command; rank 0 speaks for all. */
    if (dist_rank() > 0 && !freopen("/dev/null", "w", stdout))
        return cli_error(TR_ERUNTIME, "cannot redirect rank %d's output", dist_rank());
    int rc = cli_finish(run_command(argc, argv));
    dist_finalize();
    return rc;
}

static int run_command(int argc, char **argv)
{
    static cli_args a; /* large (the input list): not on the stack */
    int rc = cli_parse(argc, argv, &a);
    if (rc != 0)
        return rc;
    switch (a.cmd) {
    case CMD_INFO:
        return cli_info(&a);
    case CMD_HELP:
        cli_usage(stdout);
        return 0;
    case CMD_VERSION:
        return cli_version();
    case CMD_TRAIN:
        return cli_train(&a);
    case CMD_EVAL:
        return cli_eval(&a);
    case CMD_REPORT:
        return cli_report(&a);
    case CMD_EXPORT:
        return cli_export(&a);
    case CMD_PREDICT:
        return cli_predict(&a);
    }
    return 2;
}
