/* Sized structs (cuframes.h): a caller built against an older cuframes.h, whose options and stats
 * structs end earlier, keeps working (options past its size take their defaults, stats past its
 * size are not written); a struct_size of 0 or larger than the library knows is refused with
 * INVALID_ARGUMENT naming the struct. Compiled as C11 with -pedantic -Werror. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cuframes/cuframes.h"

#include "check.h"

/* The struct as an older caller has it: the first `size` bytes of `full`, in a heap block of
 * exactly that size (the sanitizer build sees any access past it), with struct_size = size. */
static void* older(const void* full, size_t size) {
  void* p = malloc(size);
  if (p == NULL) abort();
  memcpy(p, full, size);
  memcpy(p, &size, sizeof size); /* struct_size leads */
  return p;
}

/* status is INVALID_ARGUMENT and the message names `what`. */
static int refused(cuframes_status_t status, const char* what) {
  return status == CUFRAMES_ERR_INVALID_ARGUMENT && strstr(cuframes_last_error(), what) != NULL;
}

int main(void) {
  char dir[] = "/tmp/cuframes-size-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  uint8_t y[64 * 32], uv[64 * 16];
  memset(y, 16, sizeof y);
  memset(uv, 128, sizeof uv);

  /* Publisher options of a caller from before the packet ring: packet_ring_bytes (1 here, which
   * would be refused if read) is past its size, so it takes its default (no packet ring). */
  cuframes_publisher_options_t po;
  cuframes_publisher_options_init(&po);
  CHECK(po.struct_size == sizeof po);
  po.runtime_dir = dir;
  po.width = 64;
  po.height = 32;
  po.slots = 4;
  po.packet_ring_bytes = 1;
  cuframes_publisher_t* pub = NULL;
  CHECK(cuframes_publisher_create("c-size", &po, &pub) == CUFRAMES_ERR_INVALID_ARGUMENT);
  void* old_po = older(&po, offsetof(cuframes_publisher_options_t, packet_ring_bytes));
  CHECK(cuframes_publisher_create("c-size", old_po, &pub) == CUFRAMES_OK);
  free(old_po);
  /* Bad sizes: 0 (never initialised) and larger than this library knows. */
  cuframes_publisher_t* none = NULL;
  po.packet_ring_bytes = 0;
  po.struct_size = 0;
  CHECK(refused(cuframes_publisher_create("c-other", &po, &none),
                "cuframes_publisher_options_t.struct_size is 0"));
  po.struct_size = sizeof po + 8;
  CHECK(refused(cuframes_publisher_create("c-other", &po, &none),
                "cuframes_publisher_options_t.struct_size"));
  CHECK(strstr(cuframes_last_error(), "larger than this libcuframes knows") != NULL);
  CHECK(none == NULL);

  /* Subscriber options from before spin_us: its 999999 (over the 10000 limit) is not read. */
  cuframes_subscriber_options_t so;
  cuframes_subscriber_options_init(&so);
  CHECK(so.struct_size == sizeof so);
  so.runtime_dir = dir;
  so.consumer_name = "c-old";
  so.connect_timeout_ms = 1000;
  so.spin_us = 999999;
  void* old_so = older(&so, offsetof(cuframes_subscriber_options_t, spin_us));
  cuframes_subscriber_t* sub = NULL;
  CHECK(cuframes_subscriber_create("c-size", old_so, &sub) == CUFRAMES_OK);
  free(old_so);
  so.spin_us = 0;
  so.consumer_name = "c-new";
  cuframes_subscriber_t* sub2 = NULL;
  CHECK(cuframes_subscriber_create("c-size", &so, &sub2) == CUFRAMES_OK);
  so.struct_size = 0;
  cuframes_subscriber_t* bad_sub = NULL;
  CHECK(refused(cuframes_subscriber_create("c-size", &so, &bad_sub),
                "cuframes_subscriber_options_t.struct_size is 0"));

  /* A source from before the colour description: BT.2020 is past its size, the frame says
   * UNKNOWN (the default). */
  cuframes_source_t src;
  cuframes_source_init(&src);
  CHECK(src.struct_size == sizeof src);
  src.planes[0] = y;
  src.planes[1] = uv;
  src.pitches[0] = src.pitches[1] = 64;
  src.color_matrix = CUFRAMES_COLOR_MATRIX_BT2020;
  void* old_src = older(&src, offsetof(cuframes_source_t, color_matrix));
  uint64_t seq = 0;
  CHECK(cuframes_publisher_publish(pub, old_src, 1000, &seq) == CUFRAMES_OK && seq == 1);
  free(old_src);
  cuframes_frame_t* frame = NULL;
  CHECK(cuframes_subscriber_next(sub, 1000, &frame) == CUFRAMES_OK);
  if (frame != NULL) {
    cuframes_frame_info_t info;
    cuframes_frame_get_info(frame, &info);
    CHECK(info.seq == 1 && info.color_matrix == CUFRAMES_COLOR_MATRIX_UNKNOWN);
    CHECK(cuframes_frame_release(frame, NULL) == CUFRAMES_OK);
  }
  src.struct_size = sizeof src + 8;
  CHECK(
      refused(cuframes_publisher_publish(pub, &src, 2000, &seq), "cuframes_source_t.struct_size"));

  /* Publisher stats from before last_publish_ns: that field is not written. */
  cuframes_publisher_stats_t ps;
  memset(&ps, 0, sizeof ps);
  ps.last_publish_ns = 12345;
  ps.struct_size = offsetof(cuframes_publisher_stats_t, last_publish_ns);
  CHECK(cuframes_publisher_get_stats(pub, &ps) == CUFRAMES_OK);
  CHECK(ps.published == 1 && ps.last_seq == 1 && ps.subscribers == 2);
  CHECK(ps.last_publish_ns == 12345);
  CHECK(ps.struct_size == offsetof(cuframes_publisher_stats_t, last_publish_ns));
  ps.struct_size = 0;
  CHECK(refused(cuframes_publisher_get_stats(pub, &ps),
                "cuframes_publisher_stats_t.struct_size is 0"));
  ps.struct_size = sizeof ps;
  CHECK(cuframes_publisher_get_stats(pub, &ps) == CUFRAMES_OK && ps.last_publish_ns > 0);

  /* Subscriber stats: too large is refused, an older size gets its fields only. */
  cuframes_subscriber_stats_t ss;
  memset(&ss, 0, sizeof ss);
  ss.struct_size = sizeof ss + 16;
  CHECK(
      refused(cuframes_subscriber_get_stats(sub, &ss), "cuframes_subscriber_stats_t.struct_size"));
  ss.struct_size = offsetof(cuframes_subscriber_stats_t, lag);
  ss.slot_index = 77;
  CHECK(cuframes_subscriber_get_stats(sub, &ss) == CUFRAMES_OK);
  CHECK(ss.frames_received == 1 && strcmp(ss.name, "c-old") == 0 && ss.slot_index == 77);

  /* An array of older subscriber stats: the elements lie subs[0].struct_size apart. */
  const size_t old_sub = offsetof(cuframes_subscriber_stats_t, lag);
  unsigned char* subs = calloc(4, old_sub);
  CHECK(subs != NULL);
  memcpy(subs, &old_sub, sizeof old_sub);
  size_t n = 0;
  CHECK(cuframes_publisher_read_subscribers(pub, (cuframes_subscriber_stats_t*)subs, 4, &n) ==
        CUFRAMES_OK);
  CHECK(n == 2);
  for (size_t i = 0; i < n && i < 4; ++i) {
    cuframes_subscriber_stats_t e;
    memset(&e, 0, sizeof e);
    memcpy(&e, subs + i * old_sub, old_sub);
    CHECK(e.struct_size == old_sub);
    CHECK(strcmp(e.name, "c-old") == 0 || strcmp(e.name, "c-new") == 0);
  }

  /* The observer: an older ring status (from before transport) and the same array. */
  cuframes_observer_t* obs = NULL;
  CHECK(cuframes_observer_create("c-size", dir, 1000, &obs) == CUFRAMES_OK);
  cuframes_ring_status_t ring;
  memset(&ring, 0, sizeof ring);
  ring.transport[0] = 'X';
  ring.struct_size = offsetof(cuframes_ring_status_t, transport);
  memset(subs, 0, 4 * old_sub);
  memcpy(subs, &old_sub, sizeof old_sub);
  n = 0;
  CHECK(cuframes_observer_read(obs, &ring, (cuframes_subscriber_stats_t*)subs, 4, &n) ==
        CUFRAMES_OK);
  CHECK(n == 2 && ring.stats.published == 1 && ring.has_packet_ring == 0);
  CHECK(ring.stats.struct_size == sizeof ring.stats);
  CHECK(ring.transport[0] == 'X');
  ring.struct_size = 0;
  CHECK(refused(cuframes_observer_read(obs, &ring, NULL, 0, &n),
                "cuframes_ring_status_t.struct_size is 0"));
  memset(subs, 0, sizeof(size_t));
  ring.struct_size = sizeof ring;
  CHECK(refused(cuframes_observer_read(obs, &ring, (cuframes_subscriber_stats_t*)subs, 4, &n),
                "cuframes_subscriber_stats_t.struct_size is 0"));
  cuframes_observer_destroy(obs);
  free(subs);

  /* Preprocess options from before cuda_stream, and a zero size. */
  cuframes_preprocess_options_t pp;
  cuframes_preprocess_options_init(&pp);
  CHECK(pp.struct_size == sizeof pp);
  pp.width = pp.height = 16;
  void* old_pp = older(&pp, offsetof(cuframes_preprocess_options_t, cuda_stream));
  CHECK(cuframes_preprocess_bytes(old_pp, 1) == 3 * 16 * 16 * 2); /* float16 by default */
  free(old_pp);
  pp.struct_size = 0;
  CHECK(cuframes_preprocess_bytes(&pp, 1) == 0);
  CHECK(cuframes_subscriber_next(sub2, 1000, &frame) == CUFRAMES_OK);
  if (frame != NULL) {
    uint16_t img[3 * 16 * 16];
    CHECK(refused(cuframes_preprocess(&frame, 1, &pp, img, sizeof img, NULL),
                  "cuframes_preprocess_options_t.struct_size is 0"));
    CHECK(cuframes_frame_release(frame, NULL) == CUFRAMES_OK);
  }

  /* Packet reader options from before start_at_oldest, its stats from before gaps. */
  cuframes_publisher_options_init(&po);
  po.runtime_dir = dir;
  po.width = 64;
  po.height = 32;
  po.packet_ring_bytes = 64 * 1024;
  cuframes_publisher_t* ppub = NULL;
  CHECK(cuframes_publisher_create("c-pkt", &po, &ppub) == CUFRAMES_OK);
  cuframes_packet_reader_options_t ro;
  cuframes_packet_reader_options_init(&ro);
  CHECK(ro.struct_size == sizeof ro);
  ro.runtime_dir = dir;
  ro.connect_timeout_ms = 1000;
  ro.struct_size = sizeof ro + 8;
  cuframes_packet_reader_t* reader = NULL;
  CHECK(refused(cuframes_packet_reader_create("c-pkt", &ro, &reader),
                "cuframes_packet_reader_options_t.struct_size"));
  void* old_ro = older(&ro, offsetof(cuframes_packet_reader_options_t, start_at_oldest));
  CHECK(cuframes_packet_reader_create("c-pkt", old_ro, &reader) == CUFRAMES_OK);
  free(old_ro);
  const uint8_t au[] = {0, 0, 0, 1, 0x65, 0x88};
  cuframes_packet_t pkt;
  memset(&pkt, 0, sizeof pkt);
  pkt.data = au;
  pkt.size = sizeof au;
  CHECK(cuframes_publisher_write_packet(ppub, &pkt) == CUFRAMES_OK);
  cuframes_packet_t got;
  CHECK(cuframes_packet_reader_next(reader, 1000, &got) == CUFRAMES_OK);
  cuframes_packet_reader_stats_t rs;
  memset(&rs, 0, sizeof rs);
  rs.gaps = 77;
  rs.struct_size = offsetof(cuframes_packet_reader_stats_t, gaps);
  CHECK(cuframes_packet_reader_get_stats(reader, &rs) == CUFRAMES_OK);
  CHECK(rs.packets == 1 && rs.bytes == sizeof au && rs.gaps == 77);
  rs.struct_size = 0;
  CHECK(refused(cuframes_packet_reader_get_stats(reader, &rs),
                "cuframes_packet_reader_stats_t.struct_size is 0"));
  cuframes_packet_reader_destroy(reader);
  cuframes_publisher_destroy(ppub);

  cuframes_subscriber_destroy(sub);
  cuframes_subscriber_destroy(sub2);
  cuframes_publisher_destroy(pub);
  CHECK(rmdir(dir) == 0); /* a clean stop leaves nothing behind */
  if (failures == 0) printf("c_struct_size_test: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
