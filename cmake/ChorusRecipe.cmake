# chorus_add_recipe(<name> <source>...): a recipe program, linked to chorus::chorus, whose --schema
# describes each config field with the comment above it in the sources. (A C++ program cannot see its
# comments: chorus-config-docs reads them at build time into a generated source file.)
#
#   chorus_add_recipe(my_recipe my_recipe.cpp)
#
# Defined by chorus's own build (and so under add_subdirectory) and by find_package(chorus).

# The public header whose config structs recipes nest (LoraOptions: `lora.r`), read for their comments
# too: in the source tree (cmake/ beside include/) or installed (lib/cmake/chorus/ under the prefix).
foreach(candidate ${CMAKE_CURRENT_LIST_DIR}/../include/chorus/model.hpp
                  ${CMAKE_CURRENT_LIST_DIR}/../../../include/chorus/model.hpp)
  get_filename_component(candidate ${candidate} ABSOLUTE)
  if(EXISTS ${candidate} AND NOT CHORUS_NESTED_CONFIG_HEADER)
    set(CHORUS_NESTED_CONFIG_HEADER ${candidate} CACHE INTERNAL "chorus's header of nested config structs")
  endif()
endforeach()

function(chorus_add_recipe name)
  if(NOT ARGN)
    message(FATAL_ERROR "chorus_add_recipe(${name}): give the program's sources")
  endif()
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE chorus::chorus)
  set(sources "")
  foreach(source IN LISTS ARGN)
    get_filename_component(source ${source} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    list(APPEND sources ${source})
  endforeach()
  if(CHORUS_NESTED_CONFIG_HEADER)
    list(APPEND sources ${CHORUS_NESTED_CONFIG_HEADER})
  endif()
  if(TARGET chorus-config-docs)
    set(tool chorus-config-docs) # chorus's own build, or a project that adds it with add_subdirectory
  else()
    set(tool chorus::config-docs) # find_package(chorus)
  endif()
  set(docs ${CMAKE_CURRENT_BINARY_DIR}/${name}_config_docs.cpp)
  add_custom_command(OUTPUT ${docs}
    COMMAND $<TARGET_FILE:${tool}> ${docs} ${sources}
    DEPENDS ${sources} ${tool}
    COMMENT "Reading the config field comments of ${name}"
    VERBATIM)
  target_sources(${name} PRIVATE ${docs})
endfunction()
