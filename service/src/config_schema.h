// The config schema: one table per section (top level, log, cameras and defaults, reconnect,
// mqtt, mqtt.tls) drives the known keys, the dispatch to the value parsers, the enum names and
// the "did you mean" suggestions. Each entry is a key, its parser and a one-line doc; adding a
// key is one entry (see docs/architecture.md, "How to add a config key").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config.h"
#include "config_values.h"

namespace cfsvc {

// Parses a whole document into *cfg, throwing Failure at the first problem.
void parse_document(const YAML::Node& root, const Source& src, Config* cfg);

// The schema as documentation: each section of docs/configuration.md ("Top level", "Cameras",
// "MQTT") with its keys, dotted within the section ("reconnect.initial"), in table order. The
// test service_config_doc_test compares it with the keys of the doc's tables.
struct KeyDoc {
  std::string name;
  std::string_view doc;
};
struct SchemaSection {
  std::string_view title;  // the doc's "## " heading
  std::vector<KeyDoc> keys;
};
std::vector<SchemaSection> config_schema();

}  // namespace cfsvc
