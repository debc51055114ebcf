// Keys, names and runtime directory resolution.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <string>

#include "common/test_util.h"
#include "runtime_dir.h"

using cuframes::detail::resolve_runtime_dir;
using cuframes::detail::valid_key;
using cuframes::detail::valid_name;

TEST(Keys, Alphabet) {
  EXPECT_TRUE(valid_key("cam-parking"));
  EXPECT_TRUE(valid_key("cam.front_yard-2"));
  EXPECT_TRUE(valid_key(std::string(64, 'k')));
  EXPECT_FALSE(valid_key(std::string(65, 'k')));
  EXPECT_FALSE(valid_key(""));
  EXPECT_FALSE(valid_key("."));
  EXPECT_FALSE(valid_key(".."));
  EXPECT_FALSE(valid_key("cam/../../etc"));
  EXPECT_FALSE(valid_key("cam parking"));
  EXPECT_FALSE(valid_key("cam\xc3\xa9"));
  EXPECT_TRUE(valid_name("yolo-world"));
  EXPECT_FALSE(valid_name(std::string(64, 'n')));
  EXPECT_FALSE(valid_name("a/b"));
  EXPECT_FALSE(valid_name("a+b#"));
}

TEST(RuntimeDir, OverrideThenEnvironment) {
  cftest::RuntimeDir a, b;
  std::string got;
  ASSERT_TRUE(resolve_runtime_dir(a.c_str(), &got).ok());
  EXPECT_EQ(got, a.path());
  ::setenv("CUFRAMES_RUNTIME_DIR", b.c_str(), 1);
  ASSERT_TRUE(resolve_runtime_dir(nullptr, &got).ok());
  EXPECT_EQ(got, b.path());
  ASSERT_TRUE(resolve_runtime_dir(a.c_str(), &got).ok());
  EXPECT_EQ(got, a.path());  // the option wins over the environment
  ::unsetenv("CUFRAMES_RUNTIME_DIR");
}

TEST(RuntimeDir, CreatedWithGroupAccess) {
  cftest::RuntimeDir parent;
  std::string dir = parent.path() + "/sub";
  std::string got;
  ASSERT_TRUE(resolve_runtime_dir(dir.c_str(), &got).ok());
  struct stat st;
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01770u);  // group access, sticky
}

TEST(RuntimeDir, NotADirectoryIsAClearError) {
  cftest::RuntimeDir parent;
  std::string file = parent.path() + "/file";
  FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  std::string got;
  auto st = resolve_runtime_dir(file.c_str(), &got);
  EXPECT_EQ(st.code(), CUFRAMES_ERR_SHM);
  EXPECT_NE(st.message().find("not a directory"), std::string::npos) << st.message();
}

TEST(RuntimeDir, LongDirectoriesStillWork) {
  // Socket paths longer than sun_path go through /proc/self/fd.
  cftest::RuntimeDir parent;
  std::string dir = parent.path() + "/" + std::string(60, 'd') + "/" + std::string(40, 'e');
  std::filesystem::create_directories(dir);
  cuframes::Publisher::Options po;
  po.runtime_dir = dir.c_str();
  po.width = 64;
  po.height = 32;
  cuframes::Publisher pub(std::string(64, 'k'), po);
  cuframes::Subscriber::Options so;
  so.runtime_dir = dir.c_str();
  so.connect_timeout_ms = 1000;
  cuframes::Subscriber sub(std::string(64, 'k'), so);
  EXPECT_EQ(pub.stats().subscribers, 1u);
}
