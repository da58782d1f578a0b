/* Built with `cc -static`: the shim cannot be preloaded into it. Prints its argument on
 * stdout, a line on stderr, and exits with status 7. */
#include <stdio.h>

int main(int argc, char **argv) {
    printf("static-hello %s\n", argc > 1 ? argv[1] : "-");
    fflush(stdout);
    fprintf(stderr, "static-hello on stderr\n");
    return 7;
}
