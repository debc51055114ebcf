// Names as Home Assistant ids. A camera's or a subscriber's name becomes part of MQTT topics,
// unique_ids and entity ids, which Home Assistant only accepts as lower-case a-z 0-9 words
// joined by single '_' (e.g. "Front.Door-2" -> "front_door_2").
#pragma once

#include <string>
#include <string_view>

namespace cfsvc {

// The id of `name`: upper case lowered, every run of other characters one '_', no '_' at
// either end; "x" when nothing is left. Different names can share an id ("front.door",
// "front_door"): the config refuses two such cameras, subscribers get a suffix.
std::string ha_id(std::string_view name);

}  // namespace cfsvc
