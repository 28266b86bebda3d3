#!/usr/bin/env bats
# The command line and the config: --help, --version, usage errors, bad
# options, bad config files and --set values. Errors: exit 2 and one line on
# stderr; config errors name FILE:LINE.

load helpers

setup() {
    D=$BATS_TEST_TMPDIR
}

@test "--help and -h print the usage on stdout and exit 0" {
    for opt in --help -h help; do
        run --separate-stderr "$TRAINER" $opt
        assert_status 0
        [ -z "$stderr" ]
        [[ ${lines[0]} == usage:* ]]
        assert_contains "$output" "trainer eval MODEL"
        assert_contains "$output" "trainer predict MODEL"
        assert_contains "$output" "--resume CKPT"
    done
    # after a command and other options too
    run --separate-stderr "$TRAINER" eval --help
    assert_status 0
    [[ ${lines[0]} == usage:* ]]
}

@test "--version prints the version and exits 0" {
    for opt in --version -V; do
        run --separate-stderr "$TRAINER" $opt
        assert_status 0
        [ -z "$stderr" ]
        [[ $output =~ ^trainer\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "bad version line: $output"
    done
}

@test "an unknown option exits 2 with one line naming it" {
    for cmd in train eval predict; do
        run --separate-stderr "$TRAINER" $cmd --frobnicate
        assert_status 2
        assert_one_error_line "--frobnicate"
        [ -z "$output" ]
    done
}

@test "usage errors exit 2 with one line" {
    run --separate-stderr "$TRAINER" eval
    assert_status 2
    assert_one_error_line "eval MODEL"
    run --separate-stderr "$TRAINER" eval a.model b.model
    assert_status 2
    assert_one_error_line "eval MODEL"
    run --separate-stderr "$TRAINER" predict a.model
    assert_status 2
    assert_one_error_line "predict MODEL"
    run --separate-stderr "$TRAINER" train "$CONFIG" other.ini
    assert_status 2
    assert_one_error_line "one CONFIG"
    run --separate-stderr "$TRAINER" train "$CONFIG" --set
    assert_status 2
    assert_one_error_line "--set"
    run --separate-stderr "$TRAINER" train "$CONFIG" --resume
    assert_status 2
    assert_one_error_line "--resume"
}

@test "--threads needs a count from 1 to 4096 (exit 2)" {
    for n in 0 -1 abc 4097 2x ''; do
        run --separate-stderr "$TRAINER" train "$CONFIG" --threads "$n"
        assert_status 2
        assert_one_error_line "--threads"
    done
    run --separate-stderr "$TRAINER" train "$CONFIG" -j
    assert_status 2
    assert_one_error_line "-j"
}

@test "a missing config file exits 2 naming it" {
    run --separate-stderr "$TRAINER" train "$D/none.ini"
    assert_status 2
    assert_one_error_line "$D/none.ini" "No such file"
    [ -z "$output" ]
}

@test "an unknown key in a config file exits 2 with FILE:LINE" {
    printf '; a comment\n[train]\nepochs = 1\n\nbogus = 3\n' >"$D/bad.ini"
    run --separate-stderr "$TRAINER" train "$D/bad.ini"
    assert_status 2
    assert_one_error_line "$D/bad.ini:5:" "bogus"
    [ -z "$output" ]
}

@test "bad values, sections and lines in a config file exit 2 with FILE:LINE" {
    printf '[train]\nepochs = abc\n' >"$D/a.ini"
    printf '[data]\nlimit = 5\n[bogus]\nx = 1\n' >"$D/b.ini"
    printf '[train]\nlr = 0.1\nepochs\n' >"$D/c.ini"
    printf '[train]\noptimizer = rmsprop\n' >"$D/d.ini"
    printf '\n[layer.fc]\ntype = blah\n' >"$D/e.ini"
    printf '[train]\nbatch_size = 0\n' >"$D/f.ini"
    printf '[train]\nepochs = 1\n[trian]\n' >"$D/g.ini"
    # (an unknown section is reported at its header, even an empty one)
    for f in a:2 b:3 c:3 d:2 e:3 f:2 g:3; do
        run --separate-stderr "$TRAINER" train "$D/${f%:*}.ini"
        assert_status 2
        assert_one_error_line "$D/${f%:*}.ini:${f#*:}:"
    done
}

@test "layers that do not fit, or a last layer that is not the classes, exit 2 naming FILE:LINE and the layer" {
    printf '[layer.c]\ntype = conv\nfilters = 4\nsize = 30\n[layer.fc]\ntype = dense\noutputs = 10\n' >"$D/shape.ini"
    printf '[layer.fc]\ntype = dense\noutputs = 7\n' >"$D/classes.ini"
    run --separate-stderr "$TRAINER" train "$D/shape.ini" --set "output.model=$D/m.model"
    assert_status 2
    assert_one_error_line "$D/shape.ini:1:" "'c'" "30"
    [ -z "$output" ] # refused before anything is printed
    run --separate-stderr "$TRAINER" train "$D/classes.ini" --set "output.model=$D/m.model"
    assert_status 2
    assert_one_error_line "$D/classes.ini:1:" "'fc'" "10"
    [ ! -e "$D/m.model" ]
}

@test "an unknown key or section in --set exits 2 quoting the option" {
    for s in train.nokey=1 nosection.lr=1 layer.nolayer.size=3 noequals train.=1 =1; do
        run --separate-stderr "$TRAINER" train "$CONFIG" --set "$s"
        assert_status 2
        assert_one_error_line "--set $s"
        [ -z "$output" ]
    done
}

@test "a bad --set value exits 2 quoting the option" {
    for s in train.epochs=abc train.epochs=2x train.epochs= train.epochs=-1 train.lr=nan train.lr=1e999 \
        train.optimizer=rmsprop train.nesterov=maybe data.val_fraction=0.95 train.batch_size=0; do
        run --separate-stderr "$TRAINER" train "$CONFIG" --set "$s"
        assert_status 2
        assert_one_error_line "--set $s"
    done
}

@test "--set=KEY=VALUE and --resume=CKPT are the same as the two-word forms" {
    fixtures
    mkdir "$D/a" "$D/b"
    train_small "$D/a" -q --set data.limit=100 --set data.test_limit=100 --set train.batch_size=20 --set train.seed=5
    train_small "$D/b" -q --set data.limit=100 --set data.test_limit=100 --set train.batch_size=20 --set=train.seed=5
    assert_same_model "$D/a/m.model" "$D/b/m.model"
    run --separate-stderr train_small "$D/b" --set data.limit=100 --set data.test_limit=100 --set train.batch_size=20 \
        --set=train.seed=5 --set train.epochs=2 --resume="$D/b/m.model.ckpt"
    assert_status 0
    assert_contains "$output" "resuming from $D/b/m.model.ckpt"
}

@test "configs/default.ini equals the built-in defaults: both give the same model bytes" {
    fixtures
    mkdir "$D/file" "$D/builtin"
    local -a ARGS
    small_argv "$D/file"
    local -a sets=("${ARGS[@]:1}" --set data.limit=100 --set data.test_limit=100 --set train.batch_size=20 -q)
    run --separate-stderr "$TRAINER" train "$CONFIG" "${sets[@]}"
    assert_status 0
    # No CONFIG: there is no configs/default.ini beside build/*/trainer, so
    # (unless one is installed) the built-in defaults.
    small_argv "$D/builtin"
    run --separate-stderr "$TRAINER" train "${ARGS[@]:1}" --set data.limit=100 --set data.test_limit=100 \
        --set train.batch_size=20
    assert_status 0
    [[ ${lines[0]} == *"config (built-in defaults)"* ]] || skip "this binary found a default config: ${lines[0]}"
    assert_same_model "$D/file/m.model" "$D/builtin/m.model"
}

@test "--help's options and the man page's OPTIONS name the same options" {
    run --separate-stderr "$TRAINER" --help
    assert_status 0
    help=$(printf '%s\n' "$output" | sed -n '/^options:$/,/^$/p' | awk -F'  +' '/^  -/ {print $2}' |
        grep -oE '(^|[ ,])--?[A-Za-z][A-Za-z-]*' | tr -d ' ,' | LC_ALL=C sort)
    man=$(sed -n '/^\.SH OPTIONS/,/^\.SH /p' "$BATS_TEST_DIRNAME/../docs/trainer.1" | grep -A1 '^\.TP' | grep -v '^\.TP\|^--' |
        sed 's/\\-/-/g; s/\\f[RBI]//g' | grep -oE '(^|[ "])--?[A-Za-z][A-Za-z-]*' | tr -d ' "' | LC_ALL=C sort)
    [ "$(printf '%s\n' "$help" | wc -l)" -ge 15 ] || fail "too few options in --help: $help"
    [ "$help" = "$man" ] || fail "--help and docs/trainer.1 differ:" "$(diff <(echo "$help") <(echo "$man"))"
}

@test "--help and the man page name the same commands for each option" {
    run --separate-stderr "$TRAINER" --help
    assert_status 0
    # "--name cmds" per option: --help's "train, eval: text" prefix; the
    # man page's command words followed by ':' or ',' in the option's entry.
    cmds='train|eval|info|predict|report|export'
    norm() { while read -r o c; do printf '%s %s\n' "$o" "$(printf '%s\n' $c | LC_ALL=C sort | xargs)"; done | LC_ALL=C sort; }
    help=$(printf '%s\n' "$output" | sed -n '/^options:$/,/^$/p' | awk -F'  +' -v re="^($cmds)[,:]$" '/^  -/ {
            split($2, s, /[ ,]/); printf "%s", s[1]; n = split($3, t, / /)
            for (i = 1; i <= n && t[i] ~ re; i++) { w = t[i]; sub(/[,:]$/, "", w); printf " %s", w }
            print "" }' | norm)
    man=$(sed -n '/^\.SH OPTIONS/,/^\.PP/p' "$BATS_TEST_DIRNAME/../docs/trainer.1" | sed 's/\\-/-/g; s/\\f[RBI]//g' |
        awk -v re="($cmds)[,:]" '
            function flush() { if (name != "") { printf "%s", name; for (i = 1; i <= n; i++) printf " %s", w[i]; print "" } }
            /^\.TP/ { flush(); name = ""; n = 0; getline; match($0, /--[A-Za-z-]+/); name = substr($0, RSTART, RLENGTH); next }
            /^\.PP/ { flush(); name = ""; next }
            { line = $0; while (match(line, re)) { c = substr(line, RSTART, RLENGTH - 1); if (!(name SUBSEP c in seen)) { seen[name, c] = 1; w[++n] = c }; line = substr(line, RSTART + RLENGTH) } }' |
        norm)
    [ "$(printf '%s\n' "$help" | grep -c ' [a-z]')" -ge 10 ] || fail "too few options with commands in --help: $help"
    [ "$help" = "$man" ] || fail "--help and docs/trainer.1 differ:" "$(diff <(echo "$help") <(echo "$man"))"
}

@test "an option given to a command where it has no effect is refused, naming where it applies" {
    run --separate-stderr "$TRAINER" eval "$D/m.model" --bare
    assert_status 2
    assert_one_error_line "--bare applies to 'trainer export' only"
    run --separate-stderr "$TRAINER" predict "$D/m.model" "$D/x.png" -qj2
    assert_status 2
    assert_one_error_line "--quiet applies to 'trainer train', 'trainer eval' and 'trainer export' only"
}

@test "options: --name=VALUE, bundled short ones, and -- before a file named like an option" {
    run --separate-stderr "$TRAINER" eval --threads=2 -qj2 -- --no-such.model
    assert_status 2
    assert_one_error_line "--no-such.model"
    [[ $stderr != *"unknown option"* ]] || fail "-- did not end the options: $stderr"
}
