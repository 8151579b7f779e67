# Every third-party dependency, found from Debian packages (or the pip LibTorch on GPU machines),
# exposed as robometer::<name> interface targets so that the layers do not care how.
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

pkg_check_modules(FFMPEG REQUIRED IMPORTED_TARGET libavformat libavcodec libswscale libavutil)
add_library(robometer::ffmpeg INTERFACE IMPORTED)
target_link_libraries(robometer::ffmpeg INTERFACE PkgConfig::FFMPEG)

# Tokenizer text handling: PCRE2 for the pre-tokenizer regex (\p{L}, look-ahead), utf8proc
# for NFC normalisation.
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)
add_library(robometer::text INTERFACE IMPORTED)
target_link_libraries(robometer::text INTERFACE PkgConfig::PCRE2 PkgConfig::UTF8PROC)

# Parquet page codecs.
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
pkg_check_modules(ZLIB REQUIRED IMPORTED_TARGET zlib)
find_library(SNAPPY_LIB snappy REQUIRED)
find_path(SNAPPY_INCLUDE snappy.h REQUIRED)
add_library(robometer::codecs INTERFACE IMPORTED)
target_link_libraries(robometer::codecs INTERFACE PkgConfig::ZSTD PkgConfig::ZLIB ${SNAPPY_LIB})
target_include_directories(robometer::codecs INTERFACE ${SNAPPY_INCLUDE})

pkg_check_modules(CAIRO REQUIRED IMPORTED_TARGET cairo)
add_library(robometer::cairo INTERFACE IMPORTED)
target_link_libraries(robometer::cairo INTERFACE PkgConfig::CAIRO)

# cpp-httplib is header-only (Debian libcpp-httplib-dev ships httplib.h).
find_path(HTTPLIB_INCLUDE httplib.h REQUIRED)
add_library(robometer::httplib INTERFACE IMPORTED)
target_include_directories(robometer::httplib INTERFACE ${HTTPLIB_INCLUDE})
target_link_libraries(robometer::httplib INTERFACE Threads::Threads)
