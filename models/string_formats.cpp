#include "models/string_formats.hpp"

namespace chorus::models {

namespace {

// RFC 3339's full-date: months and days that always exist (no 29 February: not every year has one).
constexpr const char* kDate = "[0-9]{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)"
                              "|(?:0[13578]|1[02])-31)";
// RFC 3339's full-time: no leap second (not every minute has one); a fraction, then Z or an offset.
constexpr const char* kTime = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?"
                              "(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])";
// RFC 3339 appendix A: weeks, or date parts in order (each leading to the next), then time parts.
constexpr const char* kDurationTime = "T(?:[0-9]{1,4}H(?:[0-9]{1,4}M(?:[0-9]{1,4}S)?)?|[0-9]{1,4}M(?:[0-9]{1,4}S)?"
                                      "|[0-9]{1,4}S)";
// A host name's label: letters and digits, single hyphens between them (so never the "--" of
// positions 3 and 4 that IDNA reserves); the last label is letters (RFC 1123: never all digits).
constexpr const char* kLabel = "[a-z0-9]{1,10}(?:-[a-z0-9]{1,10}){0,2}";
constexpr const char* kTopLabel = "[a-z]{2,10}";
constexpr const char* kOctet = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";

} // namespace

std::optional<std::string> string_format_pattern(std::string_view format) {
  const std::string label = kLabel, top = kTopLabel, octet = kOctet, time = kTime, date = kDate,
                    duration_time = kDurationTime;
  if (format == "date")
    return date;
  if (format == "time")
    return time;
  if (format == "date-time")
    return date + "T" + time;
  if (format == "duration")
    return "P(?:[0-9]{1,4}W|(?:[0-9]{1,4}Y(?:[0-9]{1,4}M(?:[0-9]{1,4}D)?)?|[0-9]{1,4}M(?:[0-9]{1,4}D)?|[0-9]{1,4}D)(?:"
      + duration_time + ")?|" + duration_time + ")";
  if (format == "email") // a dot-atom local part of at most 63 bytes (no dot first, last or twice), a domain
    return "[A-Za-z0-9_+-]{1,15}(?:\\.[A-Za-z0-9_+-]{1,15}){0,3}@(?:" + label + "\\.){1,3}" + top;
  if (format == "hostname")
    return "(?:" + label + "\\.){0,4}" + top;
  if (format == "ipv4")
    return octet + "(?:\\." + octet + "){3}";
  if (format == "ipv6") // the full form: eight groups
    return "[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){7}";
  if (format == "uuid")
    return "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
  return std::nullopt;
}

const char* string_format_names() {
  return "date-time, date, time, duration, email, hostname, ipv4, ipv6, uuid";
}

} // namespace chorus::models
