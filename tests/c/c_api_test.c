/* Compiled as C11 with -pedantic -Werror: proves cuframes.h is a C header, and exercises the
 * C ABI end to end without any C++ on the caller's side. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cuframes/cuframes.h"

#include "check.h"

int main(void) {
  char dir[] = "/tmp/cuframes-c-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);

  cuframes_publisher_options_t po;
  cuframes_publisher_options_init(&po);
  CHECK(po.slots == 8 && po.format == CUFRAMES_FORMAT_NV12 && po.memory == CUFRAMES_MEMORY_HOST);
  po.runtime_dir = dir;
  po.width = 64;
  po.height = 32;
  po.packet_ring_bytes = 65536;
  cuframes_publisher_t* pub = NULL;
  CHECK(cuframes_publisher_create("c-cam", &po, &pub) == CUFRAMES_OK);

  cuframes_subscriber_options_t so;
  cuframes_subscriber_options_init(&so);
  CHECK(so.connect_timeout_ms == -1 && so.mode == CUFRAMES_MODE_NEWEST_ONLY);
  so.runtime_dir = dir;
  so.consumer_name = "c-test";
  so.connect_timeout_ms = 1000;
  cuframes_subscriber_t* sub = NULL;
  CHECK(cuframes_subscriber_create("c-cam", &so, &sub) == CUFRAMES_OK);
  CHECK(strcmp(cuframes_subscriber_name(sub), "c-test") == 0);
  CHECK(cuframes_subscriber_fd(sub) >= 0);

  unsigned char y[64 * 32], uv[64 * 16];
  memset(y, 0x10, sizeof y);
  memset(uv, 0x80, sizeof uv);
  cuframes_source_t src;
  cuframes_source_init(&src);
  src.planes[0] = y;
  src.planes[1] = uv;
  src.pitches[0] = src.pitches[1] = 64;
  uint64_t seq = 0;
  CHECK(cuframes_publisher_publish(pub, &src, 777, &seq) == CUFRAMES_OK && seq == 1);

  cuframes_frame_t* frame = NULL;
  CHECK(cuframes_subscriber_next(sub, 1000, &frame) == CUFRAMES_OK);
  if (frame != NULL) {
    cuframes_frame_info_t fi;
    cuframes_frame_get_info(frame, &fi);
    CHECK(fi.seq == 1 && fi.pts_ns == 777);
    CHECK(fi.geometry.width == 64 && fi.geometry.pitch_y == 64 && fi.geometry.num_planes == 2);
    CHECK(((const unsigned char*)fi.plane_y)[5] == 0x10);
    CHECK(((const unsigned char*)fi.plane_uv)[5] == 0x80);
    CHECK(fi.color_matrix == CUFRAMES_COLOR_MATRIX_UNKNOWN && fi.color_range == 0);

    /* Y 16 (limited range black) to a quarter-size RGB batch of uint8 levels: all 0. */
    cuframes_preprocess_options_t pp;
    cuframes_preprocess_options_init(&pp);
    pp.width = 16;
    pp.height = 8;
    pp.dtype = CUFRAMES_DTYPE_UINT8;
    unsigned char img[3 * 16 * 8];
    cuframes_transform_t tf;
    memset(img, 0xAB, sizeof img);
    CHECK(cuframes_preprocess_bytes(&pp, 1) == sizeof img);
    CHECK(cuframes_preprocess(&frame, 1, &pp, img, sizeof img, &tf) == CUFRAMES_OK);
    CHECK(img[0] == 0 && img[sizeof img - 1] == 0);
    CHECK(tf.scale_x == 0.25f && tf.scale_y == 0.25f && tf.pad_x == 0.0f && tf.pad_y == 0.0f);
    CHECK(cuframes_preprocess(&frame, 1, &pp, img, sizeof img - 1, NULL) ==
          CUFRAMES_ERR_INVALID_ARGUMENT);
    CHECK(cuframes_frame_release(frame, NULL) == CUFRAMES_OK);
  }
  CHECK(cuframes_subscriber_next(sub, 10, &frame) == CUFRAMES_ERR_FRAME_TIMEOUT);
  CHECK(strlen(cuframes_last_error()) > 0);

  cuframes_subscriber_stats_t ss;
  ss.struct_size = sizeof ss;
  CHECK(cuframes_subscriber_get_stats(sub, &ss) == CUFRAMES_OK);
  CHECK(ss.frames_received == 1 && ss.timeouts == 1 && ss.last_seq == 1);

  cuframes_loan_t* loan = NULL;
  CHECK(cuframes_publisher_loan(pub, &loan) == CUFRAMES_OK);
  if (loan != NULL) {
    cuframes_frame_info_t li;
    cuframes_loan_get_info(loan, &li);
    memset(li.data, 0x33, li.geometry.frame_bytes);
    CHECK(cuframes_publisher_commit(pub, loan, 888, NULL, &seq) == CUFRAMES_OK && seq == 2);
  }

  cuframes_observer_t* obs = NULL;
  CHECK(cuframes_observer_create("c-cam", dir, 1000, &obs) == CUFRAMES_OK);
  cuframes_ring_status_t ring;
  cuframes_subscriber_stats_t subs[4];
  size_t n = 0;
  ring.struct_size = sizeof ring;
  subs[0].struct_size = sizeof subs[0];
  CHECK(cuframes_observer_read(obs, &ring, subs, 4, &n) == CUFRAMES_OK);
  CHECK(n == 1 && strcmp(subs[0].name, "c-test") == 0);
  CHECK(ring.stats.published == 2 && ring.has_packet_ring == 1);
  cuframes_observer_destroy(obs);

  cuframes_key_list_t* keys = NULL;
  CHECK(cuframes_list_publishers(dir, &keys) == CUFRAMES_OK);
  CHECK(cuframes_key_list_size(keys) == 1 && strcmp(cuframes_key_list_get(keys, 0), "c-cam") == 0);
  cuframes_key_list_destroy(keys);

  cuframes_packet_reader_options_t ro;
  cuframes_packet_reader_options_init(&ro);
  ro.runtime_dir = dir;
  ro.connect_timeout_ms = 1000;
  cuframes_packet_reader_t* reader = NULL;
  CHECK(cuframes_packet_reader_create("c-cam", &ro, &reader) == CUFRAMES_OK);
  const uint8_t au[] = {0, 0, 0, 1, 0x65, 0x88};
  cuframes_packet_t pkt;
  memset(&pkt, 0, sizeof pkt);
  pkt.data = au;
  pkt.size = sizeof au;
  pkt.flags = CUFRAMES_PACKET_KEY;
  pkt.pts = 90000;
  CHECK(cuframes_publisher_write_packet(pub, &pkt) == CUFRAMES_OK);
  cuframes_packet_t got;
  CHECK(cuframes_packet_reader_next(reader, 1000, &got) == CUFRAMES_OK);
  CHECK(got.size == sizeof au && memcmp(got.data, au, sizeof au) == 0 && got.pts == 90000);
  cuframes_packet_reader_destroy(reader);

  CHECK(cuframes_publisher_create("bad key", &po, &pub) == CUFRAMES_ERR_INVALID_ARGUMENT);
  CHECK(strstr(cuframes_last_error(), "invalid key") != NULL);

  cuframes_publisher_destroy(pub);
  CHECK(cuframes_subscriber_next(sub, 1000, &frame) == CUFRAMES_ERR_PUBLISHER_GONE);
  cuframes_subscriber_destroy(sub);

  cuframes_publisher_destroy(NULL);
  cuframes_subscriber_destroy(NULL);
  char lock[64];
  snprintf(lock, sizeof lock, "%s/c-cam.lock", dir);
  unlink(lock);
  rmdir(dir);
  if (failures == 0) printf("c_api_test: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
