// The original eval_server.py API (issue 22 item 2): a Python client that builds its requests
// the way the original's clients do (tests/serve/original_client.py, python3-requests + numpy)
// against a live server; its numbers are checked against our /score, and the preference
// against the scorer. Plus the .npy reader on its own.
#include <fstream>

#include "robometer/serve/npy.h"
#include "robometer/serve/original_api.h"
#include "serve_test_util.h"

namespace robometer::serve {
namespace {
using nlohmann::json;
using OriginalApi = test::ServeSuite;

TEST(Npy, RoundTripFortranOrderAndConversion) {
  const at::Tensor f = robometer::test::test_frames(2, 8, 3);
  const std::string bytes = npy_encode_uint8(f);
  EXPECT_EQ(bytes.size() % 64,
            static_cast<size_t>(f.numel()) % 64);  // header padded to 64 bytes, as numpy does
  const NpyArray a = parse_npy(bytes, "x");
  EXPECT_EQ(a.descr, "|u1");
  EXPECT_EQ(a.shape, f.sizes().vec());
  EXPECT_TRUE(at::equal(npy_to_uint8(a), f));
  // A Fortran-order float64 array of the same values (what np.save(np.asfortranarray(x.astype(float)))
  // writes).
  const at::Tensor d = f.to(at::kDouble);
  const at::Tensor fortran_bytes = d.permute({3, 2, 1, 0}).contiguous();
  std::string header = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 8, 8, 3), }";
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string npy("\x93NUMPY\x01\x00", 8);
  npy += static_cast<char>(header.size());
  npy += '\0';
  npy += header;
  npy.append(reinterpret_cast<const char*>(fortran_bytes.data_ptr<double>()),
             static_cast<size_t>(d.numel()) * 8);
  EXPECT_TRUE(at::equal(npy_to_uint8(parse_npy(npy, "y")), f));
}

TEST(FrameSteps, PositionsOfThePrefix) {
  // np.linspace(0, t, 4, dtype=int) for t = 0, 1, 2, 4, 9 (numpy: arange(4) * t/3, truncated).
  EXPECT_EQ(frame_step_positions(0), (std::vector<int64_t>{0, 0, 0, 0}));
  EXPECT_EQ(frame_step_positions(1), (std::vector<int64_t>{0, 0, 0, 1}));
  EXPECT_EQ(frame_step_positions(2), (std::vector<int64_t>{0, 0, 1, 2}));
  EXPECT_EQ(frame_step_positions(4), (std::vector<int64_t>{0, 1, 2, 4}));
  EXPECT_EQ(frame_step_positions(9), (std::vector<int64_t>{0, 3, 6, 9}));
}

std::string python_with_requests() {
  for (const char* py : {"/usr/bin/python3", "python3"})
    if (robometer::test::capture_command(std::string(py) + " -c 'import numpy, requests'").code == 0)
      return py;
  return "";
}

TEST_F(OriginalApi, PythonClientOfTheOriginalGetsOurScores) {
  const std::string py = python_with_requests();
  if (py.empty())
    GTEST_SKIP() << "python3 with numpy and requests not found (Debian: python3-numpy python3-requests)";
  ServerOptions o;
  o.model_path = "tiny-test-model";
  o.experiment_config_json = R"({"model": {"config_json": "configs/models/tiny.json"}})";
  Running r(*bundle_, o);
  robometer::test::TempDir tmp;
  const at::Tensor a = robometer::test::test_frames(5, 48, 21).slice(2, 0, 40).contiguous();  // 5 x 48 x 40
  const at::Tensor b = robometer::test::test_frames(4, 64, 22);
  std::ofstream(tmp / "a.npy", std::ios::binary) << npy_encode_uint8(a);
  std::ofstream(tmp / "b.npy", std::ios::binary) << npy_encode_uint8(b);
  const auto res = robometer::test::capture_command(
      py + " " + (robometer::test::source_dir() / "tests/serve/original_client.py").string() +
      " --url http://127.0.0.1:" + std::to_string(r.port) + " --frames-a " + (tmp / "a.npy").string() +
      " --frames-b " + (tmp / "b.npy").string() + " --out " + (tmp / "out.json").string());
  std::printf("%s", res.out.c_str());
  ASSERT_EQ(res.code, 0) << res.out;
  std::ifstream in(tmp / "out.json");
  const json out = json::parse(in);
  EXPECT_EQ(out["checks"].get<int>(), 9);  // every comparison the client makes
  const double want = r.scorer.preferences({{"put the red block in the bowl", a, b}})[0];
  EXPECT_NEAR(out["preference_prob"].get<double>(), want, 1e-5);
}

}  // namespace
}  // namespace robometer::serve
