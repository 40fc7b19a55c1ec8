# Interface targets that carry our warning and sanitizer flags, so every
# target opts in by linking them instead of repeating flag lists.
add_library(kestrel_warnings INTERFACE)
target_compile_options(kestrel_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
  -Wunused -Woverloaded-virtual -Wnull-dereference -Wformat=2 -Wimplicit-fallthrough
  # Designated initializers leave members at their defaults on purpose.
  -Wno-missing-field-initializers
  $<$<BOOL:${KESTREL_WERROR}>:-Werror>)

add_library(kestrel_sanitizers INTERFACE)
if(KESTREL_SANITIZE)
  target_compile_options(kestrel_sanitizers INTERFACE
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(kestrel_sanitizers INTERFACE -fsanitize=address,undefined)
endif()
