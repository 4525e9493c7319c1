#!/usr/bin/env bash
# Compile and test the app's pure-Kotlin core on the JVM, without Gradle or the Android SDK.
#
#   jvm-test.sh install            install what is missing: kotlinc (npm kotlin-compiler), JUnit 4, hamcrest, Gson (apt)
#   jvm-test.sh build              compile src/main + src/test once per source hash; prints the jar
#   jvm-test.sh classpath          the classpath to run the core (jar, Gson, JUnit, Kotlin stdlib)
#   jvm-test.sh test BUNDLE        run every *Test class against the bundle folder BUNDLE
#
# The compiled jar is cached under build/jvm/<hash of the sources and the compiler version>/.
# Outside CI a missing tool that cannot be installed ends `install` with exit 0 and a reason; under
# CI=true it fails.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
KOTLIN_VERSION=2.4.20
TOOLS=${COMPRESS_TOOLS:-$ROOT/.tools}
KOTLIN_HOME=$TOOLS/kotlin-$KOTLIN_VERSION/node_modules/kotlin-compiler
KOTLINC=$KOTLIN_HOME/bin/kotlinc
JARS=${COMPRESS_JAVA_JARS:-/usr/share/java}
LIBS="$JARS/gson.jar:$JARS/junit4.jar:$JARS/hamcrest-core.jar"

missing() {
    local what=()
    command -v java >/dev/null 2>&1 || what+=("java")
    [ -x "$KOTLINC" ] || what+=("kotlinc")
    for jar in gson.jar junit4.jar hamcrest-core.jar; do [ -f "$JARS/$jar" ] || what+=("$JARS/$jar"); done
    echo "${what[*]:-}"
}

give_up() {
    echo "jvm-test.sh: $1" >&2
    if [ "${CI:-}" = "true" ]; then exit 1; fi
    exit 0
}

install() {
    if ! command -v java >/dev/null 2>&1 || [ ! -f "$JARS/gson.jar" ] || [ ! -f "$JARS/junit4.jar" ] || [ ! -f "$JARS/hamcrest-core.jar" ]; then
        local sudo=""
        if [ "$(id -u)" != 0 ]; then
            if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else give_up "needs root to apt-get install junit4 libgoogle-gson-java"; fi
        fi
        command -v apt-get >/dev/null 2>&1 || give_up "no apt-get: install a JDK 17, JUnit 4, hamcrest and Gson jars into $JARS"
        local packages="junit4 libhamcrest-java libgoogle-gson-java"
        command -v java >/dev/null 2>&1 || packages="$packages default-jre-headless"
        $sudo apt-get update -qq
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $packages >/dev/null
    fi
    if [ ! -x "$KOTLINC" ]; then
        command -v npm >/dev/null 2>&1 || give_up "no npm to install kotlin-compiler@$KOTLIN_VERSION"
        mkdir -p "$TOOLS/kotlin-$KOTLIN_VERSION"
        npm install --silent --no-audit --no-fund --prefix "$TOOLS/kotlin-$KOTLIN_VERSION" "kotlin-compiler@$KOTLIN_VERSION"
    fi
    local left
    left=$(missing)
    [ -z "$left" ] || give_up "still missing: $left"
}

sources_hash() {
    (cd "$HERE" && find src/main src/test -type f -name '*.kt' | LC_ALL=C sort | xargs sha256sum; echo "kotlin $KOTLIN_VERSION") | sha256sum | cut -c1-16
}

build() {
    local left
    left=$(missing)
    if [ -n "$left" ]; then echo "jvm-test.sh: missing $left (run: $0 install)" >&2; exit 3; fi
    local out="$HERE/build/jvm/$(sources_hash)"
    if [ ! -f "$out/core.jar" ]; then
        local staging="$out/partial.$$"
        rm -rf "$staging" && mkdir -p "$staging"
        # kotlinc writes a jar when -d ends in .jar; the rename makes the cached jar appear whole or not at all
        "$KOTLINC" -nowarn -jvm-target 17 "$HERE/src/main/kotlin" "$HERE/src/test/kotlin" -cp "$LIBS" -d "$staging/core.jar" >&2
        mv "$staging/core.jar" "$out/core.jar"
        rm -rf "$staging"
    fi
    echo "$out/core.jar"
}

classpath() {
    local jar
    jar=$(build) || exit $?
    echo "$jar:$LIBS:$KOTLIN_HOME/lib/kotlin-stdlib.jar"
}

run_tests() {
    local bundle=${1:?usage: jvm-test.sh test BUNDLE}
    local cp classes
    cp=$(classpath)
    classes=$(cd "$HERE/src/test/kotlin" && find . -name '*Test.kt' | LC_ALL=C sort | sed -e 's|^\./||' -e 's|\.kt$||' -e 's|/|.|g')
    # shellcheck disable=SC2086
    java -Dcompress.bundle="$bundle" -cp "$cp" org.junit.runner.JUnitCore $classes
}

case "${1:-}" in
    install) install ;;
    build) build ;;
    classpath) classpath ;;
    test) shift; run_tests "$@" ;;
    *) sed -n '2,12p' "$0" >&2; exit 64 ;;
esac
