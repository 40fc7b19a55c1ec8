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

# Unity batches: a target's files compiled a few at a time, each batch one
# translation unit of up to KESTREL_UNITY_BATCH files of one folder (room).
# Each of our files includes the same heavy headers (the standard library,
# fmt, nlohmann-json, CLI11, toml++) and instantiates the same templates; on
# 2 cores that was most of a fresh build's 10 minutes. Batched, a fresh
# build takes about a third of that (docs/building.md). Names in anonymous
# namespaces must therefore differ between the files of a room. Off
# (-DKESTREL_UNITY=OFF) when editing one file at a time matters more.
option(KESTREL_UNITY "Compile each folder's files in batches (faster fresh builds)" ON)
set(KESTREL_UNITY_BATCH 6 CACHE STRING "Files per unity batch")
function(kestrel_unity_batches target)
  if(NOT KESTREL_UNITY)
    return()
  endif()
  get_target_property(sources ${target} SOURCES)
  get_target_property(source_dir ${target} SOURCE_DIR)
  # The .cpp files of each room, in order.
  set(rooms "")
  foreach(source ${sources})
    if(source MATCHES "\\.cpp$")
      get_filename_component(dir ${source} DIRECTORY)
      get_filename_component(room ${dir} NAME)
      list(APPEND rooms ${room})
      list(APPEND files_${room} ${source})
    endif()
  endforeach()
  list(REMOVE_DUPLICATES rooms)
  # Each room in batches of even size, none over KESTREL_UNITY_BATCH files.
  foreach(room ${rooms})
    list(LENGTH files_${room} count)
    math(EXPR batches "(${count} + ${KESTREL_UNITY_BATCH} - 1) / ${KESTREL_UNITY_BATCH}")
    math(EXPR per_batch "(${count} + ${batches} - 1) / ${batches}")
    set(i 0)
    foreach(source ${files_${room}})
      math(EXPR batch "${i} / ${per_batch}")
      set_property(SOURCE ${source} DIRECTORY ${source_dir} PROPERTY UNITY_GROUP ${room}_${batch})
      math(EXPR i "${i} + 1")
    endforeach()
  endforeach()
  set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_MODE GROUP)
endfunction()
