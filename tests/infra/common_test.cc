// The shared infrastructure of the CLI and the service (common/, library cuframes_common):
// atomic file writes, backoff delays, subscriber rates between samples, JSON number formats.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "atomic_file.h"
#include "backoff.h"
#include "json.h"
#include "subscriber_rates.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "cuframes-common-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

size_t entries(const fs::path& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

// ---- atomic_file.h

TEST(AtomicFile, WritesAndReplaces) {
  TempDir d;
  const fs::path p = d.path() / "status.json";
  ASSERT_EQ(cfcommon::write_file_atomic(p, "first"), "");
  EXPECT_EQ(read(p), "first");
  const std::string big(1 << 20, 'x');  // more than one write() may take
  ASSERT_EQ(cfcommon::write_file_atomic(p, big), "");
  EXPECT_EQ(read(p), big);
  EXPECT_EQ(entries(d.path()), 1u);  // no temporary file left beside it
}

TEST(AtomicFile, AppliesTheMode) {
  TempDir d;
  const fs::path p = d.path() / "f";
  const mode_t old = ::umask(022);
  ASSERT_EQ(cfcommon::write_file_atomic(p, "x", 0640), "");
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST(AtomicFile, FailureNamesThePathAndLeavesNothing) {
  TempDir d;
  const fs::path p = d.path() / "missing" / "f.jpg";
  const std::string err = cfcommon::write_file_atomic(p, "x");
  EXPECT_NE(err.find("cannot write " + p.string()), std::string::npos) << err;
  EXPECT_NE(err.find("No such file or directory"), std::string::npos) << err;
  EXPECT_EQ(entries(d.path()), 0u);
}

TEST(AtomicFile, ReplacesALinkAtTheTemporaryNameWithoutFollowingIt) {
  TempDir d;
  const fs::path p = d.path() / "f";
  const fs::path target = d.path() / "target";
  std::ofstream(target) << "keep";
  fs::create_symlink(target, p.string() + ".tmp-" + std::to_string(::getpid()));
  ASSERT_EQ(cfcommon::write_file_atomic(p, "new"), "");
  EXPECT_EQ(read(target), "keep");  // the link's target untouched
  EXPECT_EQ(read(p), "new");
  EXPECT_EQ(entries(d.path()), 2u);  // f and target: the link is gone
}

TEST(AtomicFile, ReplacesALeftoverOfAnEarlierProcessWithThisPid) {
  TempDir d;
  const fs::path p = d.path() / "status.json";
  std::ofstream(p.string() + ".tmp-" + std::to_string(::getpid())) << "half a docu";
  ASSERT_EQ(cfcommon::write_file_atomic(p, "whole"), "");
  EXPECT_EQ(read(p), "whole");
  EXPECT_EQ(entries(d.path()), 1u);
}

TEST(AtomicFile, RemovesOnlyTheTemporariesOfProcessesGone) {
  TempDir d;
  const fs::path p = d.path() / "status.json";
  const pid_t gone = ::fork();  // a pid that was a process and is no more
  if (gone == 0) ::_exit(0);
  ASSERT_GT(gone, 0);
  int st = 0;
  ASSERT_EQ(::waitpid(gone, &st, 0), gone);
  const std::string dead = p.string() + ".tmp-" + std::to_string(gone);
  const std::string live = p.string() + ".tmp-" + std::to_string(::getpid());
  for (const std::string& f : {dead, live, p.string() + ".tmp-x1", p.string() + ".tmp-",
                               (d.path() / "other.json.tmp-1").string()}) {
    std::ofstream(f) << "x";
  }
  EXPECT_EQ(cfcommon::remove_stale_temporaries(p), 1);
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(live));                           // ours: alive
  EXPECT_TRUE(fs::exists(p.string() + ".tmp-x1"));         // not a pid
  EXPECT_TRUE(fs::exists(p.string() + ".tmp-"));           // no pid at all
  EXPECT_TRUE(fs::exists(d.path() / "other.json.tmp-1"));  // another file's
  EXPECT_EQ(cfcommon::remove_stale_temporaries(d.path() / "missing" / "f"), 0);
}

TEST(AtomicFile, KeepsTheOldFileWhenTheRenameFails) {
  TempDir d;
  const fs::path p = d.path() / "dir";
  fs::create_directory(p);
  std::ofstream(p / "inside") << "x";  // a non-empty directory cannot be renamed over
  EXPECT_NE(cfcommon::write_file_atomic(p, "new"), "");
  EXPECT_TRUE(fs::is_directory(p));
  EXPECT_EQ(entries(d.path()), 1u);  // the temporary file is gone
}

// ---- backoff.h

TEST(Backoff, JitterStaysWithinTwentyPercent) {
  std::set<int64_t> seen;
  for (int i = 0; i < 2000; ++i) {
    const int64_t ms = cfcommon::jittered(1000ms).count();
    ASSERT_GE(ms, 800);
    ASSERT_LE(ms, 1200);
    seen.insert(ms);
  }
  EXPECT_GT(seen.size(), 100u);  // it does vary
}

TEST(Backoff, DoublesUpToTheMaximumAndResets) {
  cfcommon::Backoff b(1000ms, 30000ms);
  const int64_t expected[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
  for (int64_t base : expected) {
    const int64_t ms = b.next().count();
    EXPECT_GE(ms, base * 8 / 10) << base;
    EXPECT_LE(ms, base * 12 / 10) << base;
  }
  b.reset();
  const int64_t ms = b.next().count();
  EXPECT_GE(ms, 800);
  EXPECT_LE(ms, 1200);
}

// ---- subscriber_rates.h

cuframes_subscriber_stats_t sub(uint32_t slot, int64_t attached_ns, uint64_t frames) {
  cuframes_subscriber_stats_t s{};
  s.slot_index = slot;
  s.attached_ns = attached_ns;
  s.frames_received = frames;
  return s;
}

constexpr int64_t kSec = 1'000'000'000;

TEST(SubscriberRates, MatchesTheSameAttachmentBetweenSamples) {
  cfcommon::SubscriberRates r;
  auto first = r.update({sub(0, 5, 100), sub(1, 7, 10)}, 10 * kSec);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_FALSE(first[0]);  // nothing to compare with yet
  EXPECT_FALSE(first[1]);

  // Two seconds later: slot 0 is the same subscriber (60 frames more), slot 1 another one that
  // attached since (another attach time), slot 2 new.
  auto second = r.update({sub(1, 9, 3), sub(0, 5, 160), sub(2, 11, 1)}, 12 * kSec);
  ASSERT_EQ(second.size(), 3u);
  EXPECT_FALSE(second[0]);
  ASSERT_TRUE(second[1]);
  EXPECT_DOUBLE_EQ(*second[1], 30.0);
  EXPECT_FALSE(second[2]);

  // A counter that went back is 0, not a huge number; a clear forgets everyone.
  auto third = r.update({sub(0, 5, 150), sub(1, 9, 33)}, 13 * kSec);
  ASSERT_TRUE(third[0] && third[1]);
  EXPECT_EQ(*third[0], 0.0);
  EXPECT_DOUBLE_EQ(*third[1], 30.0);
  r.clear();
  EXPECT_FALSE(r.update({sub(0, 5, 180)}, 14 * kSec)[0]);
}

TEST(SubscriberRates, NoTimePassedGivesNoRate) {
  cfcommon::SubscriberRates r;
  r.update({sub(0, 5, 100)}, 10 * kSec);
  EXPECT_FALSE(r.update({sub(0, 5, 110)}, 10 * kSec)[0]);
  EXPECT_FALSE(cfcommon::per_second(10, 0, 0.0));
  EXPECT_EQ(cfcommon::per_second(10, 0, 0.5), 20.0);
  EXPECT_EQ(cfcommon::per_second(0, 10, 0.5), 0.0);
}

// ---- json.h

TEST(Json, NumberFormats) {
  using cfcommon::dump;
  EXPECT_EQ(dump(cfcommon::fixed(29.97002997, 2)), "29.97");
  EXPECT_EQ(dump(cfcommon::fixed(30.0, 2)), "30.0");
  EXPECT_EQ(dump(cfcommon::fixed(0.0804, 3)), "0.08");
  EXPECT_EQ(dump(cfcommon::fixed(1234.5, 0)), "1235");
  EXPECT_EQ(dump(cfcommon::fixed(std::nan(""), 2)), "null");
  EXPECT_EQ(dump(cfcommon::significant(1.7011712345)), "1.70117");
  EXPECT_EQ(dump(cfcommon::significant(37.36924)), "37.3692");
  EXPECT_EQ(dump(cfcommon::significant(std::nullopt)), "null");
  EXPECT_EQ(dump(cfcommon::significant(std::numeric_limits<double>::infinity())), "null");
}

TEST(Json, KeepsKeyOrderAndSurvivesBadUtf8) {
  cfcommon::Json j;
  j["z"] = 1;
  j["a"] = "x\"\n";
  j["name"] = std::string("bad\xff");
  EXPECT_EQ(cfcommon::dump(j), "{\"z\":1,\"a\":\"x\\\"\\n\",\"name\":\"bad\xef\xbf\xbd\"}");
}

}  // namespace
