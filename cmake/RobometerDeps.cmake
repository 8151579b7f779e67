# Every third-party dependency, found from Debian packages (or the pip LibTorch on GPU machines),
# exposed as robometer::<name> interface targets so that the layers do not care how.
# GPU machines have no package registry: scripts/gpu/ unpacks the Debian packages they lack into
# a prefix and passes it here. Its headers must win over copies bundled inside the pip torch
# (torch/include/fmt), so they go in as -I (searched before torch's -isystem dirs).
set(ROBOMETER_DEPS_PREFIX "" CACHE PATH "Unpacked Debian packages (usr/...) for machines without apt")
if(ROBOMETER_DEPS_PREFIX)
  include_directories(BEFORE ${ROBOMETER_DEPS_PREFIX}/usr/include
                      ${ROBOMETER_DEPS_PREFIX}/usr/include/x86_64-linux-gnu)
  list(PREPEND CMAKE_PREFIX_PATH ${ROBOMETER_DEPS_PREFIX}/usr ${ROBOMETER_DEPS_PREFIX}/usr/lib/x86_64-linux-gnu/cmake
       ${ROBOMETER_DEPS_PREFIX}/usr/share/cmake)
  set(ENV{PKG_CONFIG_PATH} "${ROBOMETER_DEPS_PREFIX}/usr/lib/x86_64-linux-gnu/pkgconfig:${ROBOMETER_DEPS_PREFIX}/usr/share/pkgconfig:$ENV{PKG_CONFIG_PATH}")
  set(ENV{PKG_CONFIG_SYSROOT_DIR} "")
  link_directories(${ROBOMETER_DEPS_PREFIX}/usr/lib/x86_64-linux-gnu)
endif()

find_package(Torch REQUIRED)
add_library(robometer::torch INTERFACE IMPORTED)
target_link_libraries(robometer::torch INTERFACE ${TORCH_LIBRARIES})
target_compile_options(robometer::torch INTERFACE ${TORCH_CXX_FLAGS})
message(STATUS "robometer: LibTorch ${Torch_VERSION} at ${TORCH_INSTALL_PREFIX}")

find_package(Threads REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(CLI11 REQUIRED)
find_package(PkgConfig REQUIRED)

add_library(robometer::yaml INTERFACE IMPORTED)
if(TARGET yaml-cpp::yaml-cpp)
  target_link_libraries(robometer::yaml INTERFACE yaml-cpp::yaml-cpp)
else()
  target_link_libraries(robometer::yaml INTERFACE yaml-cpp)   # yaml-cpp 0.7 has no namespaced target
endif()

# Video decoding/encoding. OFF only for machines where FFmpeg cannot be installed (the GPU
# benchmark box): the reader/writer then throw "built without FFmpeg" and video tests skip.
option(ROBOMETER_WITH_VIDEO "Build the FFmpeg video reader/writer" ON)
add_library(robometer::ffmpeg INTERFACE IMPORTED)
if(ROBOMETER_WITH_VIDEO)
  pkg_check_modules(FFMPEG REQUIRED IMPORTED_TARGET libavformat libavcodec libswscale libavutil)
  target_link_libraries(robometer::ffmpeg INTERFACE PkgConfig::FFMPEG)
else()
  target_compile_definitions(robometer::ffmpeg INTERFACE ROBOMETER_NO_VIDEO=1)
endif()

# Tokenizer text handling: PCRE2 for the pre-tokenizer regex (\p{L}, look-ahead), utf8proc
# for NFC normalisation.
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)
add_library(robometer::text INTERFACE IMPORTED)
target_link_libraries(robometer::text INTERFACE PkgConfig::PCRE2 PkgConfig::UTF8PROC)

# Parquet page codecs.
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
pkg_check_modules(ZLIB REQUIRED IMPORTED_TARGET zlib)
pkg_check_modules(BROTLIDEC REQUIRED IMPORTED_TARGET libbrotlidec)
pkg_check_modules(LZ4 REQUIRED IMPORTED_TARGET liblz4)
find_library(SNAPPY_LIB snappy REQUIRED)
find_path(SNAPPY_INCLUDE snappy.h REQUIRED)
add_library(robometer::codecs INTERFACE IMPORTED)
target_link_libraries(robometer::codecs INTERFACE PkgConfig::ZSTD PkgConfig::ZLIB PkgConfig::BROTLIDEC
                      PkgConfig::LZ4 ${SNAPPY_LIB})
target_include_directories(robometer::codecs INTERFACE ${SNAPPY_INCLUDE})

option(ROBOMETER_WITH_CAIRO "Draw reward plots with Cairo (score --plot)" ON)
add_library(robometer::cairo INTERFACE IMPORTED)
if(ROBOMETER_WITH_CAIRO)
  pkg_check_modules(CAIRO REQUIRED IMPORTED_TARGET cairo)
  target_link_libraries(robometer::cairo INTERFACE PkgConfig::CAIRO)
else()
  target_compile_definitions(robometer::cairo INTERFACE ROBOMETER_NO_CAIRO=1)
endif()

# cpp-httplib: Debian builds it as a shared library (httplib.h declares, libcpp-httplib.so
# defines, CPPHTTPLIB_* options baked in via its pkg-config file).
pkg_check_modules(HTTPLIB IMPORTED_TARGET cpp-httplib)
add_library(robometer::httplib INTERFACE IMPORTED)
if(HTTPLIB_FOUND)
  target_link_libraries(robometer::httplib INTERFACE PkgConfig::HTTPLIB Threads::Threads)
else()
  # A bundled prefix without brotli/openssl .pc files: the server API we use does not depend
  # on the TLS/compression options, so header + library suffice.
  find_path(HTTPLIB_INCLUDE httplib.h REQUIRED)
  find_library(HTTPLIB_LIB cpp-httplib REQUIRED)
  target_include_directories(robometer::httplib INTERFACE ${HTTPLIB_INCLUDE})
  target_link_libraries(robometer::httplib INTERFACE ${HTTPLIB_LIB} Threads::Threads)
endif()
