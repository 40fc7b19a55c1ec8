// Phase timings for performance work: with KESTREL_TRACE=1 in the
// environment, trace("what") prints "kestrel: trace  123.4 ms  what" to
// stderr, measured from the process's start. Free when tracing is off.
#pragma once

#include <string_view>

namespace kestrel {

bool tracing();
void trace(std::string_view what);

}  // namespace kestrel
