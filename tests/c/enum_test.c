/* Enum arguments outside their enums, passed from C as a C caller may (all ones): the library
 * reads them as their bits (core/src/enums.h) and never loads them as the C++ enum, which the
 * ASan/UBSan build would abort on. (The enum fields of structs: tests/core/enum_test.cc.) */
#include <stdio.h>
#include <string.h>

#include "cuframes/cuframes.h"

#include "check.h"

#define ALL_ONES(type, name) \
  type name;                 \
  memset(&name, 0xFF, sizeof name)

int main(void) {
  ALL_ONES(cuframes_format_t, format);
  ALL_ONES(cuframes_memory_t, memory);
  ALL_ONES(cuframes_policy_t, policy);
  ALL_ONES(cuframes_mode_t, mode);
  ALL_ONES(cuframes_codec_t, codec);
  ALL_ONES(cuframes_dtype_t, dtype);
  ALL_ONES(cuframes_layout_t, layout);
  ALL_ONES(cuframes_channels_t, channels);
  ALL_ONES(cuframes_resize_t, resize);
  ALL_ONES(cuframes_color_matrix_t, matrix);
  ALL_ONES(cuframes_color_range_t, range);
  ALL_ONES(cuframes_log_level_t, level);

  cuframes_geometry_t g;
  CHECK(cuframes_geometry_compute(format, 64, 32, 0, 1, &g) == CUFRAMES_ERR_INVALID_ARGUMENT);
  CHECK(strstr(cuframes_last_error(), "unknown pixel format -1") != NULL);
  CHECK(strcmp(cuframes_format_name(format), "INVALID") == 0);
  CHECK(strcmp(cuframes_memory_name(memory), "invalid") == 0);
  CHECK(strcmp(cuframes_policy_name(policy), "invalid") == 0);
  CHECK(strcmp(cuframes_mode_name(mode), "invalid") == 0);
  CHECK(strcmp(cuframes_codec_name(codec), "unknown") == 0);
  CHECK(strcmp(cuframes_dtype_name(dtype), "invalid") == 0);
  CHECK(strcmp(cuframes_layout_name(layout), "invalid") == 0);
  CHECK(strcmp(cuframes_channels_name(channels), "invalid") == 0);
  CHECK(strcmp(cuframes_resize_name(resize), "invalid") == 0);
  CHECK(strcmp(cuframes_color_matrix_name(matrix), "invalid") == 0);
  CHECK(strcmp(cuframes_color_range_name(range), "invalid") == 0);
  cuframes_set_log_handler(NULL, NULL, level); /* stored as its bits, as before */
  cuframes_set_log_handler(NULL, NULL, CUFRAMES_LOG_WARN);
  if (failures == 0) printf("c_enum_test: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
