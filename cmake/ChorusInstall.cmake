# `cmake --install build --prefix P` and find_package(chorus): installs the public headers, the
# libraries, the programs (chorus-tokenize, chorus-serve, chorus-node) and a CMake package whose
# targets find their dependencies again (ChorusFindDependencies.cmake). The same package is exported
# into the build folder, so that a project can use a chorus that was built and not installed:
# find_package(chorus 0.2 REQUIRED HINTS /path/to/chorus/build).
include(CMakePackageConfigHelpers)
set(CHORUS_PACKAGE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/chorus)

# Exported as chorus::<name without the chorus_ prefix>; chorus_all is chorus::chorus, the one target a
# project links. chorus_warnings travels only because static libraries name their private links.
set(chorus_exported chorus_all chorus_runtime chorus_tensorboard_proto chorus_warnings)
foreach(library chorus_models chorus_actors chorus_model_api chorus_recipes chorus_serve chorus_node)
  if(TARGET ${library})
    list(APPEND chorus_exported ${library})
  endif()
endforeach()
foreach(target IN LISTS chorus_exported)
  string(REGEX REPLACE "^chorus_" "" name ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name})
endforeach()
set_target_properties(chorus_all PROPERTIES EXPORT_NAME chorus)

install(TARGETS ${chorus_exported} EXPORT chorusTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/chorus DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# chorus-config-docs is run by chorus_add_recipe in projects that find chorus: exported.
set_target_properties(chorus-config-docs PROPERTIES EXPORT_NAME config-docs)
install(TARGETS chorus-config-docs EXPORT chorusTargets RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
foreach(program chorus-tokenize chorus-serve chorus-node)
  if(TARGET ${program})
    # Installed programs keep the RUNPATH to the OpenMP OpenBLAS (ChorusFindDependencies.cmake).
    set_target_properties(${program} PROPERTIES INSTALL_RPATH_USE_LINK_PATH TRUE)
    install(TARGETS ${program} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()

install(EXPORT chorusTargets NAMESPACE chorus:: DESTINATION ${CHORUS_PACKAGE_DIR})
export(EXPORT chorusTargets NAMESPACE chorus:: FILE ${PROJECT_BINARY_DIR}/chorusTargets.cmake)
configure_file(${PROJECT_SOURCE_DIR}/cmake/chorusConfig.cmake.in ${PROJECT_BINARY_DIR}/chorusConfig.cmake @ONLY)
# 0.x: a new minor version may change the API, so only the same minor version matches.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/chorusConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/chorusConfig.cmake ${PROJECT_BINARY_DIR}/chorusConfigVersion.cmake
  DESTINATION ${CHORUS_PACKAGE_DIR})
# The files chorusConfig.cmake includes, beside it in the build folder and in the install.
foreach(file ChorusFindDependencies.cmake ChorusCompilerCheck.cmake ChorusRecipe.cmake)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/${file} ${PROJECT_BINARY_DIR}/${file} COPYONLY)
  install(FILES ${PROJECT_SOURCE_DIR}/cmake/${file} DESTINATION ${CHORUS_PACKAGE_DIR})
endforeach()
