// Without FFmpeg (-DROBOMETER_WITH_VIDEO=OFF) there are no decoded frames to convert: CMake
// compiles this empty unit instead of video_color_converter.cpp.
