#include "util/json.hpp"

namespace kestrel {

nlohmann::json parse_json(std::string_view text) { return nlohmann::json::parse(text, nullptr, false); }

std::string dump_json(const nlohmann::json& j, int indent, bool lossy) {
  return j.dump(indent, ' ', false,
                lossy ? nlohmann::json::error_handler_t::replace : nlohmann::json::error_handler_t::strict);
}

}  // namespace kestrel
