/* The C tests' one assertion: CHECK(cond) prints the file, line, condition and
 * cuframes_last_error() when cond is false, and counts it in `failures` (main returns it). */
#ifndef CUFRAMES_TESTS_C_CHECK_H_
#define CUFRAMES_TESTS_C_CHECK_H_

#include <stdio.h>

#include "cuframes/cuframes.h"

static int failures = 0;
#define CHECK(cond)                                                               \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "%s:%d: CHECK(%s) failed: %s\n", __FILE__, __LINE__, #cond, \
              cuframes_last_error());                                             \
      ++failures;                                                                 \
    }                                                                             \
  } while (0)

#endif /* CUFRAMES_TESTS_C_CHECK_H_ */
