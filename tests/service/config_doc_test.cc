// docs/configuration.md against the config schema (service/src/config_schema.cc): every key of
// the schema's tables is documented, and every documented key is in a table.
//
// The doc's convention: a table whose header starts with "| key |" documents config keys; each
// row's first cell is a key in backticks, dotted within its section ("reconnect.initial"); the
// keys belong to the section of the nearest "## " heading above the table.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "config_schema.h"

namespace cfsvc {
namespace {

using Sections = std::map<std::string, std::set<std::string>>;  // title -> keys

Sections documented(const std::string& path) {
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << "cannot read " << path;
  Sections out;
  std::string line, section;
  bool in_key_table = false;
  while (std::getline(f, line)) {
    if (line.rfind("## ", 0) == 0) {
      section = line.substr(3);
      in_key_table = false;
      continue;
    }
    if (line.rfind("|", 0) != 0) {
      in_key_table = false;
      continue;
    }
    if (line.rfind("| key |", 0) == 0) {
      in_key_table = true;
      out[section];  // a key table, even an empty one, makes a section
      continue;
    }
    if (!in_key_table || line.rfind("| ---", 0) == 0) continue;
    // "| `reconnect.initial` | duration | ...": the first cell, in backticks.
    const size_t open = line.find('`');
    const size_t close = open == std::string::npos ? open : line.find('`', open + 1);
    const size_t cell_end = line.find('|', 1);
    if (close == std::string::npos || close > cell_end) {
      ADD_FAILURE() << path << ": section '" << section
                    << "': a key table row without a `key` in its first cell: " << line;
      continue;
    }
    out[section].insert(line.substr(open + 1, close - open - 1));
  }
  return out;
}

std::string list(const std::set<std::string>& keys) {
  std::ostringstream s;
  for (const std::string& k : keys) s << " " << k;
  return s.str();
}

TEST(ConfigDoc, EveryKeyOfTheSchemaIsDocumentedAndTheOtherWayRound) {
  const std::string path = std::string(CFSVC_SOURCE_DIR) + "/docs/configuration.md";
  const Sections doc = documented(path);
  Sections schema;
  for (const SchemaSection& s : config_schema()) {
    for (const KeyDoc& k : s.keys) {
      EXPECT_FALSE(k.doc.empty()) << s.title << ": key '" << k.name << "' has no doc line";
      schema[std::string(s.title)].insert(k.name);
    }
  }
  ASSERT_FALSE(schema.empty());
  for (const auto& [title, keys] : schema) {
    auto it = doc.find(title);
    if (it == doc.end()) {
      ADD_FAILURE() << path << ": no section '## " << title
                    << "' with a '| key |' table (keys:" << list(keys) << ")";
      continue;
    }
    std::set<std::string> missing, extra;
    for (const std::string& k : keys) {
      if (!it->second.count(k)) missing.insert(k);
    }
    for (const std::string& k : it->second) {
      if (!keys.count(k)) extra.insert(k);
    }
    EXPECT_TRUE(missing.empty()) << path << ", section '" << title
                                 << "': keys of the schema that the doc's table lacks:"
                                 << list(missing);
    EXPECT_TRUE(extra.empty()) << path << ", section '" << title
                               << "': keys in the doc's table that the schema lacks:"
                               << list(extra);
  }
  for (const auto& [title, keys] : doc) {
    EXPECT_TRUE(schema.count(title))
        << path << ": section '## " << title
        << "' has a '| key |' table, but the schema has no such section (keys:" << list(keys)
        << ")";
  }
}

}  // namespace
}  // namespace cfsvc
